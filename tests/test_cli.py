import json
import os
import subprocess
import sys

import numpy as np
import pytest

from builder.cli import main
from builder.cli.command_registry import UsageError

from .conftest import ROOT, SPECS, ZOO


def test_validate_every_zoo_spec_without_importing_a_backend():
    code = (
        "import sys; from builder.cli import main; rc = main(['validate', *sys.argv[1:]]); "
        "print('LOADED', [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]); sys.exit(rc)"
    )
    result = subprocess.run([sys.executable, "-c", code, *map(str, ZOO)], capture_output=True, text=True,
                            cwd=ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.count(": ok (") == len(ZOO)
    assert "LOADED []" in result.stdout


def test_validate_exit_status_with_a_bad_spec(tmp_path, capsys):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [4]\nlayers:\n  - dense: {units: 0}\n")
    assert main(["validate", str(SPECS / "lenet5.yaml"), str(bad)]) == 1
    captured = capsys.readouterr()
    assert "lenet5.yaml: ok" in captured.out
    assert captured.err.strip().startswith(f"{bad}:3:20: layers[0].dense.units: wrong value")


def test_summary_json_reports_shapes_params_and_expectations(capsys):
    assert main(["summary", str(SPECS / "lenet5.yaml"), "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["params"] == {"total": 61706, "trainable": 61706, "non_trainable": 0}
    assert report["expect"]["params"]["ok"] is True
    first_conv = report["layers"][1]
    assert first_conv == {"name": "conv1", "class": "Conv2D", "output_shape": [None, 28, 28, 6],
                          "params": 156, "trainable_params": 156, "macs": 117_600,
                          "activation_bytes": 28 * 28 * 6 * 4, "receptive_field": [5, 5], "jump": [1, 1]}
    assert report["macs"] == 416_520


def test_summary_table_with_overrides(capsys):
    assert main(["summary", str(SPECS / "resnet18.yaml"), "--set", "size=32", "--set", "classes=10"]) == 0
    out = capsys.readouterr().out
    assert "predictions" in out and "(None, 10)" in out
    assert "Non-trainable params: 9,600" in out
    assert "Expected" not in out  # declared figures hold for the defaults only


def test_build_saves_a_model_that_loads_back(tmp_path, capsys):
    import keras

    import layers  # noqa: F401  (registers LocalResponseNormalization for loading)

    target = tmp_path / "alexnet.keras"
    assert main(["build", str(SPECS / "alexnet.yaml"), "--set", "size=67", "--set", "fc=32",
                 "-o", str(target)]) == 0
    assert "saved alexnet" in capsys.readouterr().out
    loaded = keras.saving.load_model(target)
    assert any(type(layer).__name__ == "LocalResponseNormalization" for layer in loaded.layers)
    x = np.random.default_rng(0).uniform(0, 1, (1, 67, 67, 3)).astype("float32")
    from builder import build_model

    rebuilt = build_model(SPECS / "alexnet.yaml", {"size": 67, "fc": 32})
    rebuilt.set_weights(loaded.get_weights())
    np.testing.assert_allclose(np.asarray(loaded(x)), np.asarray(rebuilt(x)), atol=1e-6)


def test_backend_flag_selects_the_backend():
    other = "jax" if os.environ.get("KERAS_BACKEND", "tensorflow") == "tensorflow" else "tensorflow"
    code = ("import sys; from builder.cli import main; import builder.cli as c; "
            "rc = main(sys.argv[1:]); import keras; print('BACKEND', keras.backend.backend())")
    result = subprocess.run([sys.executable, "-c", code, "summary", str(SPECS / "lenet5.yaml"), "--backend", other],
                            capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    assert f"BACKEND {other}" in result.stdout


def test_a_process_that_imported_keras_may_name_its_backend_but_not_another():
    import keras

    from builder.cli.main import set_backend

    current = keras.backend.backend()
    set_backend(current)
    assert os.environ["KERAS_BACKEND"] == current
    other = "jax" if current == "tensorflow" else "tensorflow"
    with pytest.raises(UsageError, match=f"Keras is already imported on {current}: the backend must be chosen"):
        set_backend(other)


def test_no_traceback_for_a_broken_spec_from_a_real_process(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("input: [4]\nlayers:\n  - dense: {units: 3}\n  - add:\n    from: [dense1, input]\n")
    result = subprocess.run([sys.executable, "-m", "builder", "summary", str(bad)], capture_output=True,
                            text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.startswith(str(bad))]
    assert len(lines) == 1 and "Traceback" not in result.stderr
    assert lines[0].startswith(f"{bad}:4:5: layers[1].add: add needs shapes that broadcast (the same rank, "
                               "each axis equal or 1 in one input); got (None, 3) from 'dense1' and (None, 4) "
                               "from 'input': 3 against 4 channels")


def test_summary_of_a_model_the_spec_does_not_define(capsys):
    assert main(["summary", str(SPECS / "lenet5.yaml"), "--model", "decoder"]) == 1
    assert capsys.readouterr().err.strip() == "the spec defines no model 'decoder' (it has: lenet5)"
