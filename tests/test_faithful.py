"""Spec-built VGG-16 and ResNet-50 compute exactly what keras.applications' do, given its weights."""

import numpy as np
import pytest

import builder
from builder.building.weight_copy import WeightTransferError, copy_weights

from .conftest import SPECS, forward

CASES = [("vgg16.yaml", "VGG16", "fc2"), ("resnet50.yaml", "ResNet50", "avg_pool")]


@pytest.mark.parametrize("spec_file, application, feature_layer", CASES)
def test_same_outputs_as_keras_applications(spec_file, application, feature_layer):
    import keras

    reference = getattr(keras.applications, application)(weights=None)
    ours = builder.build_model(SPECS / spec_file)
    x = np.random.default_rng(0).uniform(-1, 1, (2, 224, 224, 3)).astype("float32")

    def features(model, layer_name):
        probe = keras.Model(model.input, [model.get_layer(layer_name).output, model.outputs[0]])
        return forward(probe, x)

    ours_feature_layer = ours.layers[-2].name  # the layer feeding the classifier
    before = features(ours, ours_feature_layer)
    copied = copy_weights(reference, ours)
    assert copied == sum(1 for layer in reference.layers if layer.weights)
    expected = features(reference, feature_layer)
    got = features(ours, ours_feature_layer)
    assert np.abs(before[0] - expected[0]).max() > 1e-3  # the comparison can fail: fresh weights differ
    for a, b in zip(got, expected):
        assert np.abs(a - b).max() <= 1e-4
    keras.backend.clear_session()


def test_matching_is_by_structure_not_creation_order():
    """Two branches created in opposite orders still get each other's weights right."""
    import keras

    def net(shortcut_first):
        x = keras.Input((8, 8, 3))
        if shortcut_first:
            short = keras.layers.Conv2D(6, 1, name="short")(x)
            body = keras.layers.Conv2D(6, 3, padding="same", name="body")(
                keras.layers.Conv2D(4, 1, name="reduce")(x))
        else:
            body = keras.layers.Conv2D(6, 3, padding="same", name="b")(
                keras.layers.Conv2D(4, 1, name="r")(x))
            short = keras.layers.Conv2D(6, 1, name="s")(x)
        return keras.Model(x, keras.layers.Add()([short, body] if shortcut_first else [body, short]))

    a, b = net(True), net(False)
    copy_weights(a, b)
    x = np.random.default_rng(0).normal(size=(1, 8, 8, 3)).astype("float32")
    np.testing.assert_allclose(keras.ops.convert_to_numpy(a(x)), keras.ops.convert_to_numpy(b(x)), atol=1e-5)


def test_different_structures_are_refused_with_the_place_named():
    import keras

    def net(units):
        x = keras.Input((4,))
        return keras.Model(x, keras.layers.Dense(2, name="out")(keras.layers.Dense(units, name="hidden")(x)))

    with pytest.raises(WeightTransferError, match="hidden"):
        copy_weights(net(3), net(5))
