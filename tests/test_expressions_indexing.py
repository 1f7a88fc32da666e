"""Expressions index lists and mappings and take len; block param defaults are expressions over
the spec's params and the block's earlier params, with errors located at the default."""

import pytest

from builder import SpecError, build_model, load_spec
from builder.language.expressions import ExpressionError, allowed, evaluate


def test_lists_and_mappings_are_indexed_and_measured():
    scope = {"i": 2, "widths": [64, 128, 256, 512], "table": {"stem": 32}}
    assert evaluate("[64, 128, 256, 512][i]", scope) == 256
    assert evaluate("widths[-1] // widths[0]", scope) == 8
    assert evaluate("table['stem'] * 2", scope) == 64
    assert evaluate("{'a': 1, 'b': 2}['b']", scope) == 2
    assert evaluate("len(widths) + len('abc')", scope) == 7


def test_slices_sums_and_rounding_give_per_block_rates_from_a_cumulative_count():
    scope = {"depths": [3, 4, 6, 3], "stage": 2, "i": 1, "rate": 0.15, "name": "stage3"}
    assert evaluate("depths[:stage]", scope) == [3, 4]
    assert evaluate("depths[1:-1]", scope) == [4, 6] and evaluate("depths[::-1]", scope) == [3, 6, 4, 3]
    assert evaluate("name[:5]", scope) == "stage"
    # block 2 of stage 3 is block 8 of 16: its rate is 0.15 * 8 / 15, as timm's linspace gives
    assert evaluate("rate * (sum(depths[:stage]) + i) / (sum(depths) - 1)", scope) == pytest.approx(0.15 * 8 / 15)
    assert evaluate("ceil(7 / 2)", scope) == 4 and evaluate("floor(-7 / 2)", scope) == -4
    assert isinstance(evaluate("ceil(2.0)", scope), int)
    for piece in ("slices x[a:b]", "ceil", "floor", "sum"):
        assert piece in allowed()


@pytest.mark.parametrize("expression, message", [
    ("widths[4]", "index 4 is out of range for [64, 128, 256, 512] (4 items)"),
    ("widths[1.5]", "a list index is a whole number; got 1.5"),
    ("widths[1:2.5]", "slice bounds are whole numbers; got 1:2.5:None"),
    ("widths[::0]", "a slice step cannot be zero"),
    ("i[1:]", "only lists and strings can be sliced; got 2"),
    ("sum(table)", "sum takes a list of numbers; got {'stem': 32}"),
    ("ceil('3')", "ceil takes a number; got '3'"),
    ("table['stme']", "no key 'stme'; did you mean 'stem'? (keys: 'stem')"),
    ("i[0]", "only lists, strings and mappings can be indexed; got 2"),
])
def test_bad_indexing_and_rounding_say_what_is_wrong(expression, message):
    scope = {"i": 2, "widths": [64, 128, 256, 512], "table": {"stem": 32}}
    with pytest.raises(ExpressionError) as caught:
        evaluate(expression, scope)
    assert str(caught.value) == message


def test_the_list_of_what_is_allowed_comes_from_the_interpreter():
    with pytest.raises(ExpressionError) as caught:
        evaluate("width.real", {"width": 8})
    assert str(caught.value) == f"'Attribute' is not allowed in expressions; use {allowed()}"
    for piece in ("float", "len", "indexing x[i]", "//", "**", "<=", "!="):
        assert piece in allowed()


def test_a_per_stage_table_indexed_by_the_repeat_counter(write_spec):
    model = build_model(write_spec("""
        params: {widths: [4, 8, 16]}
        input: [16, 16, 3]
        layers:
          - repeat:
              times: "${len(widths)}"
              index: i
              layers:
                - conv: {filters: "${widths[i]}", kernel: 3, padding: same}
                  name: stage${i + 1}
    """))
    assert [model.get_layer(f"stage{i}").filters for i in (1, 2, 3)] == [4, 8, 16]


BLOCKS = """
params: {base: 4}
blocks:
  unit:
    params: {filters: "${base * 2}", expanded: "${filters * 3}"}
    layers:
      - conv: {filters: $expanded, kernel: 1}
input: [8, 8, 3]
layers:
  - unit: {}
    name: first
  - unit: {filters: 5}
    name: second
"""


def test_block_param_defaults_are_expressions_over_earlier_params(write_spec):
    model = build_model(write_spec(BLOCKS))
    convolutions = [layer.filters for layer in model.layers if hasattr(layer, "filters")]
    assert convolutions == [24, 15]  # base * 2 * 3, then 5 * 3


def test_an_error_in_a_block_default_names_the_default(write_spec):
    path = write_spec(BLOCKS.replace("${filters * 3}", "${filter * 3}"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}:4:48: blocks.unit.params.expanded: unknown name 'filter'; did "
                                        "you mean 'filters'?")
