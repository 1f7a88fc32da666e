"""The commands that take trained runs further: `ensemble` (average classifier runs), `export`
(a serving format, checked in its own runtime), `sample` (new images from a generative run) and
`detect` (boxes found in image files by a detection run).
Registered into `builder.cli`'s command registry when the `trainers` plugin loads; Keras is
imported only when one of them runs."""

from __future__ import annotations

import os
import sys

from builder.cli import ANY_RUN, Command, UsageError, common_options, register_command

from ..errors import DataError
from ..generative.latent_mixture import CODE_SOURCES
from ..registries import EXPORT_FORMATS
from .training import data_forms, parse_data


def _ensemble_arguments(parser) -> None:
    parser.add_argument("runs", nargs="+", metavar="RUN_DIR", help="classifier runs that predict the same classes")
    parser.add_argument("--data", help=f"test on this data instead of the first run's ({data_forms()})")
    parser.add_argument("--save", metavar="DIR", help="write the ensemble as one model.keras in DIR, a folder that "
                                                      "evaluate, predict and export take like a run folder")
    common_options(parser, overrides=False)


def cmd_ensemble(args) -> int:
    from ..after.ensemble import evaluate_ensemble, load_member, save_ensemble

    data = parse_data(args.data) if args.data else None
    members = [load_member(run) for run in args.runs]
    ensemble, rows = evaluate_ensemble(members, data)
    width = max(len(row["model"]) for row in rows)
    print(f"{'model':<{width}}  accuracy  log loss  (test images: {rows[-1]['test_examples']})")
    for row in rows:
        print(f"{row['model']:<{width}}  {row['test_accuracy']:8.4f}  {row['test_log_loss']:8.4f}")
    best = max(rows[:-1], key=lambda row: row["test_accuracy"])
    print(f"ensemble {rows[-1]['test_accuracy'] - best['test_accuracy']:+.4f} accuracy against its best member")
    if args.save:
        print(f"saved: {save_ensemble(ensemble, members, rows, args.save, data) / 'model.keras'}")
    return 0


def _export_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a run folder, an ensemble folder, or a .keras file")
    formats = sorted(EXPORT_FORMATS)
    parser.add_argument("--format", required=True, nargs="+", choices=formats, metavar="FORMAT",
                        help="one or more of: " + "; ".join(f"{name}: {EXPORT_FORMATS[name].description}"
                                                             for name in formats))
    parser.add_argument("-o", "--output", metavar="PATH",
                        help="the artifact file (with the format's suffix) or a folder for it and preprocessing.json "
                             "(default RUN_DIR/export/FORMAT); with several formats, a folder holding one folder "
                             "per format")
    parser.add_argument("--debug", action="store_true", help="show Python tracebacks")


def cmd_export(args) -> int:
    # Every format converts from a TensorFlow graph, so this command always loads the model on
    # TensorFlow (the .keras file is the same whatever backend trained it).
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = "tensorflow"
    from ..after.export import export_run

    if not os.path.exists(args.run):
        raise DataError(f"{args.run}: no such run folder or .keras file")
    formats = list(dict.fromkeys(args.format))
    if len(formats) > 1 and args.output and os.path.splitext(args.output)[1]:
        raise UsageError(f"-o {args.output}: with several formats, -o names a folder (one folder per format in it)")
    for name in formats:
        output = os.path.join(args.output, name) if args.output and len(formats) > 1 else args.output
        print(export_run(args.run, name, output).line())
    return 0


def _sample_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a vae or adversarial run folder")
    parser.add_argument("-n", "--count", type=int, default=64, help="how many images (default 64)")
    parser.add_argument("-o", "--output", metavar="PNG", help="the grid of samples (default RUN_DIR/sampled.png)")
    parser.add_argument("--array", metavar="NPY", help="also the images as an N x H x W x C array in [0, 1]")
    parser.add_argument("--class", dest="class_index", type=int, metavar="K",
                        help="the class to draw, for a class-conditional model")
    parser.add_argument("--from", dest="codes_from", choices=CODE_SOURCES,
                        help="a VAE's codes: from the prior N(0, I) or its fitted latent mixture (default: as the run "
                             "was trained to sample)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise (default 0)")
    common_options(parser, overrides=False)


def cmd_sample(args) -> int:
    import numpy as np

    from ..generative.sampling import sample_run, save_samples

    if args.count < 1:
        raise UsageError("-n must be at least 1")
    images = sample_run(args.run, args.count, args.seed, args.class_index, args.codes_from)
    output = args.output or os.path.join(args.run, "sampled.png")
    save_samples(images, output)
    print(f"{len(images)} samples of shape {images.shape[1:]}: {output}")
    if args.array:
        np.save(args.array, images)
        print(f"array: {args.array}")
    return 0


def _detect_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a detection run folder")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    parser.add_argument("-o", "--output", metavar="DIR",
                        help="where detections.json and the drawn images go (default RUN_DIR/detected)")
    parser.add_argument("--min-score", type=float, default=0.3,
                        help="report detections scoring at least this (default 0.3)")
    common_options(parser, overrides=False)


def cmd_detect(args) -> int:
    import json
    from pathlib import Path

    from ..data.instance_masks import to_mask
    from ..detection.inference import detect_files
    from ..run.plots import detected_image

    for path in args.images:
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such image file")
    results = detect_files(args.run, args.images, args.min_score)
    folder = Path(args.output or os.path.join(args.run, "detected"))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "detections.json").write_text(json.dumps(results, indent=2) + "\n")
    for number, result in enumerate(results):
        masks = [to_mask(d["mask"], result["height"], result["width"]) for d in result["detections"] if "mask" in d]
        detected_image(result, folder / f"{number:03d}_{Path(result['image']).stem}.png", masks or None)
        found = ", ".join(f"{d['class']} {d['score']:.2f}" for d in result["detections"]) or "nothing"
        print(f"{result['image']}: {found}")
    print(f"{'boxes and masks' if any('mask' in d for r in results for d in r['detections']) else 'boxes'}: "
          f"{folder / 'detections.json'}; drawn: {folder}")
    return 0


for _command in (
    Command("ensemble", "average the probabilities of classifier runs",
            "Evaluate classifier runs and their average side by side on the first run's test split (or --data); "
            "--save writes the ensemble as one model.", _ensemble_arguments, cmd_ensemble, 65,
            runs_of=("supervised",)),
    Command("export", "export a run's model for serving, checked in the format's own runtime",
            "Export with Keras's model.export, load the artifact in its own runtime and compare its outputs with "
            "the Keras model's on test images (within 1e-4); the image preprocessing is written beside it.",
            _export_arguments, cmd_export, 66, runs_of=ANY_RUN),
    Command("sample", "draw new images from a generative run (vae, adversarial)",
            "Feed noise to a run's generator (the VAE's decoder on the prior N(0, I), or the GAN's generator) and "
            "write a grid of the images (and, with --array, the images themselves in [0, 1]).",
            _sample_arguments, cmd_sample, 67, runs_of=("vae", "adversarial")),
    Command("detect", "find objects in image files with a detection run",
            "Run a detection run's model on image files: boxes (in each image's own pixels), classes and scores "
            "as detections.json, and each image with its boxes drawn.", _detect_arguments, cmd_detect, 68,
            runs_of=("detection",)),
):
    register_command(_command)
