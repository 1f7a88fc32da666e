"""Drawing new images from a trained generative run (`sample`): the VAE's decoder on the prior,
or the GAN's generator on noise, as images in the data's range [0, 1]."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from . import plots
from .errors import DataError
from .loop import load_trained_model
from .run_folder import read_run_record

GENERATIVE = ("vae", "adversarial")


def sample_run(run, count: int, seed: int = 0, class_index: int | None = None) -> np.ndarray:
    """`count` images (count, height, width, channels) in [0, 1] from the run's generator."""
    trainer = read_run_record(run)["train"]["trainer"]
    if trainer not in GENERATIVE:
        raise DataError(f"sample draws images from a generative run ({', '.join(GENERATIVE)}); {run} was trained "
                        f"by the {trainer} trainer")
    model = load_trained_model(run)
    generator = model.get_layer("decoder") if trainer == "vae" else model
    if class_index is not None and len(generator.inputs) == 1:
        raise DataError(f"{run} holds an unconditional model (its {generator.name} takes noise alone): --class "
                        "needs a class-conditional one")
    if len(generator.inputs) != 1:
        raise DataError(f"{generator.name} takes {len(generator.inputs)} inputs; sample feeds noise to one")
    images = draw(generator, count, seed)
    return pixels_from_tanh(images) if trainer == "adversarial" else np.clip(images, 0.0, 1.0)


def draw(generator, count: int, seed: int = 0) -> np.ndarray:
    """The generator's outputs for `count` draws of its input from N(0, I)."""
    noise = np.random.default_rng(seed).standard_normal((count, *generator.inputs[0].shape[1:])).astype("float32")
    return np.asarray(generator.predict(noise, verbose=0, batch_size=256))


def pixels_from_tanh(images: np.ndarray) -> np.ndarray:
    """A GAN generator's tanh range [-1, 1] as the data's pixels in [0, 1]."""
    return (np.clip(images, -1.0, 1.0) + 1.0) / 2.0


def save_samples(images: np.ndarray, path: Path, title: str | None = None, columns: int = 8) -> None:
    """Images in [0, 1] as a grid, `columns` to a row."""
    rows = [list(images[i:i + columns]) for i in range(0, len(images), columns)]
    plots.image_grid(rows, Path(path), title=title or f"{len(images)} samples")
