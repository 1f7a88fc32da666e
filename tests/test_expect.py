"""`expect:` is enforced: a model whose counts differ from the spec's published figures is refused
by build, summary, train and the Python API, unless asked to build it anyway."""

import json

import pytest

from builder import SpecError, build_model, build_models, load_spec
from builder.cli import main

WRONG = """
name: tiny
params: {units: 10}
input: [4]
expect: {params: 60}
layers:
  - dense: {units: $units}
"""

TWO_MODELS = """
name: pair
models:
  first:
    input: [4]
    layers: [{dense: {units: 3}}]
  second:
    input: [3]
    layers: [{dense: {units: 2}}]
main: first
expect:
  params: 15
  second: {params: 9, trainable_params: 8}
"""


def test_the_api_refuses_a_model_that_differs_from_expect_at_the_figures_line(write_spec):
    path = write_spec(WRONG)
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert str(caught.value) == (
        f"{path}:4:18: expect.params: model 'tiny' has 50 params where expect: declares 60 (-10); fix the spec "
        "(or the figure), or build it anyway with --no-expect (check_expect=False in Python)")
    assert build_model(path, check_expect=False).count_params() == 50
    assert build_model(path, {"units": 12}).count_params() == 60  # the figures describe the spec's own params


def test_each_model_of_a_spec_is_held_to_its_own_figures(write_spec):
    path = write_spec(TWO_MODELS)
    with pytest.raises(SpecError) as caught:
        build_models(path)
    assert str(caught.value).startswith(f"{path}:12:20: expect.second.params: model 'second' has 8 params where "
                                        "expect: declares 9 (-1)")
    assert set(build_models(load_spec(path), check_expect=False)) == {"first", "second"}


def test_summary_and_build_refuse_unless_no_expect(write_spec, tmp_path, capsys):
    path = write_spec(WRONG)
    assert main(["summary", str(path)]) == 1
    captured = capsys.readouterr()
    assert captured.out == "" and captured.err.strip().endswith("declares 60 (-10); fix the spec (or the figure), "
                                                                 "or build it anyway with --no-expect "
                                                                 "(check_expect=False in Python)")
    assert main(["summary", str(path), "--no-expect"]) == 0
    assert "Expected params: 60 - MISMATCH (built 50)" in capsys.readouterr().out
    assert main(["summary", str(path), "--no-expect", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["expect"]["params"] == {"expected": 60, "actual": 50, "ok": False}
    assert main(["build", str(path), "-o", str(tmp_path / "tiny.keras")]) == 1
    assert "expect.params" in capsys.readouterr().err and not (tmp_path / "tiny.keras").exists()
    assert main(["build", str(path), "-o", str(tmp_path / "tiny.keras"), "--no-expect"]) == 0
    assert (tmp_path / "tiny.keras").is_file()


def test_train_refuses_unless_no_expect(write_spec, tmp_path, capsys):
    path = write_spec("""
        name: small_lenet
        input: [32, 32, 1]
        expect: {params: 1000}
        layers:
          - conv: {filters: 2, kernel: 5}
          - global_avg_pool: {}
          - dense: {units: 10, activation: softmax}
        train: {data: {dataset: digits}, epochs: 1, batch_size: 64}
    """)
    assert main(["train", str(path), "--quiet", "--out", str(tmp_path)]) == 1
    assert "expect.params: model 'small_lenet' has 82 params where expect: declares 1,000" in capsys.readouterr().err
    assert main(["train", str(path), "--quiet", "--out", str(tmp_path), "--no-expect"]) == 0
    assert "done: test_accuracy" in capsys.readouterr().out
