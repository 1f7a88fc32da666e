"""The gradient of each image's class score with respect to a layer's feature maps, which
Grad-CAM weighs the maps by: TensorFlow's tape on TensorFlow, `jax.grad` on JAX (Keras has no
backend-neutral gradient)."""

from __future__ import annotations

import keras
import numpy as np

from ..errors import DataError


def class_score_gradients(scores, feature_maps: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """d scores(feature_maps)[i, classes[i]] / d feature_maps[i], for every image i at once:
    images do not interact at inference, so the gradient of the batch's sum is each image's own."""
    backend = keras.backend.backend()
    if backend == "tensorflow":
        return _tensorflow(scores, feature_maps, classes)
    if backend == "jax":
        return _jax(scores, feature_maps, classes)
    raise DataError(f"gradient-based explanations run on the tensorflow and jax backends, not {backend}: "
                    "use --backend tensorflow, or --method cam")


def _chosen(scores, classes):
    return keras.ops.sum(keras.ops.take_along_axis(scores, keras.ops.expand_dims(classes, 1), axis=1))


def _tensorflow(scores, feature_maps, classes):
    import tensorflow as tf

    maps = tf.convert_to_tensor(feature_maps)
    with tf.GradientTape() as tape:
        tape.watch(maps)
        total = _chosen(scores(maps), tf.convert_to_tensor(classes))
    return tape.gradient(total, maps).numpy()


def _jax(scores, feature_maps, classes):
    import jax
    import jax.numpy as jnp

    chosen = jnp.asarray(classes)
    return np.asarray(jax.grad(lambda maps: _chosen(scores(maps), chosen))(jnp.asarray(feature_maps)))
