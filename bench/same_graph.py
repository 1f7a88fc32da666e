"""Zero overhead, shown without a stopwatch: the ops each model's inference compiles to.

    python bench/same_graph.py [--backends tensorflow,jax] [--size 64]

Timing ratios on a shared 2-core machine swing by several percent from run to run
(bench/overhead.py); the computation itself does not. For ResNet-50 and VGG-16 this compares the
histogram of operations in the traced inference function of the spec-built model and of
keras.applications': StableHLO ops under JAX, TensorFlow graph ops (variable reads and constants
aside) under TensorFlow.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import re
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def op_histogram(model, x) -> collections.Counter:
    import keras

    if keras.backend.backend() == "jax":
        import jax

        text = jax.jit(lambda inputs: model(inputs, training=False)).lower(x).as_text()
        return collections.Counter(re.findall(r"stablehlo\.([a-z_]+)", text))
    import tensorflow as tf

    function = tf.function(lambda inputs: model(inputs, training=False))
    graph = function.get_concrete_function(tf.TensorSpec(x.shape, tf.float32)).graph
    bookkeeping = {"ReadVariableOp", "Const", "NoOp", "Identity", "Placeholder"}
    return collections.Counter(op.type for op in graph.get_operations() if op.type not in bookkeeping)


def worker(size: int) -> dict:
    import keras
    import numpy as np

    sys.path.insert(0, str(ROOT))
    import builder

    x = np.zeros((2, size, size, 3), "float32")
    references = {"resnet50": keras.applications.ResNet50, "vgg16": keras.applications.VGG16}
    out = {}
    for spec, reference_class in references.items():
        theirs = op_histogram(reference_class(weights=None, input_shape=(size, size, 3)), x)
        ours = op_histogram(builder.build_model(ROOT / "specs" / f"{spec}.yaml", {"size": size}), x)
        out[spec] = {"ours": sum(ours.values()), "theirs": sum(theirs.values()),
                     "only_ours": dict(ours - theirs), "only_theirs": dict(theirs - ours)}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backends", default="tensorflow,jax")
    parser.add_argument("--size", type=int, default=64)
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print("RESULT " + json.dumps(worker(args.size)))
        return 0
    print("| backend | model | ops (spec-built) | ops (keras.applications) | only in spec-built | "
          "only in keras.applications |\n|---|---|---|---|---|---|")
    extra_work = False
    for backend in args.backends.split(","):
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
        result = subprocess.run([sys.executable, __file__, "--worker", "--size", str(args.size)],
                                capture_output=True, text=True, env=env)
        lines = [entry for entry in result.stdout.splitlines() if entry.startswith("RESULT ")]
        if not lines:
            print(f"| {backend} | failed: {result.stderr.strip().splitlines()[-1:]} |")
            return 1
        for model, row in json.loads(lines[0][len("RESULT "):]).items():
            extra_work |= bool(row["only_ours"])
            print(f"| {backend} | {model} | {row['ours']} | {row['theirs']} | {row['only_ours'] or '-'} | "
                  f"{row['only_theirs'] or '-'} |")
    print(f"\nThe spec-built models compile to {'MORE' if extra_work else 'no more'} operations than "
          "keras.applications'.")
    return 1 if extra_work else 0


if __name__ == "__main__":
    raise SystemExit(main())
