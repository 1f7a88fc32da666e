"""The metric trainer's own `train:` settings (the common ones are in `trainers.run.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer class
declares the same constants as its `options`, so a subclass (a plugin's) inherits them."""

from __future__ import annotations

import copy

from ..run.settings import COMMON, POSITIVE, Setting

# The metric trainer's batches are P classes x K images, so batch_size gives way to those two.
METRIC_SETTINGS = ("params", "epochs", "seed", "optimizer", "schedule", "freeze", "init_from", "performance")


def _metric_data_schema() -> dict:
    schema = copy.deepcopy(COMMON["data"].schema())
    schema["properties"]["holdout_classes"] = {
        "type": "array", "items": {"type": "integer", "minimum": 0}, "uniqueItems": True,
        "description": "classes kept out of training entirely, to measure open-set identification on"}
    return schema


def _metric_schema() -> dict:
    return {
        "type": "object",
        "description": "the metric-learning loss and its P x K batches",
        "properties": {
            "loss": {"enum": ["contrastive", "triplet"],
                     "description": "contrastive: all pairs of the batch (Hadsell et al. 2006); triplet: "
                                    "anchor, positive, negative (Schroff et al. 2015)"},
            "mining": {"enum": ["batch_all", "batch_hard", "semi_hard"],
                       "description": "which triplets the triplet loss trains on, within each batch"},
            "margin": POSITIVE,
            "classes_per_batch": {"type": "integer", "minimum": 2, "description": "P: classes in a batch"},
            "images_per_class": {"type": "integer", "minimum": 2, "description": "K: images of each class"},
        },
        "additionalProperties": False,
    }


METRIC_OPTIONS = {
    "data": Setting(_metric_data_schema, {"dataset": "digits", "holdout_classes": []}),
    "metric": Setting(_metric_schema, {"loss": "triplet", "mining": "semi_hard", "margin": 0.2,
                                       "classes_per_batch": 8, "images_per_class": 4}, merged=True),
}
