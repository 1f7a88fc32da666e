"""From expanded graphs to Keras: walk each graph once, create layers from the layer-type
registry, call them on KerasTensors, and return Functional `keras.Model`s."""

from __future__ import annotations

import dataclasses
import math
import re

from ..errors import SpecError
from ..language.expand import PROJECTION, SUBMODEL
from ..language.expressions import ExpressionError, Unresolved
from ..language.layer_registry import LAYER_TYPES, wrong_argument_value
from ..language.spec_graph import Graph, Node, Ref

ELEMENTWISE_MERGES = ("add", "subtract", "multiply", "average", "maximum")  # inputs broadcast

# Refused before any weight is allocated; raise them for genuinely larger networks.
MAX_PARAMS = 2_000_000_000  # weights in all models of a spec
MAX_ACTIVATION = 2**28  # elements of one layer's output for one example (1 GiB in float32)


def build_models(spec, max_params: int = MAX_PARAMS, initialize: bool = True) -> dict:
    """Every model of a spec, in definition order (a model may call earlier ones).

    The models are built with their weights' memory deferred, so the parameter count is known
    before anything is allocated: a spec that would need terabytes is refused in milliseconds,
    any other gets its weights initialized as usual. With `initialize=False` they never are: the
    models have their layers, shapes and parameter counts, for counting and inspection (drawing the
    initial weights is most of a large model's build time, seconds on JAX); a weight read from such
    a model is a fresh draw of its initializer each time, never stored.
    """
    import keras

    import layers  # noqa: F401  (registers our custom layers as Keras serializables)

    from .keras_internals import initialize_deferred_variables, own_deferred_variables

    sizes: dict = {}
    with own_deferred_variables():
        with keras.StatelessScope(initialize_variables=False):
            models: dict = {}
            for name, graph in spec.graphs.items():
                models[name] = build_graph(graph, models, sizes)
        _check_parameter_budget(sizes, max_params)
        if initialize:
            initialize_deferred_variables()
    return models


def elements(shape) -> int:
    """Values in a tensor of this shape (free dimensions, None, count as 1)."""
    return math.prod(int(d) for d in shape if d is not None)


def _check_parameter_budget(sizes: dict, max_params: int) -> None:
    total = sum(count for count, _ in sizes.values())
    if total > max_params:
        name, (count, node) = max(sizes.items(), key=lambda item: item[1][0])
        raise SpecError(
            f"the spec would have {total:,} parameters, over the limit of {max_params:,}; the largest "
            f"layer is '{name}' with {count:,}. Check the sizes (or pass a higher max_params)",
            node.location, node.path)


def build_graph(graph: Graph, models: dict, sizes: dict):
    """One graph as a Functional model; records each layer's weight count in `sizes`."""
    import keras

    tensors: dict = {}
    for name, shape in graph.inputs.items():
        _check_activation(shape, graph.input_locations.get(name), f"input '{name}'")
        tensors[name] = keras.Input(shape=shape, name=name)
    model_inputs = [tensors[name] for name in graph.inputs]
    built_groups: dict[str, bool] = {}
    called: dict = {}  # node name -> the node as built and its input tensors
    switches: dict = {}  # a condition's group -> whether it holds, decided at its first node
    for node in graph.nodes:
        bypass = _switched_off(node, tensors, switches, graph.aliases)
        if bypass is not None:
            tensors[node.name] = bypass
            continue
        if node.guard is not None and not _guard_builds(node, tensors, built_groups):
            if node.guard.names_body and node.guard.output == node.name:
                _name_body_output(node, tensors, called, models, sizes)
            continue
        inputs = [_tensor(tensors, ref, node) for ref in node.inputs]
        node = _with_shapes_resolved(node, tensors, graph.aliases)
        tensors[node.name] = _call(node, inputs, models, sizes)
        called[node.name] = (node, inputs)
    outputs = [_tensor(tensors, ref, None) for ref in graph.outputs]
    return keras.Model(
        model_inputs[0] if len(model_inputs) == 1 else model_inputs,
        outputs[0] if len(outputs) == 1 else outputs,
        name=graph.name,
    )


def _shape_reader(node: Node, tensors: dict, aliases: dict):
    """`shape_of(ref)` for `Unresolved.resolve`: a block input's built shape, without the batch."""

    def shape_of(ref) -> tuple:
        name = aliases.get(ref.node, ref.node)
        return tuple(_tensor(tensors, Ref(name, ref.index), node).shape[1:])

    return shape_of


def _switched_off(node: Node, tensors: dict, switches: dict, aliases: dict):
    """The tensor a node stands for when a choice that reads a block's input shape (a `when`, a
    `shortcut`) switches it off, else None. Outer items' choices are decided first."""
    for condition in reversed(node.conditions):
        if condition.group not in switches:
            switch = condition.switch
            try:
                value = switch.resolve(_shape_reader(node, tensors, aliases))
            except ExpressionError as exc:
                raise SpecError(str(exc), switch.location, switch.path, node.calls) from None
            if not isinstance(value, bool):
                raise SpecError(f"`when` must be true or false; got {value!r}", switch.location, switch.path,
                                node.calls)
            switches[condition.group] = value
        if not switches[condition.group]:
            return _tensor(tensors, condition.bypass, node)
    return None


def _with_shapes_resolved(node: Node, tensors: dict, aliases: dict) -> Node:
    """The node with the arguments that read a block's input shape (`${input.channels}`)
    evaluated against the built tensors, and checked as expansion checks the others."""
    if not any(isinstance(value, Unresolved) for value in node.args.values()):
        return node

    shape_of = _shape_reader(node, tensors, aliases)
    args = dict(node.args)
    entry = LAYER_TYPES[node.type] if node.type in LAYER_TYPES else None
    for key, value in node.args.items():
        if not isinstance(value, Unresolved):
            continue
        try:
            args[key] = value.resolve(shape_of)
        except ExpressionError as exc:
            raise SpecError(str(exc), value.location, value.path, node.calls) from None
        arg = entry.args.get(key) if entry is not None else None
        if arg is not None and not arg.check(args[key]):
            raise SpecError(wrong_argument_value(node.type, key, arg, args[key]), value.location, value.path,
                            node.calls)
    return dataclasses.replace(node, args=args)


def _guard_builds(node: Node, tensors: dict, built_groups: dict) -> bool:
    """Build a residual's projection only when the body changed the shape; an optional skip's
    merge only when it did not."""
    guard = node.guard
    if guard.group not in built_groups:
        body = _tensor(tensors, guard.body, node)
        shortcut = _tensor(tensors, guard.shortcut_input, node)
        same = tuple(body.shape) == tuple(shortcut.shape)
        needed = same if guard.build_when_shapes_match else not same
        built_groups[guard.group] = needed
        if not needed:
            tensors[guard.output] = body if guard.build_when_shapes_match else shortcut
    return built_groups[guard.group]


def _name_body_output(merge: Node, tensors: dict, called: dict, models: dict, sizes: dict) -> None:
    """A named call's optional skip was not built: its body's output layer takes the call's name
    (the body's layer is made again under that name; the first one never joins the model), so the
    call's output layer carries exactly its name either way. A body that ends in no layer of its
    own (its input passed through, a model called as a layer, one of several outputs) gets an
    identity layer of that name instead."""
    import keras

    body = merge.guard.body
    built = called.get(body.node) if body.index is None else None
    if built is None or built[0].type in (SUBMODEL, PROJECTION):
        tensors[merge.name] = keras.layers.Identity(name=merge.name)(_tensor(tensors, body, merge))
        return
    node, inputs = built
    sizes.pop(node.name, None)
    output = _call(dataclasses.replace(node, name=merge.name), inputs, models, sizes)
    tensors[node.name] = tensors[merge.name] = output


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
    raise SpecError(message, node.location, node.path, node.calls)


def _call(node: Node, inputs: list, models: dict, sizes: dict):
    if node.type in ELEMENTWISE_MERGES or node.type == "concat":
        _check_merge(node, inputs)
    layer = _make_layer(node, inputs, models)
    try:
        if node.type in LAYER_TYPES:
            output = LAYER_TYPES[node.type].apply(layer, inputs)
        elif node.type == SUBMODEL and len(inputs) > 1:
            output = layer(inputs)
        else:  # a model of one input called as a layer; a projection of its first input (the second sets its shape)
            output = layer(inputs[0])
    except SpecError:
        raise
    except Exception as exc:  # Keras reports shape problems as several exception types
        shapes = ", ".join(_shape(t) for t in inputs)
        raise SpecError(f"{node.type} '{node.name}' cannot take input of shape {shapes}: "
                        f"{_first_line(exc)}{_hint(node, inputs)}", node.location, node.path, node.calls) from None
    for tensor in output if isinstance(output, (list, tuple)) else [output]:
        _check_activation(tuple(tensor.shape[1:]), node.location, f"{node.type} '{node.name}'", node.path,
                          node.calls)
    if node.type != SUBMODEL:
        sizes[node.name] = (sum(elements(w.shape) for w in layer.weights), node)
    return output


def _check_activation(shape, location, what: str, path: str = "", calls: tuple = ()) -> None:
    size = elements(shape)
    if size > MAX_ACTIVATION:
        raise SpecError(f"{what} would output {size:,} values per example ({_fmt((None, *shape))}), over the "
                        f"limit of {MAX_ACTIVATION:,}: check the input size and strides", location, path, calls)


def _make_layer(node: Node, inputs: list, models: dict):
    if node.type == SUBMODEL:
        return models[node.args["model"]]
    if node.type == PROJECTION:
        return _projection(node, inputs)
    entry = LAYER_TYPES[node.type]
    try:
        return entry.factory(**entry.keras_kwargs(node.args), name=node.name)
    except Exception as exc:  # a factory may reject an argument combination
        raise SpecError(f"cannot create {node.type}: {_first_line(exc)}", node.location, node.path,
                        node.calls) from None


def _projection(node: Node, inputs: list):
    """A residual's default shortcut: a 1x1 convolution reaching the body's shape."""
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
    conv = LAYER_TYPES["conv"]  # with what the spec's `defaults: {conv: ...}` gave it
    return conv.factory(**conv.keras_kwargs({**node.args, "filters": int(target.shape[-1]), "kernel": 1,
                                             "strides": strides}), name=node.name)


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
        trouble = _broadcast_problem(shapes[0], shape)
        if trouble:
            pair = _listing([names[0], names[i]], [shapes[0], shape])
            _fail(node, f"{node.type} needs shapes that broadcast (the same rank, each axis equal or 1 in one "
                        f"input); got {pair}: {trouble}")


def _broadcast_problem(first: tuple, second: tuple) -> str:
    """Why two shapes do not broadcast, with the fix that fits; '' when they do."""
    if len(first) != len(second):
        low, high = sorted((len(first), len(second)))
        return (f"rank {low} against rank {high}. Give the smaller input the same rank: "
                "`global_avg_pool: {keepdims: true}` or `reshape: {target_shape: [1, 1, C]}` for a per-channel gate")
    axes = [k for k, (a, b) in enumerate(zip(first, second)) if k > 0 and a != b and 1 not in (a, b)
            and a is not None and b is not None]
    if not axes:
        return ""
    channels = len(first) - 1
    if axes == [channels]:
        return (f"{first[-1]} against {second[-1]} channels. Project one side to the other's channels (a 1x1 "
                "`conv`, or a residual's `projection:`), or use concat, which only needs matching batch and "
                "spatial dims")
    sizes = ", ".join(f"axis {k}: {first[k]} vs {second[k]}" for k in axes)
    return (f"the sizes differ ({sizes}). Match them with strides on one side (a residual's `projection:` with "
            "`strides`), `cropping`/`zero_padding`, `upsampling`, or 'same' padding")


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
