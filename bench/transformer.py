"""The Vision Transformer on the embedded digits, trained from `specs/vit.yaml`'s own `train:`
section (ViT-Ti's width and heads, 6 blocks, 4x4 patches of the 32x32 digits).

    python bench/transformer.py [--backend tensorflow|jax] [--out runs/bench]

Target: test accuracy >= 0.95 in under 10 minutes on 2 CPU cores. Prints a Markdown row for
docs/benchmarks.md (run once per backend); exit status 1 if a target is missed.
"""

from __future__ import annotations

import time
from pathlib import Path

from training_run import parse_training_args

ROOT = Path(__file__).resolve().parents[1]
SPEC = ROOT / "specs" / "vit.yaml"
TARGET_ACCURACY = 0.95
TARGET_MINUTES = 10.0


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0])
    import keras

    from builder import load_spec
    from trainers import run_training
    from trainers.run.loop import load_trained_model

    spec = load_spec(SPEC)
    settings = {**spec.params, **(spec.train.get("params") or {})}
    start = time.perf_counter()
    run, metrics = run_training(SPEC, out=args.out, verbose=0)
    minutes = (time.perf_counter() - start) / 60
    accuracy = metrics["test_accuracy"]
    ok = accuracy >= TARGET_ACCURACY and minutes < TARGET_MINUTES
    size = f"ViT-{settings['variant']} width, {settings['depth']} blocks, patch {settings['patch']}"
    params = load_trained_model(run).count_params()
    print(f"run folder: {run}")
    print("| backend | model | epochs | test accuracy | training minutes (2 CPU cores) | parameters | target met |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {keras.backend.backend()} | {size} | {spec.train['epochs']} | {accuracy:.4f} | {minutes:.1f} | "
          f"{params:,} | {'yes' if ok else 'NO'} |")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
