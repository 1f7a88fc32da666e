"""Reconstruction losses and classification metrics, the entries of
`trainers.registries.RECONSTRUCTION_LOSSES` and `METRICS` (registered in `trainers.builtin`)."""

from __future__ import annotations

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


def accuracy_metric():
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def top5_accuracy_metric():
    return keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy")
