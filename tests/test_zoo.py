"""Every spec in specs/: validates, builds at full size with its published parameter count,
and runs a forward pass at a small input without NaN."""

import numpy as np
import pytest

from builder import build_model, build_models, load_spec
from builder.analysis.summary import check_expectations

from .conftest import SPECS, ZOO, forward


def _id(path):
    return path.stem


@pytest.mark.parametrize("path", ZOO, ids=_id)
def test_spec_cites_its_paper_and_count(path):
    head = path.read_text().splitlines()[:8]
    assert head[0].startswith("# "), "a zoo spec opens with a comment citing its paper"
    assert any("Reference count:" in line for line in head)


@pytest.mark.parametrize("path", ZOO, ids=_id)
def test_declared_parameter_count(path):
    import keras

    spec = load_spec(path)
    assert spec.expect, f"{path.name} declares no `expect:` figure"
    models = build_models(spec, initialize=False)  # counts need shapes, not millions of drawn weights
    checks = {name: check_expectations(spec, model) for name, model in models.items()}
    assert checks[spec.main] or any(checks.values()), "no figure applies to any model"
    assert all(check["ok"] for figures in checks.values() for check in figures.values()), checks
    keras.backend.clear_session()


@pytest.mark.parametrize("path", ZOO, ids=_id)
def test_forward_pass_at_small_input(path):
    import keras

    spec = load_spec(path)
    small = load_spec(path, spec.test_overrides)
    model = build_model(small)
    rng = np.random.default_rng(0)
    inputs = [rng.uniform(0, 1, (2, *shape)).astype("float32") for shape in small.graph.inputs.values()]
    x = inputs[0]
    outputs = forward(model, inputs if len(inputs) > 1 else x)
    for out in outputs:
        assert out.shape[0] == 2 and np.all(np.isfinite(out))
    trainer = (spec.train or {}).get("trainer", "supervised")
    if trainer in ("supervised", "segmentation"):  # a softmax over classes, per image or per pixel
        for out in outputs:
            np.testing.assert_allclose(out.sum(axis=-1), 1.0, rtol=1e-4)
    elif trainer == "adversarial":  # the generator: latent vectors -> tanh images
        assert outputs[0].ndim == 4 and np.abs(outputs[0]).max() <= 1
    elif trainer == "detection" and len(outputs) in (3, 4):  # two stages: proposals, class logits, box offsets
        (proposals, logits, offsets, *masks), classes = outputs, small.params["classes"]
        regions = small.params["regions"]
        assert proposals.shape[1:] == (regions, 4) and offsets.shape[1:] == (regions, 4)
        assert logits.shape[1:] == (regions, classes + 1)  # background first
        for mask in masks:  # Mask R-CNN: a square mask's logits per class for every region
            assert mask.shape[1] == regions and mask.shape[2] == mask.shape[3] and mask.shape[4] == classes
        size = x.shape[1]
        assert proposals.min() >= 0 and proposals.max() <= size
        assert (proposals[..., 2:] >= proposals[..., :2]).all()
    elif trainer == "detection":  # per anchor: class logits, box offsets; the heads start at a 1% score
        (logits, offsets), classes = outputs, small.params["classes"]
        assert logits.shape[1:] == (offsets.shape[1], classes) and offsets.shape[2] == 4
        assert abs(float(np.mean(1 / (1 + np.exp(-logits)))) - 0.01) < 0.005
    elif trainer == "metric":  # the Siamese pair: one distance per pair, between unit vectors
        assert outputs[0].shape == (2, 1) and 0 <= outputs[0].min() and outputs[0].max() <= 2 + 1e-5
    else:  # reconstruction, vae: the first output is an image of the input's shape, in [0, 1]
        assert outputs[0].shape == x.shape and outputs[0].min() >= 0 and outputs[0].max() <= 1
    keras.backend.clear_session()


def test_googlenet_with_auxiliary_classifiers():
    spec = load_spec(SPECS / "googlenet.yaml", {"aux": True})
    model = build_model(spec)
    assert model.count_params() == 13_378_280 == spec.expect["params"]
    assert [t.shape[-1] for t in model.outputs] == [1000, 1000, 1000]
    assert {"aux1_conv1", "aux2"} <= {layer.name for layer in model.layers}
    assert [model.get_layer(name).output.shape[-1] for name in ("inception4e", "aux1", "aux2")] == [832, 1000, 1000]


def test_resnets_share_one_block_library():
    includes = {path.stem: load_spec(path).document.get("include") for path in ZOO if path.stem.startswith("resnet")}
    assert set(includes) == {"resnet18", "resnet34", "resnet50", "resnet101", "resnet152"}
    assert all(value == ["blocks/resnet.yaml"] for value in includes.values())


def test_layer_names_follow_the_spec_path():
    names = [layer.name for layer in build_model(SPECS / "resnet18.yaml", {"size": 32}).layers]
    assert "stage1_block1_conv1" in names and "stage2_block1_shortcut1_conv1" in names
    assert "stage1_block1_shortcut1_conv1" not in names  # identity: the shapes already match
    assert "stem1_conv1" in names and names[-1] == "predictions"
