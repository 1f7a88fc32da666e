"""Where a classifier looks: heatmaps over one layer's feature maps for a class.

- `cam`: the class activation map of Zhou et al. 2016, exact for a network that ends in global
  average pooling and one dense layer: the dense layer's class weights applied at every position
  of the pooled maps, so its spatial mean is the class score minus the bias.
- `gradcam`: Selvaraju et al. 2017, for any differentiable classifier: the maps weighted by the
  spatial mean of the class score's gradient, then ReLU.
- `gradcam_pp`: Chattopadhay et al. 2018: per-position weights from the gradient's powers (the
  closed form for an exponentiated score), keeping only positive gradients.

The class score is the one before the softmax (a softmax dense layer's logits), as the papers
use. The methods are entries of `trainers.registries.EXPLANATION_METHODS`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import keras
import numpy as np

from ..errors import DataError
from .class_gradients import class_score_gradients

BATCH = 32


@dataclass
class Explainable:
    """A classifier cut at one layer: `forward(images)` gives that layer's maps (N, h, w, k) and
    the model's first output in one pass, `scores(maps)` the class scores before any softmax.
    `cam_weights` is the dense layer's (kernel, bias) when the head is global average pooling
    then that layer, else None and `cam_refusal` says what the head is instead."""

    model: object
    layer: str
    forward: object
    scores: Callable
    cam_weights: tuple | None
    cam_refusal: str | None


@dataclass
class Explanation:
    """Per image: the raw map at the layer's resolution, the class it explains, and the model's
    output (probabilities for a softmax classifier)."""

    method: str
    layer: str
    maps: np.ndarray
    classes: np.ndarray
    outputs: np.ndarray

    def scores(self) -> np.ndarray:
        return self.outputs[np.arange(len(self.classes)), self.classes]

    def heatmaps(self, image_hw: tuple) -> np.ndarray:
        """The maps resized to `image_hw` and scaled to [0, 1] each, for drawing. Bicubic, as in
        Keras's Grad-CAM example (PIL's default): between the cells' centres it follows the slope
        of the neighbouring cells, so a peak need not sit on a cell centre."""
        resized = keras.ops.convert_to_numpy(keras.ops.image.resize(
            self.maps[..., None].astype("float32"), tuple(image_hw), interpolation="bicubic"))[..., 0]
        low = resized.min(axis=(1, 2), keepdims=True)
        span = resized.max(axis=(1, 2), keepdims=True) - low
        return np.where(span > 0, (resized - low) / np.where(span > 0, span, 1.0), 0.0).astype("float32")


class _Graph:
    """A Functional model's layers by name with their producers' names (read from its config, which
    also sees through sub-models called as layers), and the name of its first output's layer."""

    def __init__(self, model):
        from builder.building.layer_graph import model_graph

        self.model = model
        self.nodes, outputs = model_graph(model)
        self.output = outputs[0]

    def layer(self, name: str):
        return self.nodes[name].layer

    def single_input(self, name: str) -> str | None:
        inputs = self.nodes[name].inputs
        return inputs[0] if len(inputs) == 1 else None

    def outer_output(self, name: str):
        """The tensor `name` gives in the model's own graph (a sub-model's `output` is the one
        inside it): the input of a layer that reads it, or the model's output."""
        layer = self.model.get_layer(name)
        if not isinstance(layer, keras.Model):
            return layer.output
        for node in self.nodes.values():
            if name in node.inputs and node.layer is not None:
                inputs = node.layer.input
                return inputs[node.inputs.index(name)] if isinstance(inputs, (list, tuple)) else inputs
        return self.model.outputs[0]


def _is_spatial(tensor) -> bool:
    return len(tensor.shape) == 4


def _is_softmax(layer) -> bool:
    return isinstance(layer, keras.layers.Softmax) or (
        isinstance(layer, keras.layers.Activation) and layer.activation is keras.activations.softmax)


def _score_tensor(graph: _Graph):
    """(the tensor holding the class scores before the softmax, the function from it to them)."""
    last = graph.layer(graph.output)
    if isinstance(last, keras.layers.Dense) and last.activation is keras.activations.softmax:
        def logits(pooled):
            product = keras.ops.matmul(pooled, last.kernel)
            return keras.ops.add(product, last.bias) if last.use_bias else product
        return last.input, logits
    if _is_softmax(last):
        return last.input, lambda scores: scores
    return graph.model.outputs[0], lambda scores: scores


def _default_layer(graph: _Graph) -> str:
    name = graph.output
    while True:
        node = graph.nodes[name]
        if node.kind == "Input":
            raise DataError("the model has no layer with spatial extent (height x width x channels) on the way to "
                            "its output: there is nothing to draw a heatmap over")
        if node.layer is None:
            raise DataError(f"the way back from the output meets an operation ('{name}') before any layer with "
                            "spatial extent: name the layer with --layer")
        if _is_spatial(graph.outer_output(name)):
            return name
        if isinstance(node.layer, keras.Model):
            raise DataError(f"the way back from the output reaches the sub-model '{name}', which ends without "
                            "height and width; heatmaps take a layer of the outer model, so build the network with "
                            "its maps in the outer model (a block rather than a model) to explain it")
        name = graph.single_input(name)
        if name is None:
            raise DataError(f"the way back from the output meets '{node.name}', which merges several inputs, "
                            "before any layer with spatial extent: name the layer with --layer")


def default_layer(model) -> str:
    """The last layer with spatial extent on the way to the (first) output: walking back from the
    output through single-input layers until one outputs maps (height, width, channels)."""
    return _default_layer(_Graph(model))


def _cam_head(graph: _Graph, chosen: str):
    """(kernel, bias) of the dense layer when the head is the chosen layer's maps -> global
    average pooling -> (dropout) -> dense (-> softmax), else (None, the reason)."""
    why = ("cam needs a network that ends in global average pooling and one dense layer (Zhou et al. 2016), "
           "with the maps of the layer before the pooling; ")
    name = graph.output
    if _is_softmax(graph.layer(name)):
        name = graph.single_input(name)
    dense = graph.layer(name) if name else None
    if not isinstance(dense, keras.layers.Dense):
        found = f"'{name}' ({graph.nodes[name].kind})" if name else "a merge"
        return None, why + f"this one ends in {found}: use --method gradcam"
    name = graph.single_input(name)
    while name and isinstance(graph.layer(name), keras.layers.Dropout):
        name = graph.single_input(name)
    pooling = graph.layer(name) if name else None
    if not isinstance(pooling, keras.layers.GlobalAveragePooling2D) or pooling.keepdims:
        found = f"'{name}' ({graph.nodes[name].kind})" if name else "several inputs"
        return None, why + f"its dense layer '{dense.name}' reads {found}: use --method gradcam"
    source = graph.single_input(name)
    if source != chosen:
        return None, why + f"the pooling reads '{source}': leave --layer out or name it"
    weights = dense.get_weights()
    kernel = weights[0]
    bias = weights[1] if dense.use_bias else np.zeros(kernel.shape[1], "float32")
    return (kernel, bias), None


def explainable(model, layer: str | None = None) -> Explainable:
    """`model` cut at `layer` (default: `default_layer`)."""
    if len(model.inputs) != 1:
        raise DataError(f"explanations take a classifier of one image input; this model has {len(model.inputs)}")
    graph = _Graph(model)
    name = layer or _default_layer(graph)
    names = [item.name for item in model.layers]
    if name not in names:
        from builder.errors import did_you_mean

        raise DataError(f"no layer named '{name}' in the model{did_you_mean(name, names)}")
    maps = graph.outer_output(name)
    if not _is_spatial(maps):
        raise DataError(f"layer '{name}' outputs {tuple(maps.shape[1:])}, not maps with height and width: "
                        "name a convolution, pooling or block layer")
    score_tensor, to_scores = _score_tensor(graph)
    try:
        head = keras.Model(maps, score_tensor)
    except ValueError as error:
        raise DataError(f"the output does not depend on layer '{name}' alone (another path bypasses it): name a "
                        f"layer every path to the output goes through ({str(error).splitlines()[0]})") from None
    forward = keras.Model(model.inputs[0], [maps, model.outputs[0]])
    cam_weights, refusal = _cam_head(graph, name)
    return Explainable(model, name, forward, lambda feature_maps: to_scores(head(feature_maps, training=False)),
                       cam_weights, refusal)


def cam(network: Explainable, maps: np.ndarray, classes: np.ndarray) -> np.ndarray:
    if network.cam_weights is None:
        raise DataError(network.cam_refusal)
    kernel, _ = network.cam_weights
    return np.einsum("nhwk,kn->nhw", maps, kernel[:, classes])


def gradcam(network: Explainable, maps: np.ndarray, classes: np.ndarray) -> np.ndarray:
    gradients = class_score_gradients(network.scores, maps, classes)
    weights = gradients.mean(axis=(1, 2))
    return np.maximum(np.einsum("nhwk,nk->nhw", maps, weights), 0.0)


def gradcam_pp(network: Explainable, maps: np.ndarray, classes: np.ndarray) -> np.ndarray:
    gradients = class_score_gradients(network.scores, maps, classes).astype("float64")
    squared = gradients ** 2
    denominator = 2.0 * squared + maps.sum(axis=(1, 2), keepdims=True) * gradients ** 3
    alphas = np.where(denominator != 0.0, squared / np.where(denominator != 0.0, denominator, 1.0), 0.0)
    weights = (alphas * np.maximum(gradients, 0.0)).sum(axis=(1, 2))
    return np.maximum(np.einsum("nhwk,nk->nhw", maps, weights), 0.0).astype("float32")


def explain(model, images: np.ndarray, method: str = "gradcam", layer: str | None = None,
            class_index: int | None = None) -> Explanation:
    """The `method` heatmaps of `images` (prepared as the model's input) for each image's
    predicted class, or `class_index` for all."""
    from ..registries import EXPLANATION_METHODS

    entry = EXPLANATION_METHODS.get(method)
    network = explainable(model, layer)
    maps, classes, outputs = [], [], []
    for start in range(0, len(images), BATCH):
        batch = np.asarray(images[start:start + BATCH], "float32")
        feature_maps, output = (keras.ops.convert_to_numpy(part) for part in network.forward(batch, training=False))
        count = output.shape[-1]
        if class_index is not None and not 0 <= class_index < count:
            raise DataError(f"--class {class_index}: the model has classes 0 to {count - 1}")
        chosen = np.full(len(batch), class_index) if class_index is not None else output.argmax(axis=-1)
        maps.append(np.asarray(entry.heatmaps(network, feature_maps.astype("float32"), chosen.astype("int32")),
                               "float32"))
        classes.append(chosen)
        outputs.append(output)
    return Explanation(method, network.layer, np.concatenate(maps), np.concatenate(classes).astype("int64"),
                       np.concatenate(outputs))
