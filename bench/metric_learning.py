"""Open-set identification on digits, trained from specs/siamese.yaml's own `train:` section
(classes 7, 8 and 9 held out of training).

    python bench/metric_learning.py [--backend tensorflow|jax] [--out runs/bench] [--train KEY=VALUE ...]

Targets: recall@1 on the held-out classes >= 0.95, verification ROC AUC on pairs of held-out
images >= 0.97, training under 5 minutes on 2 CPU cores. Prints a Markdown table row for
docs/benchmarks.md; exit status 1 if a target is missed.
"""

from __future__ import annotations

import time
from pathlib import Path

import yaml
from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0], lambda parser: parser.add_argument(
        "--train", action="append", default=[], metavar="KEY=VALUE", help="override a train setting"))
    from trainers import run_training

    changes = {key: yaml.safe_load(value) for key, _, value in (pair.partition("=") for pair in args.train)}
    start = time.perf_counter()
    folder, metrics = run_training(ROOT / "specs" / "siamese.yaml", train_overrides=changes, out=args.out, verbose=0)
    minutes = (time.perf_counter() - start) / 60
    ok = metrics["recall_at_1"] >= 0.95 and metrics["verification_auc"] >= 0.97 and minutes < 5
    print(f"siamese ({args.backend}{', ' + ' '.join(args.train) if args.train else ''}): {minutes:.1f} min; "
          f"run folder {folder}")
    print("\n| backend | training time (< 5 min) | recall@1 (>= 0.95) | verification AUC (>= 0.97) | EER "
          "| unknown rejected | known accepted | met |")
    print("|---|---|---|---|---|---|---|---|")
    print(f"| {args.backend} | {minutes:.1f} min | {metrics['recall_at_1']:.3f} | {metrics['verification_auc']:.3f} | "
          f"{metrics['eer']:.3f} | {metrics['unknown_rejection_rate']:.3f} | {metrics['known_acceptance_rate']:.3f} | "
          f"{'yes' if ok else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
