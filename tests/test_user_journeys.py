"""The product as people run it: for each trainer family, a tiny run trained with `python -m builder
train` (interrupted with Ctrl-C and resumed), then every command that takes such a run, each in a
fresh process reading what the earlier ones wrote, and the saved files loaded in a fresh interpreter
with the one import the docs name. Every step is a new process, so a class that only an earlier
test registered in the test process cannot hide a failure.

Which commands take which runs comes from the command registry (`Command.runs_of`): a command or a
built-in trainer without a journey fails `test_every_command_and_family_has_a_journey`."""

from __future__ import annotations

import csv
import importlib.util
import json
import os
import re
import signal
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from builder import load_spec
from builder.cli import COMMANDS, takes_runs_of
from builder.language.train_section import TRAINERS

from .conftest import BUILDER, PYTHON, SPECS

BACKEND = os.environ.get("KERAS_BACKEND", "tensorflow")
EPOCHS = 3  # enough that Ctrl-C after the first checkpoint lands before the run ends


@dataclass(frozen=True)
class Journey:
    spec: str
    trainer: str
    train: tuple = ()        # `--train` settings that keep the run tiny
    images: str = "digits"   # the image files its commands read: digits or shapes
    inputs: int = 1          # the model's inputs (a conditional model also takes the class)
    resumes_mid_epoch: bool = False  # checkpoints every few steps, so Ctrl-C lands inside an epoch


JOURNEYS = {
    "classifier": Journey("lenet5", "supervised", ("checkpoint_every_steps=4",), resumes_mid_epoch=True),
    "segmentation": Journey("unet_padded", "segmentation", ("data.count=96",), images="shapes"),
    "reconstruction": Journey("autoencoder", "reconstruction"),
    "vae": Journey("vae", "vae"),
    "conditional_vae": Journey("cvae", "vae", inputs=2),
    "adversarial": Journey("dcgan_digits", "adversarial"),
    "conditional_adversarial": Journey("cgan_digits", "adversarial", inputs=2),
    "metric": Journey("siamese", "metric"),
    "detection": Journey("ssd_shapes", "detection", ("data.count=96",), images="shapes"),
}


def builder(*arguments, cwd: Path, timeout: int = 600) -> subprocess.CompletedProcess:
    """`python -m builder ARGUMENTS` in a new process, as a user types it."""
    return subprocess.run([*BUILDER, *map(str, arguments)], capture_output=True, text=True,
                          cwd=cwd, env={**os.environ, "KERAS_BACKEND": BACKEND}, timeout=timeout)


def succeeded(result: subprocess.CompletedProcess, step: str) -> str:
    assert result.returncode == 0, f"{step}: exit {result.returncode}\n{result.stdout[-2000:]}\n{result.stderr[-3000:]}"
    return result.stdout


def refused(result: subprocess.CompletedProcess, step: str, message: str) -> None:
    """A one-line error, no traceback, saying `message`."""
    assert result.returncode == 1, f"{step}: exit {result.returncode}\n{result.stderr[-3000:]}"
    assert message in result.stderr and "Traceback" not in result.stderr, f"{step}: {result.stderr[-3000:]}"


@dataclass
class Trip:
    """One journey under way: its run folder and the files its commands read."""

    journey: Journey
    home: Path
    run: Path = None
    images: list = field(default_factory=list)
    metrics: dict = field(default_factory=dict)

    def spec_params(self) -> list[str]:
        overrides = load_spec(SPECS / f"{self.journey.spec}.yaml").test_overrides or {}
        return [f"--set={key}={value}" for key, value in overrides.items()]


def digit_images(folder: Path, per_class: int = 2) -> dict[int, list[Path]]:
    """Real handwritten digits (scikit-learn's, 8x8) as PNG files, by class."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    folder.mkdir(parents=True, exist_ok=True)
    files: dict[int, list[Path]] = {}
    for index, (image, label) in enumerate(zip(digits.images, digits.target)):
        if len(files.setdefault(int(label), [])) < per_class:
            path = folder / f"digit{label}_{index}.png"
            Image.fromarray((image * 255 / 16).astype("uint8")).save(path)
            files[int(label)].append(path)
    return files


def shape_images(folder: Path) -> list[Path]:
    """Two 64x64 pictures with filled shapes on a dark ground, as the shapes datasets draw them."""
    from PIL import Image, ImageDraw

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for number, box in enumerate(((8, 10, 40, 44), (20, 6, 58, 30))):
        image = Image.new("RGB", (64, 64), (20, 20, 30))
        ImageDraw.Draw(image).rectangle(box, fill=(220, 80, 60))
        paths.append(folder / f"shapes{number}.png")
        image.save(paths[-1])
    return paths


# -- train, Ctrl-C, train --resume ------------------------------------------------------------------

def _state(out: Path) -> tuple[Path, dict] | None:
    for state in out.glob("*/*/checkpoints/state.json"):
        try:
            return state.parents[1], json.loads(state.read_text())
        except (json.JSONDecodeError, OSError):  # caught between its writes
            return None
    return None


def step_train(trip: Trip) -> None:
    """Train, press Ctrl-C once the first checkpoint is written (inside an epoch when the run
    checkpoints every few steps), then `train --resume`: the run completes all its epochs."""
    journey, out = trip.journey, trip.home / "runs"
    command = [*BUILDER, "train", str(SPECS / f"{journey.spec}.yaml"), *trip.spec_params(),
               "--epochs", str(EPOCHS), "--out", str(out), "--quiet",
               *(f"--train={setting}" for setting in journey.train)]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=trip.home,
                               env={**os.environ, "KERAS_BACKEND": BACKEND})
    deadline, state = time.monotonic() + 600, None
    while process.poll() is None and time.monotonic() < deadline:
        state = _state(out)
        if state and state[1]["epoch"] >= 1 and (state[1].get("step") or not journey.resumes_mid_epoch):
            process.send_signal(signal.SIGINT)
            break
        time.sleep(0.01)
    stdout, stderr = process.communicate(timeout=600)
    assert state is not None, f"train wrote no checkpoint\n{stdout[-2000:]}\n{stderr[-3000:]}"
    trip.run = state[0]
    assert process.returncode == 130, f"train after Ctrl-C: exit {process.returncode}\n{stderr[-3000:]}"
    assert f"python -m builder train --resume {trip.run}" in stderr, stderr[-3000:]
    assert not (trip.run / "model.keras").exists()

    resumed = succeeded(builder("train", "--resume", trip.run, cwd=trip.home), "train --resume")
    headers = re.findall(r"Epoch (\d+)/(\d+)", resumed)
    assert headers and {total for _, total in headers} == {str(EPOCHS)}, headers  # the run's epochs, not the call's
    history = csv.DictReader((trip.run / "history.csv").read_text().splitlines())
    assert [int(row["epoch"]) for row in history] == list(range(1, EPOCHS + 1))
    assert (trip.run / "model.keras").is_file()
    trip.metrics = json.loads((trip.run / "metrics.json").read_text())
    # what `tune` optimises for this family by default is a figure its runs report
    metric = TRAINERS[journey.trainer].load().search_metric
    columns = csv.DictReader((trip.run / "history.csv").read_text().splitlines()).fieldnames
    if journey.trainer != "adversarial":  # its figure needs a judge: tests/trainers/search/test_tune.py
        assert metric in [*columns, *trip.metrics], (metric, columns, trip.metrics)


# -- the commands that take a run ------------------------------------------------------------------

def step_evaluate(trip: Trip) -> None:
    """The test metrics again, from the saved model: those the run wrote (the VAE samples its codes)."""
    result = builder("evaluate", trip.run, cwd=trip.home)
    if trip.journey.trainer == "adversarial":
        return refused(result, "evaluate", "an adversarial run has no test metrics to evaluate")
    metrics = json.loads(succeeded(result, "evaluate"))
    assert metrics.keys() == trip.metrics.keys(), (metrics, trip.metrics)
    tolerance = 0.05 if trip.journey.trainer == "vae" else 1e-3
    for key, value in metrics.items():
        assert value == pytest.approx(trip.metrics[key], rel=tolerance, abs=1e-4), (key, value, trip.metrics)
    if trip.journey.trainer == "supervised":
        views = json.loads(succeeded(builder("evaluate", trip.run, "--tta", "flip", cwd=trip.home), "--tta"))
        assert views["plain"]["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=1e-6)
        assert views["flip"]["views"] == 2 and 0.0 <= views["flip"]["test_accuracy"] <= 1.0
    elif trip.journey.trainer == "reconstruction":
        refused(builder("evaluate", trip.run, "--tta", "flip", cwd=trip.home), "evaluate --tta",
                "evaluate --tta averages a classifier's probabilities")


def _predictions(stdout: str, images: list[Path]) -> list[list[tuple[str, float]]]:
    rows = []
    for line, path in zip(stdout.strip().splitlines(), images):
        name, _, classes = line.partition(": ")
        assert name == str(path), line
        rows.append([(label, float(p)) for label, p in (item.rsplit(" ", 1) for item in classes.split(", "))])
    assert len(rows) == len(images), stdout
    return rows


def step_predict(trip: Trip) -> None:
    rows = _predictions(succeeded(builder("predict", trip.run, *trip.images, cwd=trip.home), "predict"), trip.images)
    classes = json.loads((trip.run / "classes.json").read_text())
    for row in rows:
        assert len(row) == 3 and {label for label, _ in row} <= set(classes), row
        assert [p for _, p in row] == sorted((p for _, p in row), reverse=True) and sum(p for _, p in row) <= 1.001


def step_ensemble(trip: Trip) -> None:
    """Two copies of one run average to that run: the same accuracy, and a folder that evaluate,
    predict and a fresh interpreter take like a run's."""
    folder = trip.home / "ensemble"
    stdout = succeeded(builder("ensemble", trip.run, trip.run, "--save", folder, cwd=trip.home), "ensemble")
    assert "ensemble +0.0000 accuracy against its best member" in stdout, stdout
    evaluated = json.loads(succeeded(builder("evaluate", folder, cwd=trip.home), "evaluate ENSEMBLE"))
    assert evaluated["test_accuracy"] == pytest.approx(trip.metrics["test_accuracy"], abs=1e-6)
    assert len(_predictions(succeeded(builder("predict", folder, *trip.images, cwd=trip.home), "predict ENSEMBLE"),
                            trip.images)) == len(trip.images)
    assert _loaded_in_fresh_interpreter(folder / "model.keras", trip.home)["outputs"][0][1:] == [len(
        json.loads((trip.run / "classes.json").read_text()))]


def step_embed(trip: Trip) -> None:
    output = trip.home / "embeddings.npy"
    succeeded(builder("embed", trip.run, *trip.images, "-o", output, cwd=trip.home), "embed")
    embeddings = np.load(output)
    dim = (load_spec(SPECS / "siamese.yaml").test_overrides or {})["dim"]
    assert embeddings.shape == (len(trip.images), dim)
    np.testing.assert_allclose(np.linalg.norm(embeddings, axis=1), 1.0, rtol=1e-4)  # the L2-normalized tower


def step_identify(trip: Trip) -> None:
    """Enrol two identities; each enrolled image is itself (distance 0), and with a threshold of
    0 a new image is unknown."""
    gallery = trip.home / "gallery"
    for identity, images in (("ada", trip.images[:1]), ("grace", trip.images[2:3])):
        (gallery / identity).mkdir(parents=True)
        for image in images:
            (gallery / identity / image.name).write_bytes(image.read_bytes())
    stdout = succeeded(builder("identify", trip.run, trip.images[0], trip.images[2], "--gallery", gallery,
                               cwd=trip.home), "identify")
    assert stdout.splitlines() == [f"{trip.images[0]}: ada (distance 0.000)", f"{trip.images[2]}: grace (distance "
                                                                             "0.000)"], stdout
    stdout = succeeded(builder("identify", trip.run, trip.images[1], "--gallery", gallery, "--threshold", "0",
                               cwd=trip.home), "identify --threshold 0")
    assert stdout.startswith(f"{trip.images[1]}: unknown (nearest "), stdout


def step_sample(trip: Trip) -> None:
    array, grid = trip.home / "samples.npy", trip.home / "samples.png"
    conditional = ["--class", "3"] if trip.journey.inputs == 2 else []
    stdout = succeeded(builder("sample", trip.run, "-n", 4, "-o", grid, "--array", array, *conditional,
                               cwd=trip.home), "sample")
    images = np.load(array)
    assert images.shape[0] == 4 and images.shape[-1] == 1 and images.ndim == 4, stdout  # grey digits
    assert images.min() >= 0.0 and images.max() <= 1.0 and images.std() > 0 and grid.is_file()


def step_detect(trip: Trip) -> None:
    output = trip.home / "detected"
    succeeded(builder("detect", trip.run, *trip.images, "-o", output, "--min-score", "0", cwd=trip.home), "detect")
    results = json.loads((output / "detections.json").read_text())
    assert [result["image"] for result in results] == [str(path) for path in trip.images]
    for result in results:
        assert (result["width"], result["height"]) == (64, 64)
        for detection in result["detections"]:
            left, top, right, bottom = detection["box"]
            assert 0 <= left <= right <= 64 and 0 <= top <= bottom <= 64 and 0 <= detection["score"] <= 1
    assert len(list(output.glob("*.png"))) == len(trip.images)


def step_explain(trip: Trip) -> None:
    """Grad-CAM over LeNet-5's last pooling for each image (a heatmap file, a picture, a line),
    and CAM refused with the reason: LeNet-5 ends in dense layers, not global average pooling."""
    output = trip.home / "explained"
    lines = succeeded(builder("explain", trip.run, *trip.images, "-o", output, cwd=trip.home), "explain").splitlines()
    classes = json.loads((trip.run / "classes.json").read_text())
    for number, (path, line) in enumerate(zip(trip.images, lines)):
        name, score = line.removeprefix(f"{path}: ").split()
        assert name in classes and 0 <= float(score) <= 1, line
        heatmap = np.load(output / f"{number:03d}_{path.stem}.npy")
        assert heatmap.shape == (32, 32) and heatmap.min() >= 0 and heatmap.max() <= 1, heatmap.shape
        assert (output / f"{number:03d}_{path.stem}.png").stat().st_size > 5_000
    assert "gradcam at layer avgpool2" in lines[-1] and (output / "explanations.png").is_file()
    refused(builder("explain", trip.run, trip.images[0], "--method", "cam", cwd=trip.home), "explain --method cam",
            "cam needs a network that ends in global average pooling and one dense layer")
    assert (trip.run / "explanations.png").stat().st_size > 10_000  # drawn after training


def installed_export_formats() -> list[str]:
    """The export formats whose runtime this environment has (all of them with the `test` extra)."""
    from trainers.registries import EXPORT_FORMATS

    runtimes = {"saved_model": "tensorflow", "onnx": "onnxruntime", "litert": "ai_edge_litert",
                "openvino": "openvino"}
    return [name for name in EXPORT_FORMATS if importlib.util.find_spec(runtimes.get(name, name)) is not None]


def step_export(trip: Trip) -> None:
    formats = installed_export_formats()
    result = builder("export", trip.run, "--format", *formats, "-o", trip.home / "export", cwd=trip.home)
    if trip.journey.inputs > 1:
        return refused(result, "export", "export takes a model with one input; this one has 2")
    lines = succeeded(result, "export").splitlines()
    assert len(lines) == len(formats), lines
    for name, line in zip(formats, lines):
        assert (trip.home / "export" / name / "preprocessing.json").is_file(), line
        within = re.search(r"outputs within (\S+) of the Keras model's", line)
        assert within and float(within.group(1)) <= 1e-4, line


STEPS = {
    "train": step_train, "evaluate": step_evaluate, "predict": step_predict, "ensemble": step_ensemble,
    "embed": step_embed, "identify": step_identify, "sample": step_sample, "detect": step_detect,
    "export": step_export, "explain": step_explain,
}

# -- the saved files in a fresh interpreter ---------------------------------------------------------

# A fresh interpreter: first the model file with the import the docs name for it (`layers`; no
# trainer module is loaded then), then, where the run checkpoints to a .keras file, the checkpoint
# with the import the docs name for that (`trainers`).
FRESH_LOAD = """
import json, sys
import keras, layers
import numpy as np
model = keras.saving.load_model(sys.argv[1])
assert not [name for name in sys.modules if name.startswith("trainers")]
inputs = [np.random.default_rng(0).random((2, *x.shape[1:]), dtype="float32") for x in model.inputs]
outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
outputs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
report = {"compiled": model.compiled, "outputs": [list(np.shape(o)) for o in outputs]}
if len(sys.argv) > 2:
    import trainers
    checkpoint = trainers.load_model(sys.argv[2], training_state=True)
    report["checkpoint_compiled"] = checkpoint.compiled and checkpoint.optimizer is not None
    network = getattr(checkpoint, "network", checkpoint)
    report["same_weights"] = all(np.array_equal(a, b) for a, b in zip(model.get_weights(), network.get_weights()))
    report["same_weights"] &= len(model.get_weights()) == len(network.get_weights())
print(json.dumps(report))
"""


def _loaded_in_fresh_interpreter(path: Path, cwd: Path, checkpoint: Path | None = None) -> dict:
    arguments = [str(path)] + ([str(checkpoint)] if checkpoint else [])
    result = subprocess.run([*PYTHON, "-c", FRESH_LOAD, *arguments], capture_output=True, text=True,
                            cwd=cwd, env={**os.environ, "KERAS_BACKEND": BACKEND}, timeout=600)
    loaded = json.loads(succeeded(result, f"load {path.name} in a fresh interpreter").strip().splitlines()[-1])
    assert loaded["compiled"] is False  # a model file carries no training state
    return loaded


def step_load(trip: Trip) -> None:
    """model.keras loads with `import layers` alone; the last checkpoint with `import trainers`,
    compiled with its optimizer, and holds the same network weights (the final model is the last
    epoch's). An adversarial run checkpoints both networks and their optimizers as arrays."""
    checkpoint = trip.run / "checkpoints" / json.loads((trip.run / "checkpoints" / "state.json").read_text())[
        "checkpoint"]
    keras_checkpoint = checkpoint if checkpoint.suffix == ".keras" else None
    loaded = _loaded_in_fresh_interpreter(trip.run / "model.keras", trip.home, keras_checkpoint)
    assert all(len(shape) >= 2 and shape[0] == 2 for shape in loaded["outputs"]), loaded
    if keras_checkpoint:
        assert loaded["checkpoint_compiled"] and loaded["same_weights"], loaded


# -- the journeys ---------------------------------------------------------------------------------

def commands_taking(trainer: str) -> list[str]:
    return [name for name, command in COMMANDS.items() if takes_runs_of(command, trainer)]


def builtin_trainers() -> list[str]:
    return [name for name, entry in TRAINERS.items() if entry.load.__module__ == "trainers.builtin"]


def test_every_command_and_family_has_a_journey():
    families = {journey.trainer for journey in JOURNEYS.values()}
    untried = set(builtin_trainers()) - families
    assert not untried, f"trainers without a user journey: {untried}"
    taking_runs = [name for name, command in COMMANDS.items() if command.runs_of]
    missing = [f"{trainer} x {name}" for trainer in sorted(families) for name in taking_runs
               if takes_runs_of(COMMANDS.get(name), trainer) and name not in STEPS]
    assert not missing, f"commands that take these runs have no journey step: {missing}"
    assert {"evaluate", "train", "export", "sample", "embed", "identify", "detect", "ensemble", "predict",
            "explain"} <= set(taking_runs)


@pytest.mark.parametrize("name", JOURNEYS)
def test_user_journey(name, tmp_path):
    journey = JOURNEYS[name]
    trip = Trip(journey, tmp_path)
    if journey.images == "digits":
        trip.images = [path for files in digit_images(tmp_path / "images").values() for path in files][:4]
    else:
        trip.images = shape_images(tmp_path / "images")
    step_train(trip)
    for command in commands_taking(journey.trainer):
        if command != "train":
            STEPS[command](trip)
    step_load(trip)
