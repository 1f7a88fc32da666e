"""What Keras's summary does not tell, derived from a built model's layers: multiply-accumulates,
forward activation memory, receptive field and effective stride ("jump").

Shapes are Keras's own (from the built layers); only these figures are computed here.
Receptive fields follow r_out = r_in + (k - 1) * dilation * j_in and j_out = j_in * stride per
spatial axis; a merge takes the largest field of its inputs; global pooling and flatten see the
whole feature map, so every layer after them sees the whole input region of the map. A model called
as a layer passes the field through its own layers. A reshape or permute between spatial maps mixes
their axes, so no field is tracked after it (nor after a merge of fields over different axes, or a
sub-model with several inputs); one to or from a vector keeps the vector's field.
Figures are per example of the model's input: after `regions_to_batch` a layer's batch holds each
image's regions, so its MACs and memory count once per region until `batch_to_regions`.
"""

from __future__ import annotations

import math

from layers import BatchToRegions, RegionsToBatch

from ..building.layer_graph import model_graph
from ..building.model_builder import elements

# Layers whose output is a view of their input at inference: no new memory.
VIEWS = {"Flatten", "Reshape", "Dropout", "SpatialDropout2D", "Identity", "Input", "RegionsToBatch", "BatchToRegions"}
CONV_LIKE = {"Conv2D", "DepthwiseConv2D", "SeparableConv2D", "MaxPooling2D", "AveragePooling2D",
             "Conv1D", "MaxPooling1D", "AveragePooling1D"}


def _shape(tensor) -> tuple:
    return tuple(tensor.shape[1:])


def _pair(value, rank=2) -> tuple:
    return tuple(value) if isinstance(value, (list, tuple)) else (value,) * rank


def macs(layer, in_shape: tuple, out_shape: tuple) -> int:
    """Multiply-accumulates of one forward pass for one example (convolutions and dense layers)."""
    kind = type(layer).__name__
    if kind in ("Conv2D", "Conv1D"):
        return elements(out_shape) * math.prod(layer.kernel_size) * in_shape[-1] // layer.groups
    if kind == "DepthwiseConv2D":
        return elements(out_shape) * math.prod(layer.kernel_size)
    if kind == "SeparableConv2D":
        spatial = elements(out_shape[:-1])
        depthwise = spatial * in_shape[-1] * layer.depth_multiplier * math.prod(layer.kernel_size)
        return depthwise + spatial * in_shape[-1] * layer.depth_multiplier * out_shape[-1]
    if kind == "Conv2DTranspose":
        return elements(in_shape) * math.prod(layer.kernel_size) * out_shape[-1]
    if kind == "Dense":
        return elements(out_shape) * in_shape[-1]
    if kind == "EinsumDense":
        return elements(out_shape) * _contracted(layer.equation, tuple(layer.kernel.shape))
    if kind == "MultiHeadAttention":
        return _attention_macs(layer, _input_shapes(layer), out_shape)
    return 0


def _contracted(equation: str, kernel_shape: tuple) -> int:
    """Values summed for each output value of an einsum with a kernel: the sizes of the kernel's
    axes that the output does not keep."""
    operands, output = equation.replace("...", "").split("->")
    kernel = operands.split(",")[1]
    return math.prod(size for letter, size in zip(kernel, kernel_shape) if letter not in output)


def _attention_macs(layer, shapes: list, out_shape: tuple) -> int:
    """Projections of query, key and value, the scores q k^T and their weighting of v, and the
    output projection (attention over all positions of query and value)."""
    query = shapes[0]
    value = shapes[1] if len(shapes) > 1 else query
    key = shapes[2] if len(shapes) > 2 else value
    queries, values = elements(query[:-1]), elements(value[:-1])
    heads, key_dim, value_dim = layer.num_heads, layer.key_dim, layer.value_dim
    projections = heads * (queries * query[-1] * key_dim + values * key[-1] * key_dim + values * value[-1] * value_dim)
    return projections + heads * queries * values * (key_dim + value_dim) + queries * heads * value_dim * out_shape[-1]


def _input_shapes(layer) -> list:
    value = layer.input
    return [_shape(tensor) for tensor in (value if isinstance(value, (list, tuple)) else [value])]


AXIS_MIXING = {"Reshape", "Permute"}
BOX_READING = {"RegionProposals", "RoIAlign"}  # what a value sees depends on the boxes, not the layer


def _merged(fields: list):
    """The largest field of several over the same axes; None when they cover different axes."""
    fields = [f for f in fields if f is not None]
    if not fields or len({len(f[0]) for f in fields}) > 1:
        return None
    return tuple(max(f[0][a] for f in fields) for a in range(len(fields[0][0]))), fields[0][1]


def _field(layer, kind, inputs: list, in_shape, out_shape):
    """(receptive field, jump) per spatial axis after this layer, or None when not spatial or
    not tracked."""
    merged = _merged(inputs)
    if merged is None:
        return None
    rf, jump = merged
    if kind in BOX_READING:
        return None
    if kind in AXIS_MIXING:  # from or to a vector, every value sees all the vector's field
        vector = (in_shape is not None and len(in_shape) == 1) or (out_shape is not None and len(out_shape) == 1)
        return merged if vector else None
    if kind in CONV_LIKE:
        kernel = _pair(getattr(layer, "kernel_size", None) or layer.pool_size, len(rf))
        if len(kernel) != len(rf):  # a 1-D window over a 2-D field, or the reverse
            return None
        strides = _pair(layer.strides, len(rf))
        dilation = _pair(getattr(layer, "dilation_rate", 1), len(rf))
        rf = tuple(r + (k - 1) * d * j for r, k, d, j in zip(rf, kernel, dilation, jump))
        jump = tuple(j * s for j, s in zip(jump, strides))
    elif kind == "Conv2DTranspose":
        jump = tuple(j / s for j, s in zip(jump, _pair(layer.strides)))
        rf = tuple(r + (k - 1) * j for r, k, j in zip(rf, _pair(layer.kernel_size), jump))
    elif kind in ("UpSampling2D",):
        jump = tuple(j / s for j, s in zip(jump, _pair(layer.size)))
    elif kind == "MultiHeadAttention":  # self-attention: each position sees every position
        if len({id(field) for field in inputs}) > 1:
            return None  # cross-attention: the value's field is over another input's axes
        rf = _whole_map(rf, jump, in_shape)
    elif kind.startswith("Global") or kind == "Flatten":  # one position, seeing the whole map
        rf, jump = _whole_map(rf, jump, in_shape), tuple(j * int(n) for j, n in zip(jump, in_shape[:len(rf)]))
    return rf, jump


def _whole_map(rf: tuple, jump: tuple, in_shape: tuple) -> tuple:
    """The field of a value that sees every position of its input map."""
    return tuple(r + (int(n) - 1) * j for r, n, j in zip(rf, in_shape[:len(rf)], jump))


def _input_shape(layer, fallback) -> tuple:
    """The shape of the (first) tensor a layer was called on; a model called as a layer may
    produce several outputs, so its consumers read their own input rather than its output."""
    try:
        value = layer.input
    except (AttributeError, ValueError):  # never called on a tensor
        value = None
    while isinstance(value, (list, tuple)):
        value = value[0]
    return _shape(value) if value is not None else fallback


def _nested(layer, bytes_per_value: int, input_fields: list, call_shapes: list):
    """(MACs, activation bytes, output field) of a model called as a layer (an encoder inside an
    autoencoder), its inputs' fields those of the layers that feed it. A model called more than
    once (a Siamese pair's embedding; one RPN head on each pyramid level) counts every call, each at
    its own input's shape; its output field is then not tracked."""
    calls = [shape for shape in call_shapes if shape is not None] or [None]
    total_macs = total_bytes = 0
    field = None
    for shape in calls:
        model = layer if shape is None or shape == _shape(layer.inputs[0]) else _called_at(layer, shape)
        if model is None:  # several inputs: counted at the shapes it was built with
            model = layer
        own_field = input_fields[0] if len(input_fields) == 1 else None
        inner, fields, outputs = _analysis(model, bytes_per_value, own_field)
        inputs = sum(row["activation_bytes"] for row in inner["rows"] if row["class"] == "Input")
        total_macs += inner["totals"]["macs"]
        total_bytes += inner["totals"]["activation_bytes"] - inputs
        field = _merged([fields[name] for name in outputs]) if len(calls) == 1 else None
    return total_macs, total_bytes, field


def _called_at(model, shape: tuple):
    """A copy of a single-input model built on inputs of `shape` (its own weights, unused; the
    model itself is left as it is), or None for a model of several inputs."""
    import keras

    if len(model.inputs) != 1:
        return None
    return keras.models.clone_model(model, input_tensors=keras.Input(shape=shape, dtype=model.inputs[0].dtype))


def _computing(layer, kind: str) -> tuple:
    """(the layer whose arithmetic a row counts, its class name): a spectrally normalized layer
    computes as the layer it wraps (which is not a node of the graph)."""
    if kind == "SpectralNormalization":
        return layer.layer, type(layer.layer).__name__
    return layer, kind


def analyze(model, bytes_per_value: int = 4) -> dict:
    """Per-layer rows and totals: params, MACs, activation bytes, receptive field and jump."""
    return _analysis(model, bytes_per_value)[0]


OWN_INPUT = object()  # `_analysis`'s default: fields on the model's own input


def _analysis(model, bytes_per_value: int, input_field=OWN_INPUT) -> tuple[dict, dict, list]:
    """(`analyze`'s report, each layer's field, the output layers' names). Fields are on the
    model's own input, or on the outer model's input through `input_field`, the field of what feeds
    a model called as a layer (None: not tracked, as for a sub-model with several inputs)."""
    graph, outputs = model_graph(model)
    fields: dict = {}
    per_example: dict = {}  # how many of a layer's batch entries one model input makes (regions)
    rows = []
    for name, node in graph.items():
        layer = node.layer
        out_shape = _shape(layer.output) if not isinstance(layer.output, (list, tuple)) else None
        producers = [graph[p] for p in node.inputs]
        in_shape = _input_shape(layer, out_shape) if node.inputs else out_shape
        count = per_example[producers[0].name] if producers else 1
        if isinstance(layer, RegionsToBatch):
            count *= in_shape[0]
        elif isinstance(layer, BatchToRegions):
            count //= out_shape[0]
        per_example[name] = count
        layer, kind = _computing(layer, node.kind)
        incoming = [fields[p.name] for p in producers]
        if node.kind == "Input":
            spatial = len(out_shape) - 1
            if input_field is OWN_INPUT:
                fields[name] = ((1,) * spatial, (1,) * spatial) if spatial >= 1 else None
            else:
                fields[name] = input_field if input_field and spatial in (0, len(input_field[0])) else None
        else:
            fields[name] = _field(layer, kind, incoming, in_shape, out_shape)
        nested = _nested(layer, bytes_per_value, incoming, node.call_shapes) if hasattr(layer, "layers") else None
        if nested:
            fields[name] = nested[2]
        field = fields[name]
        rows.append({
            "name": name,
            "class": node.kind if kind == node.kind else f"{node.kind}({kind})",
            "output_shape": [None, *out_shape] if out_shape is not None else None,
            "params": sum(math.prod(shape) for shape in node.shapes),
            "macs": count * (nested[0] if nested else
                             macs(layer, in_shape, out_shape) if out_shape is not None and node.kind != "Input" else 0),
            "activation_bytes": count * (nested[1] if nested else 0 if node.kind in VIEWS - {"Input"}
                                         or out_shape is None else elements(out_shape) * bytes_per_value),
            "receptive_field": [int(r) if float(r).is_integer() else round(r, 4) for r in field[0]] if field else None,
            "jump": [round(j, 4) for j in field[1]] if field else None,
        })
    report = {
        "rows": rows,
        "totals": {
            "params": sum(row["params"] for row in rows),
            "macs": sum(row["macs"] for row in rows),
            "activation_bytes": sum(row["activation_bytes"] for row in rows),
        },
    }
    return report, fields, outputs
