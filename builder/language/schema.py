"""The spec's JSON Schema (draft 2020-12), generated from the layer and trainer registries, and
validation.

`builder/language/spec.schema.json` is the committed copy editors point at (with the built-in
trainers); a test regenerates it and fails on drift
(`python -m builder schema -o builder/language/spec.schema.json` refreshes it).
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

from ..errors import Location, SpecError, did_you_mean
from .keras_catalog import CATALOGS
from .layer_registry import (
    CONSTRUCTS,
    LAYER_TYPES,
    REQUIRED,
    Arg,
    missing_argument,
    unknown_argument,
    wrong_argument_value,
)
from .spec_graph import SHORTCUT_MODES, unknown_shortcut
from .train_section import section_message, train_schemas, trainer_of
from .yaml_loader import location_of

SCHEMA_PATH = Path(__file__).with_name("spec.schema.json")
SCHEMA_ID = "https://keras-blueprint.dev/spec.schema.json"

TOP_LEVEL_KEYS = {
    "name": "the model's name",
    "description": "free text",
    "params": "parameters with their defaults, referenced as $name or ${expression}",
    "include": "block library files, relative to this file",
    "blocks": "named reusable sub-graphs, used like layer types",
    "functions": "named helper expressions: {name: {args, defaults, let, returns}}, called as ${name(x)}",
    "defaults": "arguments every node of a layer type gets unless it sets its own: {batchnorm: {epsilon: 1.0e-5}}",
    "input": "the input shape without the batch axis",
    "inputs": "named inputs and their shapes, for several inputs",
    "layers": "the network: a list of nodes",
    "outputs": "the node names that are the model's outputs (default: the last node)",
    "models": "several named models in one spec (encoder/decoder, generator/discriminator)",
    "main": "in a multi-model spec, the model `build` returns by default",
    "expect": "published figures the built model must match (checked by tests and `summary`)",
    "test_overrides": "params for a quick forward pass at a small input (used by the test suite)",
    "train": "how to train it (see docs/training.md)",
    "search": "what `tune` searches: {param or train.setting.path: int(LOW, HIGH[, log][, step=S]) | "
              "float(LOW, HIGH[, log][, step=S]) | choice(A, B, ...)}",
}

_EXPR = {"$ref": "#/$defs/expression"}


def _with_expression(schema: dict) -> dict:
    return {"anyOf": [schema, _EXPR]}


def _int_item(minimum=None):
    item = {"type": "integer"}
    if minimum is not None:
        item["minimum"] = minimum
    return _with_expression(item)


def arg_schema(arg: Arg) -> dict:
    """The JSON Schema of one layer argument; any value may also be an expression string."""
    minimum = arg.minimum
    if arg.choices:
        base = {"enum": list(arg.choices)}
    elif arg.kind == "int":
        base = {"type": "integer", **({"minimum": minimum} if minimum is not None else {})}
    elif arg.kind == "number":
        base = {"type": "number", **({"minimum": minimum} if minimum is not None else {})}
    elif arg.kind == "bool":
        base = {"type": "boolean"}
    elif arg.kind == "string":
        base = {"type": "string"}
    elif arg.kind == "ints":
        base = {"anyOf": [{"type": "integer", **({"minimum": minimum} if minimum is not None else {})},
                          {"type": "array", "minItems": 1, "items": _int_item(minimum)}]}
    elif arg.kind == "numbers":
        base = {"anyOf": [{"type": "number"}, {"type": "array", "items": _with_expression({"type": "number"})}]}
    elif arg.kind == "shape":
        base = {"type": "array", "items": {"anyOf": [{"type": "integer"}, {"type": "null"}, _EXPR]}}
    elif arg.kind == "padding":
        pair = {"type": "array", "minItems": 2, "maxItems": 2, "items": _int_item(0)}
        base = {"anyOf": [{"type": "integer", "minimum": 0}, pair,
                          {"type": "array", "minItems": 2, "maxItems": 2, "items": pair}]}
    elif arg.kind in CATALOGS:
        base = _catalog_schema(CATALOGS[arg.kind], allow_null=not arg.required)
    else:
        base = {}
    schema = _with_expression(base) if base else {}
    schema["description"] = arg.doc + (f" (expects {arg.describe()})" if arg.kind != "any" else "")
    if not arg.required:
        schema["default"] = arg.default
    return schema


def _catalog_schema(catalog: dict, allow_null: bool) -> dict:
    """A name of the catalog, or {name: {its arguments}}."""
    forms = [{"enum": list(catalog)}]
    for name, (_, arguments) in catalog.items():
        forms.append({"type": "object", "minProperties": 1, "maxProperties": 1, "required": [name],
                      "properties": {name: {"type": ["object", "null"],
                                            "properties": {argument: {} for argument in arguments},
                                            "additionalProperties": False}}})
    if allow_null:
        forms.append({"type": "null"})
    return {"anyOf": forms}


def _args_object(type_name: str, entry) -> dict:
    """The arguments of one layer type; which are required is said where a node uses them (a
    `defaults:` entry may give any subset)."""
    return {
        "description": entry.doc,
        "type": ["object", "null"],
        "properties": {name: arg_schema(arg) for name, arg in entry.args.items()},
        "additionalProperties": False,
    }


def _node_args(type_name: str, entry) -> dict:
    schema = {"$ref": f"#/$defs/args_{type_name}"}
    required = [name for name, arg in entry.args.items() if arg.required]
    if required:
        schema["required"] = required
    return schema


_FUNCTION = {
    "type": "object",
    "properties": {
        "description": {"type": "string"},
        "args": {"type": "array", "items": {"type": "string"}, "description": "argument names, in call order"},
        "defaults": {"type": "object", "description": "values for arguments a call leaves out"},
        "let": {"type": "object", "description": "named intermediate values, evaluated in order"},
        "returns": {"description": "the value of a call: an expression over args, let names and functions"},
    },
    "required": ["args", "returns"],
    "additionalProperties": False,
}


def construct_schemas(merge_types: list[str]) -> dict:
    layers = {"$ref": "#/$defs/layers"}
    return {
        "repeat": {
            "description": "the body `layers` repeated `times` times; `index` names the 0-based counter",
            "type": "object",
            "properties": {"times": _int_item(0), "index": {"type": "string"}, "layers": layers},
            "required": ["times", "layers"],
            "additionalProperties": False,
        },
        "residual": {
            "description": "merge(body(x), shortcut(x)) then `post`; the shortcut is the identity when "
                           "shapes match, else `projection` (default: a 1x1 convolution). shortcut: "
                           "if_shapes_match adds the identity skip only where the shapes match and otherwise "
                           "none (body(x) alone, as inverted-residual networks do); identity always; none never; "
                           "an expression choosing one of these may read the block's input",
            "type": "object",
            "properties": {
                "layers": layers,
                "shortcut": {"if": {"type": "string"}, "then": _with_expression({"enum": list(SHORTCUT_MODES)}),
                             "else": layers},
                "projection": layers,
                "merge": {"enum": merge_types},
                "post": layers,
            },
            "required": ["layers"],
            "additionalProperties": False,
        },
        "parallel": {
            "description": "several branches from one input, merged (concat by default); "
                           "an empty branch is the identity",
            "type": "object",
            "properties": {
                "branches": {"type": "array", "minItems": 1, "items": layers},
                "merge": {"enum": merge_types},
            },
            "required": ["branches"],
            "additionalProperties": False,
        },
    }


def generate_schema() -> dict:
    """The full spec schema, derived from the registered layer types."""
    types = LAYER_TYPES
    merge_types = [name for name, entry in types.items() if entry.category == "merge"]
    args_defs = {f"args_{name}": _args_object(name, entry) for name, entry in types.items()}
    constructs = construct_schemas(merge_types)
    train, trainer_sections = train_schemas()
    node_properties = {
        "name": {"type": "string", "description": "name of this node; others refer to it in `from`"},
        "from": {"$ref": "#/$defs/references"},
        "when": {"description": "include the node only when this is true",
                 "anyOf": [{"type": "boolean"}, _EXPR]},
        **{name: _node_args(name, entry) for name, entry in types.items()},
        **{name: {"$ref": f"#/$defs/construct_{name}"} for name in CONSTRUCTS},
    }
    shape = {"type": "array", "minItems": 1,
             "items": {"anyOf": [{"type": "integer", "minimum": 1}, {"type": "null"}, _EXPR]}}
    graph_properties = {
        "input": {"$ref": "#/$defs/shape"},
        "inputs": {"type": "object", "additionalProperties": {"$ref": "#/$defs/shape"}},
        "layers": {"$ref": "#/$defs/layers"},
        "outputs": {"$ref": "#/$defs/references"},
    }
    return {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": SCHEMA_ID,
        "title": "Keras Blueprint spec",
        "description": "A declarative Keras 3 architecture. Generated from the layer registry; "
                       "do not edit by hand.",
        "type": "object",
        "properties": {
            "name": {"type": "string", "description": TOP_LEVEL_KEYS["name"]},
            "description": {"type": "string", "description": TOP_LEVEL_KEYS["description"]},
            "params": {"type": "object", "description": TOP_LEVEL_KEYS["params"]},
            "include": {"type": "array", "items": {"type": "string"},
                        "description": TOP_LEVEL_KEYS["include"]},
            "blocks": {"type": "object", "additionalProperties": {"$ref": "#/$defs/block"},
                       "description": TOP_LEVEL_KEYS["blocks"]},
            "functions": {"type": "object", "additionalProperties": _FUNCTION,
                          "description": TOP_LEVEL_KEYS["functions"]},
            "defaults": {"type": "object", "description": TOP_LEVEL_KEYS["defaults"],
                         "properties": {name: {"$ref": f"#/$defs/args_{name}"} for name in types},
                         "additionalProperties": False},
            **graph_properties,
            "models": {"type": "object", "minProperties": 1,
                       "additionalProperties": {"$ref": "#/$defs/model"},
                       "description": TOP_LEVEL_KEYS["models"]},
            "main": {"type": "string", "description": TOP_LEVEL_KEYS["main"]},
            "expect": {
                "type": "object",
                "description": TOP_LEVEL_KEYS["expect"] + "; {params, trainable_params} for the main model, "
                               "or per model name ({generator: {trainable_params: N}})",
                "properties": {"params": _int_item(0), "trainable_params": _int_item(0)},
                "additionalProperties": {"type": "object", "minProperties": 1, "additionalProperties": False,
                                         "properties": {"params": _int_item(0), "trainable_params": _int_item(0)}},
            },
            "test_overrides": {"type": "object", "description": TOP_LEVEL_KEYS["test_overrides"]},
            "search": {"type": "object", "description": TOP_LEVEL_KEYS["search"],
                       "additionalProperties": True},  # parse_dimension explains a malformed entry
            "train": {"$ref": "#/$defs/train"},
        },
        "additionalProperties": False,
        "$defs": {
            "expression": {"type": "string", "pattern": "\\$",
                           "description": "$name or ${expression}, evaluated against the params"},
            "shape": shape,
            "references": {"anyOf": [{"type": "string"},
                                     {"type": "array", "minItems": 1, "items": {"type": "string"}}]},
            "layers": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            "node": {
                "description": "a layer type name, or a mapping with one type key plus name/from/when",
                "type": ["string", "object"],
                "minProperties": 1,
                "properties": node_properties,
            },
            "block": {
                "type": "object",
                "properties": {
                    "description": {"type": "string"},
                    "params": {"type": "object"},
                    "layers": {"$ref": "#/$defs/layers"},
                },
                "required": ["layers"],
                "additionalProperties": False,
            },
            "model": {
                "type": "object",
                "properties": {**graph_properties, "description": {"type": "string"}},
                "required": ["layers"],
                "additionalProperties": False,
            },
            "train": train,
            **trainer_sections,
            **{f"construct_{name}": schema for name, schema in constructs.items()},
            **args_defs,
        },
    }


def schema_json() -> str:
    return json.dumps(generate_schema(), indent=2, sort_keys=False, default=_json_default) + "\n"


def _json_default(value):
    if value is REQUIRED:
        return None
    raise TypeError(f"not JSON serializable: {value!r}")


@lru_cache(maxsize=1)
def _validator():
    import jsonschema

    return jsonschema.Draft202012Validator(json.loads(schema_json()))


def validate_document(document, file: str) -> None:
    """Check a loaded spec (or block library) against the schema; raise the first error by line."""
    if not isinstance(document, dict):
        raise SpecError("a spec must be a mapping with at least `input` and `layers`",
                        location_of(document, None) or _file_start(file))
    errors = list(_validator().iter_errors(document))
    if not errors:
        return
    located = [(_locate(document, error, file), error) for error in errors]
    # A misspelt argument also leaves the real one missing: report the misspelling.
    located.sort(key=lambda pair: (pair[1].validator == "required", pair[0][0].line, pair[0][0].column))
    (location, path), error = located[0]
    raise SpecError(_message(document, error), location, path)


def _file_start(file):
    return Location(file, 1, 1)


def _walk(document, path):
    node, parent, key = document, None, None
    for part in path:
        parent, key = node, part
        node = node[part]
    return node, parent, key


def format_path(path) -> str:
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _locate(document, error, file):
    path = list(error.absolute_path)
    node, parent, key = _walk(document, path)
    extra = _extra_key(error)
    if extra is not None and isinstance(node, dict):
        return (node.key_loc(extra) if hasattr(node, "key_loc") else None) or _file_start(file), \
            format_path(path + [extra])
    location = location_of(parent, key) if parent is not None else location_of(node)
    return location or _file_start(file), format_path(path)


def _extra_key(error):
    if error.validator != "additionalProperties":
        return None
    allowed = set(error.schema.get("properties", {}))
    extras = [key for key in error.instance if key not in allowed]
    return extras[0] if extras else None


def _message(document, error) -> str:
    path = list(error.absolute_path)
    if path and path[0] == "train":
        return section_message(error, trainer_of(document.get("train")), path[1:])
    types = LAYER_TYPES
    extra = _extra_key(error)
    if extra is not None:
        allowed = list(error.schema.get("properties", {}))
        owner = path[-1] if path else None
        if owner in types or owner in CONSTRUCTS:
            return unknown_argument(owner, extra, allowed)
        return f"unknown key '{extra}'{did_you_mean(extra, allowed)}"
    if len(path) >= 2 and path[-2] in types and isinstance(path[-1], str):
        arg = types[path[-2]].args.get(path[-1])
        if arg is not None:
            return wrong_argument_value(path[-2], path[-1], arg, error.instance)
    if path and path[-1] == "shortcut" and isinstance(error.instance, str):
        return unknown_shortcut(error.instance)
    if error.validator == "required" and path and path[-1] in types:
        missing = [name for name in error.validator_value if name not in (error.instance or {})]
        return missing_argument(path[-1], missing[0])
    if error.validator == "type":
        expected = error.validator_value
        expected = " or ".join(expected) if isinstance(expected, list) else expected
        return f"expected {expected}, got {error.instance!r}"
    return error.message
