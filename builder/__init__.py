"""Keras Blueprint: declarative Keras 3 architectures from YAML specs.

Public API (importing this package does not import Keras; the functions that build do):
    load_spec(path, overrides=None) -> Spec
    build_model(spec_or_path, overrides=None, model=None) -> keras.Model
    build_models(spec_or_path, overrides=None) -> {name: keras.Model}
    copy_weights(source, target) -> number of layers copied ; WeightTransferError
    register_layer(name, factory, args=..., ...) ; Arg
    Registry, load_plugins ; BlueprintError (the base of every error raised on purpose), SpecError
"""

from __future__ import annotations

from pathlib import Path

from .building.weight_copy import WeightTransferError
from .errors import BlueprintError, Location, SpecError, UnknownName
from .language.layer_registry import LAYER_TYPES, Arg, register_layer, unregister_layer
from .language.spec import Spec
from .plugins import load_plugins
from .registry import Registry

__all__ = [
    "LAYER_TYPES", "Arg", "BlueprintError", "Location", "Registry", "Spec", "SpecError", "UnknownName",
    "WeightTransferError", "build_model", "build_models", "copy_weights", "load_plugins", "load_spec",
    "register_layer", "unregister_layer",
]


def load_spec(path: str | Path, overrides: dict | None = None) -> Spec:
    """Load, validate and expand a spec file (plugins loaded first); raise `SpecError` naming the
    spec line on failure. `overrides` maps param names to values (`--set name=value`)."""
    from .language.spec import load_spec as _load

    load_plugins()
    return _load(path, overrides)


def _as_spec(spec_or_path, overrides) -> Spec:
    if isinstance(spec_or_path, Spec):
        if overrides:
            return load_spec(spec_or_path.file, {**spec_or_path.overrides, **overrides})
        return spec_or_path
    return load_spec(Path(spec_or_path), overrides)


def build_models(spec_or_path, overrides: dict | None = None, max_params: int | None = None,
                 check_expect: bool = True, initialize: bool = True) -> dict:
    """All models a spec defines, by name. Specs over `max_params` weights (default
    `builder.building.model_builder.MAX_PARAMS`) are refused before any weight is allocated;
    models whose parameter counts differ from the spec's `expect:` are refused unless
    `check_expect` is False (the figures describe the spec at its own params: with overrides
    they are not checked). `initialize=False` leaves the weights unallocated: models to count
    and inspect (summary, plot), built without drawing millions of initial values; a weight read
    from them is drawn anew each time, so they are not for computing."""
    from .building.expectations import enforce_expectations
    from .building.model_builder import MAX_PARAMS
    from .building.model_builder import build_models as _build

    spec = _as_spec(spec_or_path, overrides)
    models = _build(spec, max_params or MAX_PARAMS, initialize)
    if check_expect:
        enforce_expectations(spec, models)
    return models


def build_model(spec_or_path, overrides: dict | None = None, model: str | None = None, check_expect: bool = True,
                initialize: bool = True):
    """The spec's main model (or the one named `model`) as a Functional keras.Model; see
    `build_models` for `check_expect` and `initialize`."""
    spec = _as_spec(spec_or_path, overrides)
    if model is not None:
        spec.check_model(model)
    return build_models(spec, check_expect=check_expect, initialize=initialize)[model or spec.main]


def copy_weights(source, target) -> int:
    """Copy every layer with weights of `source` into the layer of `target` in the same place of the
    graph (docs/python-api.md: the matching rule); returns how many were copied. Raises
    `WeightTransferError`, saying where and why, when the structures differ or a model is not a
    Keras 3 model."""
    from .building.weight_copy import copy_weights as _copy

    return _copy(source, target)
