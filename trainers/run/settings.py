"""The settings of the `train:` section: those every trainer may honour, and how a trainer's
entry composes its section's JSON Schema and defaults from them and from its own options.

Pure data (no Keras import): `validate` checks a `train:` section against the chosen trainer's
schema, and schema enums come from the registries in `trainers.registries`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ..registries import AUGMENTATIONS, DATASETS, OPTIMIZERS, SCHEDULES

POSITIVE = {"type": "number", "exclusiveMinimum": 0}
FRACTION = {"type": "number", "minimum": 0, "exclusiveMaximum": 1}
NON_NEGATIVE = {"type": "number", "minimum": 0}


@dataclass(frozen=True)
class Setting:
    """One key of a `train:` section: its JSON Schema and default. `merged`: a mapping whose
    unset keys keep their defaults (`performance: {jit_compile: true}` keeps the other speed
    settings) rather than a value replaced whole."""

    schema: Callable[[], dict]
    default: object = None
    merged: bool = False


def registry_enum(registry) -> dict:
    """One of a registry's names, each described."""
    return {"enum": registry.names(),
            "description": "; ".join(f"{name}: {entry.description}" for name, entry in registry.items())}


def _settings_of_each(registry) -> dict:
    return {name: {"type": ["object", "null"], "description": entry.description, "properties": entry.settings,
                   "additionalProperties": False} for name, entry in registry.items()}


def one_of_keys(registry, description: str) -> dict:
    """A mapping with exactly one key naming a registry entry, e.g. {adam: {learning_rate: 0.001}}."""
    return {
        "description": f"{description}: one of {', '.join(registry)}",
        "type": "object",
        "minProperties": 1,
        "maxProperties": 1,
        "properties": _settings_of_each(registry),
        "additionalProperties": False,
    }


def _data_schema() -> dict:
    return {
        "type": "object",
        "description": "the dataset and how it is split and shaped",
        "properties": {
            "dataset": registry_enum(DATASETS),
            "path": {"type": "string", "description": "the folder or file of a dataset that reads one: " + ", ".join(
                f"{name} ({entry.path})" for name, entry in DATASETS.items() if entry.path)},
            "image_size": {"type": "array", "items": {"type": "integer", "minimum": 1}, "minItems": 2,
                           "maxItems": 2, "description": "resize images to this (default: the model's input)"},
            "channels": {"enum": [1, 3], "description": "convert images to this many channels"},
            "validation_split": FRACTION,
            "test_split": FRACTION,
            "count": {"type": "integer", "minimum": 10, "description": "images to generate (shapes, shapes_boxes)"},
            "seed": {"type": "integer", "description": "seed for generating and splitting the data"},
            "class_names": {"type": "array", "items": {"type": "string"},
                            "description": "names of the classes (npz, mask_folder; voc: the classes to train, "
                                           "in order)"},
            "images": {"type": "string", "description": "coco: the folder its `file_name`s are under (default: the "
                                                        "annotation file's folder)"},
            "strict": {"type": "boolean", "description": "a bad image file (empty, truncated, not an image) is an "
                                                         "error naming it, instead of a warning and a skip"},
            "cache": {"type": "string", "description": "keep decoded images after the first epoch: memory, or a "
                                                       "folder for tf.data's cache files (data that fits)"},
            "center_crop": {"type": "number", "exclusiveMinimum": 0, "maximum": 1,
                            "description": "resize the shorter side to the input size / center_crop, then cut the "
                                           "centre (ImageNet evaluation: 0.875); every split unless a training "
                                           "crop (random_resized_crop) replaces it there"},
            "labels": {"type": "object", "required": ["clusters"], "additionalProperties": False,
                       "description": "replace the dataset's labels by clusters of the training images (k-means on "
                                      "their pixels; the other splits take the nearest cluster): pseudo-classes for "
                                      "a class-conditional generator trained without labels (data in memory)",
                       "properties": {"clusters": {"type": "integer", "minimum": 2,
                                                   "description": "how many clusters"}}},
            "normalize": {"description": "per-channel (x - mean) / std after augmentation, on pixels in [0, 1]: "
                                         "imagenet, or {mean: [...], std: [...]}",
                          "oneOf": [{"const": "imagenet"},
                                    {"type": "object", "required": ["mean", "std"], "additionalProperties": False,
                                     "properties": {"mean": {"type": "array", "items": {"type": "number"}},
                                                    "std": {"type": "array", "items": POSITIVE}}}]},
        },
        "required": ["dataset"],
        "additionalProperties": False,
    }


def _augment_schema() -> dict:
    return {
        "type": "array",
        "description": "Keras preprocessing layers applied to training batches only",
        "items": {
            "description": "an augmentation's name, or a mapping of its name to its settings",
            "if": {"type": "string"},
            "then": {"enum": AUGMENTATIONS.names()},
            "else": {
                "type": "object",
                "minProperties": 1, "maxProperties": 1,
                "properties": _settings_of_each(AUGMENTATIONS),
                "additionalProperties": False,
            },
        },
    }


def _performance_schema() -> dict:
    return {
        "type": "object",
        "description": "speed settings; results stay comparable (see docs/benchmarks.md)",
        "properties": {
            "mixed_precision": {"enum": ["float32", "mixed_float16", "mixed_bfloat16", "auto"],
                                "description": "Keras dtype policy: compute in 16 bits, keep float32 weights; auto: "
                                               "bfloat16 on GPUs from Ampere on, float16 on Volta/Turing, float32 on "
                                               "CPUs (run.json records the choice)"},
            "jit_compile": {"enum": ["auto", True, False],
                            "description": "XLA compilation of the train step (auto: Keras decides)"},
            "steps_per_execution": {"type": "integer", "minimum": 1,
                                    "description": "batches run per call into the backend"},
        },
        "additionalProperties": False,
    }


def _distribution_schema() -> dict:
    return {
        "type": "object",
        "description": "training on several devices; the batch size stays global (split over the devices)",
        "properties": {
            "data_parallel": {
                "anyOf": [{"const": "auto"}, {"type": "integer", "minimum": 1}, {"type": "null"}],
                "description": "devices per process: auto (every local GPU, when there are several), N (on a "
                               "CPU-only machine, N virtual CPU devices: to test the distributed path, not to go "
                               "faster), or null (one device, no distribution)"},
        },
        "additionalProperties": False,
    }


def _init_from_schema() -> dict:
    return {
        "type": ["object", "null"],
        "description": "start from weights trained before (e.g. a pretrained encoder): the named layers or "
                       "sub-models are copied from a run folder or .keras file",
        "properties": {
            "path": {"type": "string", "description": "a run folder (its model.keras or last checkpoint) "
                                                      "or a .keras file"},
            "layers": {"type": "array", "items": {"type": "string"}, "minItems": 1,
                       "description": "names of layers or sub-models (e.g. encoder) to copy"},
        },
        "required": ["path", "layers"],
        "additionalProperties": False,
    }


def _early_stopping_schema() -> dict:
    return {
        "type": ["object", "null"],
        "description": "stop when a monitored value stops improving (keras.callbacks.EarlyStopping)",
        "properties": {"monitor": {"type": "string"}, "patience": {"type": "integer", "minimum": 0},
                       "restore_best_weights": {"type": "boolean"}},
        "additionalProperties": False,
    }


def _const(schema: dict) -> Callable[[], dict]:
    return lambda: schema


# Settings a trainer may honour; each trainer says which (`TrainerEntry.honours`).
COMMON: dict[str, Setting] = {
    "params": Setting(_const({"type": "object", "description": "spec params used for training "
                                                               "(e.g. a small input size)"}), {}),
    "data": Setting(_data_schema, {"dataset": "digits"}),
    "epochs": Setting(_const({"type": "integer", "minimum": 1, "description": "passes over the training split"}), 10),
    "batch_size": Setting(_const({"type": "integer", "minimum": 1,
                                  "description": "examples per step (global: split over the devices)"}), 64),
    "seed": Setting(_const({"type": "integer", "description": "seed of the weights, the order of the examples and "
                                                              "the augmentation: the same seed trains the same"}), 0),
    "optimizer": Setting(lambda: one_of_keys(OPTIMIZERS, "one optimizer and its settings"),
                         {"adam": {"learning_rate": 1e-3}}),
    "schedule": Setting(lambda: one_of_keys(SCHEDULES, "learning-rate schedule over the planned epochs"),
                        {"constant": {}}),
    "augment": Setting(_augment_schema, []),
    "early_stopping": Setting(_early_stopping_schema, None),
    "freeze": Setting(_const({"type": "array", "items": {"type": "string"},
                              "description": "layer names or name prefixes to keep fixed (transfer learning)"}), []),
    "init_from": Setting(_init_from_schema, None),
    "checkpoint_every_steps": Setting(_const({"type": ["integer", "null"], "minimum": 1,
                                              "description": "also checkpoint every N training steps (model, "
                                              "optimizer, position in the epoch): a killed run loses at most N "
                                              "steps; --resume continues mid-epoch"}), None),
    "performance": Setting(_performance_schema, {"mixed_precision": "float32", "jit_compile": "auto",
                                                 "steps_per_execution": 1}, merged=True),
    "distribution": Setting(_distribution_schema, {"data_parallel": "auto"}, merged=True),
}

# What a trainer built on `model.fit` honours.
FIT_SETTINGS = ("params", "data", "epochs", "batch_size", "seed", "optimizer", "schedule", "augment",
                "early_stopping", "freeze", "init_from", "checkpoint_every_steps", "performance", "distribution")


@dataclass(frozen=True)
class TrainerEntry:
    """A trainer as the spec language sees it: its `train:` settings (the common ones it
    `honours` and its own `options`), and `load()`, which imports its `Trainer` class."""

    name: str
    description: str
    load: Callable[[], type]
    honours: tuple = FIT_SETTINGS
    options: dict = field(default_factory=dict)

    def settings(self) -> dict[str, Setting]:
        unknown = [key for key in self.honours if key not in COMMON]
        if unknown:
            raise ValueError(f"trainer '{self.name}' honours unknown common settings {unknown}; "
                             f"known: {', '.join(COMMON)}")
        return {**{key: COMMON[key] for key in self.honours}, **self.options}

    def schema(self) -> dict:
        properties = {"trainer": {"const": self.name, "description": self.description}}
        properties.update({key: setting.schema() for key, setting in self.settings().items()})
        return {"type": "object", "description": f"the {self.name} trainer: {self.description}",
                "properties": properties, "additionalProperties": False}

    def defaults(self) -> dict:
        return {key: setting.default for key, setting in self.settings().items()}

    def merged_keys(self) -> tuple:
        return tuple(key for key, setting in self.settings().items() if setting.merged)

    def summary_figures(self, model, config: dict) -> dict:
        """What the trainer makes of a built model, for `summary` (see `Trainer.summary_figures`)."""
        return self.load()().summary_figures(model, config)
