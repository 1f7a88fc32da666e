"""The supervised trainers' own `train:` settings (the common ones are in `trainers.run.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer classes
declare the same constants as their `options`, so a subclass (a plugin's) inherits them."""

from __future__ import annotations

from ..registries import METRICS
from ..run.settings import FRACTION, Setting

SUPERVISED_OPTIONS = {
    "label_smoothing": Setting(lambda: {**FRACTION, "description": "spread this share of each label's "
                                        "probability over the other classes"}, 0.0),
    "metrics": Setting(lambda: {"type": "array", "items": {"enum": METRICS.names()},
                                "description": "metrics reported each epoch and in metrics.json"}, ["accuracy"]),
    "class_weight": Setting(lambda: {
        "description": "'balanced', or {class index: weight}",
        "anyOf": [{"const": "balanced"}, {"type": "object", "additionalProperties": {"type": "number"}},
                  {"type": "null"}]}, None),
}
