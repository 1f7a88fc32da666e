"""Keras Blueprint: declarative Keras 3 architectures from YAML specs.

Public API (importing this package does not import Keras; the functions that build do):
    load_spec(path, overrides=None) -> Spec
    build_model(spec_or_path, overrides=None, model=None) -> keras.Model
    build_models(spec_or_path, overrides=None) -> {name: keras.Model}
    copy_weights(source, target) -> number of layers copied
    register_layer(name, factory, args=..., ...) ; Arg
"""

from __future__ import annotations

from pathlib import Path

from .errors import Location, SpecError
from .registry import Arg, register_layer, unregister_layer
from .spec import Spec, load_spec

__all__ = [
    "Arg", "Location", "Spec", "SpecError", "build_model", "build_models", "copy_weights",
    "load_spec", "register_layer", "unregister_layer",
]


def _as_spec(spec_or_path, overrides) -> Spec:
    if isinstance(spec_or_path, Spec):
        if overrides:
            return load_spec(spec_or_path.file, {**spec_or_path.overrides, **overrides})
        return spec_or_path
    return load_spec(Path(spec_or_path), overrides)


def build_models(spec_or_path, overrides: dict | None = None, max_params: int | None = None) -> dict:
    """All models a spec defines, by name. Specs over `max_params` weights (default
    `builder.compile.MAX_PARAMS`) are refused before any weight is allocated."""
    from .compile import MAX_PARAMS
    from .compile import build_models as _build

    return _build(_as_spec(spec_or_path, overrides), max_params or MAX_PARAMS)


def build_model(spec_or_path, overrides: dict | None = None, model: str | None = None):
    """The spec's main model (or the one named `model`) as a Functional keras.Model."""
    spec = _as_spec(spec_or_path, overrides)
    if model is not None:
        spec.check_model(model)
    return build_models(spec)[model or spec.main]


def copy_weights(source, target) -> int:
    """Copy weights between two models of the same structure, matched by graph position."""
    from .weights import copy_weights as _copy

    return _copy(source, target)
