"""The reconstruction trainer: the model learns to output its input (an autoencoder). No labels
are needed, so any image dataset works, a folder of images without class folders included."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from builder.errors import SpecError

from ..data.datasets import load_dataset
from ..data.pipeline import (
    Preprocessing,
    first_output,
    model_image_shape,
    model_inputs,
    preview,
    split_streams,
    steps_per_epoch,
)
from ..registries import RECONSTRUCTION_LOSSES
from ..run import loop, plots
from ..run.optimization import make_optimizer
from ..run.trainer import Trainer, TrainingJob
from .options import RECONSTRUCTION_OPTIONS


def check_reproduces_input(model, trainer: str) -> tuple:
    """The first output must have the input's shape; returns that image shape."""
    shape = model_image_shape(model)
    output = tuple(model.outputs[0].shape[1:])
    if output != shape:
        raise SpecError(f"the {trainer} trainer needs a model whose (first) output has its input's shape "
                        f"{shape}; '{model.name}' outputs {output}")
    return shape


def _finisher(targets: bool, augment=(), inputs_of=None):
    """Batch -> (images, images) when the model learns to reproduce its input with `compile`'s
    loss, (images, None) otherwise; augmentation changes input and target alike. `inputs_of(images,
    batch)` makes the model's inputs when they are more than the images."""
    def finish(batch):
        images = batch["image"]
        for layer in augment:
            images = layer(images, training=True)
        return (images if inputs_of is None else inputs_of(images, batch)), (images if targets else None)

    return finish


def datasets(splits, shape, config: dict, targets: bool = True, job=None, training: bool = True, inputs_of=None):
    """(training stream, validation batches, test batches) of images alone, or of what
    `inputs_of(images, batch)` makes of them."""
    return split_streams(splits, Preprocessing.of(shape, config["data"]), config,
                         lambda layers: _finisher(targets, layers, inputs_of), job, training)


def shown_split(splits):
    """The split whose images go into the run folder's pictures: test, else train."""
    return splits.test if len(splits.test) else splits.train


def compile_model(model, config: dict, steps_per_epoch: int) -> None:
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps_per_epoch, config["epochs"])
    metrics = [keras.metrics.MeanSquaredError(name="mse"), keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer=optimizer, loss=RECONSTRUCTION_LOSSES.get(config["loss"]).make(), metrics=metrics,
                  **loop.speed_settings(config))


def save_reconstructions(model, split, prep: Preprocessing, path: Path, count: int = 10,
                         inputs_of=lambda shown: shown["image"]) -> None:
    """Test images (top row) above the model's reconstructions (bottom row); `inputs_of` makes
    the model's inputs from the previewed examples (a conditional model takes their labels too)."""
    shown = preview(split, prep, count)
    outputs = first_output(model.predict(inputs_of(shown), verbose=0))
    plots.image_grid([list(shown["image"]), list(np.asarray(outputs))], path, row_titles=["input", "output"],
                     title="reconstructions of test images")


class ReconstructionTrainer(Trainer):
    """The built-in `reconstruction` trainer (its entry is in trainers.builtin)."""

    options = RECONSTRUCTION_OPTIONS
    process_groups = True

    def fit(self, job: TrainingJob) -> dict:
        model, config, folder = job.model, job.config, job.folder
        shape = check_reproduces_input(model, "reconstruction")
        splits = loop.load_data(config, folder)
        train, val, test = datasets(splits, shape, config, job=job)
        if job.resume is None:
            prep = Preprocessing.of(shape, config["data"])
            loop.start_weights(model, config, lambda: model_inputs(splits.train, prep))
            compile_model(model, config, steps_per_epoch(len(splits.train), config["batch_size"], job.distributed))
        loop.fit(model, train, val, job)
        metrics = loop.finish(model, test, len(splits.test), folder)
        with loop.pictures_model(model, job) as drawing:
            if drawing is not None:
                save_reconstructions(drawing, shown_split(splits), Preprocessing.of(shape, config["data"]),
                                     folder / "reconstructions.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        shape = check_reproduces_input(model, "reconstruction")
        splits = load_dataset(config["data"])
        _, _, test = datasets(splits, shape, config, training=False)
        compile_model(model, config, steps_per_epoch=1)  # a saved model holds no loss or metrics
        return loop.evaluate(model, test, len(splits.test))
