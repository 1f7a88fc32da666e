"""Reconstruction losses, whole-image and per pixel: the entries of
`trainers.registries.RECONSTRUCTION_LOSSES` (registered in `trainers.builtin`)."""

from __future__ import annotations

import math

import keras
from keras import ops


def mse_loss():
    return keras.losses.MeanSquaredError(name="mse")


def mae_loss():
    return keras.losses.MeanAbsoluteError(name="mae")


def binary_crossentropy_loss():
    return keras.losses.BinaryCrossentropy(name="binary_crossentropy")


def mse_per_pixel(target, output):
    return ops.square(target - output)


def mae_per_pixel(target, output):
    return ops.abs(target - output)


def binary_crossentropy_per_pixel(target, output):
    clipped = ops.clip(output, 1e-7, 1.0 - 1e-7)
    return -(target * ops.log(clipped) + (1.0 - target) * ops.log(1.0 - clipped))


def calibrated_gaussian_per_pixel(target, output):
    """The negative log-likelihood of each value under a Gaussian centred on the output whose
    one variance is the batch's mean squared error, the variance that maximises the batch's
    likelihood (the "optimal sigma" decoder of Rybkin et al. 2021, "Simple and Effective VAE
    Training with Calibrated Decoders"): the reconstruction term keeps its weight against the KL
    term as the decoder improves, where a fixed-variance Gaussian (mse) lets the KL term win."""
    squared = ops.square(target - output)
    variance = ops.maximum(ops.mean(squared), 1e-6)
    return squared / (2.0 * variance) + 0.5 * ops.log(2.0 * math.pi * variance)


def calibrated_gaussian_loss():
    def calibrated_gaussian(target, output):
        values = calibrated_gaussian_per_pixel(target, output)
        return ops.mean(ops.reshape(values, (ops.shape(values)[0], -1)), axis=-1)

    return calibrated_gaussian
