"""The training commands of the CLI: train, evaluate, predict. Registered into
`builder.cli`'s command registry when the `trainers` plugin loads; Keras is imported only
when one of them runs."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from builder.cli import (
    ANY_RUN,
    Command,
    UsageError,
    common_options,
    no_expect_option,
    parse_overrides,
    register_command,
)

from ..registries import DATASETS, TEST_TIME_AUGMENTATIONS


def data_forms() -> str:
    """The `--data` forms, from the dataset registry."""
    forms = [f"{name}:{entry.path.upper()}" if entry.path else name for name, entry in DATASETS.items()]
    return " | ".join(forms + ["a folder", "a .npz file"])


def parse_data(text: str) -> dict:
    """`--data` forms: a dataset name, `NAME:PATH` for a dataset that reads a folder or file,
    or a bare path (a folder: image_folder; a .npz file: npz)."""
    if text in DATASETS and not DATASETS[text].path:
        return {"dataset": text}
    name, sep, rest = text.partition(":")
    if sep and name in DATASETS and DATASETS[name].path:
        return {"dataset": name, "path": rest}
    path = Path(text)
    if path.suffix == ".npz":
        return {"dataset": "npz", "path": text}
    if path.is_dir():
        return {"dataset": "image_folder", "path": text}
    raise UsageError(f"--data {text}: expected one of {data_forms()}")


def train_setting_options(parser) -> None:
    """--epochs, --batch-size, --data and --train KEY=VALUE: the `train:` overrides of a command
    that trains (read back with `train_overrides`)."""
    parser.add_argument("--epochs", type=int, help="number of epochs")
    parser.add_argument("--batch-size", type=int, help="batch size")
    parser.add_argument("--data", help=data_forms())
    parser.add_argument("--train", dest="train_overrides", action="append", metavar="KEY=VALUE",
                        help="override a train field, e.g. --train optimizer.sgd.momentum=0.9")


def _train_arguments(parser) -> None:
    parser.add_argument("spec", metavar="SPEC", nargs="?",
                        help="a spec file or zoo spec name (omit with --resume)")
    train_setting_options(parser)
    parser.add_argument("--out", default="runs", help="parent of the run folder (default: runs)")
    parser.add_argument("--resume", metavar="RUN_DIR", help="continue an interrupted run from its last epoch")
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.add_argument("--mixed-precision", choices=("float32", "mixed_float16", "mixed_bfloat16", "auto"),
                        help="compute in 16 bits with float32 weights (auto: what the GPU supports)")
    parser.add_argument("--jit-compile", choices=("auto", "true", "false"), help="XLA-compile the train step")
    parser.add_argument("--steps-per-execution", type=int, help="batches per call into the backend")
    parser.add_argument("--devices", type=_devices, metavar="auto|N",
                        help="data parallel over N devices per process (auto: every local GPU); on a CPU-only "
                             "machine N virtual CPU devices, to test the distributed path. The batch size is global")
    group = parser.add_argument_group("several processes (JAX; each flag falls back to Keras's "
                                      "KERAS_DISTRIBUTION_* environment variable)")
    group.add_argument("--coordinator", metavar="HOST:PORT", help="process 0's address, the same for every process")
    group.add_argument("--num-processes", type=int, metavar="N", help="processes in the group")
    group.add_argument("--process-id", type=int, metavar="I", help="this process, 0 to N-1 (0 writes the run folder)")
    group.add_argument("--connect-timeout", type=int, metavar="S",
                       help="seconds to wait for the coordinator before giving up (default 60)")
    no_expect_option(parser)
    common_options(parser)


def _devices(text: str):
    if text == "auto":
        return text
    if text.isdigit() and int(text) >= 1:
        return int(text)
    raise argparse.ArgumentTypeError(f"expected auto or a whole number of devices (1 or more), not '{text}'")


def train_overrides(args) -> dict:
    """The dotted `train:` overrides a command's flags give (see `train_setting_options`)."""
    overrides = parse_overrides(args.train_overrides, "--train")
    jit = getattr(args, "jit_compile", None)
    flags = {"epochs": args.epochs, "batch_size": args.batch_size,
             "data": parse_data(args.data) if args.data else None,
             "performance.mixed_precision": getattr(args, "mixed_precision", None),
             "performance.jit_compile": {"true": True, "false": False}.get(jit, jit),
             "performance.steps_per_execution": getattr(args, "steps_per_execution", None),
             "distribution.data_parallel": getattr(args, "devices", None)}
    overrides.update({key: value for key, value in flags.items() if value is not None})
    return overrides


def cmd_train(args) -> int:
    if not args.spec and not args.resume:
        raise UsageError("train needs a SPEC (or --resume RUN_DIR)")
    overrides = train_overrides(args)
    if args.resume and (args.spec or args.overrides or overrides):
        raise UsageError("--resume continues a run exactly as it was planned; give no other settings")
    from ..run.distribution import Cluster
    from ..run.training import run_training

    cluster = Cluster.of(args.coordinator, args.num_processes, args.process_id, args.connect_timeout)
    folder, metrics = run_training(args.spec, parse_overrides(args.overrides), overrides, args.out,
                                   args.resume, verbose=0 if args.quiet else 1, cluster=cluster,
                                   check_expect=not args.no_expect)
    summary = ", ".join(f"{key} {value:.4f}" for key, value in metrics.items() if key != "test_examples")
    where = f"run folder: {folder}" if folder else f"process {cluster.process_id}; process 0 wrote the run folder"
    print(f"done: {summary} ({metrics.get('test_examples', 0)} test images); {where}")
    return 0


def _tta_option(parser, what: str) -> None:
    choices = sorted(TEST_TIME_AUGMENTATIONS)
    parser.add_argument("--tta", choices=choices, metavar="|".join(choices),
                        help=f"test-time augmentation: {what} averaged over views of each image ("
                             + "; ".join(f"{name}: {TEST_TIME_AUGMENTATIONS[name].description}" for name in choices)
                             + ")")


def _evaluate_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR")
    parser.add_argument("--data", help=f"evaluate on this data instead ({data_forms()})")
    _tta_option(parser, "the metrics without it beside the metrics with the probabilities")
    common_options(parser, overrides=False)


def cmd_evaluate(args) -> int:
    from ..run.folder import read_run_record

    config = dict(read_run_record(args.run)["train"])
    if args.data:
        config["data"] = parse_data(args.data)
    if args.tta:
        from ..after.test_time import evaluate_with_tta
        from ..run.folder import require_trainer
        from ..run.loop import load_trained_model

        require_trainer(args.run, config, "supervised", "evaluate --tta averages a classifier's probabilities")
        result = evaluate_with_tta(load_trained_model(args.run), config, args.tta)
    else:
        from ..run.training import evaluate_run

        result = evaluate_run(args.run, config)
    print(json.dumps(result, indent=2))
    return 0


def _predict_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--top", type=int, default=3, help="how many classes to show (default 3)")
    _tta_option(parser, "the probabilities")
    common_options(parser, overrides=False)


def cmd_predict(args) -> int:
    import numpy as np

    from ..after.test_time import predict_with_tta
    from ..run.folder import read_run_record, require_run_for
    from ..run.loop import load_trained_model

    config = read_run_record(args.run)["train"]
    require_run_for("predict", args.run, config, "predict lists the top classes of a classifier's run",
                    " (its pictures and model.keras are in the run folder)")
    model = load_trained_model(args.run)
    classes_file = Path(args.run) / "classes.json"
    names = json.loads(classes_file.read_text()) if classes_file.is_file() else None
    outputs = np.asarray(predict_with_tta(model, args.images, config["data"], args.tta))
    for path, probabilities in zip(args.images, outputs):
        best = np.argsort(probabilities)[::-1][:args.top]
        label = lambda i: names[i] if names and i < len(names) else str(i)  # noqa: E731
        print(f"{path}: " + ", ".join(f"{label(i)} {probabilities[i]:.3f}" for i in best))
    return 0


for _command in (
    Command("train", "train a spec (default: its `train:` section) into a run folder",
            "Train with the trainer named in the spec's `train:` section. Every train field can be overridden: "
            "--epochs, --batch-size, --data, or any field with --train key.path=value.",
            _train_arguments, cmd_train, 40, runs_of=ANY_RUN),  # --resume RUN_DIR
    Command("evaluate", "test metrics of a trained run",
            "Evaluate a run folder's model on the test split of its data (or of --data).",
            _evaluate_arguments, cmd_evaluate, 50, runs_of=ANY_RUN),
    Command("predict", "classify image files with a trained run",
            "Print the top classes of each image with a run folder's model.", _predict_arguments, cmd_predict, 60,
            runs_of=("supervised",)),
):
    register_command(_command)
