"""The `train:` section of a spec: which trainer, and that trainer's own settings.

The spec language knows trainers only through the `TRAINERS` registry, which plugins fill (the
`trainers` package is one). Each entry publishes its section's JSON Schema and defaults, so a
setting the chosen trainer would ignore is refused here, with the spec location, still without
importing Keras.
"""

from __future__ import annotations

import copy
from typing import Protocol

from ..errors import Location, SpecError, did_you_mean
from ..registry import Registry

DEFAULT_TRAINER = "supervised"


class TrainerSection(Protocol):
    """What the spec language needs of a registered trainer (see `trainers.run.settings.TrainerEntry`)."""

    name: str
    description: str

    def schema(self) -> dict: ...

    def defaults(self) -> dict: ...

    def merged_keys(self) -> tuple: ...

    def summary_figures(self, model, config: dict) -> dict: ...


TRAINERS: Registry[TrainerSection] = Registry("trainer")


def trainer_of(section, overrides: dict | None = None) -> str:
    """The trainer a `train:` section (and `--train trainer=...`) selects."""
    chosen = (overrides or {}).get("trainer")
    if chosen is None and isinstance(section, dict):
        chosen = section.get("trainer")
    return DEFAULT_TRAINER if chosen is None else chosen


def resolve_train(section: dict | None, overrides: dict | None = None, file: str = "<spec>") -> dict:
    """The trainer's defaults, then the spec's `train:`, then dotted command-line overrides,
    checked against the trainer's schema."""
    import jsonschema

    name = trainer_of(section, overrides)
    if name not in TRAINERS:
        raise SpecError(unknown_trainer(name), Location(file, 1, 1), "train.trainer")
    entry = TRAINERS[name]
    defaults = entry.defaults()
    config = {**copy.deepcopy(defaults), "trainer": name}
    for key, value in (section or {}).items():
        config[key] = copy.deepcopy(value)
    for dotted, value in (overrides or {}).items():
        _set_dotted(config, dotted, value, name, defaults)
    for key in entry.merged_keys():  # unset keys of a merged setting keep their defaults
        if isinstance(config.get(key), dict):
            config[key] = {**defaults[key], **config[key]}
    validator = jsonschema.Draft202012Validator(entry.schema())
    errors = sorted(validator.iter_errors(config), key=lambda e: list(map(str, e.absolute_path)))
    if errors:
        error = errors[0]
        path = "train" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error.absolute_path)
        raise SpecError(section_message(error, name), Location(file, 1, 1) if not section else None, path)
    return config


def unknown_trainer(name) -> str:
    if not len(TRAINERS):  # builder alone, e.g. a source checkout that was never installed
        return (f"unknown trainer '{name}': no trainers are registered; install the package (its `trainers` "
                "plugin registers them) or `import trainers` first")
    return TRAINERS.unknown(name)


def section_message(error, trainer: str, path: list | None = None) -> str:
    """One line for a schema error inside `train:`; `trainer` is the chosen trainer's name and
    `path` the error's place inside the section (default: the error's own path)."""
    path = list(error.absolute_path) if path is None else path
    if error.validator == "additionalProperties":
        allowed = list(error.schema.get("properties", {}))
        extra = [key for key in error.instance if key not in allowed][0]
        if not path:
            users = [name for name, entry in TRAINERS.items()
                     if extra in entry.schema().get("properties", {})]
            elsewhere = f"; it is a setting of the {_and(users)} trainer{'s' if len(users) > 1 else ''}" \
                if users else did_you_mean(extra, allowed)
            return f"the {trainer} trainer does not use '{extra}'{elsewhere} (its settings: {', '.join(allowed)})"
        return f"unknown key '{extra}'{did_you_mean(extra, allowed)} (allowed: {', '.join(allowed)})"
    if error.validator == "enum":
        if path == ["trainer"]:
            return unknown_trainer(error.instance)
        return f"{error.instance!r} is not one of {', '.join(map(str, error.validator_value))}" \
               f"{did_you_mean(error.instance, error.validator_value)}"
    return error.message


def _and(names: list) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} and {names[-1]}"


def _set_dotted(config: dict, dotted: str, value, trainer: str, defaults: dict) -> None:
    keys = dotted.split(".")
    if keys[0] not in defaults and keys[0] != "trainer":
        raise SpecError(f"the {trainer} trainer has no setting '{keys[0]}'{did_you_mean(keys[0], defaults)}",
                        None, f"--train {dotted}")
    assign_dotted(config, dotted, value)


def assign_dotted(config: dict, dotted: str, value) -> None:
    """Set `optimizer.sgd.momentum` in a `train:` mapping, creating the mappings on the way; an
    optimizer or schedule other than the one set replaces it (`optimizer.sgd.momentum=0.9` on
    `optimizer: {adam: ...}` trains with SGD)."""
    keys = dotted.split(".")
    target = config
    for key in keys[:-1]:
        if key in ("optimizer", "schedule") and target is config and len(keys) > 2:
            choice = keys[1]
            if choice not in (config.get(key) or {}):
                config[key] = {choice: {}}
        if not isinstance(target.get(key), dict):
            target[key] = {}
        target = target[key]
    target[keys[-1]] = value


def train_schemas() -> tuple[dict, dict]:
    """The `train:` part of the spec's JSON Schema and the `$defs` it refers to: each registered
    trainer's section under an if/then on `trainer`, so editors and `validate` check the chosen
    trainer's settings."""
    names = TRAINERS.names()
    branches = []
    for name in names:
        chosen = {"properties": {"trainer": {"const": name}}, "required": ["trainer"]}
        if name == DEFAULT_TRAINER:
            chosen = {"anyOf": [chosen, {"not": {"required": ["trainer"]}}]}
        branches.append({"if": chosen, "then": {"$ref": f"#/$defs/train_{name}"}})
    schema = {
        "type": "object",
        "description": "how to train the model; each trainer takes its own settings, and every one can be "
                       "overridden with --train key.path=value",
        "properties": {"trainer": {"enum": names, "description": f"the training strategy (default "
                                                                 f"{DEFAULT_TRAINER})"}},
    }
    if branches:
        schema["allOf"] = branches
    return schema, {f"train_{name}": TRAINERS[name].schema() for name in names}
