"""`spectral_norm: true` (layers.SpectralNormalization around conv, conv_transpose and dense) on
the current backend (CI runs TensorFlow and JAX): what it builds, what `summary` counts, what it
computes and differentiates, and training through `fit` and the adversarial trainer's steps."""

import keras
import numpy as np
import pytest

import layers
from builder import build_model, load_spec
from builder.analysis.model_figures import analyze
from builder.errors import SpecError
from trainers import run_training

from ...conftest import SPECS

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


def _spectral_layers(model) -> list:
    """Every spectrally normalized layer in `model`, nested models included."""
    found, pending = [], list(model.layers)
    while pending:
        layer = pending.pop(0)
        found += [layer] if isinstance(layer, keras.layers.SpectralNormalization) else []
        pending += getattr(layer, "layers", [])
    return found


def _largest_singular_value(kernel) -> float:
    kernel = keras.ops.convert_to_numpy(kernel)
    return float(np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]), compute_uv=False)[0])


def test_spectral_norm_wraps_the_keras_layer_under_the_spec_name(tmp_path):
    plain, normalized = (build_model(load_spec(_spec(tmp_path, on))) for on in (False, True))
    wrappers = {layer.name: layer for layer in _spectral_layers(normalized)}
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


def _layer_with(kernel, dense_units=4):
    """A spectrally normalized Dense layer holding `kernel`, its vector u the top singular vector."""
    layer = layers.SpectralNormalization(keras.layers.Dense(dense_units))
    layer.build((None, kernel.shape[0]))
    layer.kernel.assign(kernel)
    layer.vector_u.assign(np.linalg.svd(kernel)[2][:1].astype("float32"))
    return layer


def test_every_call_computes_with_the_kernel_over_its_largest_singular_value():
    rng = np.random.default_rng(0)
    kernel = (3 * rng.normal(size=(6, 4))).astype("float32")
    x = rng.normal(size=(5, 6)).astype("float32")
    layer = _layer_with(kernel)
    sigma = np.linalg.svd(kernel, compute_uv=False)[0]
    bias = keras.ops.convert_to_numpy(layer.layer.bias)
    for training in (False, True):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(layer(x, training=training)), x @ (kernel / sigma) + bias,
                                   rtol=1e-5, atol=1e-5)
    # the kernel variable keeps W: what training updates is W itself
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.kernel), kernel)


def test_a_training_call_moves_u_by_one_power_iteration_and_inference_leaves_it():
    rng = np.random.default_rng(1)
    layer = _layer_with(rng.normal(size=(6, 4)).astype("float32"))
    start = rng.normal(size=(1, 4)).astype("float32")
    layer.vector_u.assign(start)
    x = rng.normal(size=(2, 6)).astype("float32")
    layer(x, training=False)
    np.testing.assert_array_equal(keras.ops.convert_to_numpy(layer.vector_u), start)
    layer(x, training=True)
    kernel = keras.ops.convert_to_numpy(layer.kernel)
    v = start @ kernel.T
    u = (v / np.linalg.norm(v)) @ kernel
    np.testing.assert_allclose(keras.ops.convert_to_numpy(layer.vector_u), u / np.linalg.norm(u), rtol=1e-5)


def _kernel_gradient(layer, x):
    """d sum(layer(x, training=True)) / d kernel, on the current backend."""
    if keras.backend.backend() == "jax":
        import jax

        trainable = [v.value for v in layer.trainable_variables]
        rest = [v.value for v in layer.non_trainable_variables]
        grads = jax.grad(lambda values: layer.stateless_call(values, rest, x, training=True)[0].sum())(trainable)
        return np.asarray(grads[[v is layer.kernel for v in layer.trainable_variables].index(True)])
    import tensorflow as tf

    with tf.GradientTape() as tape:
        total = tf.reduce_sum(layer(x, training=True))
    return tape.gradient(total, layer.kernel.value).numpy()


def test_the_gradient_passes_through_the_normalization_on_every_backend():
    """The paper's gradient, u and v held fixed: G / sigma - <G, W> / sigma^2 v u^T, where G is
    the gradient with respect to the normalized kernel. Keras's own layer gives G / sigma on
    TensorFlow (its assignment stops the gradient) and the paper's on JAX."""
    rng = np.random.default_rng(2)
    kernel = (2 * rng.normal(size=(6, 4))).astype("float32")
    x = rng.normal(size=(5, 6)).astype("float32")
    _, singular_values, right = np.linalg.svd(kernel.astype("float64"))
    sigma, u = singular_values[0], right[0]
    v = kernel @ u / np.linalg.norm(kernel @ u)
    outer = np.repeat(x.sum(axis=0)[:, None], 4, axis=1)  # d sum(x K) / dK
    expected = outer / sigma - np.sum(outer * kernel) / sigma ** 2 * np.outer(v, u)
    np.testing.assert_allclose(_kernel_gradient(_layer_with(kernel), x), expected, rtol=1e-4, atol=1e-5)
    assert np.abs(expected - outer / sigma).max() > 0.05  # the two gradients do differ here


def test_a_trained_model_computes_as_it_trained_and_saves_with_its_normalization(tmp_path):
    folder, metrics = run_training(_spec(tmp_path, True), out=tmp_path / "runs", verbose=0)
    assert metrics["test_accuracy"] > 0.3  # it learnt through the normalized kernels
    model = keras.saving.load_model(folder / "model.keras")
    assert [type(layer) for layer in _spectral_layers(model)] == [layers.SpectralNormalization] * 3
    x = np.random.default_rng(0).uniform(size=(4, 8, 8, 1)).astype("float32")
    inference = keras.ops.convert_to_numpy(model(x, training=False))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(model(x, training=True)), inference, atol=2e-3)
    for layer in _spectral_layers(model):  # what each layer computes with is normalized
        effective = keras.ops.convert_to_numpy(layer.normalized_weights()[1])
        # a power iteration underestimates sigma, so the estimate errs above 1 while u converges
        assert 1.0 - 1e-3 < _largest_singular_value(effective) < 1.25
        assert not np.allclose(effective, keras.ops.convert_to_numpy(layer.kernel), atol=1e-3)  # W itself is kept


def test_the_adversarial_trainer_trains_a_normalized_discriminator(tmp_path):
    small = load_spec(SPECS / "sngan_digits.yaml").test_overrides
    folder, metrics = run_training(SPECS / "sngan_digits.yaml", small, {"epochs": 1, "batch_size": 64},
                                   out=tmp_path, verbose=0)
    assert np.isfinite(metrics["final_d_loss"])
    discriminator = keras.saving.load_model(folder / "discriminator.keras")
    normalized = _spectral_layers(discriminator)
    assert len(normalized) == 4
    for layer in normalized:
        effective = keras.ops.convert_to_numpy(layer.normalized_weights()[1])
        assert 1.0 - 1e-3 < _largest_singular_value(effective) < 1.25
