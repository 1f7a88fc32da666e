"""`python -m builder ...`: validate, summary, build, schema (and the commands of later stages).

The backend is set from `--backend` before anything imports Keras, and Keras is imported only by
commands that build, so `validate` and `--help` stay fast and never load TensorFlow or JAX.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

from .errors import SpecError

BACKENDS = ("tensorflow", "jax", "torch")


def parse_overrides(pairs: list[str] | None) -> dict:
    """`["classes=10", "width=32"]` -> `{"classes": 10, "width": 32}`; values are YAML scalars."""
    import yaml

    overrides = {}
    for pair in pairs or []:
        key, sep, text = pair.partition("=")
        if not sep or not key.strip():
            raise UsageError(f"--set takes name=value; got '{pair}'")
        try:
            overrides[key.strip()] = yaml.safe_load(text) if text.strip() else ""
        except yaml.YAMLError:
            raise UsageError(f"--set {pair}: the value is not a valid YAML scalar") from None
    return overrides


class UsageError(Exception):
    """A command-line mistake: reported with exit status 2."""


def _common(parser: argparse.ArgumentParser, overrides=True) -> None:
    parser.add_argument("--backend", choices=BACKENDS,
                        help="Keras backend (default: $KERAS_BACKEND, else tensorflow)")
    if overrides:
        parser.add_argument("--set", dest="overrides", action="append", metavar="NAME=VALUE",
                            help="override a spec param (repeatable), e.g. --set classes=10")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")


def make_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m builder",
        description="Keras Blueprint: compile YAML architecture specs into Keras 3 models.",
    )
    commands = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    validate = commands.add_parser("validate", help="check specs without building (no TF/JAX import)",
                                   description="Check spec files: YAML, schema, params, blocks, "
                                               "references, cycles. Exit 0 if all are valid, 1 if not.")
    validate.add_argument("specs", nargs="+", metavar="SPEC")
    _common(validate)

    summary = commands.add_parser("summary", help="build and list layers, shapes and parameter counts",
                                  description="Build the spec and print every layer's output shape and "
                                              "parameter count, with trainable / non-trainable / total.")
    summary.add_argument("spec", metavar="SPEC")
    summary.add_argument("--format", choices=("table", "json"), default="table")
    summary.add_argument("--model", help="in a multi-model spec, only this model")
    _common(summary)

    build = commands.add_parser("build", help="build and save as a .keras file",
                                description="Build the spec's main model (or --model) and save it; "
                                            "load it back with keras.saving.load_model after "
                                            "`import layers`.")
    build.add_argument("spec", metavar="SPEC")
    build.add_argument("-o", "--output", required=True, help="path of the .keras file to write")
    build.add_argument("--model", help="in a multi-model spec, which model to save")
    _common(build)

    schema = commands.add_parser("schema", help="print the spec JSON Schema (or write it with -o)",
                                 description="The JSON Schema of spec files, generated from the layer "
                                             "registry.")
    schema.add_argument("-o", "--output", help="write to this file instead of printing")
    _common(schema, overrides=False)
    return parser


def set_backend(name: str | None) -> None:
    """Choose the Keras backend; must run before Keras is imported."""
    if name:
        if "keras" in sys.modules and os.environ.get("KERAS_BACKEND") != name:
            raise UsageError("the backend must be chosen before Keras is imported")
        os.environ["KERAS_BACKEND"] = name
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # TensorFlow's C++ start-up chatter


def main(argv: list[str] | None = None) -> int:
    parser = make_parser()
    args = parser.parse_args(argv)
    try:
        set_backend(getattr(args, "backend", None))
        return COMMANDS[args.command](args)
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI never shows a raw traceback unless asked to
        if getattr(args, "debug", False):
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


def cmd_validate(args) -> int:
    from .spec import load_spec

    overrides = parse_overrides(args.overrides)
    failures = 0
    for path in args.specs:
        try:
            spec = load_spec(path, overrides)
        except SpecError as exc:
            print(str(exc), file=sys.stderr)
            failures += 1
            continue
        nodes = sum(len(graph.nodes) for graph in spec.graphs.values())
        models = ", ".join(spec.graphs)
        print(f"{path}: ok ({nodes} nodes; model{'s' if len(spec.graphs) > 1 else ''} {models})")
    return 1 if failures else 0


def cmd_summary(args) -> int:
    from .spec import load_spec
    from .summary import format_table, summarize

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    from .compile import build_models

    models = build_models(spec)
    names = [args.model] if args.model else list(models)
    for name in names:
        if name not in models:
            raise SpecError(f"the spec defines no model '{name}' (it has: {', '.join(models)})")
    reports = [summarize(models[name], spec if name == spec.main else None) for name in names]
    if args.format == "json":
        print(json.dumps(reports[0] if len(reports) == 1 else {"models": reports}, indent=2))
    else:
        print("\n\n".join(format_table(report) for report in reports))
    return 0


def cmd_build(args) -> int:
    from .spec import load_spec

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    from . import build_model

    output = args.output if args.output.endswith(".keras") else args.output + ".keras"
    model = build_model(spec, model=args.model)
    model.save(output)
    print(f"saved {model.name} ({model.count_params():,} params) to {output}")
    return 0


def cmd_schema(args) -> int:
    from .schema import schema_json

    text = schema_json()
    if args.output:
        with open(args.output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {args.output}")
    else:
        sys.stdout.write(text)
    return 0


COMMANDS = {
    "validate": cmd_validate,
    "summary": cmd_summary,
    "build": cmd_build,
    "schema": cmd_schema,
}
