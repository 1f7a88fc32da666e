"""Each built-in trainer's own `train:` settings (the common ones are in `trainers.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer classes
declare the same constants as their `options`, so a subclass (a plugin's) inherits them.
"""

from __future__ import annotations

import copy

from .diff_augment import POLICIES as DIFF_AUGMENT_POLICIES
from .latent_mixture import CODE_SOURCES
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
    "sampling": Setting(lambda: {
        "type": "object",
        "description": "where new images' codes come from: the prior N(0, I), or a Gaussian mixture fitted to the "
                       "encoder's codes of the training images after training (kept in the run folder)",
        "properties": {"from": {"enum": list(CODE_SOURCES)},
                       "components": {"type": "integer", "minimum": 1,
                                      "description": "the fitted mixture's Gaussians"}},
        "additionalProperties": False}, {"from": "prior", "components": 10}, merged=True),
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
            "diff_augment": {"type": "array", "uniqueItems": True,
                             "items": {"enum": list(DIFF_AUGMENT_POLICIES),
                                       "description": "; ".join(f"{name}: {policy.description}" for name, policy
                                                                in DIFF_AUGMENT_POLICIES.items())},
                             "description": "differentiable augmentations of every image D sees, real and "
                                            "generated (Zhao et al. 2020), for small datasets"},
            "generator_optimizer": optimizer,
            "discriminator_optimizer": optimizer,
        },
        "additionalProperties": False,
    }


ADVERSARIAL_OPTIONS = {
    "adversarial": Setting(_adversarial_schema, {
        "loss": "non_saturating", "n_critic": 1, "label_smoothing": 0.0, "gradient_penalty": 10.0, "diff_augment": [],
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


def _detection_schema() -> dict:
    level = {
        "type": "object",
        "description": "one feature level: its stride in pixels and the anchor sizes (square root of the area) "
                       "at each of its cells",
        "properties": {
            "stride": {"type": "integer", "minimum": 1},
            "sizes": {"type": "array", "items": POSITIVE, "minItems": 1},
            "aspect_ratios": {"type": "array", "items": POSITIVE, "minItems": 1,
                              "description": "width / height of the anchors (default: the section's)"},
        },
        "required": ["stride", "sizes"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "description": "anchors, matching, losses and inference of the single-shot detector",
        "properties": {
            "anchors": {"type": "array", "items": level, "minItems": 1,
                        "description": "the feature levels in the order the heads concatenate them"},
            "aspect_ratios": {"type": "array", "items": POSITIVE, "minItems": 1,
                              "description": "width / height of every level's anchors"},
            "positive_iou": {**FRACTION, "description": "an anchor this close to an object learns its class"},
            "negative_iou": {**FRACTION, "description": "an anchor below this with every object learns background "
                                                        "(between the two: ignored)"},
            "classification_loss": {"enum": ["focal", "cross_entropy"],
                                    "description": "focal (Lin et al. 2017, on sigmoid scores) or plain sigmoid "
                                                   "cross-entropy"},
            "focal_alpha": {**FRACTION, "description": "the focal loss's weight of the positive class"},
            "focal_gamma": {**NON_NEGATIVE, "description": "the focal loss's focusing exponent (0: cross-entropy "
                                                           "weighted by alpha)"},
            "box_loss": {"enum": ["smooth_l1", "ciou"],
                         "description": "smooth L1 on the encoded offsets (SSD) or 1 - CIoU of the decoded boxes"},
            "box_weight": {**NON_NEGATIVE, "description": "loss = classification + box_weight * box"},
            "score_threshold": {**FRACTION, "description": "detections scoring below this are dropped"},
            "nms_iou": {**FRACTION, "description": "per-class non-maximum suppression: a box overlapping a "
                                                   "higher-scoring one of its class by more than this is dropped"},
            "candidates": {"type": "integer", "minimum": 1,
                           "description": "the best-scoring anchors per image that reach non-maximum suppression"},
            "max_detections": {"type": "integer", "minimum": 1, "description": "detections kept per image"},
        },
        "additionalProperties": False,
    }


DETECTION_OPTIONS = {
    "detection": Setting(_detection_schema, {
        "anchors": [{"stride": 8, "sizes": [16, 24]}, {"stride": 16, "sizes": [32, 48]}],
        "aspect_ratios": [0.5, 1.0, 2.0], "positive_iou": 0.5, "negative_iou": 0.4,
        "classification_loss": "focal", "focal_alpha": 0.25, "focal_gamma": 2.0, "box_loss": "smooth_l1",
        "box_weight": 1.0, "score_threshold": 0.05, "nms_iou": 0.5, "candidates": 400, "max_detections": 100},
        merged=True),
}
