"""Normalization layers that take their statistics from the training data (`normalization:
{adapt: true}` in a spec): adapted in one streamed pass before a new run's first epoch."""

from __future__ import annotations

import keras

import layers
from builder.building.layer_graph import model_graph

from ..errors import DataError


def layers_to_adapt(model) -> list:
    """(layer, the model whose graph holds it) for every normalization layer asking to be adapted,
    in the model and in sub-models it calls."""
    found = []
    for layer in model.layers:
        if isinstance(layer, layers.AdaptedNormalization) and layer.adapt_on_training_data:
            found.append((layer, model))
        elif isinstance(layer, keras.Model):
            found.extend(layers_to_adapt(layer))
    return found


def adapt_normalizations(model, training_inputs) -> list[str]:
    """Set each asking layer's mean and variance from what reaches it when the training images
    (`training_inputs()`: batches of model inputs) flow through the model; returns their names.

    Memory holds one batch: Keras's `adapt` combines the batches' statistics as they come.
    """
    targets = layers_to_adapt(model)
    if not targets:
        return []
    names = ", ".join(layer.name for layer, _ in targets)
    if training_inputs is None:
        raise DataError(f"{names}: `adapt: true` asks for statistics of the training data, which this "
                        "trainer does not stream; give the normalization `mean` and `variance`")
    for layer, owner in targets:
        if owner is not model and not _fed_by_model_input(model, owner):
            raise DataError(f"{layer.name}: `adapt: true` inside '{owner.name}', which is not called on the "
                            "model's input; adapt a normalization in the main model instead")
        if any(layer.input is tensor for tensor in owner.inputs):
            layer.adapt(training_inputs())
        else:
            feeder = keras.Model(owner.inputs, layer.input)
            layer.adapt(feeder.predict_on_batch(batch) for batch in _numpy_batches(training_inputs()))
    return [layer.name for layer, _ in targets]


def _fed_by_model_input(model, owner) -> bool:
    graph, _ = model_graph(model)
    node = graph.get(owner.name)
    return node is not None and all(graph[producer].kind == "Input" for producer in node.inputs)


def _numpy_batches(batches):
    return batches.as_numpy_iterator() if hasattr(batches, "as_numpy_iterator") else iter(batches)
