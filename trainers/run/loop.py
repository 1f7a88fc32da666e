"""What every trainer shares: compile settings, the callbacks that keep the run folder, the fit
call, and the end of a run (final model, test metrics, learning curve)."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import keras
import numpy as np

from builder.errors import did_you_mean

from ..data.adaptation import adapt_normalizations
from ..data.pipeline import TrainStream
from ..errors import DataError, TrainingFault
from . import plots
from .folder import EpochCheckpoint, StepCheckpoint, atomic_write, last_checkpoint
from .interruption import StopOnRequest, stop_at_step_end
from .saving import load_model, save_model


def jit_compile_setting(requested):
    """`auto` is Keras's choice, except TensorFlow on a CPU: there XLA:CPU trains ResNet-50 4.3x
    slower than TensorFlow's own oneDNN kernels (bench/cpu_backends.py), so XLA stays off."""
    if requested != "auto" or keras.backend.backend() != "tensorflow":
        return requested
    import tensorflow as tf

    return "auto" if tf.config.list_logical_devices("GPU") else False


def speed_settings(config: dict) -> dict:
    """`model.compile` keyword arguments from the train section's `performance`."""
    performance = config["performance"]
    return {"jit_compile": jit_compile_setting(performance["jit_compile"]),
            "steps_per_execution": performance["steps_per_execution"]}


def fit(model, train: TrainStream, val, job, trainer_callbacks=(), **fit_kwargs) -> None:
    """`model.fit` for a `TrainingJob`, with the run folder's callbacks: a NaN guard, per-epoch
    (and, if configured, per-N-step) checkpoints and history, TensorBoard and, if configured,
    early stopping. `trainer_callbacks` run first, so what they add to the epoch's logs reaches
    history.csv. A run resumed mid-epoch first fits the rest of that epoch, then the others."""
    config, folder = job.config, job.folder
    epochs = EpochCheckpoint(folder, job.history)
    callbacks = [*trainer_callbacks, StopOnNonFiniteLoss(folder), epochs,
                 keras.callbacks.TensorBoard(log_dir=str(folder / "tensorboard"), write_graph=False),
                 *job.extra_callbacks]
    every = config.get("checkpoint_every_steps")
    position = None
    if every:
        if train.steps_per_epoch is None:
            raise DataError("checkpoint_every_steps needs a training stream in a fixed order per epoch")
        position = StepCheckpoint(folder, every, epochs, train.steps_per_epoch, job.initial_step)
        callbacks.append(position)
    if config.get("early_stopping"):  # a setting only some trainers honour
        stop = dict(config["early_stopping"])
        callbacks.append(keras.callbacks.EarlyStopping(monitor=stop.get("monitor", "val_loss"),
                                                       patience=stop.get("patience", 5),
                                                       restore_best_weights=stop.get("restore_best_weights", True)))
    if job.distributed:
        callbacks = [*job.placement.fit_callbacks(), *callbacks]
    steps, dataset = train.steps_per_epoch, train.dataset
    if job.placement is not None and job.placement.group:
        # Keras shards each stream by process, which hides its length: give it, or Keras runs
        # each epoch until the data runs out and warns that it did. Told the length, Keras reads
        # every epoch from one iterator, so a stream of one epoch (and the validation split) is
        # repeated: each repetition is the next epoch, reshuffled.
        if steps is None:
            steps, dataset = int(dataset.cardinality()), dataset.repeat()
        if val is not None:
            fit_kwargs = {"validation_steps": int(val.cardinality()), **fit_kwargs}
            val = val.repeat()
    first = job.initial_epoch
    with stop_at_step_end() as stop:
        callbacks.append(StopOnRequest(stop, position.save_position if position else None))
        common = dict(validation_data=val, callbacks=callbacks, verbose=job.verbose, shuffle=False, **fit_kwargs)
        if train.partial is not None and first < config["epochs"]:
            partial = {**common, "callbacks": [*callbacks, RunProgress(config["epochs"])]} if job.verbose else common
            model.fit(train.partial, epochs=first + 1, initial_epoch=first, steps_per_epoch=train.partial_steps,
                      **partial)
            first += 1
        if first < config["epochs"]:
            model.fit(dataset, epochs=config["epochs"], initial_epoch=first, steps_per_epoch=steps, **common)
    if job.distributed:
        job.placement.training_done()


class RunProgress(keras.callbacks.ProgbarLogger):
    """Keras's progress bar with the run's epoch count in its header: the rest of an interrupted
    epoch is its own `fit` call of one epoch, yet reads `Epoch 3/6`, not `Epoch 3/3`."""

    def __init__(self, epochs: int):
        super().__init__()
        self.run_epochs = epochs

    def set_params(self, params):
        super().set_params(params)
        self.epochs = self.run_epochs


class StopOnNonFiniteLoss(keras.callbacks.Callback):
    """Stop at the first NaN or infinite loss, before that epoch's checkpoint is written."""

    def __init__(self, folder: Path):
        super().__init__()
        self.folder = Path(folder)
        self.epoch = 0

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        loss = (logs or {}).get("loss")
        if loss is not None and not np.isfinite(float(loss)):
            state = last_checkpoint(self.folder)
            kept = (f"the last good checkpoint is epoch {state[0]} ({state[1]})" if state
                    else "no epoch had completed, so no checkpoint was kept")
            raise TrainingFault(f"the loss became {float(loss)} at epoch {self.epoch + 1}, step {batch + 1}; "
                                f"training stopped and {kept}. Lower the learning rate or check the data")


def freeze_layers(model, patterns: list) -> list:
    """Set layers whose name equals or starts with a pattern to non-trainable; return their names."""
    frozen = []
    for pattern in patterns:
        matched = [layer for layer in model.layers if layer.name == pattern or layer.name.startswith(pattern)]
        if not matched:
            names = [layer.name for layer in model.layers]
            raise DataError(f"freeze: no layer is named or starts with '{pattern}'{did_you_mean(pattern, names)}")
        for layer in matched:
            layer.trainable = False
            frozen.append(layer.name)
    return frozen


def evaluate(model, test, examples: int) -> dict:
    """Keras's loss and metrics on the test split, as `test_<name>`."""
    if test is None:
        return {}
    batch = _whole_batch_size(test)
    # Several processes evaluate whole batches, each its part of them: Keras's sharding hides the
    # stream's length, so it is given (else Keras warns that the data ran out), and what was
    # evaluated is counted.
    steps = int(test.cardinality()) if batch else None
    values = model.evaluate(test, steps=steps, verbose=0, return_dict=True)
    result = {f"test_{key}": float(value) for key, value in values.items()}
    if batch:
        examples = min(int(examples), steps * batch)
    result["test_examples"] = int(examples)
    return result


def _whole_batch_size(batches) -> int | None:
    """The batch size of a stream whose every batch is whole (its batch dimension is static)."""
    first = batches.element_spec
    while isinstance(first, (tuple, list, dict)):
        first = next(iter(first.values())) if isinstance(first, dict) else first[0]
    return first.shape[0]


@contextlib.contextmanager
def pictures_model(model, job):
    """The model a trainer draws its run-folder pictures with once training is over: `model`
    itself; in a group of processes, on process 0, its copy from the model.keras that `finish`
    saved, outside the group (the group's predictions are spread over processes that no longer
    take part), and None on the others, which draw nothing."""
    placement = job.placement
    if placement is None or not placement.group:
        yield model
    elif not placement.cluster.is_chief:
        yield None
    else:
        with placement.outside():
            yield load_trained_model(job.folder)


def finish(model, test, examples: int, folder: Path, metrics: dict | None = None) -> dict:
    """Save the final model (the network alone, a training wrapper's too: `saving.save_model`),
    write the test metrics (Keras's on `test`, or the trainer's own `metrics`) and the learning
    curve; returns the metrics."""
    save_model(model, folder / "model.keras")
    metrics = evaluate(model, test, examples) if metrics is None else metrics
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    state = last_checkpoint(folder)
    if state and state[2]:
        plots.learning_curve(state[2], folder / "learning_curve.png")
    return metrics


def load_data(config: dict, folder: Path):
    """The run's dataset (`data:`), with what was used, and skipped, recorded in run.json."""
    from ..data.datasets import load_dataset
    from .folder import record_data

    splits = load_dataset(config["data"])
    record_data(folder, splits)
    return splits


def start_weights(model, config: dict, training_inputs=None) -> None:
    """Before a new run's first epoch: adapt the normalization layers that ask for it (from
    `training_inputs()`, batches of model inputs), copy `init_from` weights in, then apply
    `freeze`."""
    adapt_normalizations(model, training_inputs)
    initialize_from(model, config["init_from"])
    freeze_layers(model, config["freeze"])


def initialize_from(model, init: dict | None) -> list:
    """Copy the weights of the named layers (or sub-models, such as a pretrained `encoder`) from a
    run folder or .keras file into `model`; returns the names copied."""
    if not init:
        return []
    source = load_trained_model(init["path"])
    copied = []
    for name in init["layers"]:
        target_layer, source_layer = _named_layer(model, name, "this model"), _named_layer(source, name, init["path"])
        target_shapes = [tuple(w.shape) for w in target_layer.weights]
        source_shapes = [tuple(w.shape) for w in source_layer.weights]
        if target_shapes != source_shapes:
            raise DataError(f"init_from: '{name}' has weights {source_shapes} in {init['path']} but {target_shapes} "
                            "here; the two must be the same architecture (same spec params)")
        target_layer.set_weights(source_layer.get_weights())
        copied.append(name)
    return copied


def load_trained_model(path):
    """The final model of a run folder (or its last checkpoint), or a .keras file, for inference:
    uncompiled (see `trainers.run.saving`)."""
    path = Path(path)
    if path.is_dir():
        if (path / "model.keras").is_file():
            path = path / "model.keras"
        else:
            state = last_checkpoint(path)
            if state is None:
                raise DataError(f"{path} has no model.keras and no checkpoint")
            path = state[1]
    if not path.is_file():
        raise DataError(f"{path}: no such run folder or .keras file")
    model = load_model(path)
    return getattr(model, "network", model)  # a trainer's wrapper holds the spec's network


def _named_layer(model, name: str, where: str):
    names = [layer.name for layer in model.layers]
    if name not in names:
        raise DataError(f"init_from: no layer or sub-model named '{name}' in {where}{did_you_mean(name, names)}")
    return model.get_layer(name)
