"""The spec language's constructs, each checked on the built model."""

import numpy as np
import pytest

from builder import build_model, build_models, load_spec
from builder.cli.command_registry import parse_overrides
from builder.language.expressions import ExpressionError, evaluate, substitute


def names(model):
    return [layer.name for layer in model.layers]


def test_plain_stack_bare_names_and_defaults(write_spec):
    model = build_model(write_spec("""
        input: [8]
        layers:
          - dense: {units: 4}
          - relu
          - dense: {units: 2}
    """))
    assert names(model) == ["input", "dense1", "relu1", "dense2"]
    assert model.output.shape == (None, 2)


def test_params_expressions_and_overrides(write_spec):
    path = write_spec("""
        params: {width: 4, double: "${width * 2}", classes: 3}
        input: [8]
        layers:
          - dense: {units: $double}
          - dense: {units: "${max(classes, 2) + width // 4 - 1}"}
    """)
    assert build_model(path).output.shape == (None, 3)
    assert build_model(path, {"width": 8}).layers[1].units == 16
    assert build_model(path, {"classes": 7}).output.shape == (None, 7)


def test_named_references_and_merges(write_spec):
    model = build_model(write_spec("""
        input: [8, 8, 3]
        layers:
          - conv: {filters: 4, kernel: 3, padding: same}
            name: left
          - conv: {filters: 4, kernel: 1}
            from: input
            name: right
          - add:
            from: [left, right]
          - concat:
            from: [left, right, add1]
    """))
    assert model.output.shape == (None, 8, 8, 12)
    inbound = model.get_layer("add1")._inbound_nodes[0].parent_nodes
    assert sorted(node.operation.name for node in inbound) == ["left", "right"]


def test_residual_identity_when_shapes_match_and_projection_when_not(write_spec):
    model = build_model(write_spec("""
        input: [8, 8, 4]
        layers:
          - residual:
              layers:
                - conv: {filters: 4, kernel: 3, padding: same}
          - residual:
              layers:
                - conv: {filters: 8, kernel: 3, strides: 2, padding: same}
              post: [relu]
    """))
    layer_names = names(model)
    assert "shortcut1_projection" not in layer_names  # first unit: identity
    projection = model.get_layer("shortcut2_projection")
    assert projection.kernel.shape == (1, 1, 4, 8) and projection.strides == (2, 2)
    assert model.output.shape == (None, 4, 4, 8)


def test_residual_explicit_shortcut_and_merge(write_spec):
    model = build_model(write_spec("""
        input: [8, 8, 4]
        layers:
          - residual:
              layers:
                - conv: {filters: 4, kernel: 3, padding: same}
              shortcut:
                - batchnorm
              merge: multiply
            name: unit
    """))
    assert names(model) == ["input", "unit_conv1", "unit_shortcut1_batchnorm1", "unit"]  # the merge is `unit`


def test_parallel_branches_with_identity_branch(write_spec):
    model = build_model(write_spec("""
        input: [8, 8, 4]
        layers:
          - parallel:
              branches:
                - [conv: {filters: 2, kernel: 1}]
                - - conv: {filters: 3, kernel: 1}
                  - conv: {filters: 5, kernel: 3, padding: same}
                - []
            name: mixed
    """))
    assert model.output.shape == (None, 8, 8, 11)
    assert {"mixed_branch1_conv1", "mixed_branch2_conv2", "mixed"} <= set(names(model))


def test_repeat_with_index_and_interpolated_names(write_spec):
    model = build_model(write_spec("""
        input: [4]
        layers:
          - repeat:
              times: 3
              index: i
              layers:
                - dense: {units: "${2 ** (i + 1)}"}
                  name: fc${i + 1}
    """))
    assert [model.get_layer(f"fc{i}").units for i in (1, 2, 3)] == [2, 4, 8]


def test_blocks_with_params_and_include(write_spec):
    write_spec("""
        blocks:
          pair:
            params: {units: 4, act: relu}
            layers:
              - dense: {units: $units, activation: $act}
              - dense: {units: $units}
    """, "lib/pairs.yaml")
    model = build_model(write_spec("""
        include: [lib/pairs.yaml]
        input: [3]
        layers:
          - pair: {units: 5}
          - pair: {act: tanh}
            name: second
    """))
    # a named call's output layer carries the call's name; an unnamed call's keeps its counter
    assert names(model) == ["input", "pair1_dense1", "pair1_dense2", "second_dense1", "second"]
    assert model.get_layer("second_dense1").activation.__name__ == "tanh"


def test_block_argument_typo_is_caught(write_spec):
    from builder import SpecError

    path = write_spec("""
        blocks:
          pair:
            params: {units: 4}
            layers: [dense: {units: $units}]
        input: [3]
        layers:
          - pair: {unit: 5}
    """)
    with pytest.raises(SpecError, match="unknown argument 'unit' for block 'pair'; did you mean 'units'"):
        load_spec(path)


def test_when_switches_nodes_and_outputs(write_spec):
    path = write_spec("""
        params: {aux: false}
        input: [4]
        layers:
          - dense: {units: 4}
            name: trunk
          - dense: {units: 2}
            name: side
            when: $aux
          - dense: {units: 3}
            from: trunk
            name: head
        outputs: [head, side]
    """)
    assert len(build_model(path).outputs) == 1
    assert [t.shape[-1] for t in build_model(path, {"aux": True}).outputs] == [3, 2]


def test_several_models_and_composition(write_spec):
    path = write_spec("""
        params: {latent: 2}
        models:
          encoder:
            input: [6]
            layers:
              - dense: {units: 4, activation: relu}
              - dense: {units: $latent}
          decoder:
            input: [$latent]
            layers:
              - dense: {units: 6}
          autoencoder:
            input: [6]
            layers:
              - encoder
              - decoder
    """)
    models = build_models(path)
    assert list(models) == ["encoder", "decoder", "autoencoder"]
    auto = models["autoencoder"]
    x = np.ones((1, 6), "float32")
    np.testing.assert_allclose(np.asarray(auto(x)), np.asarray(models["decoder"](models["encoder"](x))), rtol=1e-6)
    assert build_model(path).name == "autoencoder" and build_model(path, model="encoder").name == "encoder"


def test_forward_reference_is_allowed_when_acyclic(write_spec):
    model = build_model(write_spec("""
        input: [4]
        layers:
          - concat:
            from: [a, b]
          - dense: {units: 2}
            from: input
            name: a
          - dense: {units: 3}
            from: input
            name: b
        outputs: concat1
    """))
    assert model.output.shape == (None, 5)


def test_type_from_a_param(write_spec):
    model = build_model(write_spec("""
        params: {act: gelu}
        input: [4]
        layers:
          - $act
    """))
    assert names(model) == ["input", "gelu1"]


@pytest.mark.parametrize("text, expected", [
    ("1 + 2 * 3", 7), ("2 ** 10", 1024), ("7 // 2", 3), ("7 % 4", 3), ("-x + 1", -4),
    ("x if x > 2 else 0", 5), ("min(x, 3) + max(1, 2)", 5), ("x > 1 and x < 10", True),
    ("not x == 5", False), ("int(x / 2)", 2), ("[x, x * 2]", [5, 10]),
])
def test_expression_evaluator(text, expected):
    assert evaluate(text, {"x": 5}) == expected


@pytest.mark.parametrize("text", ["open('f')", "x.__class__", "[i for i in y]", "lambda: 1", "2 ** 100000",
                                  "'a' * 10 ** 6"])
def test_expression_evaluator_refuses(text):
    with pytest.raises(ExpressionError):
        evaluate(text, {"x": 5, "y": [1]})


def test_substitute_keeps_types_and_formats_strings():
    scope = {"w": 4, "name": "b"}
    assert substitute("$w", scope) == 4
    assert substitute("${w * 2}", scope) == 8
    assert substitute("block${w + 1}_$name", scope) == "block5_b"
    assert substitute("cost: $$5", scope) == "cost: $5"


def test_numbers_in_exponent_notation_are_numbers_with_or_without_a_dot(write_spec):
    """YAML 1.1 (PyYAML) reads `1e-4` as a string; specs and --set/--train read it as YAML 1.2
    and every user does."""
    model = build_model(write_spec("""
        input: [8]
        layers:
          - dense: {units: 4}
          - layernorm: {epsilon: 1e-4}
          - dropout: {rate: 5E-1}
    """))
    assert model.layers[2].epsilon == 1e-4 and model.layers[3].rate == 0.5
    assert parse_overrides(["learning_rate=3e-4", "decay=-1.5e+2", "name=e5", "steps=10"]) == \
        {"learning_rate": 3e-4, "decay": -150.0, "name": "e5", "steps": 10}
