"""Every rejected spec gets one line: file:line:col: path: message, with a fix where likely."""

import pytest

from builder import SpecError, build_model, load_spec
from builder.cli import main


def error_of(path, overrides=None, build=False) -> SpecError:
    with pytest.raises(SpecError) as info:
        build_model(path, overrides) if build else load_spec(path, overrides)
    return info.value


def test_unknown_layer_type_suggests_the_closest(write_spec):
    path = write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filters: 4, kernel: 3}
          - maxpol: {pool: 2}
    """)
    error = error_of(path)
    assert str(error).startswith(f"{path}:4:5: ")
    assert "unknown layer type 'maxpol'; did you mean 'maxpool'?" in str(error)


def test_unknown_argument_names_line_column_and_fix(write_spec):
    path = write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filter: 4, kernel: 3}
    """)
    error = error_of(path)
    assert str(error) == (f"{path}:3:12: layers[0].conv.filter: unknown argument 'filter' for conv; "
                          "did you mean 'filters'?")


def test_wrong_argument_type(write_spec):
    path = write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filters: many, kernel: 3}
    """)
    error = error_of(path)
    assert str(error).startswith(f"{path}:3:21: layers[0].conv.filters: ")
    assert "expected an integer >= 1, got 'many'" in str(error)


def test_wrong_type_produced_by_an_expression(write_spec):
    path = write_spec("""
        params: {width: 2.5}
        input: [8, 8, 1]
        layers:
          - conv: {filters: $width, kernel: 3}
    """)
    error = error_of(path)
    assert f"{path}:4:21:" in str(error)
    assert "expected an integer >= 1, got 2.5" in str(error)


def test_missing_required_argument(write_spec):
    path = write_spec("""
        input: [8]
        layers:
          - dense
    """)
    assert "dense needs argument 'units'" in str(error_of(path))


def test_unresolved_reference(write_spec):
    path = write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filters: 4, kernel: 3}
            name: stem
          - concat:
            from: [stem, stme]
    """)
    error = error_of(path)
    assert str(error).startswith(f"{path}:6:18: layers[1].from: ")
    assert "unresolved reference 'stme'; did you mean 'stem'?" in str(error)


def test_cycle_is_reported_by_node_names(write_spec):
    path = write_spec("""
        input: [8]
        layers:
          - dense: {units: 4}
            name: a
            from: b
          - dense: {units: 4}
            name: b
            from: a
    """)
    error = error_of(path)
    assert "the graph has a cycle: " in str(error)
    assert "a -> b -> a" in str(error) or "b -> a -> b" in str(error)
    assert str(error).startswith(f"{path}:3:5: ")


@pytest.mark.parametrize("expression, fragment", [
    ("${width // 0}", "division by zero in 'width // 0'"),
    ("${width +}", "cannot parse expression"),
    ("${__import__('os')}", "only these functions may be called"),
    ("${width.real}", "'Attribute' is not allowed"),
    ("${depth * 2}", "unknown name 'depth'"),
])
def test_bad_expressions(write_spec, expression, fragment):
    path = write_spec(f"""
        params: {{width: 8}}
        input: [8, 8, 1]
        layers:
          - conv:
              filters: "{expression}"
              kernel: 3
    """)
    error = error_of(path)
    assert str(error).startswith(f"{path}:5:16: layers[0].conv.filters: ")
    assert fragment in str(error)


def test_override_of_a_param_that_does_not_exist(write_spec):
    path = write_spec("""
        params: {classes: 10}
        input: [8]
        layers:
          - dense: {units: $classes}
    """)
    error = error_of(path, {"clases": 3})
    assert "cannot override 'clases'" in str(error) and "did you mean 'classes'?" in str(error)


def test_override_of_the_wrong_type(write_spec):
    path = write_spec("""
        params: {classes: 10}
        input: [8]
        layers:
          - dense: {units: $classes}
    """)
    assert "does not fit" in str(error_of(path, {"classes": "ten"}))


def test_add_of_mismatched_shapes_names_both(write_spec):
    path = write_spec("""
        input: [8, 8, 3]
        layers:
          - conv: {filters: 4, kernel: 3, padding: same}
            name: a
          - conv: {filters: 6, kernel: 3, padding: same}
            name: b
          - add:
            from: [a, b]
    """)
    error = error_of(path, build=True)
    assert str(error).startswith(f"{path}:7:5: layers[2].add: ")
    assert "(None, 8, 8, 4) from 'a' and (None, 8, 8, 6) from 'b'" in str(error)
    assert "concat" in str(error)


def test_residual_identity_shortcut_with_a_shape_change(write_spec):
    path = write_spec("""
        input: [8, 8, 3]
        layers:
          - residual:
              layers:
                - conv: {filters: 4, kernel: 3, padding: same}
              shortcut: identity
    """)
    error = error_of(path, build=True)
    assert f"{path}:3:5:" in str(error)
    assert "add needs shapes that broadcast" in str(error) and "4 against 3 channels" in str(error)


def test_concat_of_mismatched_spatial_dims(write_spec):
    path = write_spec("""
        input: [8, 8, 3]
        layers:
          - conv: {filters: 4, kernel: 3}
            name: small
          - concat:
            from: [input, small]
    """)
    error = error_of(path, build=True)
    assert str(error).startswith(f"{path}:5:5: layers[1].concat: ")
    assert "(None, 8, 8, 3) from 'input' and (None, 6, 6, 4) from 'small'" in str(error)


def test_shape_error_from_keras_names_the_node(write_spec):
    path = write_spec("""
        input: [4, 4, 1]
        layers:
          - conv: {filters: 4, kernel: 7}
    """)
    error = error_of(path, build=True)
    assert str(error).startswith(f"{path}:3:5: layers[0].conv: conv 'conv1' cannot take input of shape (None, 4, 4, 1)")


def test_file_that_is_not_yaml(write_spec):
    path = write_spec("input: [8, 8\nlayers: {\n")
    error = error_of(path)
    assert str(error).startswith(f"{path}:")
    assert "not valid YAML" in str(error)


def test_unquoted_expression_in_flow_mapping_gets_a_hint(write_spec):
    path = write_spec("""
        params: {w: 2}
        input: [8]
        layers:
          - dense: {units: ${w * 2}}
    """)
    assert 'quote expressions' in str(error_of(path))


def test_empty_file(write_spec):
    path = write_spec("")
    assert str(error_of(path)) == f"{path}:1:1: the file is empty; a spec needs at least `input` and `layers`"


def test_missing_file(tmp_path):
    assert "no such file" in str(error_of(tmp_path / "absent.yaml"))


def test_unknown_top_level_key(write_spec):
    path = write_spec("""
        input: [8]
        layer:
          - dense: {units: 2}
    """)
    error = error_of(path)
    assert str(error).startswith(f"{path}:2:1: layer: unknown key 'layer'; did you mean 'layers'?")


def test_duplicate_names(write_spec):
    path = write_spec("""
        input: [8]
        layers:
          - dense: {units: 2}
            name: head
          - dense: {units: 2}
            name: head
    """)
    assert "the name 'head' is already used" in str(error_of(path))


def test_block_that_uses_itself(write_spec):
    path = write_spec("""
        blocks:
          loop:
            layers:
              - loop
        input: [8]
        layers:
          - loop
    """)
    assert "block 'loop' uses itself (loop -> loop)" in str(error_of(path))


def test_node_with_two_types(write_spec):
    path = write_spec("""
        input: [8]
        layers:
          - {dense: {units: 2}, relu: null}
    """)
    assert "exactly one type key" in str(error_of(path))


def test_cli_prints_one_line_and_exits_1(write_spec, capsys):
    path = write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filter: 4, kernel: 3}
    """)
    assert main(["validate", str(path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "Traceback" not in err
    assert err.startswith(f"{path}:3:12:")


def test_cli_usage_error_exits_2(capsys):
    with pytest.raises(SystemExit) as info:
        main(["summary"])
    assert info.value.code == 2
    with pytest.raises(SystemExit) as info:
        main(["validate", "x.yaml", "--set", "novalue"])
    assert info.value.code == 2
