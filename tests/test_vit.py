"""The Vision Transformer spec: the published parameter counts of ViT-Ti/16 and ViT-S/16 (ViT-B/16,
its default, is the zoo's `expect:` figure), and the spec's outputs equal to a Vision Transformer
written here in NumPy from the built model's weights."""

import math

import numpy as np
import pytest

from builder import build_model, load_spec

from .conftest import SPECS
from .test_token_layers import attention_reference

VIT = SPECS / "vit.yaml"


@pytest.mark.parametrize("variant, published", [("Ti", 5_717_416), ("S", 22_050_664)])
def test_published_counts_at_224_with_a_1000_class_head(variant, published):
    import keras

    assert build_model(load_spec(VIT, {"variant": variant})).count_params() == published
    keras.backend.clear_session()


def _layer_norm(x, gamma, beta, epsilon=1e-6):
    return (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + epsilon) * gamma + beta


def _gelu(x):
    return 0.5 * x * (1 + np.vectorize(math.erf)(x / math.sqrt(2)))


def numpy_vit(model, images: np.ndarray, patch: int) -> np.ndarray:
    """Dosovitskiy et al. 2021, eq. 1-4: patches times the embedding matrix, the class token in
    front, positions added; per block x + MSA(LN(x)), x + MLP(LN(x)); LN of the class token's state,
    then the head."""
    import keras

    def weights(layer):
        return [np.asarray(w) for w in layer.get_weights()]

    def of(kind):
        return [layer for layer in model.layers if isinstance(layer, kind)]

    norms, attentions, denses = of(keras.layers.LayerNormalization), of(keras.layers.MultiHeadAttention), \
        of(keras.layers.Dense)
    kernel, bias = weights(model.get_layer("patches"))
    batch, size, _, channels = images.shape
    side, width = size // patch, kernel.shape[-1]
    patches = images.reshape(batch, side, patch, side, patch, channels).transpose(0, 1, 3, 2, 4, 5)
    tokens = patches.reshape(batch, side * side, -1) @ kernel.reshape(-1, width) + bias
    (token,), (table,) = weights(model.get_layer("class_token1")), weights(model.get_layer("position_embedding1"))
    x = np.concatenate([np.broadcast_to(token, (batch, 1, width)), tokens], axis=1) + table
    for block, attention in enumerate(attentions):
        normed = _layer_norm(x, *weights(norms[2 * block]))
        x = x + attention_reference(attention, normed, normed)
        normed = _layer_norm(x, *weights(norms[2 * block + 1]))
        (w1, b1), (w2, b2) = weights(denses[2 * block]), weights(denses[2 * block + 1])
        x = x + _gelu(normed @ w1 + b1) @ w2 + b2
    head_kernel, head_bias = weights(denses[-1])
    logits = _layer_norm(x, *weights(norms[-1]))[:, 0] @ head_kernel + head_bias
    exponentials = np.exp(logits - logits.max(-1, keepdims=True))
    return exponentials / exponentials.sum(-1, keepdims=True)


def test_the_spec_computes_the_papers_vision_transformer():
    spec = load_spec(VIT, {**load_spec(VIT).test_overrides, "depth": 2})
    model = build_model(spec)
    assert [type(layer).__name__ for layer in model.layers].count("MultiHeadAttention") == 2
    assert type(model.get_layer("class_state")).__name__ == "Slice"
    images = np.random.default_rng(0).random((3, *model.input_shape[1:]), dtype="float32")
    expected = numpy_vit(model, images, spec.params["patch"])
    np.testing.assert_allclose(model.predict(images, verbose=0), expected, rtol=1e-4, atol=1e-6)
