"""Supervised training on real data: learning, reproducibility, run folders, resume after SIGKILL."""

import csv
import json
import os
import signal
import subprocess
import time

import numpy as np
import pytest

from builder import build_model, load_spec
from builder.language.train_section import resolve_train
from trainers import run_training
from trainers.run.folder import with_later_defaults
from trainers.run.loop import freeze_layers
from trainers.supervised.classification import compile_model, datasets, prepare

from ...conftest import BUILDER, ROOT, SPECS, ZOO

CLASSIFIERS = [path for path in ZOO if (load_spec(path).train or {}).get("trainer", "supervised") == "supervised"]


def small_config(**changes):
    config = resolve_train({"data": {"dataset": "digits"}, "batch_size": 16, "epochs": 1})
    config.update(changes)
    return config


@pytest.mark.parametrize("path", CLASSIFIERS, ids=lambda p: p.stem)
def test_every_classifier_trains_one_step(path):
    import keras

    spec = load_spec(path)
    params = {**spec.test_overrides, "classes": 10}
    model = build_model(load_spec(path, params))
    config = small_config()
    prepared = prepare(model, config)
    train, _, _ = datasets(prepared, config)
    compile_model(model, config, steps_per_epoch=1)
    # One step: TensorFlow would spend a minute tracing a 500-layer graph that runs eagerly in
    # seconds, while JAX compiles the whole step in less time than it compiles each op eagerly.
    model.run_eagerly = keras.backend.backend() == "tensorflow"
    history = model.fit(train.dataset.take(1), epochs=1, verbose=0, shuffle=False)
    assert np.isfinite(history.history["loss"][0])
    keras.backend.clear_session()


def test_lenet5_learns_digits(tmp_path):
    folder, metrics = run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 12}, out=tmp_path, verbose=0)
    assert metrics["test_accuracy"] >= 0.90
    history = list(csv.DictReader((folder / "history.csv").read_text().splitlines()))
    assert float(history[-1]["loss"]) < float(history[0]["loss"])
    for name in ("run.json", "spec.yaml", "model.keras", "metrics.json", "history.csv", "classes.json",
                 "learning_curve.png", "confusion_matrix.png", "explanations.png"):
        assert (folder / name).is_file(), name
    assert any((folder / "tensorboard").rglob("*tfevents*"))
    record = json.loads((folder / "run.json").read_text())
    assert record["seed"] == 0 and record["backend"] and "keras" in record["versions"]
    assert record["train"]["epochs"] == 12 and record["params"]["classes"] == 10
    assert record["mixed_precision"] == "float32"  # the policy in force, which `auto` would have chosen
    assert sorted(p.name for p in (folder / "checkpoints").iterdir()) == ["epoch_012.keras", "state.json"]


def test_same_seed_same_result(tmp_path):
    runs = [run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 2}, out=tmp_path / str(i),
                         verbose=0) for i in range(2)]
    histories = [(folder / "history.csv").read_text() for folder, _ in runs]
    assert histories[0] == histories[1]
    assert runs[0][1] == runs[1][1]


def test_resume_after_sigkill(tmp_path):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    command = [*BUILDER, "train", str(SPECS / "lenet5.yaml"), "--epochs", "4",
               "--quiet", "--out", str(tmp_path)]
    log = open(tmp_path / "first.log", "wb")
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT)
    deadline = time.time() + 240
    state_files = []
    while time.time() < deadline and process.poll() is None:
        state_files = list(tmp_path.glob("lenet5/*/checkpoints/state.json"))
        if state_files and json.loads(state_files[0].read_text())["epoch"] >= 1:
            break
        time.sleep(0.2)
    alive = process.poll() is None
    process.send_signal(signal.SIGKILL)
    process.wait()
    log.close()
    assert alive, (tmp_path / "first.log").read_text()[-2000:]
    folder = state_files[0].parent.parent
    done = json.loads(state_files[0].read_text())["epoch"]
    assert 1 <= done < 4 and not (folder / "metrics.json").exists()

    result = subprocess.run([*BUILDER, "train", "--resume", str(folder), "--quiet"],
                            cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert f"resuming {folder} after epoch {done} of 4" in result.stdout
    epochs = [int(row["epoch"]) for row in csv.DictReader((folder / "history.csv").read_text().splitlines())]
    assert epochs == [1, 2, 3, 4]
    assert json.loads((folder / "metrics.json").read_text())["test_accuracy"] > 0.5


def test_a_recorded_train_section_gains_later_settings_and_keeps_its_own():
    recorded = resolve_train({"trainer": "vae", "optimizer": {"sgd": {"learning_rate": 0.1}},
                              "kl": {"weight": 0.5}, "performance": {"jit_compile": False}})
    del recorded["sampling"], recorded["checkpoint_every_steps"], recorded["performance"]["steps_per_execution"]
    completed = with_later_defaults(json.loads(json.dumps(recorded)))
    assert completed["sampling"] == {"from": "prior", "components": 10}
    assert completed["checkpoint_every_steps"] is None
    assert completed["performance"] == {"mixed_precision": "float32", "jit_compile": False, "steps_per_execution": 1}
    assert completed["optimizer"] == {"sgd": {"learning_rate": 0.1}}  # a one-of choice is not merged with adam
    assert completed["kl"] == {"weight": 0.5, "warmup_epochs": 0}
    assert {key: completed[key] for key in recorded} == {**recorded, "performance": completed["performance"]}
    completed["sampling"]["from"] = "fitted_mixture"  # the defaults are copies, not the settings' own
    assert resolve_train({"trainer": "vae"})["sampling"]["from"] == "prior"
    foreign = {"trainer": "somebody_elses", "epochs": 3}
    assert with_later_defaults(dict(foreign)) == foreign


def test_freeze_by_prefix_keeps_weights_fixed():
    model = build_model(SPECS / "lenet5.yaml")
    frozen = freeze_layers(model, ["conv"])
    assert frozen == ["conv1", "conv2"]
    before = [w.copy() for w in model.get_layer("conv1").get_weights()]
    head_before = model.get_layer("dense3").get_weights()[0].copy()
    config = small_config()
    prepared = prepare(model, config)
    train, _, _ = datasets(prepared, config)
    compile_model(model, config, 1)
    model.fit(train.dataset.take(2), verbose=0, shuffle=False)
    for a, b in zip(before, model.get_layer("conv1").get_weights()):
        np.testing.assert_array_equal(a, b)
    assert not np.array_equal(head_before, model.get_layer("dense3").get_weights()[0])


def test_augmentation_touches_training_batches_only():
    model = build_model(SPECS / "lenet5.yaml")
    config = small_config(augment=[{"translation": {"factor": 0.3}}, "flip"], batch_size=8)
    prepared = prepare(model, config)
    train, val, _ = datasets(prepared, config)
    from trainers.data.pipeline import prepare_images

    expected_val = prepare_images(prepared.splits.val.images[:8], prepared.image_shape)
    np.testing.assert_allclose(next(iter(val))[0].numpy(), expected_val, atol=1e-6)
    first_train = next(iter(train.dataset))[0].numpy()
    plain = prepare_images(prepared.splits.train.images, prepared.image_shape)
    assert not any(np.allclose(first_train[0], image, atol=1e-3) for image in plain)


def test_label_smoothing_class_weights_top5_and_sgd(tmp_path):
    folder, metrics = run_training(
        SPECS / "lenet5.yaml", out=tmp_path, verbose=0,
        train_overrides={"epochs": 1, "label_smoothing": 0.1, "class_weight": "balanced",
                         "metrics": ["accuracy", "top5_accuracy"], "optimizer.sgd.momentum": 0.9,
                         "optimizer.sgd.learning_rate": 0.05, "schedule": {"step": {"every_epochs": 1}},
                         "early_stopping": {"patience": 1}})
    assert metrics["test_top5_accuracy"] >= metrics["test_accuracy"]
    assert json.loads((folder / "run.json").read_text())["train"]["optimizer"] == {
        "sgd": {"momentum": 0.9, "learning_rate": 0.05}}


def test_schedules_and_warmup():
    from trainers.run.optimization import make_schedule

    cosine = make_schedule({"cosine": {"warmup_epochs": 1}}, 0.1, steps_per_epoch=10, epochs=3)
    values = [float(cosine(step)) for step in (0, 5, 10, 20, 29)]
    assert values[0] < values[1] < values[2] == pytest.approx(0.1)
    assert values[2] > values[3] > values[4]
    step = make_schedule({"step": {"every_epochs": 1, "factor": 0.5}}, 0.1, steps_per_epoch=10, epochs=3)
    assert [float(step(s)) for s in (0, 9, 10, 19, 20, 29)] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    exponential = make_schedule({"exponential": {"factor_per_epoch": 0.5}}, 0.1, 10, 3)
    assert float(exponential(10)) == pytest.approx(0.05)


def test_unknown_train_setting_is_reported():
    from builder import SpecError

    with pytest.raises(SpecError, match="the supervised trainer has no setting 'epoch'; did you mean 'epochs'"):
        resolve_train({}, {"epoch": 3})
    with pytest.raises(SpecError, match="train.optimizer.adam: unknown key 'lr'"):
        resolve_train({"optimizer": {"adam": {"lr": 0.1}}})


def test_cli_train_evaluate_predict(tmp_path, capsys):
    from PIL import Image

    from builder.cli import main

    assert main(["train", str(SPECS / "lenet5.yaml"), "--epochs", "3", "--quiet", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "done: test_accuracy" in out
    folder = next(tmp_path.glob("lenet5/*"))
    assert main(["evaluate", str(folder)]) == 0
    metrics = json.loads(capsys.readouterr().out)
    assert metrics == json.loads((folder / "metrics.json").read_text())

    from sklearn.datasets import load_digits

    digits = load_digits()
    paths = []
    for index in (0, 1):
        image = Image.fromarray((digits.images[index] * 255 / 16).astype("uint8")).resize((32, 32))
        paths.append(tmp_path / f"digit{digits.target[index]}.png")
        image.save(paths[-1])
    assert main(["predict", str(folder), *map(str, paths), "--top", "2"]) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[0].startswith(f"{paths[0]}: ")


@pytest.mark.parametrize("performance", [
    {"mixed_precision": "mixed_bfloat16"},
    {"jit_compile": True, "steps_per_execution": 4},
])
def test_performance_options(tmp_path, performance):
    import keras

    try:
        folder, metrics = run_training(SPECS / "lenet5.yaml", out=tmp_path, verbose=0,
                                       train_overrides={"epochs": 2, "performance": performance})
    finally:
        keras.mixed_precision.set_global_policy("float32")
    record = json.loads((folder / "run.json").read_text())
    assert record["train"]["performance"] == {"mixed_precision": "float32", "jit_compile": "auto",
                                              "steps_per_execution": 1, **performance}
    assert metrics["test_accuracy"] > 0.5
    if "mixed_precision" in performance:
        model = keras.saving.load_model(folder / "model.keras")
        assert model.get_layer("conv1").compute_dtype == "bfloat16"
        assert model.get_layer("conv1").kernel.dtype == "float32"
