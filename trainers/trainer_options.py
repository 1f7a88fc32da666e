"""Each built-in trainer's own `train:` settings (the common ones are in `trainers.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer classes
declare the same constants as their `options`, so a subclass (a plugin's) inherits them.
"""

from __future__ import annotations

import copy

from .registries import ADVERSARIAL_LOSSES, METRICS, OPTIMIZERS, RECONSTRUCTION_LOSSES
from .settings import COMMON, FRACTION, NON_NEGATIVE, POSITIVE, Setting, one_of_keys, registry_enum


def _reconstruction_loss(default: str) -> Setting:
    return Setting(lambda: {"enum": RECONSTRUCTION_LOSSES.names(),
                            "description": f"the reconstruction loss (default {default})"}, default)


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

RECONSTRUCTION_OPTIONS = {"loss": _reconstruction_loss("mse")}

VAE_OPTIONS = {
    "loss": _reconstruction_loss("binary_crossentropy"),
    "kl": Setting(lambda: {
        "type": "object",
        "description": "the KL term: loss = reconstruction + weight * KL",
        "properties": {"weight": NON_NEGATIVE,
                       "warmup_epochs": {"type": "integer", "minimum": 0,
                                         "description": "raise the weight linearly from 0 over these"}},
        "additionalProperties": False}, {"weight": 1.0, "warmup_epochs": 0}, merged=True),
}

# The adversarial trainer runs its own two-optimizer loop: none of `fit`'s settings apply.
ADVERSARIAL_SETTINGS = ("params", "data", "epochs", "batch_size", "seed", "distribution")
_ADVERSARIAL_OPTIMIZER = {"adam": {"learning_rate": 2e-4, "beta_1": 0.5}}


def _adversarial_schema() -> dict:
    optimizer = one_of_keys(OPTIMIZERS, "one optimizer and its settings")
    return {
        "type": "object",
        "description": "the adversarial game: losses, critic steps and the two optimizers",
        "properties": {
            "loss": registry_enum(ADVERSARIAL_LOSSES),
            "n_critic": {"type": "integer", "minimum": 1, "description": "discriminator updates per generator update"},
            "label_smoothing": {**FRACTION, "description": "one-sided: real labels become 1 - this"},
            "gradient_penalty": {**NON_NEGATIVE, "description": "WGAN-GP's lambda"},
            "generator_optimizer": optimizer,
            "discriminator_optimizer": optimizer,
        },
        "additionalProperties": False,
    }


ADVERSARIAL_OPTIONS = {
    "adversarial": Setting(_adversarial_schema, {
        "loss": "non_saturating", "n_critic": 1, "label_smoothing": 0.0, "gradient_penalty": 10.0,
        "generator_optimizer": _ADVERSARIAL_OPTIMIZER, "discriminator_optimizer": _ADVERSARIAL_OPTIMIZER},
        merged=True),
}

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
