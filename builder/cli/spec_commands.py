"""The commands over specs (validate, summary, build, schema, reference, compare, plot) and `devices`.

Keras is imported only by the commands that build, so `validate` and `--help` never load
TensorFlow or JAX.
"""

from __future__ import annotations

import json
import os
import sys

from ..errors import SpecError
from .command_registry import (
    BACKENDS,
    Command,
    UsageError,
    common_options,
    no_expect_option,
    parse_overrides,
    register_command,
)


def _spec_argument(parser) -> None:
    parser.add_argument("spec", metavar="SPEC", help="a spec file, or the name of a zoo spec (e.g. resnet50)")


def _validate_arguments(parser) -> None:
    parser.add_argument("specs", nargs="+", metavar="SPEC")
    common_options(parser)


def cmd_validate(args) -> int:
    from .. import load_spec

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
        waiting, choices = spec.shape_dependent_arguments(), spec.shape_dependent_choices()
        later = (f"; {waiting} argument{'s' if waiting > 1 else ''} read block input shapes, checked by "
                 "`summary` and `build`") if waiting else ""
        if choices:
            later += (f"; {choices} choice{'s' if choices > 1 else ''} (`when`, `shortcut`) read block input "
                      "shapes, decided when the model is built")
        print(f"{path}: ok ({nodes} nodes; model{'s' if len(spec.graphs) > 1 else ''} {models}{later})")
    return 1 if failures else 0


def _summary_arguments(parser) -> None:
    _spec_argument(parser)
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.add_argument("--model", help="in a multi-model spec, only this model")
    no_expect_option(parser)
    common_options(parser)


def cmd_summary(args) -> int:
    from .. import build_models, load_spec
    from ..analysis.summary import format_table, summarize

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    if args.model:
        spec.check_model(args.model)  # before the (slow) build
    models = build_models(spec, check_expect=not args.no_expect, initialize=False)  # shapes and counts only
    names = [args.model] if args.model else list(models)
    reports = [summarize(models[name], spec) for name in names]
    for name, report in zip(names, reports):
        figures = _training_figures(spec, name, models[name])
        if figures:
            report["training"] = figures
    if args.format == "json":
        print(json.dumps(reports[0] if len(reports) == 1 else {"models": reports}, indent=2))
    else:
        print("\n\n".join(format_table(report) for report in reports))
    return 0


def _training_figures(spec, name: str, model) -> dict:
    """What the spec's trainer makes of its main model (a detector's anchors), for `summary`."""
    from ..language.train_section import TRAINERS, resolve_train, trainer_of

    if name != spec.main or not spec.train or trainer_of(spec.train) not in TRAINERS:
        return {}
    config = resolve_train(spec.train, None, spec.file)
    return TRAINERS[config["trainer"]].summary_figures(model, config)


def _build_arguments(parser) -> None:
    _spec_argument(parser)
    parser.add_argument("-o", "--output", required=True, help="path of the .keras file to write")
    parser.add_argument("--model", help="in a multi-model spec, which model to save")
    no_expect_option(parser)
    common_options(parser)


def cmd_build(args) -> int:
    from .. import build_model, load_spec

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    output = args.output if args.output.endswith(".keras") else args.output + ".keras"
    model = build_model(spec, model=args.model, check_expect=not args.no_expect)
    model.save(output)
    print(f"saved {model.name} ({model.count_params():,} params) to {output}")
    return 0


def _schema_arguments(parser) -> None:
    parser.add_argument("-o", "--output", help="write to this file instead of printing")
    common_options(parser, overrides=False)


def cmd_schema(args) -> int:
    from ..language.schema import schema_json

    return _emit(schema_json(), args.output)


def cmd_reference(args) -> int:
    from ..language.reference import reference_markdown

    return _emit(reference_markdown(), args.output)


def _emit(text: str, output: str | None) -> int:
    if output:
        with open(output, "w", encoding="utf-8") as handle:
            handle.write(text)
        print(f"wrote {output}")
    else:
        sys.stdout.write(text)
    return 0


def _compare_arguments(parser) -> None:
    _spec_argument(parser)
    parser.add_argument("--backends", default="tensorflow,jax",
                        help="comma-separated, first is the reference (default: tensorflow,jax)")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=10, help="timed steps after the first (default 10)")
    parser.add_argument("--tolerance", type=float, default=1e-4, help="max abs output difference (default 1e-4)")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    common_options(parser)


def cmd_compare(args) -> int:
    import importlib.util

    from ..tools.compare import compare, format_report

    backends = [name.strip() for name in args.backends.split(",") if name.strip()]
    unknown = [name for name in backends if name not in BACKENDS]
    if unknown or not backends:
        raise UsageError(f"--backends takes names from {', '.join(BACKENDS)}; got '{args.backends}'")
    missing = [name for name in backends if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(f"backend not installed: {', '.join(missing)} (pip install {' '.join(missing)})")
    report = compare(args.spec, backends, parse_overrides(args.overrides), args.batch_size, args.steps,
                     args.tolerance)
    print(json.dumps(report, indent=2) if args.format == "json" else format_report(report))
    return 0


def _plot_arguments(parser) -> None:
    _spec_argument(parser)
    parser.add_argument("-o", "--output", required=True, help="image file to write (.png, .svg, .pdf)")
    parser.add_argument("--model", help="in a multi-model spec, which model to draw")
    common_options(parser)


def cmd_plot(args) -> int:
    import importlib.util
    import shutil

    if importlib.util.find_spec("pydot") is None or shutil.which("dot") is None:
        print("plot needs pydot and Graphviz: `pip install pydot` and Graphviz's `dot` "
              "(e.g. `apt-get install graphviz`); `summary` prints the same structure as text", file=sys.stderr)
        return 1
    from .. import build_model, load_spec

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    import keras

    model = build_model(spec, model=args.model, initialize=False)  # the graph only
    keras.utils.plot_model(model, to_file=args.output, show_shapes=True, show_layer_names=True,
                           show_layer_activations=True)
    print(f"drew {model.name} to {args.output}")
    return 0


def _devices_arguments(parser) -> None:
    common_options(parser, overrides=False)


def cmd_devices(args) -> int:
    from ..tools.devices import backend_devices, cpu_only_warning, library_versions, nvidia_gpu_present

    print(f"backend: {os.environ.get('KERAS_BACKEND', 'tensorflow')}")
    print("libraries: " + ", ".join(f"{name} {version}" for name, version in library_versions().items()))
    for backend in ("tensorflow", "jax"):
        print(f"{backend} devices: {', '.join(backend_devices(backend)) or 'not installed'}")
    print(f"NVIDIA GPU: {'present' if nvidia_gpu_present() else 'none found (no nvidia-smi, no /proc/driver/nvidia)'}")
    warning = cpu_only_warning()
    if warning:
        print(warning, file=sys.stderr)
    return 0


for _command in (
    Command("validate", "check specs without building (no TF/JAX import)",
            "Check spec files: YAML, schema, params, blocks, references, cycles, and the train: section "
            "against its trainer. Exit 0 if all are valid, 1 if not.", _validate_arguments, cmd_validate, 10),
    Command("summary", "build and list layers, shapes and parameter counts",
            "Build the spec and print every layer's output shape and parameter count, with trainable / "
            "non-trainable / total.", _summary_arguments, cmd_summary, 20),
    Command("build", "build and save as a .keras file",
            "Build the spec's main model (or --model) and save it; load it back with keras.saving.load_model "
            "after `import layers`.", _build_arguments, cmd_build, 30),
    Command("compare", "run one spec on several backends side by side",
            "Each backend in its own process, with identical weights (saved once, loaded by each) and identical "
            "inputs: parameters, build time, first (compiling) train step, median train and inference steps, "
            "images/s, peak memory, and output differences against the first backend. Multi-model specs are "
            "compared model by model.", _compare_arguments, cmd_compare, 70),
    Command("plot", "draw the architecture to an image file",
            "Draw the model with keras.utils.plot_model (needs pydot and graphviz).", _plot_arguments, cmd_plot, 80),
    Command("schema", "print the spec JSON Schema (or write it with -o)",
            "The JSON Schema of spec files, generated from the layer and trainer registries.",
            _schema_arguments, cmd_schema, 90),
    Command("reference", "print the spec reference page (or write it with -o)",
            "Every top-level key, construct, expression form, layer type and argument, initializer, "
            "regularizer and trainer setting, as Markdown generated from the registries (docs/reference.md).",
            _schema_arguments, cmd_reference, 95),
    Command("devices", "the backend, library versions and the devices each backend sees",
            "Print the Keras backend, the installed library versions and the devices TensorFlow and JAX see; warn "
            "when an NVIDIA GPU is present but the installed wheels are CPU-only.", _devices_arguments, cmd_devices,
            85),
):
    register_command(_command)
