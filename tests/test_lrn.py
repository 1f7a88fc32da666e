import numpy as np
import pytest

from layers import LocalResponseNormalization


def reference_lrn(x, depth_radius, bias, alpha, beta):
    """The paper's formula, written out channel by channel."""
    channels = x.shape[-1]
    out = np.empty_like(x)
    for c in range(channels):
        lo, hi = max(0, c - depth_radius), min(channels, c + depth_radius + 1)
        out[..., c] = x[..., c] / (bias + alpha * np.sum(x[..., lo:hi] ** 2, axis=-1)) ** beta
    return out


@pytest.mark.parametrize("depth_radius", [0, 2, 3])
def test_matches_the_formula(depth_radius):
    x = np.random.default_rng(1).normal(size=(2, 3, 3, 7)).astype("float32") * 10
    layer = LocalResponseNormalization(depth_radius=depth_radius, bias=1.0, alpha=0.01, beta=0.75)
    np.testing.assert_allclose(np.asarray(layer(x)), reference_lrn(x, depth_radius, 1.0, 0.01, 0.75),
                               rtol=1e-5)


def test_matches_tensorflow_reference():
    """TensorFlow is a dependency on every backend, so its LRN is the reference on all of them."""
    import tensorflow as tf

    x = np.random.default_rng(2).normal(size=(2, 5, 5, 16)).astype("float32")
    ours = LocalResponseNormalization()(x)
    theirs = tf.nn.local_response_normalization(x, depth_radius=2, bias=2.0, alpha=1e-4, beta=0.75)
    np.testing.assert_allclose(np.asarray(ours), theirs.numpy(), rtol=1e-5)


def test_rejects_a_negative_radius():
    with pytest.raises(ValueError, match="depth_radius"):
        LocalResponseNormalization(depth_radius=-1)
