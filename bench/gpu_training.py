"""ResNet-50 training throughput and model FLOP utilization on the accelerator this process sees.

    KERAS_BACKEND=jax python bench/gpu_training.py [--batch-size 256] [--steps 50] [--policy mixed_bfloat16]

The zoo's ResNet-50 spec (224x224, 1000 classes) and keras.applications.ResNet50 train on the same
synthetic batch kept on the device (no input pipeline in the timing), one XLA-compiled step at a
time, SGD with momentum, under the given dtype policy. Reported per model: images/s from the
median of `--steps` timed steps (each synchronised on its loss; the two models alternate in ABBA
order) and MFU, the model FLOPs per
second over the card's dense 16-bit peak: 6 x forward MACs per image (2 FLOPs per
multiply-accumulate; the backward pass costs twice the forward), the MACs counted by `summary`.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Dense bf16/fp16 tensor-core peaks from the vendors' data sheets, in TFLOP/s.
PEAK_TFLOPS = {"H100": 989.4, "H200": 989.4, "A100": 312.0, "L4": 121.0, "A10": 125.0, "V100": 125.0}


def _peak(device_name: str, override: float | None) -> float | None:
    if override:
        return override
    return next((value for key, value in PEAK_TFLOPS.items() if key in device_name), None)


def _device_name() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        device = jax.devices()[0]
        return getattr(device, "device_kind", str(device))
    import tensorflow as tf

    gpus = tf.config.list_physical_devices("GPU")
    return tf.config.experimental.get_device_details(gpus[0]).get("device_name", "GPU") if gpus else "CPU"


def _compiled(model, x, y):
    """The model compiled for XLA with SGD and momentum, after two compiling/warm-up steps."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(0.01, momentum=0.9),
                  loss=keras.losses.SparseCategoricalCrossentropy(), jit_compile=True)
    for _ in range(2):
        float(model.train_on_batch(x, y))
    return model


def _step_seconds(model, x, y) -> float:
    start = time.perf_counter()
    float(model.train_on_batch(x, y))  # the float() waits for the step to finish
    return time.perf_counter() - start


def _median_steps(models: dict, x, y, steps: int) -> dict:
    """Median step time of each model, timed alternately in ABBA order so that clock and
    thermal drift fall on both alike."""
    times = {label: [] for label in models}
    labels = list(models)
    for i in range(steps):
        for label in labels if i % 2 == 0 else labels[::-1]:
            times[label].append(_step_seconds(models[label], x, y))
    return {label: statistics.median(values) for label, values in times.items()}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-size", type=int, default=256)
    parser.add_argument("--steps", type=int, default=50)
    parser.add_argument("--policy", default="mixed_bfloat16", choices=("float32", "mixed_bfloat16", "mixed_float16"))
    parser.add_argument("--peak-tflops", type=float, help="the card's dense 16-bit peak (default: by its name)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    import keras

    import builder
    import trainers  # noqa: F401  (registers the trainer the spec's train: section names, uninstalled too)
    from builder.analysis.model_figures import analyze

    keras.mixed_precision.set_global_policy(args.policy)
    name = _device_name()
    peak = _peak(name, args.peak_tflops)
    rng = keras.random.SeedGenerator(0)
    x = keras.random.uniform((args.batch_size, 224, 224, 3), seed=rng)
    y = keras.random.randint((args.batch_size,), 0, 1000, seed=rng)
    spec_model = builder.build_model("resnet50")
    macs = analyze(spec_model)["totals"]["macs"]
    models = {"resnet50 (spec)": spec_model,
              "keras.applications.ResNet50": keras.applications.ResNet50(weights=None)}
    medians = _median_steps({label: _compiled(model, x, y) for label, model in models.items()}, x, y, args.steps)
    rows = []
    for label, seconds in medians.items():
        images = args.batch_size / seconds
        tflops = images * 6 * macs / 1e12
        rows.append({"model": label, "device": name, "backend": keras.backend.backend(), "policy": args.policy,
                     "batch_size": args.batch_size, "step_ms": round(1000 * seconds, 2),
                     "images_per_s": round(images, 1), "model_tflops": round(tflops, 1),
                     "mfu": round(tflops / peak, 4) if peak else None, "peak_tflops": peak,
                     "forward_gmacs_per_image": round(macs / 1e9, 3)})
    for row in rows:
        print(json.dumps(row))
    print(f"\nratio spec / keras.applications step time: {rows[0]['step_ms'] / rows[1]['step_ms']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
