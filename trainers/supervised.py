"""The supervised trainer: images and class labels, plain `compile` / `fit`."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from builder.errors import did_you_mean

from . import plots
from .augmentation import augmentation_layers
from .datasets import load_dataset
from .errors import DataError, TrainingFault
from .optimization import make_optimizer
from .pipeline import check_compatible, make_dataset, model_image_shape
from .run_folder import EpochCheckpoint, atomic_write, last_checkpoint


@dataclass
class Prepared:
    model: object
    splits: object
    image_shape: tuple
    outputs: int


def set_seed(seed: int, deterministic_ops: bool = True) -> None:
    """Same seed, same backend, same result: seed every generator and make TF ops deterministic
    (tf.data feeds every backend, so TensorFlow's determinism matters on JAX too)."""
    # The module Keras itself reads this switch from; it also holds the only way to turn it off.
    from tensorflow.python.framework import config as tf_config

    keras.utils.set_random_seed(seed)
    if deterministic_ops:
        tf_config.enable_op_determinism()
    else:  # a process-wide switch: an earlier run in this process may have turned it on
        tf_config.disable_op_determinism()


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


def jit_compile_setting(requested):
    """`auto` is Keras's choice, except TensorFlow on a CPU: there XLA:CPU trains ResNet-50 4.3x
    slower than TensorFlow's own oneDNN kernels (bench/cpu_backends.py), so XLA stays off."""
    if requested != "auto" or keras.backend.backend() != "tensorflow":
        return requested
    import tensorflow as tf

    return "auto" if tf.config.list_logical_devices("GPU") else False


def class_weights(config_value, labels: np.ndarray, num_classes: int):
    if config_value is None:
        return None
    if config_value == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype("float64")
        return {i: float(len(labels) / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}
    return {int(k): float(v) for k, v in config_value.items()}


def compile_model(model, config: dict, steps_per_epoch: int):
    outputs = len(model.outputs)
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps_per_epoch, config["epochs"])
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config["label_smoothing"])
    metric_makers = {
        "accuracy": lambda: keras.metrics.CategoricalAccuracy(name="accuracy"),
        "top5_accuracy": lambda: keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy"),
    }
    metrics = [metric_makers[name]() for name in config["metrics"]]
    performance = config["performance"]
    speed = {"jit_compile": jit_compile_setting(performance["jit_compile"]),
             "steps_per_execution": performance["steps_per_execution"]}
    if outputs == 1:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **speed)
    else:  # auxiliary heads (GoogLeNet) learn the same labels at weight 0.3, as in the paper
        model.compile(optimizer=optimizer, loss=[loss] * outputs, loss_weights=[1.0] + [0.3] * (outputs - 1),
                      metrics=[metrics] + [[] for _ in range(outputs - 1)], **speed)


def datasets(prepared: Prepared, config: dict):
    splits, shape, classes = prepared.splits, prepared.image_shape, int(prepared.model.outputs[0].shape[-1])
    seed, batch = config["seed"], config["batch_size"]
    augment = augmentation_layers(config["augment"], shape, seed)
    common = dict(image_shape=shape, num_classes=classes, batch_size=batch, repeat_labels=prepared.outputs)
    train = make_dataset(splits.x_train, splits.y_train, shuffle=True, augment=augment, seed=seed, **common)
    val = make_dataset(splits.x_val, splits.y_val, **common) if len(splits.x_val) else None
    test = make_dataset(splits.x_test, splits.y_test, **common) if len(splits.x_test) else None
    return train, val, test


def prepare(model, config: dict) -> Prepared:
    splits = load_dataset(config["data"])
    check_compatible(splits, model)
    return Prepared(model, splits, model_image_shape(model), len(model.outputs))


def fit(model, config: dict, folder: Path, initial_epoch: int = 0, history=None, verbose=1,
        extra_callbacks=()) -> dict:
    """Train into `folder`; returns the final test metrics (also written to metrics.json)."""
    prepared = prepare(model, config)
    atomic_write(folder / "classes.json", json.dumps(prepared.splits.class_names) + "\n")
    train, val, test = datasets(prepared, config)
    steps = int(np.ceil(len(prepared.splits.x_train) / config["batch_size"]))
    if initial_epoch == 0:
        freeze_layers(model, config["freeze"])
        compile_model(model, config, steps)
    callbacks = [StopOnNonFiniteLoss(folder), EpochCheckpoint(folder, history),
                 keras.callbacks.TensorBoard(log_dir=str(folder / "tensorboard"), write_graph=False),
                 *extra_callbacks]
    if config["early_stopping"]:
        stop = dict(config["early_stopping"])
        callbacks.append(keras.callbacks.EarlyStopping(monitor=stop.get("monitor", "val_loss"),
                                                       patience=stop.get("patience", 5),
                                                       restore_best_weights=stop.get("restore_best_weights", True)))
    weights = class_weights(config["class_weight"], prepared.splits.y_train, int(model.outputs[0].shape[-1]))
    if initial_epoch < config["epochs"]:
        model.fit(train, validation_data=val, epochs=config["epochs"], initial_epoch=initial_epoch,
                  class_weight=weights, callbacks=callbacks, verbose=verbose, shuffle=False)
    return finish(model, prepared, test, folder)


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


def finish(model, prepared: Prepared, test, folder: Path) -> dict:
    model.save(folder / "model.keras")
    metrics = evaluate(model, prepared, test)
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    state = last_checkpoint(folder)
    if state and state[2]:
        plots.learning_curve(state[2], folder / "learning_curve.png")
    predictions = predict_classes(model, prepared.splits.x_test, prepared.image_shape)
    plots.confusion_matrix(prepared.splits.y_test, predictions, prepared.splits.class_names,
                           folder / "confusion_matrix.png")
    return metrics


def evaluate(model, prepared: Prepared, test) -> dict:
    if test is None:
        return {}
    values = model.evaluate(test, verbose=0, return_dict=True)
    result = {f"test_{key}": float(value) for key, value in values.items()}
    result["test_examples"] = int(len(prepared.splits.x_test))
    return result


def predict_classes(model, images: np.ndarray, image_shape) -> np.ndarray:
    from .pipeline import prepare_images

    outputs = model.predict(prepare_images(images, image_shape), verbose=0, batch_size=256)
    outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    return np.argmax(outputs, axis=-1)
