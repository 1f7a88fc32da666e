"""After training: ResNet-18's test accuracy on the digits without and with test-time augmentation,
a 3-member LeNet-5 ensemble against its best member, and for each export format the artifact's
size, its largest output difference from Keras and its single-image latency against Keras's.

    python bench/after_training.py [--out runs/bench] [--repeats 200]

Trains on TensorFlow (export converts through TensorFlow whatever backend trained the model; the
test-time and ensemble figures are the backend's own, so `--backend jax` prints those two only).
Prints Markdown tables for docs/benchmarks.md.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from training_run import ROOT, parse_training_args


def _repeats(parser) -> None:
    parser.add_argument("--repeats", type=int, default=200, help="timed single-image calls per runtime")


def median_seconds(run, image, repeats: int) -> float:
    for _ in range(10):
        run(image)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run(image)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0], _repeats)
    from trainers import run_training
    from trainers.after.ensemble import evaluate_ensemble, load_member
    from trainers.after.test_time import evaluate_with_tta
    from trainers.run.folder import read_run_record
    from trainers.run.loop import load_trained_model

    out = Path(args.out) / "after_training"
    resnet, _ = run_training(ROOT / "specs" / "resnet18.yaml", out=out, verbose=0)
    config, model = read_run_record(resnet)["train"], load_trained_model(resnet)
    print(f"ResNet-18 on digits ({args.backend}), its spec's train: section; run folder {resnet}\n")
    print("| test-time augmentation | views | test accuracy | against no augmentation |")
    print("|---|---|---|---|")
    plain = None
    for mode in ("flip", "crop5", "crop10"):
        result = evaluate_with_tta(model, config, mode)
        if plain is None:
            plain = result["plain"]["test_accuracy"]
            print(f"| none | 1 | {plain:.4f} | |")
        accuracy = result[mode]["test_accuracy"]
        print(f"| {mode} | {result[mode]['views']} | {accuracy:.4f} | {accuracy - plain:+.4f} |", flush=True)

    lenets = [run_training(ROOT / "specs" / "lenet5.yaml", train_overrides={"seed": seed}, out=out / f"seed{seed}",
                           verbose=0)[0] for seed in (0, 1, 2)]
    _, rows = evaluate_ensemble([load_member(folder) for folder in lenets])
    print("\n| LeNet-5 on digits | test accuracy | test log loss |")
    print("|---|---|---|")
    for row, label in zip(rows, ["seed 0", "seed 1", "seed 2", "ensemble of the 3"]):
        print(f"| {label} | {row['test_accuracy']:.4f} | {row['test_log_loss']:.4f} |")
    best = max(row["test_accuracy"] for row in rows[:-1])
    print(f"\nensemble against its best member: {rows[-1]['test_accuracy'] - best:+.4f} accuracy", flush=True)

    if args.backend != "tensorflow":
        return 0
    import numpy as np

    from trainers.after.export import check_inputs, export_run
    from trainers.registries import EXPORT_FORMATS

    image = check_inputs(model, config)[0][:1]
    keras_seconds = median_seconds(model.predict_on_batch, image, args.repeats)
    print(f"\nResNet-18 ({model.count_params():,} parameters), one 32x32 image; Keras predict_on_batch "
          f"{keras_seconds * 1e3:.2f} ms (median of {args.repeats})\n")
    print("| format | artifact size | largest difference from Keras | latency | against Keras |")
    print("|---|---|---|---|---|")
    for name in EXPORT_FORMATS:
        report = export_run(resnet, name, str(out / "export" / name))
        run = EXPORT_FORMATS.get(name).load(str(report.artifact))
        seconds = median_seconds(lambda batch, run=run: run(np.ascontiguousarray(batch)), image, args.repeats)
        print(f"| {name} | {report.size_bytes / 2**20:.1f} MiB | {report.max_difference:.1e} | "
              f"{seconds * 1e3:.2f} ms | {seconds / keras_seconds:.2f}x |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
