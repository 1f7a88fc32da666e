"""`spectral_norm: true` (keras.layers.SpectralNormalization around conv, conv_transpose and
dense) on the current backend (CI runs TensorFlow and JAX): what it builds, what `summary` counts,
and that trained weights are normalized on both backends, through `fit` and through the
adversarial trainer's own steps."""

import keras
import numpy as np
import pytest

from builder import build_model, load_spec
from builder.analysis.model_figures import analyze
from builder.errors import SpecError
from trainers import run_training
from trainers.spectral_norm import settle_spectral_norms, spectral_layers

from .conftest import SPECS

CLASSIFIER = """
name: sn_classifier
models:
  net:
    input: [8, 8, 1]
    layers:
      - conv: {filters: 4, kernel: 3, spectral_norm: %(on)s}
      - relu: {}
      - conv_transpose: {filters: 3, kernel: 2, strides: 2, spectral_norm: %(on)s}
      - flatten: {}
      - dense: {units: 10, activation: softmax, spectral_norm: %(on)s}
        name: probabilities
main: net
train:
  trainer: supervised
  data: {dataset: digits}
  epochs: 2
  batch_size: 64
"""


def _spec(tmp_path, on: bool):
    path = tmp_path / f"sn_{on}.yaml"
    path.write_text(CLASSIFIER % {"on": "true" if on else "false"})
    return path


def _largest_singular_value(kernel) -> float:
    kernel = keras.ops.convert_to_numpy(kernel)
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def test_spectral_norm_wraps_the_keras_layer_under_the_spec_name(tmp_path):
    plain, normalized = (build_model(load_spec(_spec(tmp_path, on))) for on in (False, True))
    wrappers = {layer.name: layer for layer in spectral_layers(normalized)}
    assert sorted(wrappers) == ["conv1", "conv_transpose1", "probabilities"]
    assert [type(wrappers[name].layer).__name__ for name in sorted(wrappers)] == ["Conv2D", "Conv2DTranspose",
                                                                                   "Dense"]
    assert wrappers["conv1"].layer.kernel_size == (3, 3) and wrappers["conv_transpose1"].layer.strides == (2, 2)
    assert normalized.get_layer("probabilities") is wrappers["probabilities"]
    # the same trainable weights; one power-iteration vector per layer, as long as its last kernel axis
    assert normalized.count_params() - plain.count_params() == 4 + 4 + 10  # Conv2DTranspose's kernel ends in inputs
    assert sum(int(np.prod(w.shape)) for w in normalized.trainable_weights) == \
        sum(int(np.prod(w.shape)) for w in plain.trainable_weights)
    # summary counts a wrapped layer's arithmetic and receptive field as the layer's own
    plain_rows, normalized_rows = analyze(plain)["rows"], analyze(normalized)["rows"]
    for before, after in zip(plain_rows, normalized_rows):
        assert (after["macs"], after["receptive_field"], after["jump"]) == \
            (before["macs"], before["receptive_field"], before["jump"])
    assert normalized_rows[1]["class"] == "SpectralNormalization(Conv2D)" and normalized_rows[1]["macs"] > 0


def test_spectral_norm_is_refused_on_a_layer_that_has_no_kernel_to_normalize(tmp_path):
    path = tmp_path / "bad.yaml"
    path.write_text(CLASSIFIER.replace("- relu: {}", "- batchnorm: {spectral_norm: true}") % {"on": "false"})
    with pytest.raises(SpecError, match=r"bad.yaml:\d+:\d+.*unknown argument 'spectral_norm' for batchnorm"):
        load_spec(path)


def test_a_trained_model_computes_with_normalized_kernels(tmp_path):
    """JAX's stateless steps do not keep the kernel the layer assigns in training: without
    settling, a JAX run's saved kernels have largest singular values well above 1."""
    folder, metrics = run_training(_spec(tmp_path, True), out=tmp_path / "runs", verbose=0)
    model = keras.saving.load_model(folder / "model.keras")
    sigmas = [_largest_singular_value(layer.kernel) for layer in spectral_layers(model)]
    assert len(sigmas) == 3 and sigmas == pytest.approx([1.0] * 3, abs=1e-4)
    assert metrics["test_accuracy"] > 0.3  # it learnt through the normalized kernels
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    # settled: inference computes what a training call (which normalizes again) computes
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=True)), inference, atol=2e-3)


def test_settling_divides_each_kernel_by_its_largest_singular_value(tmp_path):
    model = build_model(load_spec(_spec(tmp_path, True)))
    layer = model.get_layer("probabilities")
    kernel = keras.ops.convert_to_numpy(layer.kernel) * 7.0
    layer.kernel.assign(kernel)
    assert settle_spectral_norms(model) == 3
    _, singular_values, right = np.linalg.svd(kernel)
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.kernel), kernel / singular_values[0], rtol=1e-5)
    # the power-iteration vector is the top singular vector: the layer's next estimate is exact
    vector = keras.ops.convert_to_numpy(layer.vector_u)[0]
    assert abs(float(vector @ right[0])) == pytest.approx(1.0, abs=1e-5)


def test_the_adversarial_trainer_normalizes_the_discriminator(tmp_path):
    small = load_spec(SPECS / "sngan_digits.yaml").test_overrides
    folder, _ = run_training(SPECS / "sngan_digits.yaml", small, {"epochs": 1, "batch_size": 64},
                             out=tmp_path, verbose=0)
    discriminator = keras.saving.load_model(folder / "discriminator.keras")
    sigmas = [_largest_singular_value(layer.kernel) for layer in spectral_layers(discriminator)]
    assert len(sigmas) == 4 and sigmas == pytest.approx([1.0] * 4, abs=1e-4)
