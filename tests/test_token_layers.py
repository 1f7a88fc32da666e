"""Tokens and attention as spec layer types: outputs against NumPy written here, cross-attention
from a spec's `from`, and the located errors of a wrong input count or an empty slice."""

import numpy as np
import pytest

from builder import SpecError, build_model, load_spec

SEQUENCE = """
name: tokens
inputs: {image: [8, 8, 3], context: [5, 6]}
layers:
  - from: image
    conv: {filters: 4, kernel: 4, strides: 4}     # 2x2 patches of 4x4 pixels
  - reshape: {target_shape: [4, 4]}
  - class_token
  - position_embedding
  - name: mixed
    attention: {heads: 2, key_dim: 3}
  - name: crossed
    from: [mixed, context]
    attention: {heads: 1, key_dim: 2}
  - name: readout
    slice: {index: 0}
outputs: [readout, crossed]
"""


def _softmax(scores):
    scores = scores - scores.max(axis=-1, keepdims=True)
    weights = np.exp(scores)
    return weights / weights.sum(axis=-1, keepdims=True)


def attention_reference(layer, query, value) -> np.ndarray:
    """Multi-head attention as the Transformer paper writes it, from the layer's own weights:
    project, softmax(q k^T / sqrt(d)) v per head, project back."""
    wq, bq, wk, bk, wv, bv, wo, bo = [np.asarray(w) for w in layer.get_weights()]
    q = np.einsum("bsc,chd->bshd", query, wq) + bq
    k = np.einsum("bsc,chd->bshd", value, wk) + bk
    v = np.einsum("bsc,chd->bshd", value, wv) + bv
    weights = _softmax(np.einsum("bqhd,bkhd->bhqk", q, k) / np.sqrt(q.shape[-1]))
    heads = np.einsum("bhqk,bkhd->bqhd", weights, v)
    return np.einsum("bqhd,hdc->bqc", heads, wo) + bo


def test_tokens_and_attention_compute_what_numpy_does(write_spec):
    model = build_model(write_spec(SEQUENCE))
    rng = np.random.default_rng(0)
    image, context = rng.random((2, 8, 8, 3), "float32"), rng.random((2, 5, 6), "float32")
    readout, crossed = model.predict([image, context], verbose=0)

    conv = model.get_layer("conv1")
    patches = np.asarray(conv(image)).reshape(2, 4, 4)
    token = np.asarray(model.get_layer("class_token1").get_weights()[0])
    table = np.asarray(model.get_layer("position_embedding1").get_weights()[0])
    assert token.shape == (1, 1, 4) and table.shape == (5, 4)
    sequence = np.concatenate([np.broadcast_to(token, (2, 1, 4)), patches], axis=1) + table
    mixed = attention_reference(model.get_layer("mixed"), sequence, sequence)
    expected_crossed = attention_reference(model.get_layer("crossed"), mixed, context)
    np.testing.assert_allclose(crossed, expected_crossed, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(readout, expected_crossed[:, 0], rtol=1e-4, atol=1e-5)
    assert crossed.shape == (2, 5, 4)  # the query's length and channels


def test_a_slice_keeps_or_drops_its_axis_as_numpy_indexing_does():
    import keras

    from layers import Slice

    x = np.arange(2 * 6 * 3, dtype="float32").reshape(2, 6, 3)
    for arguments, expected in [({"start": 1, "stop": -1}, x[:, 1:-1]), ({"index": -1}, x[:, -1]),
                                ({"axis": -1, "start": 2}, x[..., 2:]), ({"axis": 2, "index": 0}, x[:, :, 0])]:
        layer = Slice(**arguments)
        np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer(x)), expected)
        assert layer.compute_output_shape(x.shape) == expected.shape


def test_attention_takes_one_to_three_inputs_and_says_so_at_the_line(write_spec):
    path = write_spec(SEQUENCE.replace("from: [mixed, context]", "from: [mixed, context, mixed, context]"))
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}:11:5: ")
    assert "attention takes one to three inputs, `from: [query, value, key]`" in str(caught.value)


def test_an_empty_slice_is_refused_at_its_line_when_the_model_is_built(write_spec):
    path = write_spec(SEQUENCE.replace("slice: {index: 0}", "slice: {start: 9}"))
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert str(caught.value).startswith(f"{path}:14:5: ") and "empty" in str(caught.value)


def test_summary_counts_attention_and_sees_the_whole_sequence_after_self_attention(write_spec):
    from builder.analysis.model_figures import analyze

    rows = {row["name"]: row for row in analyze(build_model(write_spec(SEQUENCE)))["rows"]}
    # heads * (q, k, v projections) + heads * q_len * v_len * (key_dim + value_dim) + output projection
    assert rows["mixed"]["macs"] == 2 * (5 * 4 * 3 * 3) + 2 * 5 * 5 * (3 + 3) + 5 * 2 * 3 * 4
    assert rows["crossed"]["macs"] == (5 * 4 * 2 + 5 * 6 * 2 + 5 * 6 * 2) + 5 * 5 * (2 + 2) + 5 * 2 * 4

    sequence = write_spec("""
        name: sequence
        input: [16, 2]
        layers:
          - conv1d: {filters: 4, kernel: 3, padding: same}
          - attention: {heads: 1, key_dim: 4}
          - einsum_dense: {equation: "abc,cd->abd", output_shape: [16, 8]}
        """, "sequence.yaml")
    rows = {row["name"]: row for row in analyze(build_model(sequence))["rows"]}
    assert rows["conv1d1"]["receptive_field"] == [3] and rows["attention1"]["receptive_field"] == [18]
    assert rows["einsum_dense1"]["macs"] == 16 * 8 * 4
