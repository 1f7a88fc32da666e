"""The generative trainers' own `train:` settings: reconstruction, VAE and adversarial (the common
ones are in `trainers.run.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer classes
declare the same constants as their `options`, so a subclass (a plugin's) inherits them."""

from __future__ import annotations

from ..registries import ADVERSARIAL_LOSSES, OPTIMIZERS, RECONSTRUCTION_LOSSES
from ..run.settings import FRACTION, NON_NEGATIVE, Setting, one_of_keys, registry_enum
from .diff_augment import POLICIES as DIFF_AUGMENT_POLICIES
from .latent_mixture import CODE_SOURCES


def _reconstruction_loss(default: str) -> Setting:
    return Setting(lambda: {"enum": RECONSTRUCTION_LOSSES.names(),
                            "description": f"the reconstruction loss (default {default})"}, default)


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
            "judge": {"type": "string", "description": "a classifier's run folder or .keras file: the run ends "
                                                       "with the Fréchet distance of 1,000 samples from the test "
                                                       "images on its features (metrics.json frechet_distance)"},
        },
        "additionalProperties": False,
    }


ADVERSARIAL_OPTIONS = {
    "adversarial": Setting(_adversarial_schema, {
        "loss": "non_saturating", "n_critic": 1, "label_smoothing": 0.0, "gradient_penalty": 10.0, "diff_augment": [],
        "generator_optimizer": _ADVERSARIAL_OPTIMIZER, "discriminator_optimizer": _ADVERSARIAL_OPTIMIZER},
        merged=True),
}
