"""The flat graph a spec expands to: named nodes, resolved references, topological order."""

from __future__ import annotations

import heapq
from dataclasses import dataclass, field

from ..errors import Location, SpecError, did_you_mean


@dataclass(frozen=True)
class Ref:
    """One input of a node: a node's full name and, for multi-output nodes, which output."""

    node: str
    index: int | None = None

    def __str__(self) -> str:
        return self.node if self.index is None else f"{self.node}[{self.index}]"


# A residual's shortcut modes, besides its own `shortcut:` layers: the identity where the shapes
# match, else a projection (the default); always the identity; the identity skip only where the
# shapes allow it, else none; no skip at all.
PROJECTION_MODE = "projection"
IF_SHAPES_MATCH = "if_shapes_match"
NO_SKIP = "none"
SHORTCUT_MODES = (PROJECTION_MODE, "identity", IF_SHAPES_MATCH, NO_SKIP)


def unknown_shortcut(value) -> str:
    modes = ", ".join(SHORTCUT_MODES)
    return f"unknown shortcut {value!r}{did_you_mean(str(value), SHORTCUT_MODES)}: a shortcut is one of {modes}, " \
           "or a list of layers"


@dataclass(frozen=True)
class Guard:
    """Marks nodes of a residual that depend on shapes only known at compile time: its default
    projection, built only when the body changes the input's shape (when the shapes match,
    every node of the group is skipped and `output` stands for `shortcut_input` itself); or,
    with `build_when_shapes_match`, its merge, built only when they match (otherwise `output`
    stands for the body alone: no skip). `names_body`: the merge carries a named call's name, which
    passes to the body's output layer where no skip is built.
    """

    group: str
    body: Ref
    shortcut_input: Ref
    output: str
    build_when_shapes_match: bool = False
    names_body: bool = False


@dataclass(frozen=True)
class Condition:
    """A `when` that reads a block's input shape, decided when the model is built: the nodes one
    spec item made share it (`group`); switched off, each of them stands for `bypass`, the tensor
    the item took, so the next node takes what the item would have taken."""

    group: str
    switch: object  # an expressions.Unresolved giving true or false
    bypass: Ref


@dataclass
class Node:
    """One layer (or submodel call) of the graph, with where it came from in the spec."""

    name: str
    type: str
    args: dict
    inputs: list  # Ref, or an unresolved reference resolved by `Graph.resolve`
    location: Location
    path: str
    guard: Guard | None = None
    after: tuple = ()  # names that must be computed first (for guards)
    calls: tuple = ()  # the block calls it sits in, outermost first: (block name, Location of the call)
    conditions: tuple = ()  # `when`s decided when the model is built, innermost first


@dataclass
class Graph:
    """One model: its inputs (name -> shape), nodes in computation order, and outputs."""

    name: str
    inputs: dict
    nodes: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    input_locations: dict = field(default_factory=dict)
    aliases: dict = field(default_factory=dict)  # a renamed node's first name -> its name (named calls)

    def node_map(self) -> dict:
        return {node.name: node for node in self.nodes}

    def sort(self) -> None:
        """Order nodes so every input comes first; keep spec order where free; report cycles."""
        index = {node.name: i for i, node in enumerate(self.nodes)}
        dependents: dict[str, list[str]] = {name: [] for name in index}
        pending: dict[str, int] = {}
        for node in self.nodes:
            deps = {ref.node for ref in node.inputs if ref.node in index} | {
                name for name in node.after if name in index}
            pending[node.name] = len(deps)
            for dep in deps:
                dependents[dep].append(node.name)
        ready = [(index[name], name) for name, count in pending.items() if count == 0]
        heapq.heapify(ready)
        ordered = []
        while ready:
            _, name = heapq.heappop(ready)
            ordered.append(name)
            for dependent in dependents[name]:
                pending[dependent] -= 1
                if pending[dependent] == 0:
                    heapq.heappush(ready, (index[dependent], dependent))
        if len(ordered) < len(self.nodes):
            self._raise_cycle({name for name, count in pending.items() if count > 0})
        nodes = self.node_map()
        self.nodes = [nodes[name] for name in ordered]

    def _raise_cycle(self, stuck: set) -> None:
        nodes = self.node_map()
        start = min(stuck, key=lambda name: self.nodes.index(nodes[name]))
        cycle, current = [start], start
        while True:
            current = next(ref.node for ref in nodes[current].inputs if ref.node in stuck)
            if current in cycle:
                cycle = cycle[cycle.index(current):] + [current]
                break
            cycle.append(current)
        first = nodes[cycle[0]]
        raise SpecError(
            "the graph has a cycle: " + " -> ".join(reversed(cycle))
            + "; a node cannot depend on its own output",
            first.location, first.path,
        )
