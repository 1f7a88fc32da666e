"""Spectrally normalized layers (a spec's `spectral_norm: true`) hold the kernel the network
computes with, on every backend, whenever the weights are read outside a training step.

keras.layers.SpectralNormalization divides the kernel by an estimate of its largest singular
value (one power iteration per training call) and assigns the result to the kernel. TensorFlow
keeps that assignment. JAX's stateless training steps (Keras's `fit` and the adversarial
trainer's `JaxStep`) compute with the normalized kernel but give back only the non-trainable
state, so the kernel variable keeps its unnormalized value, and an inference call (which does not
normalize) would compute with it. Settling divides each such kernel by its largest singular value
(NumPy's SVD, exact where one power iteration is an estimate) and sets the layer's power-iteration
vector to the matching singular vector, at the points where weights leave training: before
validation, at each epoch's end (checkpoints, pictures) and at the end of training. On
TensorFlow it corrects what is left of the estimate's error.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops


def spectral_layers(model) -> list:
    """Every keras.layers.SpectralNormalization in `model`, nested models included."""
    found, pending = [], list(getattr(model, "layers", []))
    while pending:
        layer = pending.pop()
        if isinstance(layer, keras.layers.SpectralNormalization):
            found.append(layer)
        pending.extend(getattr(layer, "layers", []))
    return found


def settle_spectral_norms(model) -> int:
    """Divide each spectrally normalized layer's kernel by its largest singular value; the
    number of such layers. A kernel of zeros (nothing to normalize) is left as it is, as the
    layer itself does."""
    layers = spectral_layers(model)
    for layer in layers:
        kernel = ops.convert_to_numpy(layer.kernel.value)
        if not kernel.any():
            continue
        # the layer's power iteration works on the kernel as a (-1, last axis) matrix
        _, singular_values, right = np.linalg.svd(kernel.reshape(-1, kernel.shape[-1]).astype("float64"),
                                                  full_matrices=False)
        layer.vector_u.assign(right[:1].astype(kernel.dtype))
        layer.kernel.assign((kernel / singular_values[0]).astype(kernel.dtype))
    return len(layers)


class SettleSpectralNorms(keras.callbacks.Callback):
    """`settle_spectral_norms` before validation, after each epoch and at the end of `fit`."""

    def on_test_begin(self, logs=None):
        settle_spectral_norms(self.model)

    def on_epoch_end(self, epoch, logs=None):
        settle_spectral_norms(self.model)

    def on_train_end(self, logs=None):
        settle_spectral_norms(self.model)
