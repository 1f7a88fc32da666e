"""The commands of a metric-learning run: `embed` (images -> embeddings) and `identify` (the
nearest enrolled identity, or `unknown` beyond the run's distance threshold). Registered into
`builder.cli`'s command registry when the `trainers` plugin loads."""

from __future__ import annotations

import json
from pathlib import Path

from builder.cli import Command, common_options, register_command

from ..errors import DataError


def _metric_run(command: str, run: str):
    """The embedding model of a metric run folder and the run's metrics (its threshold)."""
    from ..run.folder import read_run_record, require_run_for
    from ..run.loop import load_trained_model

    require_run_for(command, run, read_run_record(run)["train"], f"{command} takes a metric run")
    metrics_file = Path(run) / "metrics.json"
    metrics = json.loads(metrics_file.read_text()) if metrics_file.is_file() else {}
    return load_trained_model(run), metrics


def _embed_files(model, paths):
    import numpy as np

    from ..data.pipeline import Preprocessing, image_file_inputs, model_image_shape

    batch = image_file_inputs(paths, Preprocessing.of(model_image_shape(model), {}))
    return np.asarray(model.predict(batch, verbose=0, batch_size=256))


def _embed_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("-o", "--output", default="embeddings.npy", help="the .npy file to write (N x dim)")
    common_options(parser, overrides=False)


def cmd_embed(args) -> int:
    import numpy as np

    model, _ = _metric_run("embed", args.run)
    embeddings = _embed_files(model, args.images)
    np.save(args.output, embeddings)
    print(f"wrote {embeddings.shape[0]} embeddings of {embeddings.shape[1]} values to {args.output}")
    return 0


def gallery_files(folder: Path) -> list[tuple[str, Path]]:
    """(identity, image file) pairs from a folder of one sub-folder per identity."""
    from ..data.image_files import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise DataError(f"{folder}: no such gallery folder")
    pairs = [(identity.name, image) for identity in sorted(p for p in folder.iterdir() if p.is_dir())
             for image in sorted(identity.iterdir()) if image.suffix.lower() in IMAGE_SUFFIXES]
    if not pairs:
        raise DataError(f"{folder} has no images: put each identity's images in a sub-folder of its name "
                        f"({folder}/<identity>/<image>; {', '.join(IMAGE_SUFFIXES)})")
    return pairs


def _identify_arguments(parser) -> None:
    parser.add_argument("run", metavar="RUN_DIR")
    parser.add_argument("images", nargs="+", metavar="IMAGE")
    parser.add_argument("--gallery", required=True, help="a folder of identities: <gallery>/<name>/<image>")
    parser.add_argument("--threshold", type=float, help="largest distance still accepted (default: the run's)")
    common_options(parser, overrides=False)


def cmd_identify(args) -> int:
    from sklearn.neighbors import NearestNeighbors

    model, metrics = _metric_run("identify", args.run)
    threshold = args.threshold if args.threshold is not None else metrics.get("threshold")
    if threshold is None:
        raise DataError(f"{args.run} records no distance threshold (metrics.json): pass --threshold")
    enrolled = gallery_files(Path(args.gallery))
    index = NearestNeighbors(n_neighbors=1).fit(_embed_files(model, [path for _, path in enrolled]))
    distances, nearest = index.kneighbors(_embed_files(model, args.images))
    for path, distance, row in zip(args.images, distances[:, 0], nearest[:, 0]):
        name = enrolled[row][0]
        if distance <= threshold:
            print(f"{path}: {name} (distance {distance:.3f})")
        else:
            print(f"{path}: unknown (nearest {name} at {distance:.3f}, threshold {threshold:.3f})")
    return 0


for _command in (
    Command("embed", "embeddings of image files with a metric-learning run",
            "Map each image to its embedding with a metric run's model and save them as one N x dim .npy array.",
            _embed_arguments, cmd_embed, 62, runs_of=("metric",)),
    Command("identify", "the nearest known identity of each image, or unknown",
            "Enrol a gallery (one sub-folder of images per identity) with a metric run's model, then answer, for "
            "each image, the nearest identity and its distance, or `unknown` beyond the run's distance threshold.",
            _identify_arguments, cmd_identify, 64, runs_of=("metric",)),
):
    register_command(_command)
