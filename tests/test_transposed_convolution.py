"""layers.Conv2DTranspose (the spec's `conv_transpose`), computed as a stride-1 convolution and a
pixel shuffle, on the current backend (CI runs TensorFlow and JAX): its outputs against the
definition of a transposed convolution written out in NumPy and against Keras's own layer, its
training step against Keras's layer's, and its place in built and saved models."""

import keras
import numpy as np
import pytest

import layers
from builder import build_model, load_spec

from .conftest import SPECS

# (kernel, strides, padding, input height x width): even and odd kernels, kernels smaller than
# the stride, unequal strides and sides.
CASES = [((4, 4), (2, 2), "same", (4, 5)), ((4, 4), (2, 2), "valid", (4, 4)), ((3, 3), (2, 2), "same", (5, 3)),
         ((3, 3), (2, 2), "valid", (3, 4)), ((2, 2), (2, 2), "valid", (4, 4)), ((1, 1), (2, 2), "same", (3, 3)),
         ((5, 5), (3, 3), "same", (3, 2)), ((3, 3), (1, 1), "same", (4, 4)), ((3, 2), (2, 1), "valid", (3, 5)),
         ((2, 2), (3, 3), "valid", (2, 3)), ((1, 3), (3, 2), "same", (2, 2))]


def transposed_convolution(x, kernel, bias, strides, padding):
    """The definition: every input pixel adds kernel x its value to the output window at
    (i * stride, j * stride), then Keras's padding keeps the central (same) or leading
    (valid) part of the full result."""
    batch, height, width, _ = x.shape
    (size_h, size_w, filters, _), (stride_h, stride_w) = kernel.shape, strides
    full = np.zeros((batch, (height - 1) * stride_h + size_h + stride_h, (width - 1) * stride_w + size_w + stride_w,
                     filters))
    for i in range(height):
        for j in range(width):
            full[:, i * stride_h:i * stride_h + size_h, j * stride_w:j * stride_w + size_w] += np.einsum(
                "bc,hwfc->bhwf", x[:, i, j], kernel)
    rows = [(max(k - s, 0) // 2, n * s) if padding == "same" else (0, n * s + max(k - s, 0))
            for n, k, s in zip((height, width), (size_h, size_w), strides)]
    (top, out_h), (left, out_w) = rows
    return full[:, top:top + out_h, left:left + out_w] + bias


def _pair(kernel, strides, padding, shape, channels=3, filters=2, **options):
    """Our layer, computing by phases on this backend, and Keras's, built on `shape`, with the
    same random weights."""
    ours = layers.Conv2DTranspose(filters, kernel, strides=strides, padding=padding, **options)
    ours.phased_backends = (keras.backend.backend(),)
    theirs = keras.layers.Conv2DTranspose(filters, kernel, strides=strides, padding=padding, **options)
    for layer in (ours, theirs):
        layer.build((None, *shape, channels))
    rng = np.random.default_rng(0)
    weights = [rng.normal(size=w.shape).astype("float32") for w in theirs.get_weights()]
    ours.set_weights(weights)
    theirs.set_weights(weights)
    return ours, theirs, weights


@pytest.mark.parametrize("kernel, strides, padding, shape", CASES)
def test_outputs_equal_the_definition_and_keras_layer(kernel, strides, padding, shape):
    ours, theirs, (weights, bias) = _pair(kernel, strides, padding, shape)
    x = np.random.default_rng(1).normal(size=(2, *shape, 3)).astype("float32")
    got = keras.ops.convert_to_numpy(ours(x))
    assert got.shape == tuple(ours.compute_output_shape(x.shape)) == tuple(theirs(x).shape)
    np.testing.assert_allclose(got, transposed_convolution(x.astype("float64"), weights, bias, strides, padding),
                               atol=1e-4)
    np.testing.assert_allclose(got, keras.ops.convert_to_numpy(theirs(x)), atol=1e-4)


@pytest.mark.parametrize("options", [{"dilation_rate": 2}, {"strides": 2, "output_padding": 1}])
def test_what_the_phases_do_not_cover_computes_as_keras_does(options):
    strides = options.pop("strides", 1)
    ours, theirs, _ = _pair((3, 3), strides, "same", (4, 4), **options)
    x = np.random.default_rng(1).normal(size=(2, 4, 4, 3)).astype("float32")
    refusal = "do not yet support dilation rates larger than 1"
    try:
        expected = keras.ops.convert_to_numpy(theirs(x))
    except Exception as exc:
        # TensorFlow's CPU kernel refuses a dilated transposed convolution on some CPUs and computes
        # it on others (where oneDNN takes it); where Keras's layer is refused, ours is refused too
        if not (options.get("dilation_rate", 1) > 1 and _tensorflow_on_cpu() and refusal in str(exc)):
            raise
        with pytest.raises(Exception, match=refusal):
            ours(x)
        return
    np.testing.assert_allclose(keras.ops.convert_to_numpy(ours(x)), expected, atol=1e-5)


def _tensorflow_on_cpu() -> bool:
    if keras.backend.backend() != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.config.list_logical_devices("GPU")


def test_a_training_step_moves_the_weights_as_keras_layer_does():
    def model(layer):
        inputs = keras.Input((4, 4, 3))
        net = keras.Model(inputs, keras.layers.Flatten()(layer(keras.layers.Conv2D(3, 3, padding="same")(inputs))))
        net.compile(keras.optimizers.SGD(0.1), "mse")
        return net

    ours, theirs, _ = _pair((4, 4), (2, 2), "same", (4, 4), activation="tanh")
    nets = [model(ours), model(theirs)]
    start = nets[1].get_weights()
    nets[0].set_weights(start)
    rng = np.random.default_rng(2)
    x, y = rng.normal(size=(8, 4, 4, 3)).astype("float32"), rng.normal(size=(8, 128)).astype("float32")
    for net in nets:
        net.fit(x, y, batch_size=8, epochs=2, verbose=0, shuffle=False)
    for got, want, before in zip(nets[0].get_weights(), nets[1].get_weights(), start):
        assert not np.allclose(want, before)  # the step moved every weight, the input's too
        np.testing.assert_allclose(got, want, atol=1e-5)


def _all_layers(model):
    for layer in model.layers:
        yield layer
        if hasattr(layer, "layers"):
            yield from _all_layers(layer)


def test_only_jax_computes_by_phases_by_default():
    layer = layers.Conv2DTranspose(2, 4, strides=2, padding="same")
    assert layer._by_phases(keras.KerasTensor((None, 4, 4, 3))) == (keras.backend.backend() == "jax")


def test_specs_build_it_and_saved_models_load_it(tmp_path):
    spec = load_spec(SPECS / "dcgan_digits.yaml", load_spec(SPECS / "dcgan_digits.yaml").test_overrides)
    generator = build_model(spec, model="generator", check_expect=False)
    transposed = [layer for layer in _all_layers(generator) if "Transpose" in type(layer).__name__]
    assert transposed and all(type(layer) is layers.Conv2DTranspose for layer in transposed)
    noise = np.random.default_rng(0).normal(size=(2, *generator.input_shape[1:])).astype("float32")
    generator.save(tmp_path / "generator.keras")
    loaded = keras.saving.load_model(tmp_path / "generator.keras")
    assert any(type(layer) is layers.Conv2DTranspose for layer in _all_layers(loaded))
    np.testing.assert_allclose(keras.ops.convert_to_numpy(loaded(noise)),
                               keras.ops.convert_to_numpy(generator(noise)), atol=1e-6)
