"""The layer-type registry: spec type name -> accepted arguments and how to build the layer.

This module never imports Keras: argument descriptions are plain data (so `validate` and the
JSON Schema need no backend), and each entry's `factory` imports Keras only when called.
Built-in types are registered in `builder.language.builtin_layers`; users add theirs with
`builder.register_layer` (from Python or a `keras_blueprint.plugins` entry point).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..errors import did_you_mean
from ..registry import Registry
from .keras_catalog import keras_object, problem

REQUIRED = object()

ARG_KINDS = {
    "int": "an integer",
    "number": "a number",
    "bool": "true or false",
    "string": "a string",
    "ints": "an integer or a list of integers",
    "numbers": "a number or a list of numbers",
    "shape": "a list of integers (null for a free dimension)",
    "padding": "an integer, a pair, or a pair of pairs of integers",
    "initializer": "a Keras initializer: a name (he_normal) or {name: {arguments}}",
    "regularizer": "a Keras regularizer: a name (l2) or {name: {arguments}}",
    "any": "any value",
}


@dataclass(frozen=True)
class Arg:
    """One argument a layer type accepts in a spec."""

    kind: str
    default: Any = REQUIRED
    doc: str = ""
    choices: tuple = ()
    minimum: float | None = None
    keras_name: str | None = None  # the layer class's keyword when the spec's name is shorter

    def __post_init__(self):
        if self.kind not in ARG_KINDS:
            raise ValueError(f"unknown argument kind {self.kind!r}; expected one of {sorted(ARG_KINDS)}")

    @property
    def required(self) -> bool:
        return self.default is REQUIRED

    def describe(self) -> str:
        if self.choices:
            return "one of " + ", ".join(repr(c) for c in self.choices)
        text = ARG_KINDS[self.kind]
        if self.minimum is not None:
            text += f" >= {self.minimum:g}"
        return text

    def check(self, value) -> bool:
        """True when a fully resolved value fits this argument."""
        if self.choices:
            return value in self.choices
        if self.kind in ("initializer", "regularizer"):
            return (value is None and not self.required) or problem(self.kind, value) is None
        ok = _KIND_CHECKS[self.kind](value)
        if ok and self.minimum is not None and _is_number(value):
            return value >= self.minimum
        if ok and self.minimum is not None and isinstance(value, list):
            return all(v >= self.minimum for v in _flatten(value) if _is_number(v))
        return ok


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _flatten(v):
    for item in v:
        if isinstance(item, list):
            yield from _flatten(item)
        else:
            yield item


_KIND_CHECKS: dict[str, Callable[[Any], bool]] = {
    "int": _is_int,
    "number": _is_number,
    "bool": lambda v: isinstance(v, bool),
    "string": lambda v: isinstance(v, str),
    "ints": lambda v: _is_int(v) or (isinstance(v, list) and bool(v) and all(map(_is_int, v))),
    "numbers": lambda v: _is_number(v) or (isinstance(v, list) and all(map(_is_number, v))),
    "shape": lambda v: isinstance(v, list) and all(_is_int(x) or x is None for x in v),
    "padding": lambda v: _is_int(v)
    or (isinstance(v, list) and len(v) == 2 and all(map(_is_int, v)))
    or (isinstance(v, list) and len(v) == 2
        and all(isinstance(p, list) and len(p) == 2 and all(map(_is_int, p)) for p in v)),
    "any": lambda v: True,
}


NUMBER_WORDS = {2: "two", 3: "three", 4: "four"}


@dataclass(frozen=True)
class LayerType:
    """A spec type name and how to turn its arguments into a Keras layer.

    `factory(**kwargs)` receives the Keras keyword arguments (spec names already mapped through
    `Arg.keras_name`, plus `name`) and returns a layer. `inputs` is "one", "many" (merges: the
    layer is called on the list), or the names of the layer's positional call arguments, the
    first required (attention: query, value, key); `call(layer, tensors)` then calls it on the
    tensors given (default: `layer(*tensors)`).
    `keywords_of` says whose keywords those are, for the reference: "Keras" for a `keras.layers`
    class; empty for any other class (the reference then says "class keyword").
    """

    name: str
    factory: Callable[..., Any]
    args: dict[str, Arg] = field(default_factory=dict)
    doc: str = ""
    inputs: str | tuple = "one"
    category: str = "custom"
    keywords_of: str = ""
    call: Callable[[Any, list], Any] | None = None

    def describe_inputs(self) -> str:
        """What `from` may list, for errors and the reference; '' for one input."""
        if self.inputs == "many":
            return "several inputs (`from: [a, b, ...]`)"
        if isinstance(self.inputs, tuple):
            most = NUMBER_WORDS.get(len(self.inputs), str(len(self.inputs)))
            return f"one to {most} inputs, `from: [{', '.join(self.inputs)}]` (or one: {self.inputs[0]} alone)"
        return ""

    def input_count_problem(self, count: int) -> str:
        """Why `count` inputs do not fit this type; '' when they do."""
        if self.inputs == "one" and count != 1:
            return f"{self.name} takes one input; got {count} in `from`"
        if self.inputs == "many" and count < 2:
            return f"{self.name} takes several inputs: list at least two in `from`"
        if isinstance(self.inputs, tuple) and not 1 <= count <= len(self.inputs):
            return f"{self.name} takes {self.describe_inputs()}; got {count} in `from`"
        return ""

    def apply(self, layer, tensors: list):
        """The layer called on its input tensors as its type takes them."""
        if self.inputs == "one":
            return layer(tensors[0])
        if self.inputs == "many":
            return layer(tensors)
        return self.call(layer, tensors) if self.call is not None else layer(*tensors)

    def keras_kwargs(self, args: dict) -> dict:
        kwargs = {}
        for arg_name, spec in self.args.items():
            value = args.get(arg_name, spec.default)
            if value is REQUIRED:
                continue
            if isinstance(value, list) and spec.kind in ("ints", "padding", "shape"):
                value = _to_tuples(value)
            if spec.kind in ("initializer", "regularizer"):
                value = keras_object(spec.kind, value)
            kwargs[spec.keras_name or arg_name] = value
        return kwargs


def unknown_argument(owner: str, name: str, allowed) -> str:
    """The one wording of an argument a layer type (or construct) does not take."""
    return f"unknown argument '{name}' for {owner}{did_you_mean(name, allowed)}"


def wrong_argument_value(type_name: str, name: str, arg: Arg, value) -> str:
    if arg.kind in ("initializer", "regularizer") and value is not None:
        return f"wrong value for argument '{name}' of {type_name}: {problem(arg.kind, value)}"
    return f"wrong value for argument '{name}' of {type_name}: expected {arg.describe()}, got {value!r}"


def missing_argument(type_name: str, name: str) -> str:
    return f"{type_name} needs argument '{name}'"


def _to_tuples(value):
    return tuple(_to_tuples(v) if isinstance(v, list) else v for v in value)


# Names a node may carry besides its type, and the structural constructs of the language.
RESERVED_NODE_KEYS = ("name", "from", "when")
CONSTRUCTS = ("repeat", "residual", "parallel")


def _check_type_name(name: str) -> None:
    if not name.isidentifier() or name != name.lower():
        raise ValueError(f"layer type names are lower-case identifiers; got {name!r}")
    if name in RESERVED_NODE_KEYS or name in CONSTRUCTS or name == "input":
        raise ValueError(f"{name!r} is a reserved word of the spec language")


LAYER_TYPES: Registry[LayerType] = Registry("layer type", _check_type_name)


def register_layer(
    name: str,
    factory: Callable[..., Any],
    args: dict[str, Arg] | None = None,
    doc: str = "",
    inputs: str = "one",
    category: str = "custom",
    replace: bool = False,
    keywords_of: str = "",
    call: Callable[[Any, list], Any] | None = None,
) -> LayerType:
    """Make `name` usable as a layer type in specs.

    `factory` is called as `factory(**kwargs, name=...)` and must return a Keras layer; `args`
    describes what the spec may pass. For a custom layer class to survive `model.save()` /
    `load_model`, decorate it with `@keras.saving.register_keras_serializable()`.
    """
    if isinstance(inputs, list):
        inputs = tuple(inputs)
    if inputs not in ("one", "many") and not (isinstance(inputs, tuple) and inputs
                                              and all(isinstance(n, str) for n in inputs)):
        raise ValueError(f"inputs must be 'one', 'many' or the names of the call's arguments; got {inputs!r}")
    return LAYER_TYPES.register(name, LayerType(name, factory, dict(args or {}), doc, inputs, category,
                                                keywords_of, call), replace=replace)


def unregister_layer(name: str) -> None:
    LAYER_TYPES.unregister(name)
