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

    train = commands.add_parser("train", help="train a spec (default: its `train:` section) into a run folder",
                                description="Train with the trainer named in the spec's `train:` section. "
                                            "Every train field can be overridden: --epochs, --batch-size, "
                                            "--data, or any field with --train key.path=value.")
    train.add_argument("spec", metavar="SPEC", nargs="?", help="the spec (omit with --resume)")
    train.add_argument("--epochs", type=int, help="number of epochs")
    train.add_argument("--batch-size", type=int, help="batch size")
    train.add_argument("--data", help="digits | shapes | keras:mnist | npz:FILE | image_folder:DIR | a path")
    train.add_argument("--train", dest="train_overrides", action="append", metavar="KEY=VALUE",
                       help="override a train field, e.g. --train optimizer.sgd.momentum=0.9")
    train.add_argument("--out", default="runs", help="parent of the run folder (default: runs)")
    train.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    train.add_argument("--quiet", action="store_true", help="no progress bar")
    train.add_argument("--mixed-precision", choices=("float32", "mixed_float16", "mixed_bfloat16"),
                       help="compute in 16 bits with float32 weights")
    train.add_argument("--jit-compile", choices=("auto", "true", "false"), help="XLA-compile the train step")
    train.add_argument("--steps-per-execution", type=int, help="batches per call into the backend")
    _common(train)

    evaluate = commands.add_parser("evaluate", help="test metrics of a trained run",
                                   description="Evaluate a run folder's model on the test split of its data "
                                               "(or of --data).")
    evaluate.add_argument("run", metavar="RUN_DIR")
    evaluate.add_argument("--data", help="evaluate on this data instead (same forms as train --data)")
    _common(evaluate, overrides=False)

    predict = commands.add_parser("predict", help="classify image files with a trained run",
                                  description="Print the top classes of each image with a run folder's model.")
    predict.add_argument("run", metavar="RUN_DIR")
    predict.add_argument("images", nargs="+", metavar="IMAGE")
    predict.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    _common(predict, overrides=False)

    compare = commands.add_parser("compare", help="run one spec on several backends side by side",
                                  description="Each backend in its own process, with identical weights (saved "
                                              "once, loaded by each) and identical inputs: parameters, build time, "
                                              "first (compiling) train step, median train and inference steps, "
                                              "images/s, peak memory, and output differences against the first "
                                              "backend. Multi-model specs are compared model by model.")
    compare.add_argument("spec", metavar="SPEC")
    compare.add_argument("--backends", default="tensorflow,jax",
                         help="comma-separated, first is the reference (default: tensorflow,jax)")
    compare.add_argument("--batch-size", type=int, default=8)
    compare.add_argument("--steps", type=int, default=10, help="timed steps after the first (default 10)")
    compare.add_argument("--tolerance", type=float, default=1e-4, help="max abs output difference (default 1e-4)")
    compare.add_argument("--format", choices=("table", "json"), default="table")
    _common(compare)

    plot = commands.add_parser("plot", help="draw the architecture to an image file",
                               description="Draw the model with keras.utils.plot_model (needs pydot and "
                                           "graphviz).")
    plot.add_argument("spec", metavar="SPEC")
    plot.add_argument("-o", "--output", required=True, help="image file to write (.png, .svg, .pdf)")
    plot.add_argument("--model", help="in a multi-model spec, which model to draw")
    _common(plot)

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
        return _run(parser, args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except Exception as exc:  # the CLI never shows a raw traceback unless asked to
        if getattr(args, "debug", False):
            raise
        print(f"error: {type(exc).__name__}: {exc} (rerun with --debug for details)", file=sys.stderr)
        return 1


def _run(parser, args) -> int:
    from trainers.errors import DataError, TrainingFault

    try:
        set_backend(getattr(args, "backend", None))
        return COMMANDS[args.command](args)
    except UsageError as exc:
        parser.error(str(exc))  # exits 2
    except SpecError as exc:
        print(str(exc), file=sys.stderr)
        return 1
    except DataError as exc:
        print(f"data error: {exc}", file=sys.stderr)
        return 1
    except TrainingFault as exc:
        print(f"training stopped: {exc}", file=sys.stderr)
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
    if args.model:
        spec.check_model(args.model)  # before the (slow) build
    from .compile import build_models

    models = build_models(spec)
    names = [args.model] if args.model else list(models)
    reports = [summarize(models[name], spec) for name in names]
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


def parse_data(text: str) -> dict:
    """`--data` forms: a dataset name, `npz:FILE`, `image_folder:DIR`, or a path (folder or .npz)."""
    from pathlib import Path

    kind, sep, rest = text.partition(":")
    if sep and kind in ("npz", "image_folder"):
        return {"dataset": kind, "path": rest}
    if text in ("digits", "shapes") or text.startswith("keras:"):
        return {"dataset": text}
    path = Path(text)
    if path.suffix == ".npz":
        return {"dataset": "npz", "path": text}
    if path.is_dir():
        return {"dataset": "image_folder", "path": text}
    raise UsageError(f"--data {text}: expected digits, shapes, keras:NAME, npz:FILE, image_folder:DIR, "
                     "a folder or a .npz file")


def cmd_train(args) -> int:
    if not args.spec and not args.resume:
        raise UsageError("train needs a SPEC (or --resume RUN_DIR)")
    if args.resume and (args.spec or args.overrides or args.train_overrides or args.data or args.epochs
                        or args.batch_size or args.mixed_precision or args.jit_compile or args.steps_per_execution):
        raise UsageError("--resume continues a run exactly as it was planned; give no other settings")
    train_overrides = {}
    for key, value in parse_overrides(args.train_overrides).items():
        train_overrides[key] = value
    if args.epochs is not None:
        train_overrides["epochs"] = args.epochs
    if args.batch_size is not None:
        train_overrides["batch_size"] = args.batch_size
    if args.data:
        train_overrides["data"] = parse_data(args.data)
    if args.mixed_precision:
        train_overrides["performance.mixed_precision"] = args.mixed_precision
    if args.jit_compile:
        train_overrides["performance.jit_compile"] = {"true": True, "false": False}.get(args.jit_compile, "auto")
    if args.steps_per_execution:
        train_overrides["performance.steps_per_execution"] = args.steps_per_execution
    from trainers import run_training

    folder, metrics = run_training(args.spec, parse_overrides(args.overrides), train_overrides, args.out,
                                   args.resume, verbose=0 if args.quiet else 1)
    summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key != "test_examples")
    print(f"done: {summary} ({metrics.get('test_examples', 0)} test images); run folder: {folder}")
    return 0


def _load_run_model(folder):
    from trainers.loop import load_trained_model

    return load_trained_model(folder)


def cmd_evaluate(args) -> int:
    from trainers import TRAINERS
    from trainers.run_folder import read_run_record

    record = read_run_record(args.run)
    config = dict(record["train"])
    if args.data:
        config["data"] = parse_data(args.data)
    model = _load_run_model(args.run)
    print(json.dumps(TRAINERS[config["trainer"]]().evaluate_model(model, config), indent=2))
    return 0


def cmd_predict(args) -> int:
    from pathlib import Path

    import numpy as np

    from trainers.errors import DataError
    from trainers.pipeline import model_image_shape, prepare_images
    from trainers.run_folder import read_run_record

    trainer = read_run_record(args.run)["train"]["trainer"]
    if trainer != "supervised":
        raise DataError(f"predict lists the top classes of a classifier's run; {args.run} was trained by the "
                        f"{trainer} trainer (its pictures and model.keras are in the run folder)")
    model = _load_run_model(args.run)
    classes_file = Path(args.run) / "classes.json"
    names = json.loads(classes_file.read_text()) if classes_file.is_file() else None
    shape = model_image_shape(model)
    batch = np.concatenate([prepare_images(_read_image(path, shape[-1])[None], shape) for path in args.images])
    outputs = model.predict(batch, verbose=0)
    outputs = outputs[0] if isinstance(outputs, (list, tuple)) else outputs
    for path, probabilities in zip(args.images, outputs):
        best = np.argsort(probabilities)[::-1][:args.top]
        label = lambda i: names[i] if names and i < len(names) else str(i)  # noqa: E731
        print(f"{path}: " + ", ".join(f"{label(i)} {probabilities[i]:.3f}" for i in best))
    return 0


def _read_image(path, channels):
    import numpy as np
    from PIL import Image, UnidentifiedImageError

    from trainers.errors import DataError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype="float32") / 255.0
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return array[..., None] if array.ndim == 2 else array


def cmd_compare(args) -> int:
    import importlib.util

    from .compare import compare, format_report

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


def cmd_plot(args) -> int:
    import importlib.util
    import shutil

    if importlib.util.find_spec("pydot") is None or shutil.which("dot") is None:
        print("plot needs pydot and Graphviz: `pip install pydot` and Graphviz's `dot` "
              "(e.g. `apt-get install graphviz`); `summary` prints the same structure as text", file=sys.stderr)
        return 1
    from .spec import load_spec

    spec = load_spec(args.spec, parse_overrides(args.overrides))
    import keras

    from . import build_model

    model = build_model(spec, model=args.model)
    keras.utils.plot_model(model, to_file=args.output, show_shapes=True, show_layer_names=True,
                           show_layer_activations=True)
    print(f"drew {model.name} to {args.output}")
    return 0


COMMANDS = {
    "compare": cmd_compare,
    "plot": cmd_plot,
    "train": cmd_train,
    "evaluate": cmd_evaluate,
    "predict": cmd_predict,
    "validate": cmd_validate,
    "summary": cmd_summary,
    "build": cmd_build,
    "schema": cmd_schema,
}
