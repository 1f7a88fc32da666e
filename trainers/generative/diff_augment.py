"""Differentiable augmentation for the adversarial trainer (Zhao et al. 2020, "Differentiable
Augmentation for Data-Efficient GAN Training"): the discriminator sees real and generated images
through the same random transformations, in its own updates and in the generator's, and the
generator's gradient flows back through them.

A discriminator trained on a small set (the embedded digits: about 1,400 images) learns those
images by heart, and its verdicts stop being a useful signal for the generator. Augmenting only
the real images would teach the generator to make augmented images; augmenting both, with
operations the gradient passes through, does not.

Written once in `keras.ops`: each backend's step draws the uniform numbers (`PARAMETERS` per
image, from its own random generator) and `augment` applies them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import NamedTuple

TRANSLATION = 0.125  # the largest shift, as a share of the image's side (the paper's)
CUTOUT = 0.5         # the erased square's side, as a share of the image's side (the paper's)


class Policy(NamedTuple):
    """One name of a `train.adversarial.diff_augment` list."""

    description: str
    columns: int  # the uniform numbers it takes per image
    apply: Callable  # (images, uniform numbers (batch, columns)) -> images


def augment(images, policies, uniform):
    """`images` (batch, height, width, channels) through each of `policies` in order, with
    `uniform` (batch, PARAMETERS) numbers in [0, 1) choosing each image's transformation."""
    column = 0
    for name, policy in POLICIES.items():
        if name in policies:
            images = policy.apply(images, uniform[:, column:column + policy.columns])
        column += policy.columns
    return images


def _color(images, uniform):
    from keras import ops

    scale = lambda k: ops.reshape(uniform[:, k], (-1, 1, 1, 1))  # noqa: E731
    images = images + (scale(0) - 0.5)
    mean = ops.mean(images, axis=3, keepdims=True)
    images = (images - mean) * (scale(1) * 2.0) + mean
    mean = ops.mean(images, axis=(1, 2, 3), keepdims=True)
    return (images - mean) * (scale(2) + 0.5) + mean


def _translation(images, uniform):
    """Each image shifted by whole pixels, the uncovered border zero: a one-hot row and column
    selection from the zero-padded image, a product the gradient passes through."""
    from keras import ops

    height, width = int(images.shape[1]), int(images.shape[2])

    def selection(size, fraction):
        reach = int(size * TRANSLATION + 0.5)
        shift = ops.cast(ops.floor(fraction * (2 * reach + 1)), "int32") - reach  # in [-reach, reach]
        source = ops.arange(size, dtype="int32")[None, :] + reach - shift[:, None]  # into the padded axis
        return ops.one_hot(source, size + 2 * reach, dtype=images.dtype), reach

    rows, row_reach = selection(height, uniform[:, 0])
    columns, column_reach = selection(width, uniform[:, 1])
    padded = ops.pad(images, [[0, 0], [row_reach, row_reach], [column_reach, column_reach], [0, 0]])
    return ops.einsum("bhp,bpqc,bwq->bhwc", rows, padded, columns)


def _cutout(images, uniform):
    from keras import ops

    height, width = int(images.shape[1]), int(images.shape[2])

    def inside(size, fraction):
        side = int(size * CUTOUT + 0.5)
        centre = ops.cast(ops.floor(fraction * (size + 1 - side % 2)), "int32")
        start = centre - side // 2
        position = ops.arange(size, dtype="int32")[None, :]
        return ops.cast((position >= start[:, None]) & (position < start[:, None] + side), images.dtype)

    erased = inside(height, uniform[:, 0])[:, :, None] * inside(width, uniform[:, 1])[:, None, :]
    return images * (1.0 - erased)[:, :, :, None]


POLICIES = {
    "color": Policy("brightness, saturation and contrast, each scaled at random", 3, _color),
    "translation": Policy(f"shift by up to {TRANSLATION:g} of the side, filling with zeros", 2, _translation),
    "cutout": Policy(f"erase a square {CUTOUT:g} of the side wide at a random place", 2, _cutout),
}
PARAMETERS = sum(policy.columns for policy in POLICIES.values())
