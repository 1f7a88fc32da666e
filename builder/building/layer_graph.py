"""A built Functional model's layers and connections, read from its serialized config."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class LayerNode:
    name: str
    kind: str  # the layer class name; "Input" for input layers
    shapes: tuple  # weight shapes
    inputs: list  # producer layer names, in argument order


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


def model_graph(model) -> tuple[dict, list]:
    """({layer name: LayerNode} in topological order, output layer names)."""
    config = model.get_config()
    layers = {}
    for entry in config["layers"]:
        name = entry["name"]
        refs: list = []
        for node in entry.get("inbound_nodes", []):
            _history_refs(node.get("args", []), refs)
        layer = model.get_layer(name)
        shapes = tuple(tuple(int(d) for d in w.shape) for w in layer.weights)
        kind = "Input" if entry["class_name"] == "InputLayer" else entry["class_name"]
        layers[name] = LayerNode(name, kind, shapes, refs)
    declared = config["output_layers"]  # [name, node, index] for one output, else a list of them
    outputs = [declared[0]] if isinstance(declared[0], str) else [item[0] for item in declared]
    return layers, outputs
