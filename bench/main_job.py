"""The main job's figures: ResNet-34 and LeNet-5 trained from their specs on the embedded digits.

    python bench/main_job.py [--backend tensorflow|jax] [--out runs/bench]

Prints wall-clock time, held-out test accuracy, and whether a second run with the same seed gives
the same result, as a Markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]
TARGETS = {"resnet34": 0.97, "lenet5": 0.98}


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0])
    from trainers import run_training

    rows = []
    for name, target in TARGETS.items():
        start = time.perf_counter()
        _, metrics = run_training(ROOT / "specs" / f"{name}.yaml", out=args.out, verbose=0)
        seconds = time.perf_counter() - start
        _, again = run_training(ROOT / "specs" / f"{name}.yaml", out=args.out, verbose=0)
        accuracy = metrics["test_accuracy"]
        rows.append((name, seconds, accuracy, target, again == metrics))
        print(f"{name}: {seconds:.0f} s, test accuracy {accuracy:.4f} (target >= {target}), "
              f"same seed same result: {again == metrics}", flush=True)
    print(f"\n| spec | backend | wall time ({os.cpu_count()} CPU cores) | test accuracy | target "
          "| same seed, same result |")
    print("|---|---|---|---|---|---|")
    for name, seconds, accuracy, target, same in rows:
        verdict = "yes" if same else "NO"
        print(f"| {name} | {args.backend} | {seconds / 60:.1f} min | {accuracy:.4f} | >= {target} | {verdict} |")
    return 0 if all(accuracy >= target and same for _, _, accuracy, target, same in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
