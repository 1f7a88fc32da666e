"""Open-set identification on digits, trained from specs/siamese.yaml's own `train:` section
(classes 7, 8 and 9 held out of training).

    python bench/metric_learning.py [--backend tensorflow|jax] [--out runs/bench] [--train KEY=VALUE ...]
                                    [--closed-set]

Targets: recall@1 on the held-out classes >= 0.95, verification ROC AUC on pairs of held-out
images >= 0.97, training under 5 minutes on 2 CPU cores. Prints a Markdown table row for
docs/benchmarks.md; exit status 1 if a target is missed.

`--closed-set` is the reference row: the same spec and settings trained on all ten classes, then
measured exactly as the open-set run is (7, 8 and 9 enrolled from train/val, probed with their
test images). The difference between the two rows is what not having seen a class costs.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]


def add_arguments(parser) -> None:
    parser.add_argument("--train", action="append", default=[], metavar="KEY=VALUE", help="override a train setting")
    parser.add_argument("--closed-set", action="store_true",
                        help="train on every class, then measure the spec's held-out classes as if unseen")


def measured_as_held_out(folder, data: dict) -> dict:
    """The open-set measures of a run trained on every class, taken on `data`'s held-out classes."""
    from trainers.metric.embedding import open_set_metrics, prepare_data
    from trainers.run.loop import load_trained_model

    model = load_trained_model(folder)
    return open_set_metrics(model, prepare_data(model, {"data": data}))[0]


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0], add_arguments)
    from trainers import run_training

    spec = ROOT / "specs" / "siamese.yaml"
    changes = {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in args.train)}
    data = changes.get("data") or yaml.safe_load(spec.read_text())["train"]["data"]
    if args.closed_set:
        changes["data"] = {**data, "holdout_classes": []}
    start = time.perf_counter()
    folder, metrics = run_training(spec, train_overrides=changes, out=args.out, verbose=0)
    minutes = (time.perf_counter() - start) / 60
    if args.closed_set:
        metrics = measured_as_held_out(folder, data)
    ok = metrics["recall_at_1"] >= 0.95 and metrics["verification_auc"] >= 0.97 and minutes < 5
    settings = [*args.train, *(["closed set"] if args.closed_set else [])]
    print(f"siamese ({args.backend}{', ' + ' '.join(settings) if settings else ''}): {minutes:.1f} min; "
          f"run folder {folder}")
    print("\n| backend | training time (< 5 min) | recall@1 (>= 0.95) | verification AUC (>= 0.97) | EER "
          "| unknown rejected | known accepted | met |")
    print("|---|---|---|---|---|---|---|---|")
    label = f"{args.backend} (closed set)" if args.closed_set else args.backend
    verdict = "reference" if args.closed_set else "yes" if ok else "NO"
    print(f"| {label} | {minutes:.1f} min | {metrics['recall_at_1']:.3f} | {metrics['verification_auc']:.3f} | "
          f"{metrics['eer']:.3f} | {metrics['unknown_rejection_rate']:.3f} | {metrics['known_acceptance_rate']:.3f} | "
          f"{verdict} |")
    return 0 if ok or args.closed_set else 1


if __name__ == "__main__":
    raise SystemExit(main())
