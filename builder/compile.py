"""Compilation: walk each graph once, create layers from the registry, return keras.Models."""

from __future__ import annotations

import re

from .errors import SpecError
from .expand import PROJECTION, SUBMODEL
from .graph import Graph, Node, Ref
from .registry import layer_types

SAME_SHAPE_MERGES = ("add", "subtract", "multiply", "average", "maximum")


def build_models(spec) -> dict:
    """Every model of a spec, in definition order (a model may call earlier ones)."""
    import layers  # noqa: F401  (registers our custom layers as Keras serializables)

    models: dict = {}
    for name, graph in spec.graphs.items():
        models[name] = compile_graph(graph, models)
    return models


def compile_graph(graph: Graph, models: dict):
    import keras

    tensors: dict = {}
    for name, shape in graph.inputs.items():
        tensors[name] = keras.Input(shape=shape, name=name)
    model_inputs = [tensors[name] for name in graph.inputs]
    built_groups: dict[str, bool] = {}
    for node in graph.nodes:
        if node.guard is not None and not _guard_builds(node, tensors, built_groups):
            continue
        inputs = [_tensor(tensors, ref, node) for ref in node.inputs]
        tensors[node.name] = _call(node, inputs, models)
    outputs = [_tensor(tensors, ref, None) for ref in graph.outputs]
    return keras.Model(
        model_inputs[0] if len(model_inputs) == 1 else model_inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
    )


def _guard_builds(node: Node, tensors: dict, built_groups: dict) -> bool:
    """Build a residual's projection only when the body changed the shape."""
    guard = node.guard
    if guard.group not in built_groups:
        body = _tensor(tensors, guard.body, node)
        shortcut = _tensor(tensors, guard.shortcut_input, node)
        needed = tuple(body.shape) != tuple(shortcut.shape)
        built_groups[guard.group] = needed
        if not needed:
            tensors[guard.output] = shortcut
    return built_groups[guard.group]


def _tensor(tensors: dict, ref: Ref, node: Node | None):
    value = tensors[ref.node]
    if ref.index is None:
        if isinstance(value, (list, tuple)):
            _fail(node, f"'{ref.node}' has {len(value)} outputs: pick one as {ref.node}[0] .. "
                        f"{ref.node}[{len(value) - 1}]")
        return value
    if not isinstance(value, (list, tuple)):
        _fail(node, f"'{ref.node}' has a single output; write '{ref.node}' without [{ref.index}]")
    if ref.index >= len(value):
        _fail(node, f"'{ref.node}' has {len(value)} outputs; [{ref.index}] is out of range")
    return value[ref.index]


def _fail(node: Node | None, message: str):
    if node is None:
        raise SpecError(message)
    raise SpecError(message, node.location, node.path)


def _call(node: Node, inputs: list, models: dict):
    if node.type in SAME_SHAPE_MERGES or node.type == "concat":
        _check_merge(node, inputs)
    layer = _make_layer(node, inputs, models)
    many = node.type == SUBMODEL and len(inputs) > 1 or (
        node.type in layer_types() and layer_types()[node.type].inputs == "many")
    try:
        return layer(inputs if many else inputs[0])
    except Exception as exc:  # Keras reports shape problems as several exception types
        shapes = ", ".join(_shape(t) for t in inputs)
        raise SpecError(f"{node.type} '{node.name}' cannot take input of shape {shapes}: "
                        f"{_first_line(exc)}{_hint(node, inputs)}", node.location, node.path) from None


def _make_layer(node: Node, inputs: list, models: dict):
    if node.type == SUBMODEL:
        return models[node.args["model"]]
    if node.type == PROJECTION:
        return _projection(node, inputs)
    entry = layer_types()[node.type]
    try:
        return entry.factory(**entry.keras_kwargs(node.args), name=node.name)
    except Exception as exc:  # a factory may reject an argument combination
        raise SpecError(f"cannot create {node.type}: {_first_line(exc)}", node.location, node.path) from None


def _projection(node: Node, inputs: list):
    """A residual's default shortcut: a 1x1 convolution reaching the body's shape."""
    import keras

    source, target = inputs
    if len(source.shape) != 4 or len(target.shape) != 4:
        _fail(node, f"the default projection needs 4-D feature maps; got {_shape(source)} and "
                    f"{_shape(target)}: declare `shortcut:` layers")
    strides = []
    for axis in (1, 2):
        size_in, size_out = source.shape[axis], target.shape[axis]
        if not size_in or not size_out or size_in % size_out:
            _fail(node, f"cannot project {_shape(source)} onto {_shape(target)} with a strided 1x1 "
                        "convolution: declare `projection:` layers")
        strides.append(size_in // size_out)
    return keras.layers.Conv2D(target.shape[-1], 1, strides=tuple(strides), name=node.name)


def _check_merge(node: Node, inputs: list) -> None:
    shapes = [tuple(t.shape) for t in inputs]
    names = [str(ref) for ref in node.inputs]
    if node.type == "concat":
        axis = node.args.get("axis", -1)
        rank = len(shapes[0])
        if any(len(s) != rank for s in shapes):
            _fail(node, f"concat needs inputs of the same rank; got {_listing(names, shapes)}")
        axis = axis % rank
        for i, shape in enumerate(shapes[1:], 1):
            if any(a != b for k, (a, b) in enumerate(zip(shapes[0], shape)) if k not in (0, axis)):
                _fail(node, f"concat needs the same batch and spatial dims on every axis but {axis}; "
                            f"got {_listing([names[0], names[i]], [shapes[0], shape])}. Crop or pad "
                            "one side (`cropping`, `zero_padding`) or use 'same' padding")
        return
    for i, shape in enumerate(shapes[1:], 1):
        if shape != shapes[0]:
            _fail(node, f"{node.type} needs identical shapes; got {_listing([names[0], names[i]], [shapes[0], shape])}. "
                        "Add a projection (a residual's `projection:`) or use concat, which only "
                        "needs matching batch and spatial dims")


def _listing(names, shapes) -> str:
    return " and ".join(f"{_fmt(shape)} from '{name}'" for name, shape in zip(names, shapes))


def _fmt(shape) -> str:
    return "(" + ", ".join("None" if d is None else str(d) for d in shape) + ")"


def _shape(tensor) -> str:
    return _fmt(tuple(tensor.shape))


def _first_line(exc: Exception) -> str:
    text = str(exc).strip().splitlines()
    first = next((line.strip() for line in text if line.strip()), type(exc).__name__)
    return re.sub(r"\s+", " ", first)[:300]


def _hint(node: Node, inputs: list) -> str:
    if node.type in ("dense",) and len(inputs[0].shape) > 2:
        return "; add `flatten` or `global_avg_pool` before a dense layer"
    if node.type in ("conv", "maxpool", "avgpool", "depthwise_conv", "separable_conv") and len(inputs[0].shape) == 4:
        return "; the feature map may be smaller than the window: use a larger input or 'same' padding"
    return ""
