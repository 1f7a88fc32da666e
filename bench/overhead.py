"""Zero overhead: spec-built networks against keras.applications, as ratios measured in one run.

    python bench/overhead.py [--backends tensorflow,jax] [--size 64] [--batch-size 16] [--steps 10]

For ResNet-50 and VGG-16, per backend (each in its own process): build time, median train-step
and inference-step time of the spec-built model divided by keras.applications'. The two models
are timed alternately, step by step, in ABBA order, and compared by their fastest step (as `timeit` advises:
on a shared machine other work only ever adds time, so the minimum is the least disturbed
measurement of the same computation).
Targets: step ratios 1.00 +- 0.03, build ratio <= 1.2.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SPECS = ("resnet50", "vgg16")


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def _build_timed(make):
    start = time.perf_counter()
    model = make()
    return model, time.perf_counter() - start


def _pair(spec: str, reference_class, size: int, batch: int, steps: int) -> dict:
    import numpy as np

    import builder

    # Builds alternate three times and the fastest of each counts: the first build in a process
    # also pays one-off warm-up costs that belong to neither model.
    ref_builds, our_builds = [], []
    for _ in range(3):
        reference, seconds = _build_timed(lambda: reference_class(weights=None, input_shape=(size, size, 3)))
        ref_builds.append(seconds)
        ours, seconds = _build_timed(lambda: builder.build_model(ROOT / "specs" / f"{spec}.yaml", {"size": size}))
        our_builds.append(seconds)
    ref_build, our_build = min(ref_builds), min(our_builds)
    x = np.random.default_rng(0).normal(size=(batch, size, size, 3)).astype("float32")
    y = np.arange(batch) % 1000
    models = {"ref": reference, "our": ours}
    for model in models.values():
        model.compile(optimizer="sgd", loss="sparse_categorical_crossentropy")
        model.train_on_batch(x, y)
        model.predict_on_batch(x)
    times = {f"{who}_{what}": [] for who in models for what in ("train", "infer")}
    for step in range(steps):
        # ABBA order: whichever model runs second may find caches warm, so the order alternates
        for who, model in (list(models.items())[::-1] if step % 2 else models.items()):
            times[f"{who}_train"].append(_timed(lambda m=model: m.train_on_batch(x, y)))
            times[f"{who}_infer"].append(_timed(lambda m=model: m.predict_on_batch(x)))
    def ratio(what):  # fastest against fastest: on a shared machine noise only ever adds time
        return min(times[f"our_{what}"]) / min(times[f"ref_{what}"])

    return {"build_ratio": our_build / ref_build, "our_build_s": our_build, "ref_build_s": ref_build,
            "train_ratio": ratio("train"), "infer_ratio": ratio("infer"),
            "ref_train_ms": 1000 * statistics.median(times["ref_train"])}


def worker(size: int, batch: int, steps: int) -> dict:
    """Runs under one backend (set in the environment by `main`)."""
    sys.path.insert(0, str(ROOT))
    import keras

    references = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}
    out = {}
    for spec in SPECS:
        out[spec] = _pair(spec, references[spec], size, batch, steps)
        keras.backend.clear_session()
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.size, args.batch_size, args.steps)))
        return 0
    print("| backend | model | train-step ratio | inference-step ratio | build ratio | reference train step |")
    print("|---|---|---|---|---|---|")
    ok = True
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        command = [sys.executable, __file__, "--worker", "--size", str(args.size), "--batch-size",
                   str(args.batch_size), "--steps", str(args.steps)]
        result = subprocess.run(command, capture_output=True, text=True, env=env)
        lines = [entry for entry in result.stdout.splitlines() if entry.startswith("RESULT ")]
        if not lines:
            print(f"| {backend} | failed: {result.stderr.strip().splitlines()[-1:]} |")
            ok = False
            continue
        for model, row in json.loads(lines[0][len("RESULT "):]).items():
            print(f"| {backend} | {model} | {row['train_ratio']:.3f} | {row['infer_ratio']:.3f} | "
                  f"{row['build_ratio']:.2f} ({row['our_build_s']:.2f} s / {row['ref_build_s']:.2f} s) | "
                  f"{row['ref_train_ms']:.0f} ms |", flush=True)
            steps_ok = abs(row["train_ratio"] - 1) <= 0.03 and abs(row["infer_ratio"] - 1) <= 0.03
            ok &= steps_ok and row["build_ratio"] <= 1.2
    print(f"\n{args.size}x{args.size} inputs, batch {args.batch_size}, {args.steps} alternating steps, "
          f"{os.cpu_count()} CPU cores. Targets {'met' if ok else 'NOT met'}.")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
