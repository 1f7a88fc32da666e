"""The search space a spec declares (`search:`) or `tune --search` adds: one grammar, checked
without a backend, every mistake named at its spec line or its flag."""

import subprocess
import sys

import pytest

from builder import SpecError, load_spec
from builder.language.search_space import apply_values, check_space, parse_dimension, parse_search_flag

from .conftest import ROOT, SPECS

pytestmark = pytest.mark.backend_free

SPEC = """
    params: {width: 16, depth: 2, dropout: 0.25, block: basic}
    input: [8, 8, 1]
    layers:
      - conv: {filters: $width, kernel: 3}
      - flatten
      - dense: {units: 10, activation: softmax}
    search:
      {entry}
    train:
      optimizer: {adam: {learning_rate: 1.0e-3}}
"""


def spec_with(write_spec, entry: str):
    return write_spec(SPEC.replace("{entry}", entry))


@pytest.mark.parametrize("text, expected", [
    ("int(8, 64)", dict(kind="int", low=8, high=64, log=False, step=None)),
    ("int(8,64,log)", dict(kind="int", low=8, high=64, log=True)),
    ("int(16, 128, step=16)", dict(kind="int", low=16, high=128, step=16)),
    ("float(1e-4, 1e-2, log)", dict(kind="float", low=1e-4, high=1e-2, log=True)),
    ("float(0.0, 0.5, step=0.1)", dict(kind="float", low=0.0, high=0.5, step=0.1)),
    ("choice(basic, bottleneck)", dict(kind="choice", choices=("basic", "bottleneck"))),
    ("choice(16, 32, true)", dict(kind="choice", choices=(16, 32, True))),
])
def test_each_form_reads_as_written(text, expected):
    dimension = parse_dimension("x", text)
    for key, value in expected.items():
        assert getattr(dimension, key) == value, key


def test_grids_hold_every_value_of_a_stepped_range():
    assert parse_dimension("x", "int(16, 64, step=16)").grid() == [16, 32, 48, 64]
    assert parse_dimension("x", "float(0.0, 0.5, step=0.1)").grid() == [0.0, 0.1, 0.2, 0.3, 0.4, 0.5]
    assert parse_dimension("x", "choice(a, b)").grid() == ["a", "b"]
    assert parse_dimension("x", "float(0.1, 0.5)").grid() is None  # continuous: no grid


@pytest.mark.parametrize("text, message", [
    ("int(64, 8)", "an empty range: LOW (64) must be below HIGH (8)"),
    ("int(8, 8)", "an empty range"),
    ("float(0.0, 1.0, log)", "a log range needs LOW above 0"),
    ("int(1.5, 4)", "int() takes whole numbers"),
    ("int(1, 4, step=0)", "step must be above 0"),
    ("int(1, 4, step=9)", "step 9 is wider than the range 1..4"),
    ("float(1e-3, 1e-1, log, step=0.01)", "either `log` or on a `step` grid"),
    ("range(1, 4)", "unknown kind 'range'"),
    ("int(1)", "starts with two numbers"),
    ("int(1, 4, lg)", "takes `log` and `step=S`"),
    ("choice()", "choice() needs at least one value"),
    ("choice(a, a)", "repeats a value"),
    ("16", "expected int(LOW, HIGH"),
])
def test_a_malformed_entry_is_refused_at_its_spec_line(write_spec, text, message):
    path = spec_with(write_spec, f"width: {text}")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:8:10: search.width: "), str(info.value)
    assert message in str(info.value)


def test_a_name_that_is_neither_param_nor_train_setting_is_refused_with_the_closest(write_spec):
    path = spec_with(write_spec, "widht: int(8, 64)")
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert str(info.value).startswith(f"{path}:8:10: search.widht: no param 'widht'; did you mean 'width'?")
    assert "train.KEY.PATH" in str(info.value)


def test_train_settings_are_checked_against_the_trainer_for_every_value(write_spec):
    path = spec_with(write_spec, "train.optimizer.adam.learning_rat: float(1e-4, 1e-2, log)")
    with pytest.raises(SpecError, match=r":8:38: search\.train\.optimizer\.adam\.learning_rat: .*"
                                        r"did you mean 'learning_rate'\?"):
        load_spec(path)
    path = spec_with(write_spec, "train.batch_size: choice(16, 0)")
    with pytest.raises(SpecError, match=r"train setting batch_size=0: 0 is less than the minimum of 1"):
        load_spec(path)


def test_a_param_is_searched_with_values_of_its_type(write_spec):
    path = spec_with(write_spec, "width: float(8.0, 64.0)")
    with pytest.raises(SpecError, match=r"the param's default is 16, a whole number; 8.0 does not fit it "
                                        r"\(search it with int\(\)\)"):
        load_spec(path)
    spec = load_spec(spec_with(write_spec, "dropout: float(0.0, 0.5)"))  # a float param takes a float range
    assert [str(dimension) for dimension in spec.search] == ["dropout=float(0.0, 0.5)"]


def test_command_line_entries_name_their_flag_and_may_not_repeat_the_spec(write_spec):
    spec = load_spec(spec_with(write_spec, "width: int(8, 64)"))
    with pytest.raises(SpecError, match=r"^--search depth: an empty range"):
        parse_search_flag("depth=int(3, 1)")
    with pytest.raises(SpecError, match=r"^--search: expected NAME="):
        parse_search_flag("int(1, 3)")
    with pytest.raises(SpecError, match=r"^--search nope: no param 'nope'"):
        check_space([parse_search_flag("nope=int(1, 3)")], spec.document, spec.file)
    with pytest.raises(SpecError, match=r"searched twice"):
        check_space([*spec.search, parse_search_flag("width=int(2, 4)")], spec.document, spec.file)
    check_space([*spec.search, parse_search_flag("block=choice(basic, bottleneck)")], spec.document, spec.file)


def test_sampled_values_split_into_params_and_train_overrides():
    params, train = apply_values({"width": 32, "train.optimizer.adam.learning_rate": 0.01, "train.epochs": 3})
    assert params == {"width": 32}
    assert train == {"optimizer.adam.learning_rate": 0.01, "epochs": 3}


def test_validate_reports_a_bad_search_entry_without_loading_a_backend(write_spec):
    path = spec_with(write_spec, "depth: int(3, 1)")
    script = ("import sys, builder.cli\ncode = builder.cli.main(['validate', sys.argv[1]])\n"
              "print(sorted(m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules))\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script, str(path)], capture_output=True, text=True, cwd=ROOT,
                            timeout=300)
    assert result.returncode == 1
    assert f"{path}:8:10: search.depth: an empty range: LOW (3) must be below HIGH (1)" in result.stderr
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_the_zoo_search_spec_searches_width_depth_dropout_and_learning_rate():
    spec = load_spec(SPECS / "cnn_digits.yaml")
    assert [dimension.name for dimension in spec.search] == ["width", "depth", "dropout",
                                                             "train.optimizer.adam.learning_rate"]
    assert spec.search[3].log and spec.search[2].grid()[-1] == 0.5
