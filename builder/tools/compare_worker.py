"""One backend's side of `compare` (run as `python -m builder.compare_worker JOB_JSON`).

KERAS_BACKEND is set by the parent before this process imports Keras.
"""

from __future__ import annotations

import json
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np


def _timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def main(job: dict) -> None:
    import keras

    import builder

    scratch = Path(job["scratch"])
    inputs = dict(np.load(scratch / "inputs.npz"))
    start = time.perf_counter()
    spec = builder.load_spec(job["spec"], job["overrides"])
    models = builder.build_models(spec)
    build_seconds = time.perf_counter() - start
    results = {}
    for name, model in models.items():
        weights = scratch / f"{name}.weights.h5"
        if job["save_weights"]:
            model.save_weights(weights)
        model.load_weights(weights)
        x = [inputs[f"{name}/{input_name}"] for input_name in spec.graphs[name].inputs]
        x = x[0] if len(x) == 1 else x
        outputs = model(x, training=False)
        outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        arrays = [keras.ops.convert_to_numpy(o) for o in outputs]
        np.savez(scratch / f"{job['backend']}-{name}-outputs.npz", **{f"o{i}": a for i, a in enumerate(arrays)})

        targets = [np.random.default_rng(1).normal(size=a.shape).astype("float32") for a in arrays]
        results[name] = {"params": int(model.count_params()), "build_s": build_seconds,
                         **_time_steps(model, x, targets[0] if len(targets) == 1 else targets, job["steps"]),
                         "peak_memory_mb": _peak_memory_mb(), "memory_kind": _memory_kind()}
    print("RESULT " + json.dumps(results), flush=True)


def _time_steps(model, x, y, steps: int) -> dict:
    """The first (compiling) train step, then median train and inference steps (MSE on fixed targets)."""
    import keras

    model.compile(optimizer=keras.optimizers.SGD(1e-6), loss="mse")
    first_train = _timed(lambda: model.train_on_batch(x, y))
    train_step = statistics.median(_timed(lambda: model.train_on_batch(x, y)) for _ in range(steps))
    model.predict_on_batch(x)  # compiles the inference function
    infer_step = statistics.median(_timed(lambda: model.predict_on_batch(x)) for _ in range(steps))
    batch = len(x[0] if isinstance(x, list) else x)
    return {"first_train_step_s": first_train, "train_step_ms": 1000 * train_step,
            "inference_step_ms": 1000 * infer_step, "images_per_s": batch / train_step, "batch_size": batch}


def _memory_kind() -> str:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        return "device" if jax.default_backend() == "gpu" else "host"
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        return "device" if tf.config.list_logical_devices("GPU") else "host"
    return "host"


def _peak_memory_mb() -> float:
    """Peak device memory on a GPU, else the process's peak resident host memory."""
    import keras

    if _memory_kind() == "device":
        if keras.backend.backend() == "jax":
            import jax

            stats = jax.devices()[0].memory_stats() or {}
            return stats.get("peak_bytes_in_use", 0) / 2**20
        import tensorflow as tf

        return tf.config.experimental.get_memory_info("GPU:0")["peak"] / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
