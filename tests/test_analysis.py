"""summary's figures against published ones and the seeds' questions."""

import pytest

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
