"""Object detection on generated shapes: a detector trained from its own spec, timed, with COCO mAP.

specs/ssd_shapes.yaml (single-shot) or specs/faster_rcnn_shapes.yaml (two-stage), trained from
its own `train:` section (64x64 shapes_boxes, 1,500 images, the same split for both) on the chosen
backend, timed from the start of the run to the written metrics, with COCO mAP@0.5 and
mAP@[.5:.95] from pycocotools on the 300 test images. Targets, on 2 CPU cores: ssd_shapes
mAP@0.5 >= 0.90 in under 10 minutes; faster_rcnn_shapes mAP@0.5 >= 0.93 in under 15 minutes,
with mAP@[.5:.95] above ssd_shapes'.

    python bench/detection.py [--spec ssd_shapes|faster_rcnn_shapes] [--backend tensorflow|jax]
                              [--out runs/bench] [--set key=value ...]

`--set` changes the spec's `train:` settings (e.g. `--set epochs=20`). Prints a Markdown row
for docs/benchmarks.md; run it alone on the machine.
"""

from __future__ import annotations

import os
import time

from training_run import ROOT, parse_training_args

TARGETS = {"ssd_shapes": (0.90, 10.0), "faster_rcnn_shapes": (0.93, 15.0)}  # mAP@0.5, minutes


def main() -> int:
    def extra(parser):
        parser.add_argument("--spec", choices=sorted(TARGETS), default="ssd_shapes")
        parser.add_argument("--set", nargs="*", default=[], help="train: settings, key=value (YAML values)")

    args = parse_training_args(__doc__.splitlines()[0], extra)
    import yaml

    from trainers import run_training

    overrides = {key: yaml.safe_load(value) for key, value in (item.split("=", 1) for item in args.set)}
    start = time.perf_counter()
    folder, metrics = run_training(ROOT / "specs" / f"{args.spec}.yaml", train_overrides=overrides, out=args.out,
                                   verbose=0)
    minutes = (time.perf_counter() - start) / 60
    target_map50, target_minutes = TARGETS[args.spec]
    met = metrics["map50"] >= target_map50 and minutes < target_minutes
    print(f"run folder: {folder}")
    print(f"| spec | backend | cores | mAP@0.5 | mAP@[.5:.95] | minutes | target (mAP@0.5 >= {target_map50:.2f}, "
          f"< {target_minutes:g} min) |")
    print("|---|---|---|---|---|---|---|")
    print(f"| {args.spec} | {args.backend} | {os.cpu_count()} | {metrics['map50']:.3f} | {metrics['map']:.3f} | "
          f"{minutes:.1f} | {'met' if met else 'not met'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
