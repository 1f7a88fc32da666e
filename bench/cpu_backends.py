"""Why is JAX slower than TensorFlow on CPU, and does a setting fix it?

    python bench/cpu_backends.py [--steps 8] [--batch-size 32] [--size 64]

Times keras.applications.ResNet50 (weights=None, 10 classes) train steps under several backend
settings, each in its own process, and prints each median step as a ratio to TensorFlow without
XLA. The decisive row is TensorFlow *with* XLA (jit_compile=True): JAX always compiles with XLA,
so if TensorFlow+XLA is as slow as JAX, the cost is XLA:CPU's kernels, not JAX.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time

CONFIGS = [
    ("tensorflow, jit_compile=False (TensorFlow's kernels, oneDNN)", "tensorflow", "false", ""),
    ("tensorflow, jit_compile=True (XLA:CPU)", "tensorflow", "true", ""),
    ("jax (XLA:CPU)", "jax", "true", ""),
    ("jax, XLA_FLAGS=--xla_cpu_use_thunk_runtime=false", "jax", "true", "--xla_cpu_use_thunk_runtime=false"),
    ("jax, run_eagerly=True (op by op)", "jax", "eager", ""),
]


def worker(mode: str, steps: int, batch: int, size: int) -> float:
    import keras
    import numpy as np

    model = keras.applications.ResNet50(weights=None, input_shape=(size, size, 3), classes=10)
    options = {"run_eagerly": True} if mode == "eager" else {"jit_compile": mode == "true"}
    model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy", **options)
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    y = np.arange(batch) % 10
    model.train_on_batch(x, y)
    times = []
    for _ in range(steps):
        start = time.perf_counter()
        model.train_on_batch(x, y)
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("MS", worker(args.worker, args.steps, args.batch_size, args.size))
        return 0
    rows = []
    for title, backend, mode, flags in CONFIGS:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        if flags:
            env["XLA_FLAGS"] = flags
        steps = max(2, args.steps // 4) if mode == "eager" else args.steps
        command = [sys.executable, __file__, "--worker", mode, "--steps", str(steps),
                   "--batch-size", str(args.batch_size), "--size", str(args.size)]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [entry for entry in result.stdout.splitlines() if entry.startswith("MS ")]
        milliseconds = float(lines[0].split()[1]) if lines else float("nan")
        rows.append((title, milliseconds))
        print(f"{title}: {milliseconds:.0f} ms/step", flush=True)
    base = rows[0][1]
    print(f"\nResNet-50, {args.size}x{args.size}, batch {args.batch_size}, {os.cpu_count()} CPU cores, "
          "median train step:\n")
    print("| setting | ms/step | vs TensorFlow without XLA |\n|---|---|---|")
    for title, milliseconds in rows:
        print(f"| {title} | {milliseconds:.0f} | {milliseconds / base:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
