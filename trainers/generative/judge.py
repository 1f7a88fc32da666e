"""The Fréchet distance of a generator's samples from the held-out test images, on the features of
a classifier the run names (`adversarial.judge`: a run folder or .keras file of a classifier that
never saw generated images, such as a LeNet-5 trained on the same data). An adversarial run then
ends with a figure of sample quality in its metrics.json, which `tune` can optimise.

The features are the classifier's last layer but one (LeNet-5's 84 values), as
bench/generative_quality.py measures the zoo's generators."""

from __future__ import annotations

import keras
import numpy as np

from ..data.datasets import load_dataset
from ..data.pipeline import Preprocessing, main_input, materialize
from ..errors import DataError
from ..run.loop import load_trained_model
from .quality import frechet_distance
from .sampling import draw, label_width, pixels_from_tanh

SAMPLES = 1000


def feature_model(path) -> keras.Model:
    """The judge's features: its output before the last layer."""
    judge = load_trained_model(path)
    if len(judge.layers) < 3:
        raise DataError(f"adversarial.judge {path}: a classifier with a layer of features before its last is needed")
    return keras.Model(judge.inputs[0], judge.layers[-2].output)


def judged_distance(generator, features, config: dict, class_shares=None, seed: int = 0) -> float:
    """FD between SAMPLES of `generator` (its classes drawn in the proportions `class_shares`,
    when it is conditional) and the test split of the run's data, on `features` (`feature_model`)."""
    shape = tuple(main_input(features).shape[1:])
    test = load_dataset(config["data"]).test
    if len(test) < 2:
        raise DataError("adversarial.judge measures samples against the test split, and this data has none")
    real, _ = materialize(test, Preprocessing.of(shape, {}))
    width = label_width(generator)
    classes = None
    if width is not None:
        shares = np.asarray(class_shares if class_shares is not None else np.ones(width), "float64")
        classes = np.random.default_rng([seed, 1]).choice(width, SAMPLES, p=shares / shares.sum())
    samples = pixels_from_tanh(draw(generator, SAMPLES, seed, classes))
    if samples.shape[-1] != shape[-1]:
        raise DataError(f"adversarial.judge takes {shape[-1]}-channel images; the generator makes "
                        f"{samples.shape[-1]}-channel ones")
    if samples.shape[1:3] != shape[:2]:
        samples = np.asarray(keras.ops.image.resize(samples, shape[:2], interpolation="bilinear"))
    embed = lambda images: np.asarray(features.predict(images, verbose=0, batch_size=256), "float64")  # noqa: E731
    return frechet_distance(embed(real), embed(samples))
