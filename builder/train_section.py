"""The `train:` section of a spec: its schema, its defaults, and command-line overrides.

Pure data (no Keras import), so `validate` checks training settings as fast as the network.
"""

from __future__ import annotations

import copy

from trainers import TRAINERS

from .errors import Location, SpecError, did_you_mean

OPTIMIZERS = ("adam", "adamw", "sgd", "rmsprop")
SCHEDULES = ("constant", "cosine", "step", "exponential")
AUGMENTATIONS = ("flip", "crop", "rotation", "translation", "zoom", "brightness", "contrast", "color_shift")
METRICS = ("accuracy", "top5_accuracy")
RECONSTRUCTION_LOSSES = ("mse", "mae", "binary_crossentropy")

DEFAULTS = {
    "trainer": "supervised",
    "params": {},
    "data": {"dataset": "digits"},
    "augment": [],
    "optimizer": {"adam": {"learning_rate": 1e-3}},
    "schedule": {"constant": {}},
    "label_smoothing": 0.0,
    "metrics": ["accuracy"],
    "class_weight": None,
    "early_stopping": None,
    "epochs": 10,
    "batch_size": 64,
    "seed": 0,
    "freeze": [],
    "init_from": None,
    "loss": None,  # each trainer's own default: mse for reconstruction, binary_crossentropy for vae
    "kl": {"weight": 1.0, "warmup_epochs": 0},
    "adversarial": {"loss": "non_saturating", "n_critic": 1, "label_smoothing": 0.0, "gradient_penalty": 10.0,
                    "generator_optimizer": {"adam": {"learning_rate": 2e-4, "beta_1": 0.5}},
                    "discriminator_optimizer": {"adam": {"learning_rate": 2e-4, "beta_1": 0.5}}},
    "performance": {"mixed_precision": "float32", "jit_compile": "auto", "steps_per_execution": 1},
}

_NUMBER = {"type": "number"}
_POSITIVE = {"type": "number", "exclusiveMinimum": 0}
_FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
_NON_NEGATIVE = {"type": "number", "minimum": 0}


def _one_of_keys(options: dict, description: str) -> dict:
    """A mapping with exactly one key naming the option, e.g. {adam: {learning_rate: 0.001}}."""
    return {
        "description": description,
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": {name: {"type": ["object", "null"], "properties": props, "additionalProperties": False}
                       for name, props in options.items()},
        "additionalProperties": False,
    }


def train_schema() -> dict:
    optimizer_common = {"learning_rate": _POSITIVE, "weight_decay": {"type": "number", "minimum": 0},
                        "clipnorm": _POSITIVE}
    adam = {**optimizer_common, "beta_1": _FRACTION, "beta_2": _FRACTION}
    optimizer = _one_of_keys({
        "adam": adam,
        "adamw": adam,
        "sgd": {**optimizer_common, "momentum": _NON_NEGATIVE, "nesterov": {"type": "boolean"}},
        "rmsprop": {**optimizer_common, "momentum": _NON_NEGATIVE, "rho": _FRACTION},
    }, "one optimizer and its settings")
    return {
        "type": "object",
        "description": "how to train the model; every field can be overridden with --train key.path=value",
        "properties": {
            "trainer": {"enum": list(TRAINERS), "description": "the training strategy (trainers.TRAINERS)"},
            "params": {"type": "object", "description": "spec params used for training (e.g. a small input size)"},
            "data": {
                "type": "object",
                "description": "the dataset and how it is split and shaped",
                "properties": {
                    "dataset": {"type": "string", "description":
                                "digits, shapes, image_folder, mask_folder, npz, or "
                                "keras:<mnist|fashion_mnist|cifar10|cifar100>"},
                    "path": {"type": "string",
                             "description": "folder (image_folder, mask_folder) or .npz file (npz)"},
                    "image_size": {"type": "array", "items": {"type": "integer", "minimum": 1},
                                   "minItems": 2, "maxItems": 2,
                                   "description": "resize images to this (default: the model's input)"},
                    "channels": {"enum": [1, 3], "description": "convert images to this many channels"},
                    "validation_split": _FRACTION,
                    "test_split": _FRACTION,
                    "count": {"type": "integer", "minimum": 10, "description": "images to generate (shapes)"},
                    "seed": {"type": "integer", "description": "seed for generating and splitting the data"},
                },
                "required": ["dataset"],
                "additionalProperties": False,
            },
            "augment": {
                "type": "array",
                "description": "Keras preprocessing layers applied to training batches only",
                "items": {
                    "type": ["string", "object"],
                    "minProperties": 1, "maxProperties": 1,
                    "properties": {
                        "flip": {"type": ["object", "null"], "properties": {
                            "mode": {"enum": ["horizontal", "vertical", "horizontal_and_vertical"]}},
                            "additionalProperties": False},
                        "crop": {"type": ["object", "null"], "properties": {
                            "padding": {"type": "integer", "minimum": 1}}, "additionalProperties": False},
                        **{name: {"type": ["object", "null"], "properties": {"factor": _POSITIVE},
                                  "additionalProperties": False}
                           for name in ("rotation", "translation", "zoom", "brightness", "contrast", "color_shift")},
                    },
                    "additionalProperties": False,
                },
            },
            "optimizer": optimizer,
            "schedule": _one_of_keys({
                "constant": {"warmup_epochs": _NON_NEGATIVE},
                "cosine": {"warmup_epochs": _NON_NEGATIVE, "final_fraction": _NON_NEGATIVE},
                "step": {"warmup_epochs": _NON_NEGATIVE, "every_epochs": {"type": "integer", "minimum": 1},
                         "factor": _POSITIVE},
                "exponential": {"warmup_epochs": _NON_NEGATIVE, "factor_per_epoch": _POSITIVE},
            }, "learning-rate schedule over the planned epochs"),
            "label_smoothing": _FRACTION,
            "metrics": {"type": "array", "items": {"enum": list(METRICS)}},
            "class_weight": {"description": "'balanced', or {class index: weight}",
                             "anyOf": [{"const": "balanced"}, {"type": "object", "additionalProperties": _NUMBER},
                                       {"type": "null"}]},
            "early_stopping": {
                "type": ["object", "null"],
                "properties": {"monitor": {"type": "string"}, "patience": {"type": "integer", "minimum": 0},
                               "restore_best_weights": {"type": "boolean"}},
                "additionalProperties": False,
            },
            "epochs": {"type": "integer", "minimum": 1},
            "batch_size": {"type": "integer", "minimum": 1},
            "seed": {"type": "integer"},
            "freeze": {"type": "array", "items": {"type": "string"},
                       "description": "layer names or name prefixes to keep fixed (transfer learning)"},
            "init_from": {
                "type": ["object", "null"],
                "description": "start from weights trained before (e.g. a pretrained encoder): the named "
                               "layers or sub-models are copied from a run folder or .keras file",
                "properties": {
                    "path": {"type": "string", "description": "a run folder (its model.keras or last "
                                                              "checkpoint) or a .keras file"},
                    "layers": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                               "description": "names of layers or sub-models (e.g. encoder) to copy"},
                },
                "required": ["path", "layers"],
                "additionalProperties": False,
            },
            "loss": {"enum": [None, *RECONSTRUCTION_LOSSES],
                     "description": "the reconstruction loss of the reconstruction (default mse) and vae "
                                    "(default binary_crossentropy) trainers"},
            "kl": {
                "type": "object",
                "description": "the vae trainer's KL term: loss = reconstruction + weight * KL",
                "properties": {"weight": _NON_NEGATIVE,
                               "warmup_epochs": {"type": "integer", "minimum": 0,
                                                 "description": "raise the weight linearly from 0 over these"}},
                "additionalProperties": False,
            },
            "adversarial": {
                "type": "object",
                "description": "the adversarial trainer: losses, critic steps and the two optimizers",
                "properties": {
                    "loss": {"enum": ["minimax", "non_saturating", "hinge", "wgan_gp"]},
                    "n_critic": {"type": "integer", "minimum": 1,
                                 "description": "discriminator updates per generator update"},
                    "label_smoothing": {**_FRACTION, "description": "one-sided: real labels become 1 - this"},
                    "gradient_penalty": {**_NON_NEGATIVE, "description": "WGAN-GP's lambda"},
                    "generator_optimizer": optimizer,
                    "discriminator_optimizer": optimizer,
                },
                "additionalProperties": False,
            },
            "performance": {
                "type": "object",
                "description": "speed settings; results stay comparable (see the README's benchmarks)",
                "properties": {
                    "mixed_precision": {"enum": ["float32", "mixed_float16", "mixed_bfloat16"],
                                        "description": "Keras dtype policy: compute in 16 bits, keep float32 weights"},
                    "jit_compile": {"enum": ["auto", True, False],
                                    "description": "XLA compilation of the train step (auto: Keras decides)"},
                    "steps_per_execution": {"type": "integer", "minimum": 1,
                                            "description": "batches run per call into the backend"},
                },
                "additionalProperties": False,
            },
        },
        "additionalProperties": False,
    }


def resolve_train(section: dict | None, overrides: dict | None = None, file: str = "<spec>") -> dict:
    """Defaults, then the spec's `train:`, then dotted command-line overrides, checked by the schema."""
    import jsonschema

    config = copy.deepcopy(DEFAULTS)
    for key, value in (section or {}).items():
        config[key] = copy.deepcopy(value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(config, dotted, value, file)
    for independent in ("performance", "kl", "adversarial"):  # independent settings: unset ones keep their default
        if isinstance(config[independent], dict):
            config[independent] = {**DEFAULTS[independent], **config[independent]}
    validator = jsonschema.Draft202012Validator(train_schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(e.absolute_path))
    if errors:
        error = errors[0]
        path = "train" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise SpecError(_train_message(error), Location(file, 1, 1) if not section else None, path)
    return config


def _train_message(error) -> str:
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [key for key in error.instance if key not in allowed]
        return f"unknown key '{extra[0]}'{did_you_mean(extra[0], allowed)} (allowed: {', '.join(allowed)})"
    return error.message


def _set_dotted(config: dict, dotted: str, value, file: str) -> None:
    keys = dotted.split(".")
    if keys[0] not in DEFAULTS:
        raise SpecError(f"no training setting '{keys[0]}'{did_you_mean(keys[0], DEFAULTS)}",
                        None, f"--train {dotted}")
    target = config
    for key in keys[:-1]:
        if key in ("optimizer", "schedule") and target is config and len(keys) > 2:
            # --train optimizer.sgd.momentum=0.9 replaces the optimizer when another one was set
            choice = keys[1]
            if choice not in (config[key] or {}):
                config[key] = {choice: {}}
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value
