"""Input pipeline against the model: loader throughput must be >= 5x the train step's.

    python bench/input_pipeline.py [--spec specs/resnet34.yaml] [--backend tensorflow]

Measures, in one run, images/s of the training tf.data pipeline on the spec's default data
(resizing and augmentation included, the model not involved) and images/s of the model's train
steps on the same batches, and prints the ratio.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--spec", default=str(ROOT / "specs" / "resnet34.yaml"))
    parser.add_argument("--backend", default=os.environ.get("KERAS_BACKEND", "tensorflow"))
    parser.add_argument("--steps", type=int, default=15)
    args = parser.parse_args()
    os.environ["KERAS_BACKEND"] = args.backend
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    sys.path.insert(0, str(ROOT))
    from builder import build_model, load_spec
    from builder.language.train_section import resolve_train
    from trainers.supervised.classification import compile_model, datasets, prepare

    declared = load_spec(args.spec)
    config = resolve_train(declared.train)
    model = build_model(load_spec(args.spec, config["params"]))
    prepared = prepare(model, config)
    train = datasets(prepared, config)[0].dataset
    batches = list(train.take(args.steps + 1))  # the pipeline's first pass warms its caches

    start, images = time.perf_counter(), 0
    for _ in range(3):
        for x, _ in train.take(args.steps):
            images += int(x.shape[0])
    loader_rate = images / (time.perf_counter() - start)

    compile_model(model, config, steps_per_epoch=len(batches))
    model.train_on_batch(*batches[0])
    start, images = time.perf_counter(), 0
    for x, y in batches[1:]:
        model.train_on_batch(x, y)
        images += int(x.shape[0])
    model_rate = images / (time.perf_counter() - start)
    ratio = loader_rate / model_rate
    print(f"| spec | backend | loader images/s | train-step images/s | ratio |\n|---|---|---|---|---|\n"
          f"| {Path(args.spec).stem} | {args.backend} | {loader_rate:,.0f} | {model_rate:,.0f} | {ratio:.1f}x |")
    print(f"\nTarget >= 5x: {'met' if ratio >= 5 else 'NOT met'}.")
    return 0 if ratio >= 5 else 1


if __name__ == "__main__":
    raise SystemExit(main())
