"""Quality of the digits DCGAN, trained from specs/dcgan_digits.yaml's own `train:` section.

    python bench/adversarial.py [--backend tensorflow|jax] [--out runs/bench] [--loss LOSS]

1,000 samples of the trained generator are judged by a LeNet-5 trained from specs/lenet5.yaml:
targets mean top probability >= 0.8, all 10 classes present, none above 25% of the samples.
Prints a Markdown table row for docs/benchmarks.md; exit status 1 if a target is missed.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]
SPECS = ROOT / "specs"


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0],
                               lambda parser: parser.add_argument("--loss", help="override train.adversarial.loss"))
    from trainers import run_training
    from trainers.run.loop import load_trained_model

    changes = {"adversarial.loss": args.loss} if args.loss else {}
    start = time.perf_counter()
    gan_run, _ = run_training(SPECS / "dcgan_digits.yaml", train_overrides=changes, out=args.out, verbose=0)
    gan_seconds = time.perf_counter() - start
    judge_run, judge_metrics = run_training(SPECS / "lenet5.yaml", out=args.out, verbose=0)

    generator = load_trained_model(gan_run)
    noise = np.random.default_rng(2026).standard_normal((1000, int(generator.inputs[0].shape[-1]))).astype("float32")
    samples = (np.clip(generator.predict(noise, verbose=0), -1.0, 1.0) + 1.0) / 2.0  # tanh range -> pixels
    probabilities = load_trained_model(judge_run).predict(samples, verbose=0)
    mean_top = float(probabilities.max(axis=-1).mean())
    shares = np.bincount(probabilities.argmax(axis=-1), minlength=10) / len(samples)
    ok = mean_top >= 0.8 and (shares > 0).all() and shares.max() <= 0.25
    print(f"dcgan_digits ({args.backend}, loss {args.loss or 'from the spec'}): {gan_seconds / 60:.1f} min; "
          f"judge LeNet-5 test accuracy {judge_metrics['test_accuracy']:.4f}; 1,000 samples: mean top probability "
          f"{mean_top:.3f}, classes present {int((shares > 0).sum())}, largest class share {shares.max():.3f}; "
          f"run folder {gan_run}")
    print("\n| backend | training time | mean top probability (>= 0.8) | classes present (10) "
          "| largest class share (<= 0.25) | shares by class 0-9 | met |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.backend} | {gan_seconds / 60:.1f} min | {mean_top:.3f} | {int((shares > 0).sum())} | "
          f"{shares.max():.3f} | {' '.join(f'{s:.2f}' for s in shares)} | {'yes' if ok else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
