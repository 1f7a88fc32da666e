"""summary's figures against published ones and the seeds' questions."""

import math

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from builder import build_model
from builder.analysis.model_figures import analyze

from .conftest import SPECS


def test_lenet_first_fc_sees_the_whole_image():
    rows = {row["name"]: row for row in analyze(build_model(SPECS / "lenet5.yaml"))["rows"]}
    assert rows["conv1"]["receptive_field"] == [5, 5] and rows["conv1"]["jump"] == [1, 1]
    assert rows["avgpool2"]["receptive_field"] == [16, 16] and rows["avgpool2"]["jump"] == [4, 4]
    assert rows["dense1"]["receptive_field"] == [32, 32]  # the seeds: "the whole image"
    assert rows["conv1"]["macs"] == 28 * 28 * 6 * 5 * 5


def test_vgg16_macs_and_activation_memory():
    totals = analyze(build_model(SPECS / "vgg16.yaml"))["totals"]
    assert totals["macs"] / 1e9 == pytest.approx(15.5, rel=0.005)
    # 15.2 M float32 values: the per-layer list of the seeds' VGG table (input, convs, pools, FCs)
    assert totals["activation_bytes"] / 1e6 == pytest.approx(60.95, rel=0.01)


def test_a_head_run_on_every_region_counts_once_per_region():
    """Mask R-CNN's mask head runs on each image's 32 regions (regions_to_batch): per input image its
    convolutions cost 32 times one region's, and the two reshapes between are views."""
    rows = {row["name"]: row for row in analyze(build_model(SPECS / "mask_rcnn_shapes.yaml"))["rows"]}
    assert rows["conv3"]["macs"] == 32 * 14 * 14 * 32 * 3 * 3 * 64
    assert rows["conv3"]["activation_bytes"] == 32 * 14 * 14 * 32 * 4
    assert rows["regions_to_batch1"]["activation_bytes"] == rows["masks"]["activation_bytes"] == 0
    assert rows["dense1"]["macs"] == 32 * 6272 * 256  # the box head reads all regions as one example's rows


@pytest.mark.parametrize("overrides, giga_macs", [({"stride_in_3x3": True}, 4.09), (None, 3.86)])
def test_resnet50_macs(overrides, giga_macs):
    """4.09 G is the published figure of torchvision's v1.5; v1 (keras.applications, the paper) is 3.86 G."""
    totals = analyze(build_model(SPECS / "resnet50.yaml", overrides))["totals"]
    assert totals["macs"] / 1e9 == pytest.approx(giga_macs, rel=0.003)


def test_merges_take_the_largest_field_and_transposed_convs_refine_the_jump(write_spec):
    model = build_model(write_spec("""
        input: [32, 32, 3]
        layers:
          - conv: {filters: 4, kernel: 3, strides: 2, padding: same}
            name: down
          - conv: {filters: 4, kernel: 5, padding: same}
            name: wide
          - add:
            from: [down, wide]
          - conv_transpose: {filters: 4, kernel: 2, strides: 2}
    """))
    rows = {row["name"]: row for row in analyze(model)["rows"]}
    assert rows["down"]["receptive_field"] == [3, 3] and rows["wide"]["receptive_field"] == [11, 11]
    assert rows["add1"]["receptive_field"] == [11, 11]
    assert rows["conv_transpose1"]["jump"] == [1, 1]


RESHAPED_SEQUENCE = """
    input: [8, 8, 1]
    layers:
      - conv: {filters: 8, kernel: 3, padding: same}
      - reshape: {target_shape: [64, 8]}
        name: tokens
      - conv1d: {filters: 8, kernel: 3, padding: same}
      - add:
        from: [tokens, conv1d1]
"""


def test_a_reshape_that_keeps_spatial_axes_ends_the_field_and_the_table_says_why(write_spec, capsys):
    from builder.cli import main

    path = write_spec(RESHAPED_SEQUENCE)
    rows = {row["name"]: row for row in analyze(build_model(path))["rows"]}
    assert rows["conv1"]["receptive_field"] == [3, 3]
    assert [rows[name]["receptive_field"] for name in ("tokens", "conv1d1", "add1")] == [None, None, None]
    assert main(["summary", str(path)]) == 0
    table = capsys.readouterr().out
    assert "not tracked after a reshape or permute" in table and "Total params: 280" in table  # 3*3*8+8 and 3*8*8+8


def test_a_reshape_to_a_vector_sees_what_it_flattens(write_spec):
    model = build_model(write_spec("""
        input: [8, 8, 1]
        layers:
          - conv: {filters: 2, kernel: 3, strides: 2, padding: same}
          - reshape: {target_shape: [32]}
          - dense: {units: 4}
    """))
    rows = {row["name"]: row for row in analyze(model)["rows"]}
    assert rows["reshape1"]["receptive_field"] == [3, 3] and rows["dense1"]["receptive_field"] == [3, 3]


def test_fields_go_through_a_model_called_as_a_layer():
    """The autoencoder is its encoder and decoder called as layers: the encoder's row has the
    field of the encoder's own last layer, and every pixel of the decoder's output sees the whole
    32x32 image through the code."""
    from builder import build_models

    models = build_models(SPECS / "autoencoder.yaml")
    whole = {row["name"]: row for row in analyze(models["autoencoder"])["rows"]}
    alone = analyze(models["encoder"])
    assert whole["encoder"]["receptive_field"] == alone["rows"][-1]["receptive_field"] == [35, 35]
    assert whole["encoder"]["macs"] == alone["totals"]["macs"]
    assert all(size >= 32 for size in whole["decoder"]["receptive_field"])


def test_a_model_called_several_times_counts_every_call():
    """A Siamese pair runs its embedding twice per example, a triplet three times."""
    from builder import build_models

    models = build_models(SPECS / "siamese.yaml")
    embedding = analyze(models["embedding"])["totals"]
    for name, calls in (("siamese", 2), ("triplet", 3)):
        row = {row["name"]: row for row in analyze(models[name])["rows"]}["embedding"]
        assert row["macs"] == calls * embedding["macs"] and row["params"] == 200320
        assert row["activation_bytes"] == calls * (embedding["activation_bytes"] - 16 * 16 * 4)  # its input: a view


def test_a_model_called_on_maps_of_two_sizes_counts_each_call_at_its_own():
    """The feature pyramid's one RPN head runs on a 16x16 and an 8x8 map (its own input's size is
    left free)."""
    rows = {row["name"]: row for row in analyze(build_model(SPECS / "faster_rcnn_fpn_shapes.yaml"))["rows"]}
    per_cell = 3 * 3 * 64 * 64 + 64 * 2 + 64 * 8  # the 3x3 convolution, objectness and offsets per anchor pair
    assert rows["rpn_head"]["macs"] == per_cell * (16 * 16 + 8 * 8)
    assert rows["rpn_head"]["activation_bytes"] == 4 * (64 + 2 + 8) * (16 * 16 + 8 * 8)  # the reshapes are views


@pytest.mark.parametrize("spec", ["siamese", "faster_rcnn_fpn_shapes", "googlenet"])
def test_models_built_without_weights_summarize_as_built_ones(spec):
    """`summary` and `plot` build with `initialize=False`, and report the same figures."""
    from builder import build_models, load_spec
    from builder.analysis.summary import summarize

    loaded = load_spec(SPECS / f"{spec}.yaml")
    loaded = load_spec(loaded.file, loaded.test_overrides)  # the figures are compared, not their size
    built, shapes_only = build_models(loaded), build_models(loaded, initialize=False)
    assert {name: summarize(model, loaded) for name, model in shapes_only.items()} == {
        name: summarize(model, loaded) for name, model in built.items()}


@st.composite
def reshaping_networks(draw) -> dict:
    """Small networks that move between images, sequences and vectors: convolutions and pooling
    of the right rank, reshapes among the three, dense layers, and merges with an earlier layer
    of the same shape (add) or the same positions (concat)."""
    shape = [8] * draw(st.sampled_from([1, 2])) + [2]
    shapes, layers = {"input": list(shape)}, []
    for index in range(draw(st.integers(1, 6))):
        name, spatial, total = f"n{index}", len(shape) - 1, math.prod(shape)
        kind = draw(st.sampled_from(["merge", "conv", "reshape", "merge", "pool", "dense", "upsampling"]))
        if kind == "conv" and spatial in (1, 2):
            layer = {"conv" if spatial == 2 else "conv1d": {"filters": 2, "kernel": 3, "padding": "same"}}
            shape = [*shape[:-1], 2]
        elif kind == "pool" and spatial in (1, 2) and min(shape[:-1]) >= 2:
            layer = {"maxpool" if spatial == 2 else "maxpool1d": {"pool": 2}}
            shape = [size // 2 for size in shape[:-1]] + shape[-1:]
        elif kind == "upsampling" and spatial == 2:
            layer = {"upsampling": {"size": 2}}
            shape = [size * 2 for size in shape[:-1]] + shape[-1:]
        elif kind == "reshape" and total % 4 == 0:
            shape = draw(st.sampled_from([[total], [total // 2, 2], [2, total // 4, 2]]))
            layer = {"reshape": {"target_shape": list(shape)}}
        elif kind == "merge":
            previous = list(shapes)[-1]
            beside = [other for other, known in shapes.items()  # the same positions, earlier
                      if known[:-1] == shape[:-1] and len(known) > 1 and other != previous]
            if not beside:
                continue
            partner = draw(st.sampled_from(beside))
            pair = [previous, partner] if draw(st.booleans()) else [partner, previous]
            layer = {"add" if shapes[partner] == shape else "concat": None, "from": pair}
            shape = shape if shapes[partner] == shape else [*shape[:-1], shape[-1] + shapes[partner][-1]]
        else:
            layer = {"dense": {"units": 4}}
            shape = [*shape[:-1], 4]
        layers.append({**layer, "name": name})
        shapes[name] = list(shape)
    return {"input": shapes["input"], "layers": layers or [{"dense": {"units": 4}}]}


@settings(max_examples=80, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(network=reshaping_networks())
def test_summary_of_reshapes_sequences_and_merges_never_fails(tmp_path_factory, network):
    """Every such network is valid and gets a table: no step of the figures fails on a shape."""
    from builder.cli import main

    path = tmp_path_factory.mktemp("network") / "spec.yaml"
    path.write_text(yaml.safe_dump(network, sort_keys=False))
    assert main(["summary", str(path)]) == 0, path.read_text()
