"""Object detection and instance segmentation on generated shapes: a detector trained from its own
spec, timed, with COCO mAP and inference speed.

specs/ssd_shapes.yaml (single-shot), specs/faster_rcnn_shapes.yaml (two-stage) and
specs/faster_rcnn_fpn_shapes.yaml (two-stage on a feature pyramid) train on 64x64 shapes_boxes,
specs/mask_rcnn_shapes.yaml on 64x64 shapes_instances (1,500 images each, the same
split), each from its own `train:` section on the chosen backend, timed from the start of the run
to the written metrics; COCO's box mAP@0.5 and mAP@[.5:.95] (and for Mask R-CNN its mask mAP) from
pycocotools on the 300 test images; then inference images/s: the trained run's detector (network
and decoding, as `detect` runs it) on the test images in batches of 32, after one warm-up batch.
Targets, on 2 CPU cores: ssd_shapes mAP@0.5 >= 0.90 in under 10 minutes; faster_rcnn_shapes
(and faster_rcnn_fpn_shapes) mAP@0.5 >= 0.93 in under 15 minutes, with mAP@[.5:.95] above
ssd_shapes'; mask_rcnn_shapes mask mAP@0.5 >= 0.90 in under 15 minutes.

    python bench/detection.py [--spec ssd_shapes|faster_rcnn_shapes|faster_rcnn_fpn_shapes|mask_rcnn_shapes]
                              [--backend tensorflow|jax] [--out runs/bench] [--set key=value ...]

`--set` changes the spec's `train:` settings (e.g. `--set epochs=20`). Prints a Markdown row
for docs/benchmarks.md; run it alone on the machine.
"""

from __future__ import annotations

import os
import time

from training_run import ROOT, parse_training_args

# the measure each spec is held to, its target, and the minutes it must train in
TARGETS = {"ssd_shapes": ("map50", 0.90, 10.0), "faster_rcnn_shapes": ("map50", 0.93, 15.0),
           "faster_rcnn_fpn_shapes": ("map50", 0.93, 15.0), "mask_rcnn_shapes": ("mask_map50", 0.90, 15.0)}
BATCH = 32


def images_per_second(folder) -> float:
    """The run's detector on its test images: images per second after a warm-up batch."""
    import json

    from trainers.detection.inference import detector
    from trainers.detection.single_shot import datasets, prepare, wrap
    from trainers.run.loop import load_trained_model

    config = json.loads((folder / "run.json").read_text())["train"]
    trainer = wrap(load_trained_model(folder), config)
    finder = detector(trainer.network, config["detection"])
    _, _, test = datasets(prepare(trainer.network, config, trainer.classes), config, training=False)
    batches = [images for images, _ in test.as_numpy_iterator()]
    finder.predict_on_batch(batches[0])
    start = time.perf_counter()
    for images in batches:
        finder.predict_on_batch(images)
    return sum(len(images) for images in batches) / (time.perf_counter() - start)


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
    speed = images_per_second(folder)
    measure, target, target_minutes = TARGETS[args.spec]
    met = metrics[measure] >= target and minutes < target_minutes
    masks = (f"{metrics['mask_map50']:.3f} | {metrics['mask_map']:.3f}" if "mask_map" in metrics else "- | -")
    print(f"run folder: {folder}")
    print(f"| spec | backend | cores | box mAP@0.5 | box mAP@[.5:.95] | mask mAP@0.5 | mask mAP@[.5:.95] | "
          f"training minutes | inference images/s | target ({measure} >= {target:.2f}, < {target_minutes:g} min) |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    print(f"| {args.spec} | {args.backend} | {os.cpu_count()} | {metrics['map50']:.3f} | {metrics['map']:.3f} | "
          f"{masks} | {minutes:.1f} | {speed:.0f} | {'met' if met else 'not met'} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
