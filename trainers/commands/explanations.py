"""The `explain` command: where a classifier run looks in image files (class activation maps,
Grad-CAM, Grad-CAM++). Registered into `builder.cli`'s command registry when the `trainers`
plugin loads."""

from __future__ import annotations

import json
import os
from pathlib import Path

from builder.cli import Command, common_options, register_command

from ..errors import DataError
from ..registries import EXPLANATION_METHODS


def _explain_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR", help="a classifier's run folder")
    parser.add_argument("images", nargs="+", metavar="IMAGE", help="image files")
    methods = sorted(EXPLANATION_METHODS)
    parser.add_argument("--method", choices=methods, default="gradcam", metavar="|".join(methods),
                        help="; ".join(f"{name}: {EXPLANATION_METHODS[name].description}" for name in methods)
                        + " (default gradcam)")
    parser.add_argument("--layer", metavar="NAME", help="the layer whose maps are weighed (default: the last one "
                                                        "with height and width on the way to the output)")
    parser.add_argument("--class", dest="class_index", type=int, metavar="K",
                        help="explain class K in every image (default: each image's predicted class)")
    parser.add_argument("-o", "--output", metavar="DIR", help="where the pictures and heatmaps go "
                                                              "(default RUN_DIR/explained)")
    common_options(parser, overrides=False)


def cmd_explain(args) -> int:
    import numpy as np

    from ..data.pipeline import Preprocessing, image_files_at_model_size, model_image_shape, normalized
    from ..run import plots
    from ..run.folder import read_run_record, require_run_for
    from ..run.loop import load_trained_model
    from ..supervised.explanations import explain

    for path in args.images:
        if not os.path.isfile(path):
            raise DataError(f"{path}: no such image file")
    config = read_run_record(args.run)["train"]
    require_run_for("explain", args.run, config, "explain shows where a classifier looks")
    model = load_trained_model(args.run)
    prep = Preprocessing.of(model_image_shape(model), config["data"])
    pixels = image_files_at_model_size(args.images, prep)
    result = explain(model, normalized(pixels, prep), args.method, args.layer, args.class_index)
    classes_file = Path(args.run) / "classes.json"
    names = json.loads(classes_file.read_text()) if classes_file.is_file() else []
    heatmaps = result.heatmaps(prep.image_shape[:2])
    folder = Path(args.output or os.path.join(args.run, "explained"))
    folder.mkdir(parents=True, exist_ok=True)
    titles = []
    for number, (path, heatmap, label, score) in enumerate(zip(args.images, heatmaps, result.classes,
                                                                result.scores())):
        name = names[label] if label < len(names) else str(label)
        titles.append(f"{name} {score:.2f}")
        stem = folder / f"{number:03d}_{Path(path).stem}"
        np.save(stem.with_suffix(".npy"), heatmap)
        plots.explanation(pixels[number], heatmap, f"{Path(path).name}: {name} {score:.3f} "
                                                   f"({result.method}, layer {result.layer})", stem.with_suffix(".png"))
        print(f"{path}: {name} {score:.3f}")
    if len(args.images) > 1:
        plots.explanation_grid(pixels, heatmaps, titles, folder / "explanations.png",
                               title=f"{result.method} at layer {result.layer}")
    print(f"{result.method} at layer {result.layer}: heatmaps (.npy, the model's input size, in [0, 1]) and "
          f"pictures in {folder}")
    return 0


register_command(Command(
    "explain", "where a classifier looks in image files (CAM, Grad-CAM, Grad-CAM++)",
    "For each image, the heatmap of the predicted class (or --class K) over one layer's maps (default: the last "
    "layer with height and width): the image, the heatmap and the two blended as a PNG, the heatmap as .npy, and a "
    "grid of them all for several images.", _explain_arguments, cmd_explain, 61, runs_of=("supervised",)))
