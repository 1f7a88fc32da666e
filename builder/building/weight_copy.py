"""Copy weights between two models that compute the same network, matched by graph structure.

Creation order is not enough: keras.applications' ResNet-50 creates each block's shortcut before
its body, a spec may do the opposite, and Inception branches can be listed in any order. So each
weighted layer gets a structural fingerprint (its class, weight shapes, and the fingerprints of
what feeds it, order-free for commutative merges), and the two graphs are walked together from
their outputs, pairing layers whose fingerprints agree. Layers without weights (activations,
padding, pooling, dropout), and any step without weights computed from one tensor alone
(`x + 3`, `relu6(x + 3) * (1 / 6)`, `x * hard_sigmoid(x)`), are transparent to the walk, so the
two models may spell those differently; shapes and weighted structure must agree. Operations
written with Python operators between two tensors (`x + y`) take part like the layers they stand
for, a subclass of a Keras layer counts as that layer, and models called as layers (a nested
`Sequential`) are matched through, layer by layer.
"""

from __future__ import annotations

import hashlib
from collections import defaultdict

from ..errors import BlueprintError
from .layer_graph import INLINED_INPUT, LayerNode, inlined_graph

COMMUTATIVE = {"Add", "Multiply", "Average", "Maximum"}
PATH_STEPS = 4  # layers named on the way from the input to where two models part


class WeightTransferError(BlueprintError, ValueError):
    """The two models differ in structure (the message says where, what differs and the likely fix),
    or one of them is not a Keras 3 model."""


def _kind(node: LayerNode) -> str:
    """The class a layer is matched as: a subclass of a Keras layer counts as that layer (the
    spec's `normalization` with its statistics as weights is Keras's `Normalization`); a layer of
    its own, derived from Keras's base `Layer` alone, by its own name."""
    if node.layer is None or node.kind in ("Input", INLINED_INPUT):  # an input is an input, layer or not
        return node.kind
    keras_class = next((base for base in type(node.layer).__mro__ if base.__module__.startswith("keras.")),
                       type(node.layer))
    return node.kind if keras_class.__name__ in ("Layer", "Operation") else keras_class.__name__


NORMALIZATION = "Normalization"  # statistics as weights or as constants: paired on their own


def _canonical_names(layers: dict) -> dict:
    """Each layer's stand-in: itself, or, for a weightless step computed from one tensor alone (an
    activation, padding, pooling, dropout, `x + 3`, `x * relu6(x + 3) / 6`) and for an input
    normalization, the stand-in of that tensor's producer. The two models may spell those steps
    differently."""
    canonical: dict[str, str] = {}
    for name, layer in layers.items():  # topological order
        producers = {canonical[ref] for ref in layer.inputs}
        passes = not layer.shapes or _kind(layer) == NORMALIZATION
        canonical[name] = producers.pop() if passes and len(producers) == 1 else name
    return canonical


def _fingerprints(layers: dict, canonical: dict) -> dict:
    prints: dict[str, str] = {}
    for name, layer in layers.items():
        if canonical[name] != name:
            continue
        children = [prints[canonical[ref]] for ref in layer.inputs]
        if layer.kind in COMMUTATIVE:
            children.sort()
        text = repr((_kind(layer), layer.shapes, children))
        prints[name] = hashlib.sha1(text.encode()).hexdigest()
    return prints


def _keras3_model(model, role: str) -> None:
    import keras

    if not isinstance(model, keras.Model):
        kind = f"{type(model).__module__}.{type(model).__name__}"
        parts = type(model).__module__.split(".")
        old = parts[0] == "tf_keras" or "engine" in parts  # Keras 2 kept its Model in an `engine` package
        raise WeightTransferError(
            f"the {role} is {'a Keras 2 (tf_keras) model' if old else 'not a Keras model'} ({kind}): copy_weights "
            "pairs Keras 3 models; rebuild it with Keras 3 (keras.applications, a spec, or your own code)")


def match_layers(source, target) -> list[tuple[LayerNode, LayerNode]]:
    """Pairs (source layer, target layer) of weighted layers in the same place, normalizations
    (`keras.layers.Normalization` and its subclasses) paired in graph order among themselves."""
    _keras3_model(source, "source")
    _keras3_model(target, "target")
    try:
        source_layers, source_outputs = inlined_graph(source)
        target_layers, target_outputs = inlined_graph(target)
    except ValueError as exc:
        raise WeightTransferError(str(exc)) from None
    if len(source_outputs) != len(target_outputs):
        raise WeightTransferError(f"the models have {len(source_outputs)} and {len(target_outputs)} outputs")
    source_names, target_names = _canonical_names(source_layers), _canonical_names(target_layers)
    source_prints = _fingerprints(source_layers, source_names)
    target_prints = _fingerprints(target_layers, target_names)
    pairs, seen = [], set()
    stack = [(source_names[a], target_names[b]) for a, b in zip(source_outputs, target_outputs)]
    while stack:
        a, b = stack.pop()
        if (a, b) in seen:
            continue
        seen.add((a, b))
        if source_prints[a] != target_prints[b]:
            raise WeightTransferError(_difference(source_layers, target_layers, source_prints, target_prints,
                                                  source_names, target_names))
        layer_a, layer_b = source_layers[a], target_layers[b]
        if layer_a.shapes:
            pairs.append((layer_a, layer_b))
        children_a = [source_names[ref] for ref in layer_a.inputs]
        children_b = [target_names[ref] for ref in layer_b.inputs]
        if layer_a.kind in COMMUTATIVE:
            stack.extend(_pair_by_print(children_a, children_b, source_prints, target_prints))
        else:
            stack.extend(zip(children_a, children_b))
    return pairs + _normalization_pairs(source_layers, target_layers)


def _normalization_pairs(source_layers: dict, target_layers: dict) -> list:
    source = [node for node in source_layers.values() if _kind(node) == NORMALIZATION]
    target = [node for node in target_layers.values() if _kind(node) == NORMALIZATION]
    if len(source) != len(target):
        raise WeightTransferError(
            f"the source normalizes its inputs with {len(source)} Normalization layers and the target with "
            f"{len(target)}: add or remove the spec's `normalization`")
    return list(zip(source, target))


def _statistics(node: LayerNode) -> tuple:
    """(mean, variance) of a Normalization, held as weights or given as numbers."""
    import numpy as np

    layer = node.layer
    if node.shapes:
        return np.asarray(layer.adapt_mean), np.asarray(layer.adapt_variance)
    config = layer.get_config()
    return np.asarray(config["mean"], "float32"), np.asarray(config["variance"], "float32")


def _copy_normalization(a: LayerNode, b: LayerNode) -> bool:
    """Bring the target's statistics to the source's; False where both are the same constants
    (nothing to copy). Refuses fixed target statistics that differ from the source's."""
    import numpy as np

    mean, variance = _statistics(a)
    if not b.shapes:
        fixed_mean, fixed_variance = _statistics(b)
        if not (np.allclose(np.ravel(mean), np.ravel(fixed_mean)) and
                np.allclose(np.ravel(variance), np.ravel(fixed_variance))):
            raise WeightTransferError(
                f"the target's {_describe(b)} normalizes with fixed statistics (mean {np.ravel(fixed_mean).tolist()}, "
                f"variance {np.ravel(fixed_variance).tolist()}) and the source's {_describe(a)} with others (mean "
                f"{np.ravel(mean).tolist()}, variance {np.ravel(variance).tolist()}): leave `mean` and `variance` "
                "out of the spec's normalization to hold them as weights, or write the source's")
        return False
    b.layer.adapt_mean.assign(np.reshape(mean, b.layer.adapt_mean.shape))
    b.layer.adapt_variance.assign(np.reshape(variance, b.layer.adapt_variance.shape))
    b.layer.finalize_state()  # Keras's own Normalization computes from its copy of the statistics
    return True


def _pair_by_print(children_a, children_b, prints_a, prints_b):
    groups = defaultdict(list)
    for child in children_b:
        groups[prints_b[child]].append(child)
    return [(child, groups[prints_a[child]].pop(0)) for child in children_a]


def _difference(layers_a, layers_b, prints_a, prints_b, names_a, names_b) -> str:
    """Where the two structures part, read as the first weighted or merging layer, in graph order,
    of each model that has no counterpart in the other (everything after it differs as a
    consequence): both layers, the way to each from the input, what differs and the likely fix."""
    only_a, only_b = set(prints_a.values()) - set(prints_b.values()), set(prints_b.values()) - set(prints_a.values())
    first_a = next((name for name, print_ in prints_a.items() if print_ in only_a), None)
    first_b = next((name for name, print_ in prints_b.items() if print_ in only_b), None)
    if first_a is None or first_b is None:
        return ("the models hold the same layers but connect them differently: check which layers each merge "
                "(add, concat, multiply) takes")
    a, b = layers_a[first_a], layers_b[first_b]
    return (f"the models differ at source layer {_describe(a)}, reached by {_way(layers_a, names_a, first_a)}, "
            f"and target layer {_describe(b)}, reached by {_way(layers_b, names_b, first_b)}: "
            f"{_what_differs(a, b, names_a, names_b)}")


def _what_differs(a: LayerNode, b: LayerNode, names_a: dict, names_b: dict) -> str:
    kind_a, kind_b = _kind(a), _kind(b)
    if kind_a == kind_b and a.shapes != b.shapes:
        return (f"both are {kind_a} layers, with weights of other shapes; the widths (filters, units) or "
                "kernel sizes differ, so set the spec's params to the source's")
    if kind_a == kind_b:
        inputs_a, inputs_b = len({names_a[ref] for ref in a.inputs}), len({names_b[ref] for ref in b.inputs})
        return (f"both are {kind_a} layers, taking {inputs_a} and {inputs_b} distinct inputs; the layers that "
                "feed them differ, so check the `from:` of this node and the skips around it")
    return (f"{_article(kind_a)} {kind_a} where the other model has {_article(kind_b)} {kind_b}; one model "
            "computes a step the other does not, or computes it with another layer: add, remove or change that "
            "layer in the spec (a step without weights on one tensor, such as an activation or `x + 3`, is "
            "skipped by the matching and may differ)")


def _article(word: str) -> str:
    return "an" if word[:1].lower() in "aeiou" else "a"


def _way(layers: dict, names: dict, name: str) -> str:
    """`input > ... > conv2 > name`: the layers that take part in the matching on the way from
    the input to `name`, following first inputs."""
    steps = []
    while layers[name].inputs:
        if names[name] == name:
            steps.append(name)
        name = layers[name].inputs[0]
    steps.append(name)
    steps.reverse()
    if len(steps) > PATH_STEPS + 1:
        steps = [steps[0], "...", *steps[-PATH_STEPS:]]
    return " > ".join(steps)


def _describe(node: LayerNode) -> str:
    output = getattr(node.layer, "output", None)
    shape = f", output {tuple(output.shape)}" if output is not None and hasattr(output, "shape") else ""
    weights = f"weights {list(node.shapes)}" if node.shapes else "no weights"
    return f"'{node.name}' ({_kind(node)}, {weights}{shape})"


def copy_weights(source, target) -> int:
    """Copy every weighted layer of `source` into the structurally matching layer of `target`.

    Returns the number of layers copied. Raises `WeightTransferError` if the structures differ,
    saying where, or if either is not a Keras 3 model.
    """
    copied = 0
    for a, b in match_layers(source, target):
        if _kind(a) == NORMALIZATION:
            copied += _copy_normalization(a, b)
        else:
            b.layer.set_weights(a.layer.get_weights())
            copied += 1
    return copied
