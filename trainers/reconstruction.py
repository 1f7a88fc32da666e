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
from .pipeline import make_image_dataset, model_image_shape, prepare_images

LOSSES = {
    "mse": lambda: keras.losses.MeanSquaredError(name="mse"),
    "mae": lambda: keras.losses.MeanAbsoluteError(name="mae"),
    "binary_crossentropy": lambda: keras.losses.BinaryCrossentropy(name="binary_crossentropy"),
}


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
    model.compile(optimizer=optimizer, loss=LOSSES[config.get("loss") or "mse"](), metrics=metrics,
                  **loop.speed_settings(config))


def fit(model, config: dict, folder: Path, initial_epoch: int = 0, history=None, verbose=1,
        extra_callbacks=()) -> dict:
    shape = check_reproduces_input(model, "reconstruction")
    splits = load_dataset(config["data"])
    train, val, test = datasets(splits, shape, config)
    if initial_epoch == 0:
        loop.start_weights(model, config)
        compile_model(model, config, int(np.ceil(len(splits.x_train) / config["batch_size"])))
    loop.fit(model, train, val, config, folder, initial_epoch, history, verbose, extra_callbacks)
    metrics = loop.finish(model, test, len(splits.x_test), folder)
    save_reconstructions(model, splits.x_test if len(splits.x_test) else splits.x_train, shape,
                         folder / "reconstructions.png")
    return metrics


def evaluate_model(model, config: dict) -> dict:
    shape = check_reproduces_input(model, "reconstruction")
    splits = load_dataset(config["data"])
    _, _, test = datasets(splits, shape, config)
    return loop.evaluate(model, test, len(splits.x_test))


def save_reconstructions(model, images: np.ndarray, shape, path: Path, count: int = 10) -> None:
    """Test images (top row) above the model's reconstructions (bottom row)."""
    inputs = prepare_images(images[:count], shape)
    outputs = model.predict(inputs, verbose=0)
    outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    plots.image_grid([list(inputs), list(np.asarray(outputs))], path, row_titles=["input", "output"],
                     title="reconstructions of test images")
