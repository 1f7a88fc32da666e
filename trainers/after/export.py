"""Export a run's model to a serving format with Keras's own `model.export`, then check the
artifact in its own runtime against the Keras model, and record the preprocessing beside it.

Export loads the model on TensorFlow whatever backend trained it: a `.keras` file is the same
on every backend, and Keras converts ONNX, LiteRT and OpenVINO from TensorFlow graphs (from
JAX it exports a SavedModel only).
"""

from __future__ import annotations

import json
import shutil
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..registries import EXPORT_FORMATS

TOLERANCE = 1e-4
CHECK_IMAGES = 16


@dataclass
class ExportReport:
    artifact: Path
    preprocessing: Path
    size_bytes: int
    max_difference: float
    checked_on: str  # which inputs the check ran on

    def line(self) -> str:
        return (f"wrote {self.artifact} ({self.size_bytes / 2**20:.2f} MiB) and {self.preprocessing.name}; "
                f"outputs within {self.max_difference:.1e} of the Keras model's on {self.checked_on}")


def artifact_paths(run: Path, format_name: str, output: str | None) -> tuple[Path, Path]:
    """(artifact, preprocessing record). `output` ending in the format's suffix names the
    artifact file itself; any other `output` is a folder for both; none: RUN_DIR/export/FORMAT."""
    artifact = EXPORT_FORMATS.get(format_name).artifact
    suffix = Path(artifact).suffix
    if output and suffix and Path(output).suffix == suffix:
        path = Path(output)
        return path, path.with_name(f"{path.stem}.preprocessing.json")
    folder = Path(output) if output else run / "export" / format_name
    return folder / artifact, folder / "preprocessing.json"


def serving_model(model):
    """The model as served: its main output only (auxiliary heads help training, not serving)."""
    import keras

    if len(model.inputs) != 1:
        raise DataError(f"export takes a model with one input; this one has {len(model.inputs)}")
    if len(model.outputs) == 1:
        return model
    return keras.Model(model.input, model.outputs[0], name=model.name)  # `input`: a tensor, as the export is called


def check_inputs(model, config: dict) -> tuple[np.ndarray, str]:
    """Inputs to compare the artifact with the Keras model on: the run's first test images, as
    the run prepares them; seeded random inputs where the model does not take images or the data
    cannot be read here."""
    from ..data.pipeline import Preprocessing, StreamPlan, eval_stream

    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        reason = "the model does not take images"
    elif "data" not in config:
        reason = "the model's data is unknown: it is a .keras file"
    else:
        try:
            from ..data.datasets import load_dataset

            splits = load_dataset(config["data"])
            split = splits.test if len(splits.test) else splits.train
            plan = StreamPlan(lambda batch: (batch["image"], None), CHECK_IMAGES)
            images = np.asarray(next(iter(eval_stream(split, Preprocessing.of(shape, config["data"]), plan))))
            return images, f"{len(images)} test images"
        except DataError as exc:
            reason = f"the run's data cannot be read here: {exc}"
    if None in shape:
        raise DataError(f"the model's input {shape} has a free size besides the batch; export needs it fixed")
    inputs = np.random.default_rng(0).random((CHECK_IMAGES, *shape)).astype("float32")
    return inputs, f"{CHECK_IMAGES} random inputs ({reason})"


def artifact_size(artifact: Path) -> int:
    """Bytes on disk: a folder's files, or the file with its companions (OpenVINO's .bin)."""
    if artifact.is_dir():
        return sum(file.stat().st_size for file in artifact.rglob("*") if file.is_file())
    return sum(file.stat().st_size for file in artifact.parent.glob(f"{artifact.stem}.*")
               if file.is_file() and file.stem == artifact.stem)


def preprocessing_record(model, config: dict, run: Path, format_name: str) -> dict:
    """What a serving stack does to an image before the artifact sees it, and what comes out."""
    from ..data.pipeline import Preprocessing

    shape = tuple(model.inputs[0].shape[1:])
    record = {"format": format_name, "run": str(run), "input": {"shape": ["batch", *shape], "dtype": "float32",
                                                                 "layout": "NHWC" if len(shape) == 3 else None}}
    if len(shape) == 3 and None not in shape:
        prep = Preprocessing.of(shape, config.get("data", {}))
        record["image"] = {
            "decode": "pixels as float32 in [0, 1] (value / 255 for 8-bit images)",
            "channels": {1: "grayscale (RGB converted by ITU-R 601-2 luma)", 3: "RGB (grayscale repeated)"}[shape[-1]]
            if shape[-1] in (1, 3) else shape[-1],
            "resize": {"height": shape[0], "width": shape[1], "method": "bilinear", "antialias": False},
            "center_crop": prep.center_crop,
            "normalize": {"mean": list(prep.mean), "std": list(prep.std)} if prep.mean else None,
        }
    classes_file = run / "classes.json"
    if classes_file.is_file():
        record["output"] = {"kind": "class probabilities", "classes": json.loads(classes_file.read_text())}
    return record


def export_run(run, format_name: str, output: str | None = None) -> ExportReport:
    """Export `run`'s model (a run folder or an ensemble folder) as `format_name`, check it,
    and record its preprocessing."""
    import keras

    from ..run.folder import atomic_write, read_run_record
    from ..run.loop import load_trained_model

    if keras.backend.backend() != "tensorflow":
        raise DataError("export converts through TensorFlow; run it as its own command (python -m builder "
                        "export ...), which loads the model on TensorFlow whatever backend trained it")
    entry = EXPORT_FORMATS.get(format_name)
    run = Path(run)
    config = read_run_record(run)["train"] if run.is_dir() else {}
    model = serving_model(load_trained_model(run))
    artifact, preprocessing = artifact_paths(run if run.is_dir() else run.parent, format_name, output)
    artifact.parent.mkdir(parents=True, exist_ok=True)
    if artifact.is_dir():
        shutil.rmtree(artifact)
    inputs, checked_on = check_inputs(model, config)
    expected = np.asarray(model.predict(inputs, verbose=0))
    with warnings.catch_warnings():
        # tf2onnx probes NumPy for `np.object`, which NumPy 2 answers with a FutureWarning.
        warnings.filterwarnings("ignore", message=".*np.object.*", category=FutureWarning)
        model.export(str(artifact), format=entry.keras_format, verbose=False)
    outputs = np.asarray(entry.load(str(artifact))(inputs))
    if outputs.shape != expected.shape:
        raise DataError(f"{artifact}: the {format_name} artifact gives outputs of shape {outputs.shape}, the Keras "
                        f"model {expected.shape}; it is kept for inspection")
    difference = float(np.max(np.abs(outputs - expected))) if expected.size else 0.0
    if not difference <= TOLERANCE:
        raise DataError(f"{artifact}: the {format_name} artifact's outputs differ from the Keras model's by "
                        f"{difference:.2e} on {checked_on} (more than {TOLERANCE:g}); it is kept for inspection")
    atomic_write(preprocessing, json.dumps(preprocessing_record(model, config, run, format_name), indent=2) + "\n")
    return ExportReport(artifact, preprocessing, artifact_size(artifact), difference, checked_on)
