"""A residual whose skip is added only where the shapes match (inverted-residual networks): the
identity where it fits, no skip (the body alone) where the body changes the shape."""

import numpy as np

from builder import build_model

SPEC = """
name: inverted
input: [8, 8, 4]
layers:
  - repeat:
      times: 2
      index: i
      layers:
        - residual:
            shortcut: if_shapes_match
            layers:
              - conv: {filters: "${4 if i == 0 else 6}", kernel: 3, padding: same}
            post: [relu]
"""


def test_the_skip_is_added_only_where_the_shapes_match(write_spec):
    import keras

    model = build_model(write_spec(SPEC))
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 1  # the first unit keeps 4 channels; the second goes to 6: no skip, no projection
    assert not [layer for layer in model.layers if layer.name.endswith("projection")]
    assert model.count_params() == (3 * 3 * 4 * 4 + 4) + (3 * 3 * 4 * 6 + 6)

    # The reference: the same two convolutions, by hand.
    first, second = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    x = np.random.default_rng(0).random((2, 8, 8, 4)).astype("float32")
    hidden = np.maximum(np.asarray(first(x)) + x, 0)
    expected = np.maximum(np.asarray(second(hidden)), 0)
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_a_misspelt_mode_is_refused_at_its_line(write_spec):
    import pytest

    from builder import SpecError, load_spec

    path = write_spec(SPEC.replace("if_shapes_match", "if_shape_matches"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}:9:23: layers[0].repeat.layers[0].residual.shortcut: ")
    assert "if_shapes_match" in str(caught.value)
    valid = load_spec(write_spec(SPEC, "valid.yaml"))
    merges = [node for node in valid.graph.nodes if node.type == "add"]
    assert len(merges) == 2 and all(node.guard.build_when_shapes_match for node in merges)


NAMED = """
name: named_skips
input: [8, 8, 4]
blocks:
  inverted:
    params: {filters: 4, strides: 1}
    layers:
      - residual:
          shortcut: if_shapes_match
          layers:
            - conv: {filters: $filters, kernel: 3, strides: $strides, padding: same}
layers:
  - name: keep
    inverted: {}
  - name: shrink
    inverted: {filters: 8, strides: 2}
  - name: bare
    residual:
      shortcut: if_shapes_match
      layers:
        - conv: {filters: 8, kernel: 1}
  - global_avg_pool
"""


def test_a_named_call_with_an_optional_skip_names_its_output_layer_and_adds_none(write_spec):
    """The docs: the output layer of a named call carries exactly its name. With the skip built,
    that is the merge; without it, the body's last layer; never an extra identity layer."""
    import keras

    model = build_model(write_spec(NAMED))
    kinds = {layer.name: type(layer).__name__ for layer in model.layers}
    assert kinds == {"input": "InputLayer", "keep_conv1": "Conv2D", "keep": "Add", "shrink": "Conv2D",
                     "bare_conv1": "Conv2D", "bare": "Add", "global_avg_pool1": "GlobalAveragePooling2D"}
    assert model.count_params() == (3 * 3 * 4 * 4 + 4) + (3 * 3 * 4 * 8 + 8) + (8 * 8 + 8)

    x = np.random.default_rng(0).random((2, 8, 8, 4)).astype("float32")
    kept = np.asarray(model.get_layer("keep_conv1")(x)) + x
    shrunk = np.asarray(model.get_layer("shrink")(kept))
    bare = np.asarray(model.get_layer("bare_conv1")(shrunk)) + shrunk
    np.testing.assert_allclose(model.predict(x, verbose=0), bare.mean(axis=(1, 2)), atol=1e-5)
    assert keras.models.clone_model(model).count_params() == model.count_params()


CHOSEN_SKIP = """
name: chosen_skips
input: [8, 8, 4]
blocks:
  unit:
    params: {filters: 4, strides: 1}
    layers:
      - residual:
          shortcut: "${'identity' if input.channels == filters and strides == 1 else 'none'}"
          layers:
            - conv: {filters: $filters, kernel: 3, strides: $strides, padding: same}
          post: [relu]
layers:
  - unit: {}
  - unit: {filters: 8, strides: 2}
  - residual:
      shortcut: "${'projection' if width > 2 else 'none'}"
      layers:
        - conv: {filters: 6, kernel: 1}
params: {width: 4}
"""


def test_a_shortcut_expression_reads_the_block_input_and_picks_a_mode_per_call(write_spec):
    import keras

    model = build_model(write_spec(CHOSEN_SKIP))
    kinds = [type(layer).__name__ for layer in model.layers]
    assert kinds.count("Add") == 2 and kinds.count("Conv2D") == 4  # unit 1 skips; unit 2 none; the last projects
    assert model.count_params() == (9 * 4 * 4 + 4) + (9 * 4 * 8 + 8) + (8 * 6 + 6) + (8 * 6 + 6)
    assert model.get_layer("unit2_relu1").input is model.get_layer("unit2_conv1").output
    x = np.random.default_rng(0).random((2, 8, 8, 4)).astype("float32")
    first = np.maximum(np.asarray(model.get_layer("unit1_conv1")(x)) + x, 0)
    second = np.maximum(np.asarray(model.get_layer("unit2_conv1")(first)), 0)
    convs = [layer for layer in model.layers if isinstance(layer, keras.layers.Conv2D)]
    expected = np.asarray(convs[2](second)) + np.asarray(convs[3](second))
    np.testing.assert_allclose(model.predict(x, verbose=0), expected, atol=1e-5)


def test_a_shortcut_expression_naming_no_mode_is_refused_at_its_line(write_spec):
    import pytest

    from builder import SpecError, load_spec

    path = write_spec(CHOSEN_SKIP.replace("else 'none'", "else 'nothing'"))
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert str(caught.value).startswith(f"{path}:8:21: blocks.unit.layers[0].residual.shortcut: unknown shortcut "
                                        "'nothing': a shortcut is one of projection, identity, if_shapes_match, "
                                        "none, or a list of layers"), str(caught.value)
    with pytest.raises(SpecError, match="unknown shortcut 'projektion'; did you mean 'projection'"):
        load_spec(write_spec(CHOSEN_SKIP.replace("'projection' if", "'projektion' if"), "misspelt.yaml"))
