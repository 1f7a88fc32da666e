import json

import pytest

from builder.cli import main

from .conftest import SPECS


def test_compare_backends_on_identical_weights(capsys):
    assert main(["compare", str(SPECS / "lenet5.yaml"), "--steps", "2", "--batch-size", "4", "--format", "json"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["models"]["lenet5"]
    assert list(rows) == ["tensorflow", "jax"]
    for row in rows.values():
        assert row["params"] == 61706 and row["batch_size"] == 4
        assert row["train_step_ms"] > 0 and row["inference_step_ms"] > 0 and row["peak_memory_mb"] > 0
        assert row["images_per_s"] == pytest.approx(4000 / row["train_step_ms"])
    assert rows["tensorflow"]["max_abs_diff"] == 0.0
    assert 0.0 <= rows["jax"]["max_abs_diff"] <= 1e-5 and rows["jax"]["within_tolerance"]


def test_compare_multi_model_spec_model_by_model(write_spec, capsys):
    path = write_spec("""
        params: {latent: 3}
        models:
          encoder:
            input: [6]
            layers: [dense: {units: $latent}]
          decoder:
            input: [$latent]
            layers: [dense: {units: 6}]
    """)
    assert main(["compare", str(path), "--backends", "tensorflow", "--steps", "1"]) == 0
    out = capsys.readouterr().out
    assert "Model: encoder" in out and "Model: decoder" in out


def test_compare_refuses_a_backend_that_is_not_installed(capsys):
    import importlib.util

    if importlib.util.find_spec("torch") is not None:
        pytest.skip("torch is installed here, so it is a valid backend")
    with pytest.raises(SystemExit) as info:
        main(["compare", str(SPECS / "lenet5.yaml"), "--backends", "tensorflow,torch"])
    assert info.value.code == 2
    assert "backend not installed: torch" in capsys.readouterr().err


def test_plot_explains_what_it_needs(tmp_path, capsys, monkeypatch):
    import shutil

    monkeypatch.setattr(shutil, "which", lambda name: None)
    assert main(["plot", str(SPECS / "lenet5.yaml"), "-o", str(tmp_path / "m.png")]) == 1
    assert "plot needs pydot and Graphviz" in capsys.readouterr().err


def test_plot_draws_the_model(tmp_path, capsys):
    import importlib.util
    import shutil

    if importlib.util.find_spec("pydot") is None or shutil.which("dot") is None:
        pytest.skip("drawing needs pydot and Graphviz's dot on this machine")
    target = tmp_path / "lenet5.png"
    assert main(["plot", str(SPECS / "lenet5.yaml"), "-o", str(target)]) == 0
    from PIL import Image

    with Image.open(target) as image:
        assert image.size[1] > image.size[0] > 200  # a tall chain of nine layers
