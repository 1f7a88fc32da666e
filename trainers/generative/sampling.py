"""Drawing new images from a trained generative run (`sample`): the VAE's decoder on the prior
(or on its fitted latent mixture), or the GAN's generator on noise, as images in the data's range [0, 1].

A class-conditional network has a second input named `label` (the class, one-hot); its other
input is the noise (or the image, for a discriminator). These helpers find it and order a
network's inputs, so every generative trainer and `sample` read the convention the same way."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from builder.cli import COMMANDS
from builder.errors import SpecError

from ..data.pipeline import LABEL_INPUT, main_input
from ..errors import DataError
from ..run import plots
from ..run.folder import read_run_record, require_run_for
from ..run.loop import load_trained_model
from .latent_mixture import load_latent_mixture


def label_width(network) -> int | None:
    """How many classes a conditional network's `label` input takes; None when it has none."""
    for tensor in network.inputs:
        if tensor.name == LABEL_INPUT:
            return int(tensor.shape[-1])
    return None


def network_inputs(network, main, labels=None):
    """`main` alone for an unconditional network, else `main` and the one-hot `labels` in the
    order of the network's inputs."""
    if labels is None:
        return main
    return [labels if tensor.name == LABEL_INPUT else main for tensor in network.inputs]


def one_hot(classes, width: int) -> np.ndarray:
    return np.eye(width, dtype="float32")[np.asarray(classes, dtype="int64")]


def check_conditional(network, role: str) -> None:
    """A network takes its main input, plus at most a one-hot `label` vector."""
    names = [tensor.name for tensor in network.inputs]
    labels = [tensor for tensor in network.inputs if tensor.name == LABEL_INPUT]
    if len(names) - len(labels) != 1 or len(labels) > 1 or any(len(tensor.shape) != 2 for tensor in labels):
        raise SpecError(f"the {role} '{network.name}' takes inputs {names}: a {role} takes one input, plus a "
                        f"'{LABEL_INPUT}' vector of one value per class when it is class-conditional "
                        "(see specs/cgan_digits.yaml)")


def check_same_labels(networks: dict, what: str, example: str) -> None:
    """Networks that must agree on conditioning ({role: model}) take the same number of classes,
    or none of them takes a label."""
    widths = {role: label_width(model) for role, model in networks.items()}
    if len(set(widths.values())) > 1:
        described = ", ".join(f"the {role} {f'takes {width} classes' if width else 'has none'}"
                              for role, width in widths.items())
        raise SpecError(f"a class-conditional {what} gives the {' and the '.join(widths)} the same one-hot "
                        f"'{LABEL_INPUT}' input; {described} (see {example})")


def check_label_classes(width: int | None, class_names, who: str) -> None:
    """A conditional network's label takes as many classes as the data has."""
    if width is not None and len(class_names) != width:
        raise SpecError(f"{who} '{LABEL_INPUT}' input takes {width} classes; the data has {len(class_names)} "
                        f"({', '.join(map(str, class_names))})")


def sample_run(run, count: int, seed: int = 0, class_index: int | None = None,
               codes_from: str | None = None) -> np.ndarray:
    """`count` images (count, height, width, channels) in [0, 1] from the run's generator: of
    class `class_index` for a class-conditional one (every class in turn when it is None; a model
    conditioned on clusters, `data.labels`, draws them as often as they were trained on). A VAE
    draws its codes from where its `sampling` setting says, or from `codes_from` ('prior' or
    'fitted_mixture') when given."""
    record = read_run_record(run)
    config, trainer = record["train"], record["train"]["trainer"]
    require_run_for("sample", run, config, "sample draws images from a generative run (" +
                    ", ".join(COMMANDS.get("sample").runs_of) + ")")
    if codes_from is not None and trainer != "vae":
        raise DataError(f"--from chooses where a VAE's codes come from; {run} was trained by the {trainer} trainer")
    if trainer == "vae":
        codes_from = codes_from or config["sampling"]["from"]
    model = load_trained_model(run)
    generator = model.get_layer("decoder") if trainer == "vae" else model
    check_conditional(generator, "generator")
    width = label_width(generator)
    if class_index is not None and width is None:
        raise DataError(f"{run} holds an unconditional model (its {generator.name} takes noise alone): --class "
                        "needs a class-conditional one")
    if class_index is not None and not 0 <= class_index < width:
        raise DataError(f"--class {class_index}: {run}'s {generator.name} draws classes 0 to {width - 1}")
    if width is None:
        classes = None
    elif class_index is not None:
        classes = np.full(count, class_index)
    elif config["data"].get("labels"):  # clusters, not classes: each as often as among the training images
        trained = np.asarray(record["data_used"]["trained_per_class"], "float64")
        classes = np.random.default_rng([seed, 1]).choice(width, count, p=trained / trained.sum())
    else:
        classes = np.arange(count) % width
    codes = load_latent_mixture(run).sample(count, seed) if codes_from == "fitted_mixture" else None
    images = draw(generator, count, seed, classes, codes)
    return pixels_from_tanh(images) if trainer == "adversarial" else np.clip(images, 0.0, 1.0)


def draw(generator, count: int, seed: int = 0, classes=None, noise=None) -> np.ndarray:
    """The generator's outputs for `count` draws of its noise from N(0, I) (or for `noise`, when
    given), of the given classes (one per draw) when it is class-conditional."""
    if noise is None:
        shape = main_input(generator).shape[1:]
        noise = np.random.default_rng(seed).standard_normal((count, *shape)).astype("float32")
    labels = None if classes is None else one_hot(classes, label_width(generator))
    return np.asarray(generator.predict(network_inputs(generator, noise, labels), verbose=0, batch_size=256))


def pixels_from_tanh(images: np.ndarray) -> np.ndarray:
    """A GAN generator's tanh range [-1, 1] as the data's pixels in [0, 1]."""
    return (np.clip(images, -1.0, 1.0) + 1.0) / 2.0


def save_samples(images: np.ndarray, path: Path, title: str | None = None, columns: int = 8) -> None:
    """Images in [0, 1] as a grid, `columns` to a row."""
    rows = [list(images[i:i + columns]) for i in range(0, len(images), columns)]
    plots.image_grid(rows, Path(path), title=title or f"{len(images)} samples")
