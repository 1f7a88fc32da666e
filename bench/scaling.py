"""Data-parallel scaling: ResNet-50 training images/s on 1, 2, ... N devices, and what the
distributed path costs on one device.

    python bench/scaling.py [--devices 2 4] [--size 64] [--batch-size 16] [--steps 24] [--rounds 8]

Everything goes through `trainers.run.distribution.place`, exactly as `train --devices N` does.
The overhead row compares, in one process, the zoo's ResNet-50 spec trained with no
distribution against the same network on the 1-device distributed path (`--devices 1`:
`keras.distribution.DataParallel` on JAX, `tf.distribute.OneDeviceStrategy` on TensorFlow); the
two alternate chunk by chunk (ABBA) for `--rounds` rounds, each chunk one `fit` call of `--steps`
steps, and the cost is the median over rounds of the ratio of a round's two adjacent chunks
(this 2-core VM runs spells at several speeds; adjacent chunks mostly share one). Target: within
3 %.

A chunk's images/s counts its steady steps: from the end of its first step to the end of its
last. What a `fit` call pays once is printed apart, per variant: its start (to the end of the
first step, less one steady step: making the input iterator, a distributed one under
TensorFlow's strategy) and its end (from the last step until `fit` returns, which on this VM now
and then takes seconds, whatever the variant). A run pays these once per `fit` call, not per
step. Use chunks of 24 steps or more: with 8, one round's ratio scatters by about 9 % on this
VM.

The scaling rows train on N devices, each N in its own process (a backend fixes its devices when
it starts), median of `--rounds`. Synthetic images come through a tf.data pipeline, so the input
takes the distributed path too; the global batch is the same on every row.

On a machine without accelerators the N > 1 rows are N virtual CPU devices sharing the same
cores: they exercise the distributed path and show its cost, not a speed-up.
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


def _trained(placement, size: int, batch: int):
    """ResNet-50 built and compiled on `placement`, its input stream, after two warm-up steps."""
    import keras
    import tensorflow as tf

    import builder
    from trainers.run.loop import jit_compile_setting

    with placement.scope():
        model = builder.build_model("resnet50", {"size": size, "classes": 100})
        model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                      loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=jit_compile_setting("auto"))
        images = tf.random.stateless_uniform((batch, size, size, 3), seed=(1, 2))
        labels = tf.random.stateless_uniform((batch,), seed=(3, 4), maxval=100, dtype=tf.int32)
        data = tf.data.Dataset.from_tensors((images, labels)).repeat().prefetch(2)
        model.fit(data, steps_per_epoch=2, epochs=1, verbose=0)
    return model, data


def _step_clock(ends: list):
    """A callback that appends to `ends` when each step of a `fit` call ends. It reads each
    step's loss back, so that a backend that dispatches steps asynchronously (JAX) is timed on
    finished steps."""
    import keras

    class StepClock(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            keras.ops.convert_to_numpy(logs["loss"])
            ends.append(time.perf_counter())

    return StepClock()


def _chunk(placement, model, data, batch: int, steps: int) -> dict:
    """One `fit` call of `steps` steps: steady images/s, and the call's start and end in ms."""
    ends: list[float] = []
    with placement.scope():
        start = time.perf_counter()
        model.fit(data, steps_per_epoch=steps, epochs=1, verbose=0, callbacks=[_step_clock(ends)])
        returned = time.perf_counter()
    first, last = ends[0], ends[-1]
    step = (last - first) / (steps - 1)
    return {"images_per_s": batch / step, "start_ms": 1000 * (first - start - step),
            "end_ms": 1000 * (returned - last)}


def _overhead_worker(size: int, batch: int, steps: int, rounds: int) -> dict:
    import keras

    from trainers.run.distribution import place

    placements = {"none": place(None), "1": place(1)}
    runs = {label: (placement, *_trained(placement, size, batch)) for label, placement in placements.items()}
    chunks: dict = {label: [] for label in runs}
    for round_index in range(rounds):
        for label in list(runs) if round_index % 2 == 0 else list(runs)[::-1]:
            placement, model, data = runs[label]
            chunks[label].append(_chunk(placement, model, data, batch, steps))
    speeds = {label: [chunk["images_per_s"] for chunk in values] for label, values in chunks.items()}
    return {"backend": keras.backend.backend(), "kind": placements["1"].kind,
            **{label: statistics.median(values) for label, values in speeds.items()},
            "ratio": statistics.median(one / none for one, none in zip(speeds["1"], speeds["none"])),
            "chunks": speeds,
            "start_ms": {label: statistics.median(c["start_ms"] for c in values) for label, values in chunks.items()},
            "end_ms": {label: [round(c["end_ms"]) for c in values] for label, values in chunks.items()}}


def _scaling_worker(devices: int, size: int, batch: int, steps: int) -> dict:
    from trainers.run.distribution import place

    placement = place(devices)
    placement.check_batch(batch)
    model, data = _trained(placement, size, batch)
    return {"replicas": placement.replicas, "kind": placement.kind,
            "images_per_s": _chunk(placement, model, data, batch, steps)["images_per_s"]}


def _run_worker(arguments: list[str]) -> dict:
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    result = subprocess.run([sys.executable, __file__, *arguments], capture_output=True, text=True, env=env,
                            check=False)
    if result.returncode:
        raise SystemExit(result.stderr[-2000:])
    return json.loads(result.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--devices", type=int, nargs="*", default=[2], help="device counts for the scaling rows")
    parser.add_argument("--size", type=int, default=64, help="image side (224 on a GPU)")
    parser.add_argument("--batch-size", type=int, default=16, help="global batch")
    parser.add_argument("--steps", type=int, default=24, help="steps per timed chunk")
    parser.add_argument("--rounds", type=int, default=8)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.steps < 2:
        parser.error("--steps: at least 2 (the first step of a chunk is timed apart)")
    sizes = ["--size", str(args.size), "--batch-size", str(args.batch_size), "--steps", str(args.steps)]
    if args.worker:
        sys.path.insert(0, str(ROOT))
        import trainers  # noqa: F401  (the trainers plugin, for the spec's train: section)

        row = (_overhead_worker(args.size, args.batch_size, args.steps, args.rounds) if args.worker == "overhead"
               else _scaling_worker(int(args.worker), args.size, args.batch_size, args.steps))
        print(json.dumps(row))
        return 0
    pair = _run_worker(["--worker", "overhead", "--rounds", str(args.rounds), *sizes])
    runs: dict = {devices: [] for devices in args.devices}
    for _ in range(args.rounds):
        for devices in args.devices:
            runs[devices].append(_run_worker(["--worker", str(devices), *sizes]))
    scaling = {devices: {**rows[0], "images_per_s": statistics.median(row["images_per_s"] for row in rows)}
               for devices, rows in runs.items()}
    baseline = pair["none"]
    print(f"ResNet-50 at {args.size}x{args.size}, global batch {args.batch_size}, {pair['backend']}, "
          f"median of {args.rounds} rounds of {args.steps} steps (steady steps)")
    print("| devices | images/s | vs no distribution |")
    print("|---|---:|---:|")
    print(f"| none (no distribution) | {baseline:,.1f} | 1.000 |")
    print(f"| 1 {pair['kind'].upper()} (distributed path) | {pair['1']:,.1f} | {pair['ratio']:.3f} (paired) |")
    for devices, row in scaling.items():
        speed = row["images_per_s"]
        print(f"| {devices} {row['kind'].upper()} | {speed:,.1f} | {speed / baseline:.3f} |")
    overhead = 1 - pair["ratio"]
    verdict = "met" if overhead <= 0.03 else "NOT met"
    for label, values in pair["chunks"].items():
        print(f"chunks, {label}: {', '.join(f'{value:.1f}' for value in values)} images/s; once per fit call: "
              f"start {pair['start_ms'][label]:.0f} ms (median), end {', '.join(map(str, pair['end_ms'][label]))} ms")
    print(f"\n1-device distributed path overhead: {100 * overhead:+.1f} % (target <= 3 %: {verdict})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
