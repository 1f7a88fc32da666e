"""The reconstruction trainer: the model learns to output its input (an autoencoder). No labels
are needed, so any image dataset works, a folder of images without class folders included."""

from __future__ import annotations

from pathlib import Path

import keras
import numpy as np

from builder.errors import SpecError

from . import loop, plots
from .augmentation import augmentation_layers
from .datasets import load_dataset
from .optimization import make_optimizer
from .pipeline import first_output, make_image_dataset, model_image_shape, prepare_images, steps_per_epoch
from .registries import RECONSTRUCTION_LOSSES
from .trainer import Trainer, TrainingJob
from .trainer_options import RECONSTRUCTION_OPTIONS


def check_reproduces_input(model, trainer: str) -> tuple:
    """The first output must have the input's shape; returns that image shape."""
    shape = model_image_shape(model)
    output = tuple(model.outputs[0].shape[1:])
    if output != shape:
        raise SpecError(f"the {trainer} trainer needs a model whose (first) output has its input's shape "
                        f"{shape}; '{model.name}' outputs {output}")
    return shape


def datasets(splits, shape, config: dict, targets: bool = True):
    batch, seed = config["batch_size"], config["seed"]
    augment = augmentation_layers(config["augment"], shape, seed)
    train = make_image_dataset(splits.x_train, shape, batch, shuffle=True, augment=augment, seed=seed,
                               targets=targets)
    val = make_image_dataset(splits.x_val, shape, batch, targets=targets) if len(splits.x_val) else None
    test = make_image_dataset(splits.x_test, shape, batch, targets=targets) if len(splits.x_test) else None
    return train, val, test


def compile_model(model, config: dict, steps_per_epoch: int) -> None:
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps_per_epoch, config["epochs"])
    metrics = [keras.metrics.MeanSquaredError(name="mse"), keras.metrics.MeanAbsoluteError(name="mae")]
    model.compile(optimizer=optimizer, loss=RECONSTRUCTION_LOSSES.get(config["loss"]).make(), metrics=metrics,
                  **loop.speed_settings(config))


def save_reconstructions(model, images: np.ndarray, shape, path: Path, count: int = 10) -> None:
    """Test images (top row) above the model's reconstructions (bottom row)."""
    inputs = prepare_images(images[:count], shape)
    outputs = first_output(model.predict(inputs, verbose=0))
    plots.image_grid([list(inputs), list(np.asarray(outputs))], path, row_titles=["input", "output"],
                     title="reconstructions of test images")


class ReconstructionTrainer(Trainer):
    """The built-in `reconstruction` trainer (its entry is in trainers.builtin)."""

    options = RECONSTRUCTION_OPTIONS

    def fit(self, job: TrainingJob) -> dict:
        model, config, folder = job.model, job.config, job.folder
        shape = check_reproduces_input(model, "reconstruction")
        splits = load_dataset(config["data"])
        train, val, test = datasets(splits, shape, config)
        if job.resume is None:
            loop.start_weights(model, config)
            compile_model(model, config, steps_per_epoch(len(splits.x_train), config["batch_size"]))
        loop.fit(model, train, val, job)
        metrics = loop.finish(model, test, len(splits.x_test), folder)
        save_reconstructions(model, splits.x_test if len(splits.x_test) else splits.x_train, shape,
                             folder / "reconstructions.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        shape = check_reproduces_input(model, "reconstruction")
        splits = load_dataset(config["data"])
        _, _, test = datasets(splits, shape, config)
        return loop.evaluate(model, test, len(splits.x_test))
