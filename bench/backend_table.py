"""Every zoo spec's train step on TensorFlow and JAX, through `python -m builder compare`.

    python bench/backend_table.py [--batch-size 8] [--steps 5]

Each spec runs at its small test input (`test_overrides`), both backends on identical weights.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--steps", type=int, default=5)
    args = parser.parse_args()
    from builder import load_spec

    print("| spec | input | TF train step | JAX train step | JAX / TF | TF first step | JAX first step "
          "| max abs diff |\n|---|---|---|---|---|---|---|---|")
    for path in sorted((ROOT / "specs").glob("*.yaml")):
        overrides = load_spec(path).test_overrides
        command = [sys.executable, "-m", "builder", "compare", str(path), "--format", "json",
                   "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
        for key, value in overrides.items():
            command += ["--set", f"{key}={value}"]
        result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
        if result.returncode != 0:
            print(f"| {path.stem} | failed: {result.stderr.strip().splitlines()[-1:]} |")
            continue
        for model, rows in json.loads(result.stdout)["models"].items():
            tf, jax = rows["tensorflow"], rows["jax"]
            size = overrides.get("size", "default")
            print(f"| {model} | {size} | {tf['train_step_ms']:.1f} ms | {jax['train_step_ms']:.1f} ms | "
                  f"{jax['train_step_ms'] / tf['train_step_ms']:.2f} | {tf['first_train_step_s']:.1f} s | "
                  f"{jax['first_train_step_s']:.1f} s | {jax['max_abs_diff']:.1e} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
