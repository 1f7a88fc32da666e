"""Export to serving formats through Keras's model.export: each artifact, run in its own runtime,
gives the Keras model's outputs (computed on this test run's backend) on test images."""

import json
import os
import subprocess

import numpy as np
import pytest

from trainers import run_training
from trainers.registries import EXPORT_FORMATS
from trainers.run.loop import load_trained_model

from ...conftest import BUILDER, PYTHON, ROOT, SPECS, backend

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_export")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    return run_training(SPECS / "lenet5.yaml", train_overrides={"epochs": 1}, out=tmp_path_factory.mktemp("runs"),
                        verbose=0)[0]


@pytest.fixture(scope="module")
def home(tmp_path_factory):
    """A home folder whose OpenVINO telemetry consent says no: its converter would otherwise try to
    send usage statistics, and tests never reach the network."""
    home = tmp_path_factory.mktemp("home")
    (home / "intel").mkdir()
    (home / "intel" / "openvino_telemetry").write_text("0")
    return home


@pytest.fixture
def export_cli(home):
    return lambda *arguments: run_export(home, *arguments)


def run_export(home, *arguments):
    """The CLI as a user runs it, on this test run's backend (export switches to TensorFlow)."""
    env = {**os.environ, "KERAS_BACKEND": backend(), "HOME": str(home)}
    return subprocess.run([*BUILDER, "export", *map(str, arguments)], capture_output=True,
                          text=True, cwd=ROOT, env=env, timeout=600)


def _test_images(folder, count=16):
    from trainers.data.pipeline import StreamPlan, eval_stream
    from trainers.supervised.classification import label_finisher, prepare

    config = json.loads((folder / "run.json").read_text())["train"]
    prepared = prepare(load_trained_model(folder), config)
    stream = eval_stream(prepared.splits.test, prepared.preprocessing, StreamPlan(label_finisher(10, 1), count))
    return next(stream.as_numpy_iterator())[0]


def _run_artifact(home, name, artifact, images, folder):
    """The artifact's outputs in its runtime, in a process of its own: OpenVINO's runtime forks
    a telemetry sender from a thread, which a JAX process must not do."""
    np.save(folder / "images.npy", images)
    script = ("import sys, numpy as np; from trainers.registries import EXPORT_FORMATS; import trainers; "
              "np.save(sys.argv[3], EXPORT_FORMATS.get(sys.argv[1]).load(sys.argv[2])(np.load(sys.argv[4])))")
    subprocess.run([*PYTHON, "-c", script, name, str(artifact), str(folder / "outputs.npy"),
                    str(folder / "images.npy")], check=True, cwd=ROOT, timeout=300,
                   env={**os.environ, "HOME": str(home), "KERAS_BACKEND": "tensorflow"})
    return np.load(folder / "outputs.npy")


@pytest.mark.parametrize("name", sorted(EXPORT_FORMATS))
def test_export_runs_in_its_own_runtime_like_the_keras_model(trained_run, tmp_path, export_cli, home, name):
    result = export_cli(trained_run, "--format", name, "-o", tmp_path / name)
    assert result.returncode == 0, result.stderr
    entry = EXPORT_FORMATS.get(name)
    artifact = tmp_path / name / entry.artifact
    assert result.stdout.startswith(f"wrote {artifact} (") and "of the Keras model's on 16 test images" in result.stdout
    assert "XNNPACK" not in result.stderr and "np.object" not in result.stderr

    images = _test_images(trained_run)
    expected = load_trained_model(trained_run).predict(images, verbose=0)  # on this run's backend
    outputs = _run_artifact(home, name, artifact, images, tmp_path)
    assert outputs.shape == expected.shape == (16, 10)
    assert np.abs(outputs - expected).max() <= 1e-4

    record = json.loads((tmp_path / name / "preprocessing.json").read_text())
    assert record["format"] == name and record["input"]["shape"] == ["batch", 32, 32, 1]
    assert record["image"]["resize"] == {"height": 32, "width": 32, "method": "bilinear", "antialias": False}
    assert record["image"]["normalize"] is None and record["output"]["classes"] == [str(i) for i in range(10)]


def test_export_names_the_artifact_file_and_defaults_into_the_run(trained_run, tmp_path, export_cli):
    result = export_cli(trained_run, "--format", "onnx", "-o", tmp_path / "digits.onnx")
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "digits.onnx").is_file() and (tmp_path / "digits.preprocessing.json").is_file()
    result = export_cli(trained_run, "--format", "litert")
    assert result.returncode == 0, result.stderr
    assert (trained_run / "export" / "litert" / "model.tflite").is_file()
    assert (trained_run / "export" / "litert" / "preprocessing.json").is_file()


def test_export_refuses_a_missing_run_and_an_unknown_format(tmp_path, export_cli):
    result = export_cli(tmp_path / "nowhere", "--format", "onnx")
    assert result.returncode == 1 and result.stderr.strip() == f"data error: {tmp_path / 'nowhere'}: no such run " \
                                                               "folder or .keras file"
    result = export_cli(tmp_path, "--format", "coreml")
    assert result.returncode == 2 and "invalid choice: 'coreml'" in result.stderr


@pytest.mark.skipif(backend() != "tensorflow", reason="in-process export runs on TensorFlow (the JAX side below)")
def test_export_refuses_an_artifact_that_differs(trained_run, tmp_path):
    from dataclasses import replace

    from trainers.after.export import export_run
    from trainers.errors import DataError

    entry = EXPORT_FORMATS.get("saved_model")
    drifting = replace(entry, load=lambda path: (lambda images: entry.load(path)(images) + 1e-3))
    EXPORT_FORMATS.register("saved_model", drifting, replace=True)
    try:
        with pytest.raises(DataError, match=r"saved_model artifact's outputs differ from the Keras model's by "
                                            r"1\.00e-03 on 16 test images \(more than 0\.0001\); it is kept"):
            export_run(trained_run, "saved_model", str(tmp_path / "drift"))
    finally:
        EXPORT_FORMATS.register("saved_model", entry, replace=True)
    assert (tmp_path / "drift" / "saved_model").is_dir() and not (tmp_path / "drift" / "preprocessing.json").exists()


@pytest.mark.skipif(backend() != "tensorflow", reason="in-process export runs on TensorFlow (the JAX side below)")
def test_export_serves_the_main_output_of_a_model_with_auxiliary_heads(tmp_path):
    import keras

    from trainers.after.export import export_run

    inputs = keras.Input((8, 8, 3))
    features = keras.layers.GlobalAveragePooling2D()(keras.layers.Conv2D(4, 3)(inputs))
    main_head = keras.layers.Dense(5, activation="softmax")(features)
    model = keras.Model(inputs, [main_head, keras.layers.Dense(5, activation="softmax")(features)])
    model.save(tmp_path / "two_heads.keras")
    report = export_run(tmp_path / "two_heads.keras", "onnx", str(tmp_path / "served.onnx"))
    assert report.checked_on == "16 random inputs (the model's data is unknown: it is a .keras file)"
    from trainers.after.serving_runtimes import onnx

    images = np.random.default_rng(1).random((2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(onnx(str(report.artifact))(images), model.predict(images, verbose=0)[0], atol=1e-5)


@pytest.mark.skipif(backend() != "jax", reason="the JAX side of the in-process export")
def test_in_process_export_on_jax_says_to_run_the_command(trained_run):
    from trainers.after.export import export_run
    from trainers.errors import DataError

    with pytest.raises(DataError, match=r"^export converts through TensorFlow; run it as its own command"):
        export_run(trained_run, "onnx")
