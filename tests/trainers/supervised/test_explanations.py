"""Class activation maps, Grad-CAM and Grad-CAM++ against their definitions (CAM's mean is the
class score minus its bias; Grad-CAM is CAM rescaled on such a network; Grad-CAM++'s closed form;
the class score's gradient against finite differences), the sanity check of Adebayo et al. 2018 on
a trained run, the refusals, and the heatmaps of one run on both backends in fresh processes.
CI runs the suite on each backend, so each backend's gradient is tested on its own."""

import os
import subprocess

import keras
import numpy as np
import pytest
from scipy.stats import spearmanr

from builder import build_model
from trainers import run_training
from trainers.data.datasets import generate_shapes
from trainers.errors import DataError
from trainers.run.loop import load_trained_model
from trainers.supervised.explanations import default_layer, explain, explainable

from ...conftest import BUILDER, SPECS

pytestmark = pytest.mark.xdist_group("test_explanations")  # one worker trains the module's run

SMALL = {"size": 32, "width": 4}


def gap_network(seed: int = 0):
    """specs/cam_shapes.yaml, small, with random weights and a bias that is not zero."""
    keras.utils.set_random_seed(seed)
    model = build_model(SPECS / "cam_shapes.yaml", SMALL, check_expect=False)
    dense = model.get_layer("predictions")
    kernel, bias = dense.get_weights()
    dense.set_weights([kernel, np.random.default_rng(seed).normal(size=bias.shape).astype("float32")])
    return model


def shapes(count: int = 6, size: int = 32, seed: int = 3) -> np.ndarray:
    return generate_shapes(count, size, seed=seed)[0]


def test_cam_mean_is_the_class_score_minus_its_bias():
    model, images = gap_network(), shapes()
    result = explain(model, images, "cam")
    network = explainable(model)
    logits = keras.ops.convert_to_numpy(network.scores(network.forward(images)[0]))
    bias = model.get_layer("predictions").get_weights()[1]
    rows = np.arange(len(images))
    np.testing.assert_allclose(result.maps.mean(axis=(1, 2)), logits[rows, result.classes] - bias[result.classes],
                               rtol=1e-5, atol=1e-6)
    assert result.layer == "features" and result.maps.shape == (6, 4, 4)
    np.testing.assert_array_equal(result.classes, np.argmax(keras.ops.convert_to_numpy(model(images)), axis=-1))
    for label in range(3):  # and for any class asked for, not only the predicted one
        chosen = explain(model, images, "cam", class_index=label)
        np.testing.assert_allclose(chosen.maps.mean(axis=(1, 2)), logits[:, label] - bias[label], rtol=1e-5,
                                   atol=1e-6)


def test_gradcam_is_cam_up_to_a_positive_scale_on_a_gap_network():
    """The class score's gradient at every position is the class weight over h * w, so Grad-CAM
    is ReLU(CAM) / (h * w)."""
    model, images = gap_network(1), shapes()
    positive = 0
    for label in range(3):
        cam, gradcam = explain(model, images, "cam", class_index=label), explain(model, images, "gradcam",
                                                                                  class_index=label)
        height, width = cam.maps.shape[1:]
        np.testing.assert_allclose(gradcam.maps * height * width, np.maximum(cam.maps, 0.0), rtol=1e-4, atol=1e-6)
        positive += int((gradcam.maps > 0).sum())
    assert positive > 20, positive


def test_gradcam_pp_is_its_closed_form():
    """Chattopadhay et al.'s weights, written out for a GAP + dense head, where the gradient at
    each position is w_kc / (h * w)."""
    model, images = gap_network(2), shapes()
    result = explain(model, images, "gradcam_pp")
    network = explainable(model)
    maps = keras.ops.convert_to_numpy(network.forward(images)[0]).astype("float64")
    kernel = model.get_layer("predictions").get_weights()[0].astype("float64")
    expected = []
    for activation, label in zip(maps, result.classes):
        gradient = np.broadcast_to(kernel[:, label] / (maps.shape[1] * maps.shape[2]), activation.shape)
        denominator = 2 * gradient ** 2 + activation.sum(axis=(0, 1)) * gradient ** 3
        alpha = np.where(denominator != 0, gradient ** 2 / np.where(denominator != 0, denominator, 1), 0)
        weights = (alpha * np.maximum(gradient, 0)).sum(axis=(0, 1))
        expected.append(np.maximum((activation * weights).sum(axis=-1), 0))
    np.testing.assert_allclose(result.maps, np.asarray(expected), rtol=1e-4, atol=1e-7)


def test_the_class_score_gradient_agrees_with_finite_differences():
    """On LeNet-5, whose head (flatten, three tanh dense layers) makes the gradient vary by
    position: the backend's gradient along a random direction against a central difference."""
    from trainers.supervised.class_gradients import class_score_gradients

    keras.utils.set_random_seed(4)
    model = build_model(SPECS / "lenet5.yaml")
    images = np.random.default_rng(4).uniform(size=(3, 32, 32, 1)).astype("float32")
    network = explainable(model)
    maps = keras.ops.convert_to_numpy(network.forward(images)[0]).astype("float32")
    classes = np.array([0, 4, 9], "int32")
    gradients = class_score_gradients(network.scores, maps, classes)
    direction = np.random.default_rng(5).normal(size=maps.shape).astype("float32")
    step = 1e-2

    def score(shift):
        scores = keras.ops.convert_to_numpy(network.scores(maps + shift * direction))
        return scores[np.arange(3), classes].astype("float64")

    numeric = (score(step) - score(-step)) / (2 * step)
    analytic = (gradients * direction).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(analytic, numeric, rtol=2e-2, atol=1e-4)
    assert np.abs(analytic).min() > 1e-3


def test_the_default_layer_is_the_last_with_height_and_width():
    assert default_layer(gap_network()) == "features"
    lenet = build_model(SPECS / "lenet5.yaml")
    assert default_layer(lenet) == "avgpool2"  # the second pooling, before `flatten`
    resnet = build_model(SPECS / "resnet18.yaml", {"size": 64, "width": 4, "classes": 10}, check_expect=False)
    layer = resnet.get_layer(default_layer(resnet))
    assert len(layer.output.shape) == 4 and resnet.layers[resnet.layers.index(layer) + 1].name.startswith("global")
    assert explain(resnet, np.zeros((2, 64, 64, 3), "float32")).maps.shape == (2, 2, 2)


@pytest.mark.parametrize("method, layer, class_index, message", [
    ("cam", None, None, "cam needs a network that ends in global average pooling and one dense layer"),
    ("gradcam", "avgpol2", None, "no layer named 'avgpol2' in the model; did you mean 'avgpool2'"),
    ("gradcam", "dense1", None, "layer 'dense1' outputs (120,), not maps with height and width"),
    ("gradcam", None, 10, "--class 10: the model has classes 0 to 9"),
])
def test_refusals_name_the_reason(method, layer, class_index, message):
    lenet = build_model(SPECS / "lenet5.yaml")
    with pytest.raises(DataError) as error:
        explain(lenet, np.zeros((1, 32, 32, 1), "float32"), method, layer, class_index)
    assert message in str(error.value), str(error.value)


def test_a_backbone_called_as_a_sub_model_is_explained_at_its_output():
    keras.utils.set_random_seed(6)
    image = keras.Input((16, 16, 3))
    inner = keras.Input((16, 16, 3))
    backbone = keras.Model(inner, keras.layers.Conv2D(5, 3, padding="same", activation="relu")(inner), name="backbone")
    pooled = keras.layers.GlobalAveragePooling2D()(backbone(image))
    model = keras.Model(image, keras.layers.Dense(3, activation="softmax", name="predictions")(pooled))
    images = shapes(4, 16)
    result = explain(model, images, "cam")
    network = explainable(model)
    logits = keras.ops.convert_to_numpy(network.scores(network.forward(images)[0]))
    bias = model.get_layer("predictions").get_weights()[1]
    assert result.layer == "backbone" and result.maps.shape == (4, 16, 16)
    np.testing.assert_allclose(result.maps.mean(axis=(1, 2)), logits[np.arange(4), result.classes] -
                               bias[result.classes], rtol=1e-5, atol=1e-6)


def test_a_network_whose_maps_are_inside_a_sub_model_is_refused_with_the_way_out():
    model = build_model(SPECS / "encoder_classifier.yaml", check_expect=False)
    with pytest.raises(DataError, match="reaches the sub-model 'encoder', which ends without height and width"):
        explain(model, np.zeros((1, 32, 32, 1), "float32"))


def test_a_layer_that_a_skip_bypasses_is_refused():
    resnet = build_model(SPECS / "resnet18.yaml", {"size": 32, "width": 4, "classes": 10}, check_expect=False)
    with pytest.raises(DataError, match="another path bypasses it"):  # the block's shortcut
        explain(resnet, np.zeros((1, 32, 32, 3), "float32"), "gradcam", "stage4_block2_conv1")
    resnet_cam = explain(resnet, np.zeros((1, 32, 32, 3), "float32"), "cam", default_layer(resnet))
    assert resnet_cam.maps.shape == (1, 1, 1)
    assert explain(resnet, np.zeros((1, 32, 32, 3), "float32"), "gradcam", "stem1_maxpool1").maps.shape == (1, 8, 8)
    with pytest.raises(DataError, match="the pooling reads 'stage4_block2': leave --layer out or name it"):
        explain(resnet, np.zeros((1, 32, 32, 3), "float32"), "cam", "stem1_maxpool1")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """specs/cam_shapes.yaml at 32x32, trained briefly on the generated shapes."""
    out = tmp_path_factory.mktemp("runs")
    folder, metrics = run_training(SPECS / "cam_shapes.yaml", overrides={"size": 32, "width": 8},
                                   train_overrides={"epochs": 4, "data": {"dataset": "shapes", "count": 600,
                                                                          "image_size": [32, 32]}},
                                   out=out, verbose=0, check_expect=False)
    return folder, metrics


def test_a_trained_run_draws_its_explanations_and_its_maps_depend_on_its_weights(trained_run):
    """Adebayo et al. 2018's model-randomisation test: the same network with its weights drawn
    afresh gives maps with a rank correlation below 0.5 with the trained ones; the trained maps
    peak on the shape."""
    folder, metrics = trained_run
    assert metrics["test_accuracy"] >= 0.9, metrics
    assert (folder / "explanations.png").stat().st_size > 10_000
    images, _, masks = generate_shapes(24, 32, seed=7)
    trained = explain(load_trained_model(folder), images, "gradcam")
    keras.utils.set_random_seed(11)
    randomised = build_model(SPECS / "cam_shapes.yaml", {"size": 32, "width": 8}, check_expect=False)
    random = explain(randomised, images, "gradcam")
    correlations = [spearmanr(a.ravel(), b.ravel()).statistic for a, b in zip(trained.maps, random.maps)
                    if a.std() > 0 and b.std() > 0]
    assert len(correlations) >= 12 and np.mean(correlations) < 0.5, correlations
    heatmaps = trained.heatmaps((32, 32))
    peaks = [np.unravel_index(np.argmax(heatmap), heatmap.shape) for heatmap in heatmaps]
    on_the_shape = np.mean([mask[row, col] > 0 for mask, (row, col) in zip(masks, peaks)])
    assert on_the_shape >= 0.75, on_the_shape


@pytest.mark.backends_named
def test_explain_gives_the_same_heatmaps_on_both_backends(trained_run, tmp_path):
    """`python -m builder explain` on one run in fresh processes, once per backend."""
    from PIL import Image

    folder, _ = trained_run
    files = []
    for number, image in enumerate(shapes(3, 32, seed=9)):
        files.append(tmp_path / f"shape{number}.png")
        Image.fromarray((image * 255).astype("uint8")).save(files[-1])
    heatmaps = {}
    for backend in ("tensorflow", "jax"):
        result = subprocess.run([*BUILDER, "explain", str(folder), *map(str, files),
                                 "--method", "gradcam_pp", "-o", str(tmp_path / backend)], capture_output=True,
                                text=True, env={**os.environ, "KERAS_BACKEND": backend}, timeout=300)
        assert result.returncode == 0, result.stderr[-3000:]
        assert "gradcam_pp at layer features" in result.stdout, result.stdout
        heatmaps[backend] = np.stack([np.load(tmp_path / backend / f"{number:03d}_shape{number}.npy")
                                      for number in range(3)])
        assert (tmp_path / backend / "explanations.png").is_file()
    assert heatmaps["tensorflow"].shape == (3, 32, 32)
    np.testing.assert_allclose(heatmaps["jax"], heatmaps["tensorflow"], atol=1e-3)
