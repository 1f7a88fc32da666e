"""A built Functional model's layers and connections, read from its serialized config."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class LayerNode:
    name: str
    kind: str  # the layer class name; "Input" for input layers; an operation's class (`x + y`: "Add")
    shapes: tuple  # weight shapes
    inputs: list  # producer names, in argument order (of every call, one call after another)
    layer: object = None  # the Keras layer; None for an operation written with operators
    call_shapes: list = field(default_factory=list)  # per call, its first input's shape without the batch axis


def _first_shape(value):
    """The shape (batch axis left out) of the first tensor in a serialized inbound node, or None."""
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            return tuple(value["config"]["shape"][1:])
        value = list(value.values())
    if isinstance(value, (list, tuple)):
        for item in value:
            shape = _first_shape(item)
            if shape is not None:
                return shape
    return None


def _history_refs(value, refs: list) -> None:
    """Collect producer layer names, in argument order, from a serialized inbound node."""
    if isinstance(value, dict):
        is_tensor = value.get("class_name") == "__keras_tensor__"
        history = value.get("config", {}).get("keras_history") if is_tensor else None
        if history is not None:
            refs.append(history[0])
            return
        for item in value.values():
            _history_refs(item, refs)
    elif isinstance(value, (list, tuple)):
        for item in value:
            _history_refs(item, refs)


def _weight_shapes(layer) -> tuple:
    return tuple(tuple(int(d) for d in w.shape) for w in layer.weights) if layer is not None else ()


def model_graph(model) -> tuple[dict, list]:
    """({name: LayerNode} in topological order, output names) of a Functional model.

    Operations written with Python operators (`x + y`, `keras.ops.relu(x)`) are in the graph
    without being layers: they have no weights and `layer` None.
    """
    config = model.get_config()
    by_name = {layer.name: layer for layer in model.layers}
    layers = {}
    for entry in config["layers"]:
        name = entry["name"]
        refs: list = []
        calls = entry.get("inbound_nodes", [])
        for node in calls:
            _history_refs(node.get("args", []), refs)
        layer = by_name.get(name)
        kind = "Input" if entry["class_name"] == "InputLayer" else entry["class_name"]
        layers[name] = LayerNode(name, kind, _weight_shapes(layer), refs, layer,
                                 [_first_shape(node.get("args", [])) for node in calls])
    declared = config["output_layers"]  # [name, node, index] for one output, else a list of them
    outputs = [declared[0]] if isinstance(declared[0], str) else [item[0] for item in declared]
    return layers, outputs


INLINED_INPUT = "InlinedInput"  # where a model called as a layer took its input: passes it through


def inlined_graph(model, prefix: str = "") -> tuple[dict, list]:
    """`model_graph` with every model called as a layer (a nested `Sequential` or Functional
    model) replaced by its own layers, named `outer/inner`, so two spellings of one network
    (nested or flat) have the same graph."""
    import keras

    if isinstance(model, keras.Sequential):
        layers, outputs = _sequential_graph(model)
    else:
        layers, outputs = model_graph(model)
    result: dict = {}
    stands_for: dict = {}  # a nested model's node -> its output inside
    for name, node in layers.items():
        full = prefix + name
        inputs = [stands_for.get(ref, prefix + ref) for ref in node.inputs]
        if isinstance(node.layer, keras.Model):
            inner, inner_outputs = inlined_graph(node.layer, f"{full}/")
            if len(inner_outputs) != 1:
                raise ValueError(f"'{full}' is a model with {len(inner_outputs)} outputs called as a layer; "
                                 "only single-output sub-models are matched through")
            inner_inputs = [key for key, item in inner.items() if item.kind == "Input"]
            for position, key in enumerate(inner_inputs):
                inner[key] = LayerNode(key, INLINED_INPUT, (), [inputs[position]] if position < len(inputs) else [])
            result.update(inner)
            stands_for[name] = inner_outputs[0]
        else:
            result[full] = LayerNode(full, node.kind, node.shapes, inputs, node.layer)
    return result, [stands_for.get(name, prefix + name) for name in outputs]


def _sequential_graph(model) -> tuple[dict, list]:
    layers = {"input": LayerNode("input", "Input", (), [])}
    previous = "input"
    for layer in model.layers:
        layers[layer.name] = LayerNode(layer.name, type(layer).__name__, _weight_shapes(layer), [previous], layer)
        previous = layer.name
    return layers, [previous]
