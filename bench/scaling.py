"""Data-parallel scaling: ResNet-50 training images/s on 1, 2, ... N devices, and what the
distributed path costs on one device.

    python bench/scaling.py [--devices 1 2] [--size 64] [--batch-size 16] [--steps 8] [--rounds 3]

Each configuration trains the zoo's ResNet-50 spec in its own process (a backend fixes its
devices when it starts), through `trainers.distribution.place` exactly as `train --devices N`
does: `none` is no distribution at all, `N` the distributed path over N devices
(`keras.distribution.DataParallel` on JAX, `tf.distribute.MirroredStrategy` on TensorFlow).
Synthetic images come from a tf.data pipeline (so the input path is the distributed one);
the global batch is the same for every row. A run times `--steps` steps after two warm-up
steps; the configurations take turns for `--rounds` rounds and each keeps its best round.
Target: the 1-device distributed path within 3 % of no distribution.

On a machine without accelerators the N > 1 rows are N virtual CPU devices sharing the same
cores: they test the distributed path and show its overhead, not a speed-up.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _worker(devices: str, size: int, batch: int, steps: int) -> dict:
    sys.path.insert(0, str(ROOT))
    import keras
    import tensorflow as tf

    import builder
    import trainers  # noqa: F401  (the trainers plugin, for the spec's train: section)
    from trainers.distribution import place
    from trainers.loop import jit_compile_setting

    placement = place(None if devices == "none" else int(devices))
    placement.check_batch(batch)
    with placement.scope():
        model = builder.build_model("resnet50", {"size": size, "classes": 100})
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=jit_compile_setting("auto"))
        images = tf.random.stateless_uniform((batch, size, size, 3), seed=(1, 2))
        labels = tf.random.stateless_uniform((batch,), seed=(3, 4), maxval=100, dtype=tf.int32)
        data = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)  # compile and warm up
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0)
        seconds = time.perf_counter() - start
    return {"devices": devices, "replicas": placement.replicas, "kind": placement.kind,
            "backend": keras.backend.backend(), "images_per_s": batch * steps / seconds}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", nargs="+", default=["1", "2"], help="device counts to time beside 'none'")
    parser.add_argument("--size", type=int, default=64, help="image side (224 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch")
    parser.add_argument("--steps", type=int, default=8)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_worker(args.worker, args.size, args.batch_size, args.steps)))
        return 0
    configurations = ["none", *args.devices]
    best: dict = {}
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    for round_index in range(args.rounds):
        order = configurations if round_index % 2 == 0 else configurations[::-1]
        for devices in order:
            command = [sys.executable, __file__, "--worker", devices, "--size", str(args.size), "--batch-size",
                       str(args.batch_size), "--steps", str(args.steps)]
            result = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
            if result.returncode:
                print(result.stderr[-2000:], file=sys.stderr)
                return 1
            row = json.loads(result.stdout.strip().splitlines()[-1])
            if devices not in best or row["images_per_s"] > best[devices]["images_per_s"]:
                best[devices] = row
            print(f"round {round_index + 1}: {devices}: {row['images_per_s']:.1f} images/s", file=sys.stderr)
    baseline = best["none"]["images_per_s"]
    print(f"ResNet-50 at {args.size}x{args.size}, global batch {args.batch_size}, {best['none']['backend']}, "
          f"best of {args.rounds} rounds of {args.steps} steps")
    print("| devices | replicas | images/s | vs no distribution |")
    print("|---|---:|---:|---:|")
    for devices in configurations:
        row = best[devices]
        label = "none (no distribution)" if devices == "none" else f"{devices} {row['kind'].upper()}"
        print(f"| {label} | {row['replicas']} | {row['images_per_s']:,.1f} | {row['images_per_s'] / baseline:.3f} |")
    overhead = 1 - best["1"]["images_per_s"] / baseline if "1" in best else None
    if overhead is not None:
        verdict = "met" if overhead <= 0.03 else "NOT met"
        print(f"\n1-device distributed path overhead: {100 * overhead:+.1f} % (target <= 3 %: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
