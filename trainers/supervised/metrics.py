"""Classification metrics: the entries of `trainers.registries.METRICS` (registered in
`trainers.builtin`)."""

from __future__ import annotations

import keras


def accuracy_metric():
    return keras.metrics.CategoricalAccuracy(name="accuracy")


def top5_accuracy_metric():
    return keras.metrics.TopKCategoricalAccuracy(k=5, name="top5_accuracy")
