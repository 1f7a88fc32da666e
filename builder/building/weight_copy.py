"""Copy weights between two models that compute the same network, matched by graph structure.

Creation order is not enough: keras.applications' ResNet-50 creates each block's shortcut before
its body, a spec may do the opposite, and Inception branches can be listed in any order. So each
weighted layer gets a structural fingerprint (its class, weight shapes, and the fingerprints of
what feeds it, order-free for commutative merges), and the two graphs are walked together from
their outputs, pairing layers whose fingerprints agree. Layers without weights (activations,
padding, pooling, dropout) are transparent to the walk, so the two models may spell those
differently; shapes and weighted structure must agree. Operations written with Python operators
(`x + y`) take part like the layers they stand for, and models called as layers (a nested
`Sequential`) are matched through, layer by layer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from .layer_graph import LayerNode, inlined_graph

COMMUTATIVE = {"Add", "Multiply", "Average", "Maximum"}


class WeightTransferError(ValueError):
    """The two models differ in structure; the message names the first place they part."""


def _transparent(layer: LayerNode) -> bool:
    return not layer.shapes and len(layer.inputs) == 1 and layer.kind not in COMMUTATIVE


def _canonical(layers: dict, name: str) -> str:
    while _transparent(layers[name]):
        name = layers[name].inputs[0]
    return name


def _fingerprints(layers: dict) -> dict:
    prints: dict[str, str] = {}
    for name, layer in layers.items():  # serialized layers come in topological order
        if _transparent(layer):
            continue
        children = [prints[_canonical(layers, ref)] for ref in layer.inputs]
        if layer.kind in COMMUTATIVE:
            children.sort()
        text = repr((layer.kind, layer.shapes, children))
        prints[name] = hashlib.sha1(text.encode()).hexdigest()
    return prints


def match_layers(source, target) -> list[tuple[LayerNode, LayerNode]]:
    """Pairs (source layer, target layer) of weighted layers in the same place."""
    try:
        source_layers, source_outputs = inlined_graph(source)
        target_layers, target_outputs = inlined_graph(target)
    except ValueError as exc:
        raise WeightTransferError(str(exc)) from None
    if len(source_outputs) != len(target_outputs):
        raise WeightTransferError(f"the models have {len(source_outputs)} and {len(target_outputs)} outputs")
    source_prints, target_prints = _fingerprints(source_layers), _fingerprints(target_layers)
    pairs, seen = [], set()
    stack = [(_canonical(source_layers, a), _canonical(target_layers, b))
             for a, b in zip(source_outputs, target_outputs)]
    while stack:
        a, b = stack.pop()
        if (a, b) in seen:
            continue
        seen.add((a, b))
        if source_prints[a] != target_prints[b]:
            raise WeightTransferError(_difference(source_layers, target_layers, source_prints, target_prints))
        layer_a, layer_b = source_layers[a], target_layers[b]
        if layer_a.shapes:
            pairs.append((layer_a, layer_b))
        children_a = [_canonical(source_layers, ref) for ref in layer_a.inputs]
        children_b = [_canonical(target_layers, ref) for ref in layer_b.inputs]
        if layer_a.kind in COMMUTATIVE:
            stack.extend(_pair_by_print(children_a, children_b, source_prints, target_prints))
        else:
            stack.extend(zip(children_a, children_b))
    return pairs


def _pair_by_print(children_a, children_b, prints_a, prints_b):
    groups = defaultdict(list)
    for child in children_b:
        groups[prints_b[child]].append(child)
    return [(child, groups[prints_a[child]].pop(0)) for child in children_a]


def _difference(layers_a, layers_b, prints_a, prints_b) -> str:
    """The first weighted layer, in graph order, of each model that has no counterpart in the
    other: where the two structures part (everything after it differs as a consequence)."""
    only_a, only_b = set(prints_a.values()) - set(prints_b.values()), set(prints_b.values()) - set(prints_a.values())
    first_a = next((name for name, print_ in prints_a.items() if print_ in only_a), None)
    first_b = next((name for name, print_ in prints_b.items() if print_ in only_b), None)
    if first_a is None or first_b is None:
        return "the models hold the same layers but connect them differently"
    return (f"the models part at source layer {_describe(layers_a[first_a])} and target layer "
            f"{_describe(layers_b[first_b])}")


def _describe(node: LayerNode) -> str:
    output = getattr(node.layer, "output", None)
    shape = f", output {tuple(output.shape)}" if output is not None and hasattr(output, "shape") else ""
    return f"'{node.name}' ({node.kind}, weights {list(node.shapes)}{shape})"


def copy_weights(source, target) -> int:
    """Copy every weighted layer of `source` into the structurally matching layer of `target`.

    Returns the number of layers copied. Raises `WeightTransferError` if the structures differ.
    """
    pairs = match_layers(source, target)
    for a, b in pairs:
        b.layer.set_weights(a.layer.get_weights())
    return len(pairs)
