"""`tune`: a study whose trials are ordinary run folders, on an Optuna storage that outlives the
command (continued by running it again, shared by processes running it together), with results
people can act on (results.csv, best.yaml, pictures) and failures recorded, not fatal."""

from __future__ import annotations

import csv
import itertools
import json
import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest

from builder import load_spec
from builder.cli import main
from trainers.search.objective import direction_of

from ...conftest import BUILDER, SPECS

TINY = """
name: tiny
params: {units: 8, kernel: 3}
input: [8, 8, 1]
expect: {params: 1290}
layers:
  - conv: {filters: 4, kernel: $kernel}
  - flatten
  - dense: {units: $units, activation: relu}
  - dense: {units: 10, activation: softmax}
search:
  units: int(4, 12, step=4)
train:
  data: {dataset: digits}
  optimizer: {sgd: {learning_rate: 0.05}}
  epochs: 2
  batch_size: 64
"""


@pytest.fixture
def tiny(tmp_path) -> Path:
    path = tmp_path / "tiny.yaml"
    path.write_text(TINY.lstrip())
    return path


def tune(*arguments) -> int:
    return main(["tune", *map(str, arguments)])


def results(study: Path) -> list[dict]:
    return list(csv.DictReader((study / "results.csv").read_text().splitlines()))


# How a study samples, prunes, records failures and continues, survives a stopped process and is
# shared by processes is Optuna's storage and sampling and our bookkeeping around it, the same
# whatever backend trains the trials (each trial is an ordinary run, and the rest of the suite trains
# those on both). So the tests of that bookkeeping run once (`backend_agnostic`, and the tests that
# start `tune` processes name TensorFlow); a study is still tuned on both backends by the tests of
# the figures a trial reports (the metric trainer's recall, a GAN's Frechet distance).
STUDY_PROCESS_BACKEND = "tensorflow"


def tune_process(*arguments, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen([*BUILDER, "tune", *map(str, arguments)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, cwd=cwd, env={**os.environ, "KERAS_BACKEND": STUDY_PROCESS_BACKEND})


@pytest.mark.backend_free
@pytest.mark.parametrize("metric, direction", [
    ("val_accuracy", "maximize"), ("val_loss", "minimize"), ("test_top5_accuracy", "maximize"),
    ("map50", "maximize"), ("recall_at_1", "maximize"), ("eer", "minimize"), ("val_mean_iou", "maximize"),
    ("frechet_distance", "minimize"), ("unknown_rejection_rate", "maximize"), ("final_d_real", None),
])
def test_the_direction_follows_the_metric_name(metric, direction):
    assert direction_of(metric) == direction


@pytest.mark.backend_agnostic
def test_each_trial_is_an_ordinary_run_and_the_study_leaves_a_table_a_best_spec_and_pictures(tiny, tmp_path, capsys):
    out = tmp_path / "studies"
    assert tune(tiny, "--trials", 3, "--out", out, "--seed", 0, "--pruner", "none") == 0
    console = capsys.readouterr().out
    study = out / "tiny"
    rows = results(study)
    assert [row["trial"] for row in rows] == ["0", "1", "2"] and {row["state"] for row in rows} == {"complete"}
    for row in rows:
        run = Path(row["run"])
        record = json.loads((run / "run.json").read_text())
        assert record["trial"]["number"] == int(row["trial"]) and record["trial"]["study"] == "tiny"
        assert record["trial"]["params"] == {"units": int(row["units"])} and record["params"]["units"] == int(
            row["units"])
        history = list(csv.DictReader((run / "history.csv").read_text().splitlines()))
        assert len(history) == 2 == int(row["epochs"])
        assert float(row["value"]) == pytest.approx(float(history[-1]["val_accuracy"]))  # what the run measured
        assert (run / "model.keras").is_file()
    best = max(rows, key=lambda row: float(row["value"]))
    assert f"| {best['trial']} | complete | {float(best['value']):.4f} |" in console
    # best.yaml: the spec with the best values in, ready for `train`; the counts it pinned are gone
    best_spec = load_spec(study / "best.yaml")
    assert best_spec.params["units"] == int(best["units"]) and not best_spec.search and not best_spec.expect
    assert best_spec.train["optimizer"] == {"sgd": {"learning_rate": 0.05}}
    assert f"python -m builder train {study / 'best.yaml'}" in console
    assert {"history.png", "importances.png", "parallel_coordinates.png"} <= {p.name for p in study.iterdir()}

    # the same command with more trials continues the study; another space under its name is refused
    assert tune(tiny, "--trials", 4, "--out", out, "--seed", 0, "--pruner", "none") == 0
    assert "3 of 4 trials finished" in capsys.readouterr().out
    assert [row["trial"] for row in results(study)] == ["0", "1", "2", "3"]
    assert results(study)[:3] == rows
    assert tune(tiny, "--trials", 5, "--out", out, "--search", "kernel=choice(3, 5)") == 1
    assert "searches units=int(4, 12, step=16)" not in (error := capsys.readouterr().err)
    assert "Give the new search its own --study NAME" in error


@pytest.mark.backend_agnostic
def test_grid_trains_every_combination_once_and_a_failing_one_is_recorded_while_the_study_goes_on(tiny, tmp_path,
                                                                                                   capsys):
    out = tmp_path / "studies"
    code = tune(tiny, "--sampler", "grid", "--trials", 20, "--out", out, "--epochs", 1,
                "--search", "kernel=choice(3, 20)",  # a 20x20 kernel does not fit an 8x8 image
                "--search", "train.optimizer.sgd.learning_rate=choice(0.05, 1e30)")  # the loss becomes NaN
    console = capsys.readouterr().out
    assert code == 0
    assert "the grid has 12 combinations" in console
    rows = results(out / "tiny")
    combinations = {(int(row["units"]), int(row["kernel"]), float(row["train.optimizer.sgd.learning_rate"]))
                    for row in rows}
    assert len(rows) == 12 and combinations == set(itertools.product((4, 8, 12), (3, 20), (0.05, 1e30)))
    for row in rows:
        if int(row["kernel"]) == 20:
            assert row["state"] == "failed" and "cannot take input of shape (None, 8, 8, 1)" in row["failure"]
            assert "tiny.yaml:6:5" in row["failure"]  # the spec line of the layer that does not fit
        elif float(row["train.optimizer.sgd.learning_rate"]) > 1:
            assert row["state"] == "failed" and "the loss became nan" in row["failure"]
            assert json.loads((Path(row["run"]) / "run.json").read_text())["trial"]["state"] == "failed"
        else:
            assert row["state"] == "complete" and float(row["value"]) > 0
    assert "Traceback" not in console


@pytest.mark.backend_agnostic
def test_a_trial_that_runs_out_of_memory_is_recorded_as_failed_and_the_study_goes_on(tiny, tmp_path, capsys,
                                                                                     monkeypatch):
    from trainers.search import objective

    train = objective._train

    def out_of_memory_at_12_units(plan, params, *rest):
        if params["units"] == 12:  # what a backend raises when a trial's model does not fit the device
            raise RuntimeError("RESOURCE_EXHAUSTED: Out of memory while trying to allocate 68719476736 bytes.\nmore")
        return train(plan, params, *rest)

    monkeypatch.setattr(objective, "_train", out_of_memory_at_12_units)
    assert tune(tiny, "--sampler", "grid", "--trials", 3, "--epochs", 1, "--out", tmp_path) == 0
    console = capsys.readouterr().out
    rows = {row["units"]: row for row in results(tmp_path / "tiny")}
    assert rows["12"]["state"] == "failed"
    assert rows["12"]["failure"] == ("RuntimeError: RESOURCE_EXHAUSTED: Out of memory while trying to allocate "
                                     "68719476736 bytes.")
    assert rows["4"]["state"] == rows["8"]["state"] == "complete"
    assert "trial " + rows["12"]["trial"] + " failed: RuntimeError: RESOURCE_EXHAUSTED" in console


@pytest.mark.backend_agnostic
def test_a_metric_the_runs_do_not_report_ends_the_study_naming_those_they_do(tiny, tmp_path, capsys):
    assert tune(tiny, "--trials", 2, "--out", tmp_path, "--epochs", 1, "--metric", "val_acuracy",
                "--direction", "maximize") == 1
    error = capsys.readouterr().err
    assert "the runs report no 'val_acuracy'; choose --metric among:" in error and "val_accuracy" in error


@pytest.mark.backend_agnostic
def test_the_median_pruner_stops_a_trial_behind_the_median_of_earlier_ones_at_the_same_epoch(tiny, tmp_path,
                                                                                              capsys):
    out, rate = tmp_path / "studies", "train.optimizer.sgd.learning_rate"
    arguments = [tiny, "--out", out, "--epochs", 4, "--pruner", "median", "--search", f"{rate}=choice(0.2, 1e-6)"]
    assert tune(*arguments, "--trials", 1) == 0
    study = optuna.load_study(study_name="tiny", storage=f"sqlite:///{out / 'tiny' / 'study.db'}")
    for _ in range(4):  # with the first, five trials that learn, for the median to stand on
        study.enqueue_trial({"units": 12, rate: 0.2})
    study.enqueue_trial({"units": 12, rate: 1e-6})  # learns nothing: far behind them at every epoch
    assert tune(*arguments, "--trials", 6) == 0
    console = capsys.readouterr().out
    rows = results(out / "tiny")
    slow = [row for row in rows[1:] if float(row[rate]) < 1e-3]
    assert len(slow) == 1 and slow[0]["state"] == "pruned", rows
    assert int(slow[0]["epochs"]) == 2  # the first quarter of the epochs is never pruned
    assert f"trial {slow[0]['trial']}: pruned after epoch 2" in console
    history = list(csv.DictReader((Path(slow[0]["run"]) / "history.csv").read_text().splitlines()))
    assert len(history) == 2 and (Path(slow[0]["run"]) / "model.keras").is_file()  # a shorter, complete run
    assert all(row["state"] == "complete" and int(row["epochs"]) == 4 for row in rows[1:] if row is not slow[0])


def _wait_for(predicate, process, seconds=600):
    deadline = time.monotonic() + seconds
    while process.poll() is None and time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def _checkpointed(study: Path, trial: int) -> bool:
    return (study / "trials" / f"{trial:04d}" / "checkpoints" / "state.json").is_file()


@pytest.mark.backends_named
@pytest.mark.parametrize("stop", ["ctrl_c", "kill_9"])
def test_a_stopped_tune_loses_only_the_trial_in_flight_and_the_same_command_continues(tiny, tmp_path, stop):
    arguments = [tiny, "--trials", 3, "--epochs", 6, "--out", tmp_path / "studies", "--pruner", "none"]
    study = tmp_path / "studies" / "tiny"
    process = tune_process(*arguments, cwd=tmp_path)
    stopped = _wait_for(lambda: _checkpointed(study, 1), process)
    assert stopped, process.communicate()
    process.send_signal(signal.SIGINT if stop == "ctrl_c" else signal.SIGKILL)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == (130 if stop == "ctrl_c" else -signal.SIGKILL), stderr[-3000:]
    if stop == "ctrl_c":
        assert "trial 1's values train again from the start" in stderr and "--resume" not in stderr, stderr

    again = tune_process(*arguments, cwd=tmp_path)
    stdout, stderr = again.communicate(timeout=900)
    assert again.returncode == 0, stderr[-3000:]
    if stop == "kill_9":
        assert "trial 1 was left running by a process that has ended; it runs again" in stdout
    rows = {row["trial"]: row for row in results(study)}
    assert rows["0"]["state"] == "complete"
    assert rows["1"]["state"] == ("failed" if stop == "ctrl_c" else "interrupted")
    rerun = rows["2"]
    assert rerun["units"] == rows["1"]["units"] and rerun["state"] == "complete"  # the same values, run again
    assert sum(row["state"] == "complete" for row in rows.values()) == 3


@pytest.mark.backends_named
@pytest.mark.parametrize("kind", ["sqlite", "journal"])
def test_two_processes_share_one_study_without_running_a_trial_twice_or_losing_one(tiny, tmp_path, kind):
    """Started together on a storage that does not exist yet, as a user starts them."""
    path = tmp_path / "shared" / ("study.db" if kind == "sqlite" else "study.log")
    path.parent.mkdir()
    storage = f"sqlite:///{path}" if kind == "sqlite" else f"journal:{path}"
    processes = [tune_process(tiny, "--trials", 6, "--epochs", 1, "--storage", storage, "--seed", i,
                              "--out", tmp_path / f"machine{i}",
                              "--search", "train.optimizer.sgd.learning_rate=float(0.01, 0.2, log)", cwd=tmp_path)
                 for i in range(2)]
    outputs = [process.communicate(timeout=900) for process in processes]
    for process, (_, stderr) in zip(processes, outputs):
        assert process.returncode == 0, stderr[-3000:]
    if kind == "journal":
        storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    study = optuna.load_study(study_name="tiny", storage=storage)
    trials = study.get_trials()
    ran = {number for machine in (0, 1) for number in
           (int(path.name) for path in (tmp_path / f"machine{machine}" / "tiny" / "trials").iterdir())}
    numbers = [trial.number for trial in trials]
    assert 6 <= len(trials) <= 7  # the other process may finish the trial it had started
    assert sorted(ran) == numbers == list(range(len(trials)))  # each trial once, in one process's folder
    assert {trial.state.name for trial in trials} == {"COMPLETE"}
    by_machine = [{int(path.name) for path in (tmp_path / f"machine{machine}" / "tiny" / "trials").iterdir()}
                  for machine in (0, 1)]
    assert not by_machine[0] & by_machine[1] and all(by_machine)


def test_a_figure_measured_after_training_is_the_trials_value_with_a_note_on_where_it_comes_from(tmp_path,
                                                                                                   capsys):
    """The metric trainer's recall_at_1 (the user journeys check that every family's default figure
    is one its runs report)."""
    spec = load_spec(SPECS / "siamese.yaml")
    overrides = [f"--set={key}={value}" for key, value in spec.test_overrides.items()]
    assert tune(spec.file, *overrides, "--train", "metric.classes_per_batch=4", "--trials", 2, "--epochs", 1,
                "--out", tmp_path, "--search", "train.seed=int(0, 5)") == 0
    console = capsys.readouterr().out
    assert "maximize recall_at_1" in console
    assert "note: recall_at_1 is measured once, after training on the test split" in console
    for row in results(tmp_path / "siamese"):
        figures = json.loads((Path(row["run"]) / "metrics.json").read_text())
        assert float(row["value"]) == pytest.approx(figures["recall_at_1"]) and row["state"] == "complete"


def test_a_gan_is_tuned_on_the_frechet_distance_its_judge_measures(tmp_path, capsys):
    import keras
    import numpy as np

    from trainers import run_training
    from trainers.data.datasets import load_dataset
    from trainers.data.pipeline import Preprocessing, materialize
    from trainers.generative.quality import frechet_distance
    from trainers.generative.sampling import sample_run
    from trainers.run.loop import load_trained_model

    spec = SPECS / "dcgan_digits.yaml"
    overrides = [f"--set={key}={value}" for key, value in load_spec(spec).test_overrides.items()]
    search = ["--search", "train.adversarial.n_critic=int(1, 2)"]
    with pytest.raises(SystemExit) as refused:  # a usage error, before any trial trains
        tune(spec, *overrides, *search, "--trials", 1, "--out", tmp_path)
    assert refused.value.code == 2
    assert "measures frechet_distance only with a judge" in capsys.readouterr().err
    assert not (tmp_path / "dcgan_digits" / "trials").exists()
    judge, _ = run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 1}, out=tmp_path / "runs", verbose=0)
    assert tune(spec, *overrides, "--train", f"adversarial.judge={judge}", "--trials", 2, "--epochs", 1,
                "--out", tmp_path, *search, "--sampler", "grid") == 0
    assert "minimize frechet_distance" in capsys.readouterr().out
    rows = results(tmp_path / "dcgan_digits")
    assert {int(row["train.adversarial.n_critic"]) for row in rows} == {1, 2}
    # the figure again, from the saved generator and the judge, as bench/generative_quality.py measures it
    classifier = load_trained_model(judge)
    features = keras.Model(classifier.inputs[0], classifier.layers[-2].output)
    for row in rows:
        run = Path(row["run"])
        record = json.loads((run / "run.json").read_text())
        test, _ = materialize(load_dataset(record["train"]["data"]).test,
                              Preprocessing.of(tuple(features.inputs[0].shape[1:]), {}))
        samples = sample_run(run, 1000, seed=record["seed"])
        expected = frechet_distance(np.asarray(features.predict(test, verbose=0), "float64"),
                                    np.asarray(features.predict(samples, verbose=0), "float64"))
        assert float(row["value"]) == pytest.approx(expected, rel=1e-3)
        assert json.loads((run / "metrics.json").read_text())["frechet_distance"] == pytest.approx(float(row["value"]))
