"""`copy_weights` from references that compute between layers with raw operations (a hard sigmoid
written `relu6(x + 3) * (1 / 6)`, a residual `x + y`), from Keras's `Normalization` into the spec's
`normalization`, and its refusals: a Keras 2 model in one line, two networks that differ with both
places, the way to them and the likely fix."""

import numpy as np
import pytest

from builder import build_model, copy_weights
from builder.building.weight_copy import WeightTransferError

from .conftest import forward


def _randomized(model, seed=0):
    rng = np.random.default_rng(seed)
    for weight in model.weights:
        weight.assign(rng.uniform(-1.0, 1.0, size=weight.shape).astype(weight.dtype))
    return model


SQUEEZE_EXCITE_UNIT = """
input: [8, 8, 3]
layers:
  - conv: {filters: 4, kernel: 1}
    name: expand
  - hard_swish: {}
    name: swished
  - global_avg_pool: {keepdims: true}
  - conv: {filters: 4, kernel: 1}
  - activation: {fn: hard_sigmoid}
    name: gate
  - multiply: {}
    from: [swished, gate]
  - add: {}
    from: [multiply1, expand]
  - global_avg_pool
  - dense: {units: 2}
"""


def test_a_reference_computing_with_operations_between_layers_is_paired(write_spec):
    """MobileNetV3's way (keras.applications): the hard sigmoid as `ReLU(6)(x + 3) * (1 / 6)`,
    hard swish as `x * hard_sigmoid(x)`, the residual as `x + y`; the spec writes activations."""
    import keras
    from keras import layers

    def hard_sigmoid(x):
        return layers.ReLU(6.0)(x + 3.0) * (1.0 / 6.0)

    inputs = keras.Input((8, 8, 3))
    expanded = layers.Conv2D(4, 1)(inputs)
    swished = expanded * hard_sigmoid(expanded)
    gate = hard_sigmoid(layers.Conv2D(4, 1)(layers.GlobalAveragePooling2D(keepdims=True)(swished)))
    merged = layers.Multiply()([swished, gate]) + expanded
    reference = _randomized(keras.Model(inputs, layers.Dense(2)(layers.GlobalAveragePooling2D()(merged))))

    spec_built = build_model(write_spec(SQUEEZE_EXCITE_UNIT))
    assert copy_weights(reference, spec_built) == 3
    x = np.random.default_rng(1).normal(size=(2, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(forward(spec_built, x)[0], forward(reference, x)[0], rtol=1e-5, atol=1e-6)


def test_kerass_normalization_pairs_with_the_specs_normalization(write_spec):
    import keras

    inputs = keras.Input((6,))
    normalization = keras.layers.Normalization(axis=-1)
    reference = keras.Model(inputs, keras.layers.Dense(2)(normalization(inputs)))
    _randomized(reference)
    normalization.adapt_variance.assign(np.linspace(0.5, 2.0, 6).astype("float32"))
    normalization.finalize_state()  # Keras computes from its copy of the statistics
    spec_built = build_model(write_spec("""
        input: [6]
        layers:
          - normalization: {}
          - dense: {units: 2}
    """))
    assert copy_weights(reference, spec_built) == 2
    x = np.random.default_rng(2).normal(size=(3, 6)).astype("float32")
    np.testing.assert_allclose(forward(spec_built, x)[0], forward(reference, x)[0], rtol=1e-5, atol=1e-6)


def test_a_keras_2_model_is_refused_in_one_line(write_spec):
    keras_2_model = type("Functional", (), {"__module__": "tf_keras.src.engine.functional"})()
    with pytest.raises(WeightTransferError) as caught:
        copy_weights(keras_2_model, build_model(write_spec(SQUEEZE_EXCITE_UNIT)))
    message = str(caught.value)
    assert message.startswith("the source is a Keras 2 (tf_keras) model (tf_keras.src.engine.functional.Functional): "
                              "copy_weights pairs Keras 3 models") and "\n" not in message


def test_where_two_networks_differ_is_said_with_the_way_there_and_the_fix(write_spec):
    import keras
    from keras import layers

    inputs = keras.Input((8, 8, 3))
    expanded = layers.Conv2D(4, 1, name="expand")(inputs)
    extra = layers.Conv2D(4, 1, name="extra")(expanded)  # a step the spec does not have
    gate = layers.Conv2D(4, 1, name="squeeze")(layers.GlobalAveragePooling2D(keepdims=True)(extra))
    merged = layers.Multiply()([extra, keras.ops.sigmoid(gate)]) + expanded
    reference = keras.Model(inputs, layers.Dense(2, name="head")(layers.GlobalAveragePooling2D()(merged)))
    with pytest.raises(WeightTransferError) as caught:
        copy_weights(reference, build_model(write_spec(SQUEEZE_EXCITE_UNIT)))
    message = str(caught.value)
    # `extra` pairs with the spec's squeeze convolution (both a 1x1 convolution of `expand`), so the
    # two part one step later: the source's squeeze convolution, reached through `extra`, against
    # the spec's gating multiply
    assert message.startswith("the models differ at source layer 'squeeze' (Conv2D, weights [(1, 1, 4, 4), (4,)], "
                              "output (None, 1, 1, 4)), reached by input_layer"), message
    assert " > expand > extra > squeeze, and target layer 'multiply1' (Multiply, no weights, output (None, 8, 8, 4)), "\
           "reached by input > expand > multiply1: a Conv2D where the other model has a Multiply; " in message
    assert "add, remove or change that layer in the spec" in message and "\n" not in message


def _randomized_statistics(model, seed=3):
    """Batch norms with statistics and scales away from their initial 0 and 1, so that copying
    them shows (a network's kernels are random already)."""
    import keras

    rng = np.random.default_rng(seed)
    for layer in model.layers:
        if isinstance(layer, keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.weights
            for weight, low, high in ((gamma, 0.5, 1.5), (beta, -0.2, 0.2), (mean, -0.2, 0.2), (variance, 0.5, 1.5)):
                weight.assign(rng.uniform(low, high, size=weight.shape).astype("float32"))
    return model


def test_mobilenet_v3_small_takes_keras_applications_weights():
    """keras.applications' MobileNetV3 computes its hard sigmoid with raw operations between layers
    (`ReLU(6)(x + 3) * (1 / 6)`); the zoo spec writes `activation: {fn: hard_sigmoid}`."""
    import keras

    from .conftest import SPECS

    reference = keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), weights=None, classes=10)
    _randomized_statistics(reference)
    spec_built = build_model(SPECS / "mobilenet_v3_small.yaml", {"size": 64, "classes": 10})
    assert spec_built.count_params() == reference.count_params()
    assert copy_weights(reference, spec_built) == len([layer for layer in reference.layers if layer.weights])
    x = np.random.default_rng(4).uniform(0, 255, size=(2, 64, 64, 3)).astype("float32")
    np.testing.assert_allclose(forward(spec_built, x)[0], forward(reference, x)[0], rtol=1e-4, atol=1e-6)

    # the same network nested in a Sequential, as a model called as a layer: matched through
    nested = keras.Sequential([keras.Input((64, 64, 3)), _randomized_statistics(
        keras.applications.MobileNetV3Small(input_shape=(64, 64, 3), weights=None, classes=10), seed=7)])
    assert copy_weights(nested, spec_built) == len([layer for layer in reference.layers if layer.weights])
    np.testing.assert_allclose(forward(spec_built, x)[0], forward(nested, x)[0], rtol=1e-4, atol=1e-6)
    keras.backend.clear_session()


def test_efficientnets_normalization_stem_takes_keras_applications_weights(write_spec):
    """keras.applications' EfficientNet normalizes its input with Keras's `Normalization` (mean and
    variance as weights); the spec's `normalization` holds them as weights too."""
    import keras

    full = keras.applications.EfficientNetB0(input_shape=(32, 32, 3), weights=None)
    reference = keras.Model(full.input, full.get_layer("stem_activation").output)
    normalization = next(layer for layer in reference.layers if isinstance(layer, keras.layers.Normalization))
    normalization.adapt_mean.assign(np.array([0.485, 0.456, 0.406], "float32").reshape(normalization.adapt_mean.shape))
    normalization.adapt_variance.assign(
        np.array([0.229, 0.224, 0.225], "float32").reshape(normalization.adapt_variance.shape) ** 2)
    normalization.finalize_state()
    _randomized_statistics(reference)
    spec_built = build_model(write_spec("""
        input: [32, 32, 3]
        layers:
          - rescaling: {scale: 0.00392156862745098}
          - normalization: {}
          - zero_padding: {padding: [[0, 1], [0, 1]]}
          - conv: {filters: 32, kernel: 3, strides: 2, use_bias: false}
          - batchnorm
          - swish
    """))
    assert copy_weights(reference, spec_built) == 3
    x = np.random.default_rng(5).uniform(0, 255, size=(2, 32, 32, 3)).astype("float32")
    np.testing.assert_allclose(forward(spec_built, x)[0], forward(reference, x)[0], rtol=1e-4, atol=1e-5)
    keras.backend.clear_session()


def test_fixed_statistics_pair_with_statistics_held_as_weights_either_way(write_spec):
    import keras

    mean, variance = [0.5, -1.0, 2.0], [4.0, 1.0, 0.25]
    inputs = keras.Input((3,))
    fixed_source = _randomized(keras.Model(inputs, keras.layers.Dense(2)(
        keras.layers.Normalization(mean=mean, variance=variance)(inputs))))
    held = build_model(write_spec("input: [3]\nlayers:\n  - normalization: {}\n  - dense: {units: 2}\n"))
    assert copy_weights(fixed_source, held) == 2  # the dense layer, and the statistics into weights
    x = np.random.default_rng(6).normal(size=(4, 3)).astype("float32")
    np.testing.assert_allclose(forward(held, x)[0], forward(fixed_source, x)[0], rtol=1e-5, atol=1e-6)

    same = build_model(write_spec(f"input: [3]\nlayers:\n  - normalization: {{mean: {mean}, variance: {variance}}}\n"
                                  "  - dense: {units: 2}\n", "same.yaml"))
    assert copy_weights(held, same) == 1  # equal constants: nothing to copy but the dense layer
    np.testing.assert_allclose(forward(same, x)[0], forward(held, x)[0], rtol=1e-5, atol=1e-6)

    other = build_model(write_spec("input: [3]\nlayers:\n  - normalization: {mean: [0, 0, 0], variance: [1, 1, 1]}\n"
                                   "  - dense: {units: 2}\n", "other.yaml"))
    with pytest.raises(WeightTransferError) as caught:
        copy_weights(held, other)
    assert "normalizes with fixed statistics (mean [0.0, 0.0, 0.0], variance [1.0, 1.0, 1.0])" in str(caught.value)
    assert "leave `mean` and `variance` out of the spec's normalization" in str(caught.value)
