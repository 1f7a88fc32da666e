"""The spec reference page (`docs/reference.md`), generated from the registries: top-level keys,
constructs, expressions, every layer type with every argument, the initializers and regularizers
Keras has, and each trainer's `train:` settings. `python -m builder reference -o
docs/reference.md` refreshes it; a test fails when the committed page drifts. No Keras import.
"""

from __future__ import annotations

import json

from .expressions import SHAPE_ATTRIBUTES, allowed
from .keras_catalog import INITIALIZERS, REGULARIZERS
from .layer_registry import ARG_KINDS, LAYER_TYPES, REQUIRED, RESERVED_NODE_KEYS
from .schema import TOP_LEVEL_KEYS, construct_schemas
from .train_section import TRAINERS

CATEGORY_ORDER = ("conv", "core", "pooling", "normalization", "regularization", "activation", "reshaping",
                  "merge", "attention", "tokens", "detection", "preprocessing", "embedding", "generative")
NODE_KEYS = {
    "name": "the node's name; others refer to it in `from`, and a named block call's output layer carries it",
    "from": "the node's input(s): a name, `name[index]` for one output of several, or a list for merges",
    "when": "true or false (an expression): false leaves the node out, its input flowing on",
}


def reference_markdown() -> str:
    parts = [
        "# Spec reference\n",
        "Generated from the registries by `python -m builder reference -o docs/reference.md` (a test fails "
        "when this page and the code disagree). The guide to the language is "
        "[spec-language.md](spec-language.md).\n",
        _top_level(), _nodes(), _expressions(), _layer_types(), _catalog(), _trainers(),
    ]
    return "\n".join(parts)


def _cell(text) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _value(value) -> str:
    if value is REQUIRED:
        return "required"
    return "`" + json.dumps(value) + "`"


def _top_level() -> str:
    rows = "".join(f"| `{key}` | {_cell(text)} |\n" for key, text in TOP_LEVEL_KEYS.items())
    return "## Top-level keys\n\n| key | what it holds |\n|---|---|\n" + rows


def _nodes() -> str:
    text = ["## Nodes and constructs\n",
            "A node is a type name, or a mapping with one type key (a layer type, a block, a model of the "
            "same spec or a construct) and these keys:\n",
            "| key | meaning |\n|---|---|\n" + "".join(f"| `{key}` | {_cell(NODE_KEYS[key])} |\n"
                                                   for key in RESERVED_NODE_KEYS)]
    merges = [name for name, entry in LAYER_TYPES.items() if entry.category == "merge"]
    for name, schema in construct_schemas(merges).items():
        text.append(f"### `{name}`\n\n{schema['description']}.\n")
        required = set(schema.get("required", ()))
        rows = "".join(f"| `{key}` | {'required' if key in required else 'optional'} |\n"
                       for key in schema["properties"])
        text.append("| key | |\n|---|---|\n" + rows)
    return "\n".join(text)


def _expressions() -> str:
    rows = "".join(f"| `input.{name}` | {_cell(text)} |\n" for name, text in SHAPE_ATTRIBUTES.items())
    return ("## Expressions\n\n`$name` is a value; `${...}` an expression, which may hold " + allowed() + ".\n\n"
            "Inside a block, `input` describes the block's input (known when the model is built):\n\n"
            "| attribute | value |\n|---|---|\n" + rows)


def _layer_types() -> str:
    text = ["## Layer types\n",
            "Each argument may also be an expression. Kinds: "
            + "; ".join(f"*{kind}*: {describe}" for kind, describe in ARG_KINDS.items()) + ".\n"]
    categories = sorted({entry.category for _, entry in LAYER_TYPES.items()},
                        key=lambda c: (CATEGORY_ORDER.index(c) if c in CATEGORY_ORDER else len(CATEGORY_ORDER), c))
    for category in categories:
        text.append(f"### {category}\n")
        for name, entry in LAYER_TYPES.items():
            if entry.category != category:
                continue
            inputs = f" Takes {entry.describe_inputs()}." if entry.describe_inputs() else ""
            text.append(f"#### `{name}`\n\n{_cell(entry.doc)}.{inputs}\n")
            if not entry.args:
                text.append("No arguments.\n")
                continue
            keywords = entry.keywords_of or "class keyword"
            rows = "".join(
                f"| `{arg_name}` | {_cell(arg.describe())} | {_value(arg.default)} | {_cell(arg.doc)}"
                f"{f' ({keywords}: `{arg.keras_name}`)' if arg.keras_name else ''} |\n"
                for arg_name, arg in entry.args.items())
            text.append("| argument | expects | default | description |\n|---|---|---|---|\n" + rows)
    return "\n".join(text)


def _catalog() -> str:
    def table(catalog):
        return "| name | Keras class | arguments |\n|---|---|---|\n" + "".join(
            f"| `{name}` | `{class_name}` | {', '.join(f'`{a}`' for a in arguments) or 'none'} |\n"
            for name, (class_name, arguments) in catalog.items())

    return ("## Initializers and regularizers\n\nBy name (`he_normal`) or with arguments "
            "(`{variance_scaling: {scale: 2.0, mode: fan_out}}`), wherever an argument expects one.\n\n"
            "### Initializers\n\n" + table(INITIALIZERS) + "\n### Regularizers\n\n" + table(REGULARIZERS))


def _trainers() -> str:
    text = ["## Trainers: the `train:` section\n",
            "`trainer:` picks one (default `supervised`); each takes these settings, every one also "
            "settable with `--train key.path=value`.\n"]
    for name, entry in TRAINERS.items():
        defaults = entry.defaults()
        text.append(f"### `{name}`\n\n{_cell(entry.description)}.\n")
        rows = "".join(f"| `{key}` | {_value(defaults[key]) if key in defaults else ''} | "
                       f"{_cell(schema.get('description', ''))} |\n"
                       for key, schema in entry.schema()["properties"].items() if key != "trainer")
        text.append("| setting | default | description |\n|---|---|---|\n" + rows)
    return "\n".join(text)
