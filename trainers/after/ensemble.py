"""Ensembles of classifier runs: the members' probabilities averaged, as one Keras model.

The ensemble takes images as its first member takes them; a member trained at another size sees
them through a `Resizing` layer inside the ensemble, so the saved model is one ordinary
`.keras` file that `evaluate`, `predict` and `export` use like any run's model.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np

from ..data.pipeline import Preprocessing, StreamPlan, eval_stream, first_output, model_image_shape
from ..errors import DataError

# Data settings that change how images look, not which images are in a split.
NOT_SPLIT_KEYS = ("cache", "center_crop", "normalize", "image_size", "channels", "strict")


@dataclass
class Member:
    folder: Path
    config: dict
    model: object
    classes: list | None

    @property
    def image_shape(self) -> tuple:
        return model_image_shape(self.model)


def load_member(folder) -> Member:
    from ..run.folder import read_run_record, require_run_for
    from ..run.loop import load_trained_model

    folder = Path(folder)
    config = read_run_record(folder)["train"]
    require_run_for("ensemble", folder, config, "an ensemble averages classifiers' probabilities")
    classes_file = folder / "classes.json"
    classes = json.loads(classes_file.read_text()) if classes_file.is_file() else None
    return Member(folder, config, load_trained_model(folder), classes)


def check_members(members: list[Member], data_given: bool) -> None:
    """One line for the first thing that keeps the members from being averaged."""
    if len(members) < 2:
        raise DataError("an ensemble needs at least two runs")
    first = members[0]
    first_prep = Preprocessing.of(first.image_shape, first.config["data"])
    for member in members[1:]:
        outputs, first_outputs = _classes_of(member), _classes_of(first)
        if outputs != first_outputs:
            raise DataError(f"{member.folder} predicts {outputs} classes and {first.folder} {first_outputs}; "
                            "ensemble members must predict the same classes")
        if member.classes and first.classes and member.classes != first.classes:
            difference = next(i for i, (a, b) in enumerate(zip(member.classes, first.classes)) if a != b)
            raise DataError(f"{member.folder} names class {difference} '{member.classes[difference]}' where "
                            f"{first.folder} names it '{first.classes[difference]}'; ensemble members must "
                            "predict the same classes in the same order")
        if member.image_shape[-1] != first.image_shape[-1]:
            raise DataError(f"{member.folder} takes {member.image_shape[-1]}-channel images and {first.folder} "
                            f"{first.image_shape[-1]}; ensemble members must take the same channels")
        prep = Preprocessing.of(member.image_shape, member.config["data"])
        if (prep.mean, prep.std, prep.center_crop) != (first_prep.mean, first_prep.std, first_prep.center_crop):
            raise DataError(f"{member.folder} normalises or crops its images differently from {first.folder} "
                            "(data.normalize, data.center_crop); ensemble members must prepare images the same way")
        if not data_given and _split_of(member) != _split_of(first):
            raise DataError(f"{member.folder} was trained on other data or another split than {first.folder} "
                            f"({_split_of(member)} vs {_split_of(first)}): one member's test images may be "
                            "another's training images; pass --data to choose the test data")


def _classes_of(member: Member) -> int:
    return int(first_output(member.model.outputs).shape[-1])


def _test_config(members: list[Member], data_config: dict | None) -> dict:
    """The first member's train config, on `data_config` when one is given."""
    return {**members[0].config, **({"data": data_config} if data_config else {})}


def _split_of(member: Member) -> dict:
    return {key: value for key, value in member.config["data"].items() if key not in NOT_SPLIT_KEYS}


def ensemble_models(members: list[Member]):
    """(the ensemble: images -> averaged probabilities; the same with every member's
    probabilities as further outputs, for the report)."""
    height, width, channels = members[0].image_shape
    inputs = keras.Input((height, width, channels), name="images")
    probabilities = []
    for number, member in enumerate(members, 1):
        # A model of its own per member: members trained from one spec share layer and model names.
        renamed = keras.Model(member.model.inputs, first_output(member.model.outputs),
                              name=f"member{number}_{member.model.name}")
        images = inputs
        if member.image_shape[:2] != (height, width):
            images = keras.layers.Resizing(*member.image_shape[:2], name=f"member{number}_resize")(images)
        probabilities.append(renamed(images))
    averaged = keras.layers.Average(name="ensemble")(probabilities)
    return keras.Model(inputs, averaged, name="ensemble"), keras.Model(inputs, [averaged, *probabilities])


def evaluate_ensemble(members: list[Member], data_config: dict | None = None) -> tuple[object, list[dict]]:
    """(the ensemble model; a row per member, then the ensemble's: accuracy and log loss on the
    test split of `data_config`, default the first member's data)."""
    from sklearn.metrics import accuracy_score, log_loss

    from ..supervised.classification import label_finisher, prepare

    check_members(members, data_config is not None)
    config = _test_config(members, data_config)
    ensemble, report = ensemble_models(members)
    prepared = prepare(ensemble, config)
    if not len(prepared.splits.test):
        raise DataError("the data has no test split to evaluate the ensemble on")
    classes = _classes_of(members[0])
    stream = eval_stream(prepared.splits.test, prepared.preprocessing,
                         StreamPlan(label_finisher(classes, 1), config["batch_size"], config["seed"]))
    truth, outputs = [], []
    for images, labels in stream.as_numpy_iterator():  # one pass: the test images decoded once
        truth.append(np.argmax(labels, axis=-1))
        outputs.append([np.asarray(output) for output in report.predict_on_batch(images)])
    truth = np.concatenate(truth)
    averaged, *each = [np.concatenate(column) for column in zip(*outputs)]
    names = [str(member.folder) for member in members] + [f"ensemble of {len(members)}"]
    rows = []
    for name, probabilities in zip(names, [*each, averaged]):
        rows.append({"model": name, "test_accuracy": float(accuracy_score(truth, probabilities.argmax(-1))),
                     "test_log_loss": float(log_loss(truth, np.clip(probabilities, 1e-7, 1), labels=range(classes))),
                     "test_examples": int(len(truth))})
    return ensemble, rows


def save_ensemble(ensemble, members: list[Member], rows: list[dict], folder, data_config: dict | None) -> Path:
    """A folder that `evaluate`, `predict` and `export` take like a run folder: model.keras,
    classes.json, run.json naming the members (with the first member's `train:` section, which
    `evaluate` compiles the ensemble by), metrics.json."""
    from ..run.folder import atomic_write
    from ..run.saving import save_model

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = _test_config(members, data_config)
    save_model(ensemble, folder / "model.keras")
    if members[0].classes:
        atomic_write(folder / "classes.json", json.dumps(members[0].classes) + "\n")
    record = {"ensemble": [str(member.folder) for member in members], "train": config,
              "backend": keras.backend.backend()}
    atomic_write(folder / "run.json", json.dumps(record, indent=2, default=str) + "\n")
    metrics = {key: value for key, value in rows[-1].items() if key != "model"}
    atomic_write(folder / "metrics.json", json.dumps(metrics, indent=2) + "\n")
    return folder
