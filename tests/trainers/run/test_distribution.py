"""Data-parallel training on CPU virtual devices and in a group of local processes.

A backend fixes its devices when it starts, so each distributed run is a subprocess of the CLI
(`--devices N` makes N virtual CPU devices there), on the backend this suite runs under.
"""

from __future__ import annotations

import csv
import json
import os
import socket
import subprocess
from pathlib import Path

import keras
import pytest

from trainers.errors import DataError
from trainers.run.distribution import Cluster, Placement

from ...conftest import BUILDER, PYTHON

BACKEND = keras.backend.backend()
LENET = ["lenet5", "--epochs", "2", "--batch-size", "32", "--quiet"]


def _train(tmp_path: Path, *arguments: str, name: str = "runs", timeout: int = 600) -> subprocess.CompletedProcess:
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    return subprocess.run([*BUILDER, "train", *arguments, "--out", str(tmp_path / name)],
                          capture_output=True, text=True, env=env, timeout=timeout)


def _history(folder: Path) -> list[dict]:
    with open(folder / "history.csv", newline="") as handle:
        return list(csv.DictReader(handle))


def _only_run(root: Path) -> Path:
    runs = [path for path in root.glob("*/*") if path.is_dir()]
    assert len(runs) == 1, runs
    return runs[0]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_two_devices_train_as_one_with_the_same_global_batch(tmp_path):
    # Same global batch, same seed: the gradients of two half batches, summed, are the one
    # batch's gradient. LeNet-5 has no batch normalization, whose statistics are per replica.
    one = _train(tmp_path, *LENET, "--devices", "1", name="one")
    two = _train(tmp_path, *LENET, "--devices", "2", name="two")
    assert one.returncode == 0, one.stderr[-3000:]
    assert two.returncode == 0, two.stderr[-3000:]
    assert "data parallel over 2 CPU devices" in two.stdout
    one_history, two_history = _history(_only_run(tmp_path / "one")), _history(_only_run(tmp_path / "two"))
    for row_one, row_two in zip(one_history, two_history, strict=True):
        for key in ("loss", "accuracy", "val_loss", "val_accuracy"):
            assert float(row_two[key]) == pytest.approx(float(row_one[key]), rel=1e-5, abs=1e-6), key
    record = json.loads((_only_run(tmp_path / "two") / "run.json").read_text())
    assert record["devices"] == {"data_parallel": 2, "device_kind": "cpu", "processes": 1}
    assert record["train"]["distribution"] == {"data_parallel": 2}


def test_a_batch_the_devices_cannot_split_is_one_line(tmp_path):
    result = _train(tmp_path, "lenet5", "--devices", "2", "--batch-size", "31", "--epochs", "1")
    assert result.returncode == 1
    assert "batch_size 31 does not split evenly over 2 devices" in result.stderr
    assert "(30 or 32)" in result.stderr
    assert "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").rglob("run.json"))


def test_the_batch_check_names_the_nearest_batch_sizes_that_split():
    placement = Placement(replicas=4, engine=object())
    with pytest.raises(DataError, match="batch_size 30 does not split evenly over 4 devices.*28 or 32"):
        placement.check_batch(30)
    placement.check_batch(32)
    Placement().check_batch(31)  # one device: any batch


# One subprocess for all of them: the first run sets up two virtual CPU devices, the others
# reuse them (a backend's devices are fixed once it starts).
EVERY_TRAINER = """
import json, sys
from trainers.run.training import run_training
out = sys.argv[1]
vae = ("vae", {"size": 16, "width": 8, "hidden": 32, "latent": 4})
runs = {"autoencoder": ("autoencoder", {"size": 16, "width": 4, "latent": 3}),
        "unet": ("unet_padded", {"size": 16, "width": 4}), "vae": vae,
        "gan": ("dcgan_digits", {"ngf": 8, "ndf": 8, "latent": 8}), "vae_one_device": vae}
for name, (spec, params) in runs.items():
    devices = 1 if name == "vae_one_device" else 2
    train = {"epochs": 1, "batch_size": 32, "distribution": {"data_parallel": devices}}
    folder, _ = run_training(spec, params, train, out=f"{out}/{name}", verbose=0)
    print(json.dumps({"name": name, "folder": str(folder)}))
"""


def test_every_trainer_trains_on_two_devices(tmp_path):
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    result = subprocess.run([*PYTHON, "-c", EVERY_TRAINER, str(tmp_path)], capture_output=True, text=True,
                            env=env, timeout=900)
    assert result.returncode == 0, result.stderr[-3000:]
    runs = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"name"')]
    folders = {run["name"]: Path(run["folder"]) for run in runs}
    assert len(folders) == 5, result.stdout[-3000:]
    for name in ("autoencoder", "unet", "vae", "gan"):
        folder = folders[name]
        assert json.loads((folder / "run.json").read_text())["devices"]["data_parallel"] == 2, name
        losses = [float(value) for row in _history(folder) for key, value in row.items() if "loss" in key]
        assert losses and all(abs(value) < 1e6 for value in losses), (name, losses)
        assert (folder / "model.keras").is_file(), name
    # the VAE's own loss is divided among the replicas like Keras's losses: on two devices it
    # matches one device (up to the sampling noise each replica draws for itself)
    metrics = [json.loads((folders[run] / "metrics.json").read_text()) for run in ("vae_one_device", "vae")]
    assert metrics[1]["test_loss"] == pytest.approx(metrics[0]["test_loss"], rel=0.03)


@pytest.mark.skipif(BACKEND != "jax", reason="groups of processes train on JAX (see the TensorFlow test below)")
def test_two_processes_train_lenet5_into_one_run_folder_that_evaluate_accepts(tmp_path):
    port = _free_port()
    group = ["--coordinator", f"127.0.0.1:{port}", "--num-processes", "2"]
    arguments = ["lenet5", "--epochs", "2", "--batch-size", "32", "--quiet", "--out", str(tmp_path / "runs"), *group]
    env = {**os.environ, "KERAS_BACKEND": BACKEND}
    command = [*BUILDER, "train", *arguments]
    helper = subprocess.Popen([*command, "--process-id", "1"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True, env=env)
    try:
        chief = subprocess.run([*command, "--process-id", "0"], capture_output=True, text=True, env=env, timeout=600)
        helper_out, helper_err = helper.communicate(timeout=120)
    finally:
        helper.kill()
    assert chief.returncode == 0, chief.stderr[-3000:]
    assert helper.returncode == 0, helper_err[-3000:]
    assert "in 2 processes" in chief.stdout
    assert "process 0 wrote the run folder" in helper_out
    assert "ran out of data" not in chief.stderr + helper_err  # every epoch reads a whole epoch
    assert "[Gloo]" not in chief.stdout + chief.stderr + helper_out + helper_err  # native lines: native.log
    folder = _only_run(tmp_path / "runs")  # exactly one run folder
    assert [row["epoch"] for row in _history(folder)] == ["1", "2"]
    assert json.loads((folder / "run.json").read_text())["devices"]["processes"] == 2
    metrics = json.loads((folder / "metrics.json").read_text())
    assert metrics["test_examples"] == 352  # whole global batches of 32 of the 359 test images
    assert metrics["test_accuracy"] > 0.5
    assert (folder / "confusion_matrix.png").is_file()
    evaluated = subprocess.run([*BUILDER, "evaluate", str(folder)], capture_output=True,
                               text=True, env=env, timeout=300)
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    again = json.loads(evaluated.stdout[evaluated.stdout.index("{"):])
    assert again["test_examples"] == 359  # one process evaluates every test image
    assert again["test_accuracy"] == pytest.approx(metrics["test_accuracy"], abs=0.03)


def test_a_process_that_cannot_reach_the_coordinator_says_where_it_looked(tmp_path):
    port = _free_port()
    result = _train(tmp_path, "lenet5", "--coordinator", f"127.0.0.1:{port}", "--num-processes", "2",
                    "--process-id", "1", "--connect-timeout", "2", timeout=120)
    assert result.returncode == 1
    if BACKEND == "jax":
        assert f"could not reach the coordinator at 127.0.0.1:{port} within 2 s" in result.stderr
    else:
        assert "several processes need the JAX backend" in result.stderr
        assert "keras-team/keras/issues/20585" in result.stderr
    assert "Traceback" not in result.stderr


def test_the_process_group_comes_from_flags_or_keras_environment_variables():
    environ = {"KERAS_DISTRIBUTION_JOB_ADDRESSES": "10.0.0.1:1234", "KERAS_DISTRIBUTION_NUM_PROCESSES": "4",
               "KERAS_DISTRIBUTION_PROCESS_ID": "3"}
    cluster = Cluster.of(environ=environ)
    assert (cluster.coordinator, cluster.num_processes, cluster.process_id, cluster.is_chief) == \
        ("10.0.0.1:1234", 4, 3, False)
    assert Cluster.of(process_id=0, environ=environ).is_chief  # a flag wins over the variable
    assert Cluster.of(environ={}) == Cluster()
    with pytest.raises(DataError, match="--num-processes 2 needs --coordinator"):
        Cluster.of(num_processes=2, environ={})
    with pytest.raises(DataError, match="--process-id 2: must be from 0 to 1"):
        Cluster.of("h:1", 2, 2, environ={})
    with pytest.raises(DataError, match="expected HOST:PORT"):
        Cluster.of("hostonly", 2, 0, environ={})
    with pytest.raises(DataError, match="--num-processes x: expected a whole number"):
        Cluster.of("h:1", "x", 0, environ={})
