"""Object detection on generated shapes: specs/ssd_shapes.yaml trained from its own `train:`
section (64x64 shapes_boxes, 1,500 images) on the chosen backend, timed from the start of the run
to the written metrics, with COCO mAP@0.5 and mAP@[.5:.95] from pycocotools on the 300 test
images. The target (#16): mAP@0.5 >= 0.90 in under 10 minutes on 2 CPU cores.

    python bench/detection.py [--backend tensorflow|jax] [--out runs/bench] [--set key=value ...]

`--set` changes the spec's `train:` settings (e.g. `--set epochs=20`). Prints a Markdown row
for docs/benchmarks.md; run it alone on the machine.
"""

from __future__ import annotations

import os
import time

from training_run import ROOT, parse_training_args

TARGET_MAP50, TARGET_MINUTES = 0.90, 10.0


def main() -> int:
    args = parse_training_args(__doc__.splitlines()[0],
                               lambda parser: parser.add_argument("--set", nargs="*", default=[],
                                                                  help="train: settings, key=value (YAML values)"))
    import yaml

    from trainers import run_training

    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    start = time.perf_counter()
    folder, metrics = run_training(ROOT / "specs" / "ssd_shapes.yaml", train_overrides=overrides, out=args.out,
                                   verbose=0)
    minutes = (time.perf_counter() - start) / 60
    met = metrics["map50"] >= TARGET_MAP50 and minutes < TARGET_MINUTES
    print(f"run folder: {folder}")
    print("| backend | cores | mAP@0.5 | mAP@[.5:.95] | minutes | target (mAP@0.5 >= 0.90, < 10 min) |")
    print("|---|---|---|---|---|---|")
    print(f"| {args.backend} | {os.cpu_count()} | {metrics['map50']:.3f} | {metrics['map']:.3f} | {minutes:.1f} | "
          f"{'met' if met else 'not met'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
