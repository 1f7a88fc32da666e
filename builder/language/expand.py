"""Expansion: a validated spec document -> flat graphs of named nodes.

Resolves params and overrides, includes, blocks, `repeat`, `residual`, `parallel`, `when` and
`$expressions`, and names every node after its place in the spec (`stage2_block1_conv1`).
Pure Python: no Keras import.
"""

from __future__ import annotations

import dataclasses
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Location, SpecError, did_you_mean
from .expressions import ExpressionError, NeedsShape, ShapeOf, Unresolved, deep_substitute
from .functions import check_functions, declare_functions
from .layer_registry import (
    CONSTRUCTS,
    LAYER_TYPES,
    RESERVED_NODE_KEYS,
    missing_argument,
    unknown_argument,
    wrong_argument_value,
)
from .spec_graph import (
    IF_SHAPES_MATCH,
    NO_SKIP,
    PROJECTION_MODE,
    SHORTCUT_MODES,
    Condition,
    Graph,
    Guard,
    Node,
    Ref,
    unknown_shortcut,
)
from .yaml_loader import LocatedDict, LocatedList, location_of
from .zoo import find_library, zoo_dir

# Generous for ResNet-152-sized graphs (~500 nodes); small enough to refuse a runaway `repeat`.
MAX_NODES = 20_000
SUBMODEL = "model"  # node type of a call to another model of the same spec
PROJECTION = "projection"  # node type of a residual's default 1x1 projection
# What a residual's default projection (a 1x1 `conv`) takes from `defaults: {conv: ...}`; its
# shape-giving arguments come from the body it projects onto.
PROJECTION_FIXED = ("filters", "kernel", "strides", "padding", "dilation_rate", "groups", "activation")
LIBRARY_KEYS = ("blocks", "functions", "include", "description")  # what an included file may hold
_REFERENCE = re.compile(r"^([A-Za-z_][A-Za-z0-9_]*)(?:\[(\d+)\])?$")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Block:
    name: str
    params: dict
    layers: list
    location: Location


@dataclass
class Library:
    """What a spec and the libraries it includes declare: blocks and functions."""

    blocks: dict = field(default_factory=dict)
    functions: dict = field(default_factory=dict)  # name -> SpecFunction
    declarations: dict = field(default_factory=dict)  # name -> its `functions:` entry (locations)


@dataclass
class _Pending:
    """A reference written in the spec, resolved once the whole graph exists."""

    text: str
    scope: _Scope
    location: Location
    path: str


@dataclass
class _Scope:
    """Names visible at one level of the spec; `variables` are params and repeat indices."""

    prefix: str
    variables: dict
    parent: _Scope | None = None
    names: dict = field(default_factory=dict)
    switched_off: set = field(default_factory=set)
    counters: Counter = field(default_factory=Counter)
    reserved: set = field(default_factory=set)  # names written in the spec, which counters skip

    def child(self, prefix: str, variables: dict | None = None, isolated: bool = False) -> _Scope:
        return _Scope(prefix, self.variables if variables is None else variables,
                      None if isolated else self)

    def with_variables(self, variables: dict) -> _Scope:
        """The same scope (names, counters, prefix) seen with extra variables bound."""
        return _Scope(self.prefix, variables, self.parent, self.names, self.switched_off, self.counters,
                      self.reserved)

    def full_name(self, local: str) -> str:
        return f"{self.prefix}_{local}" if self.prefix else local

    def auto_name(self, base: str) -> str:
        """`conv1`, `conv2`, ...; `branch_3x3_1` for a base ending in a digit (never `branch_3x31`),
        skipping names the spec writes itself."""
        separator = "_" if base[-1:].isdigit() else ""
        while True:
            self.counters[base] += 1
            local = f"{base}{separator}{self.counters[base]}"
            if local not in self.names and local not in self.reserved:
                return local

    def lookup(self, name: str):
        scope = self
        while scope is not None:
            if name in scope.names:
                return scope.names[name]
            if name in scope.switched_off:
                return "switched off"
            scope = scope.parent
        return None

    def visible(self) -> set:
        names, scope = set(), self
        while scope is not None:
            names |= set(scope.names)
            scope = scope.parent
        return names


class _Expander:
    def __init__(self, document: LocatedDict, file: str, library: Library, params: dict,
                 models: dict | None = None, max_nodes: int = MAX_NODES, defaults: dict | None = None):
        self.document = document
        self.file = file
        self.blocks = library.blocks
        self.params = {**library.functions, **params}  # what every expression sees
        self.defaults = defaults or {}
        self.models = models or {}
        self.max_nodes = max_nodes
        self.types = LAYER_TYPES
        self.graph: Graph | None = None
        self.block_stack: list[str] = []
        self.calls: list[tuple] = []  # (block name, call location) of the blocks being expanded
        self.renamed: dict[str, str] = {}  # node name -> the name of the named call it became
        self.pending: list[tuple[Node, int, _Pending]] = []
        self.taken: dict[str, Node] = {}

    # -- graphs -------------------------------------------------------------------------------
    def expand_graph(self, name: str, body: LocatedDict, path: str) -> Graph:
        self.graph = Graph(name, {})
        self.pending, self.taken = [], {}
        scope = _Scope("", dict(self.params))
        entry = self._inputs(body, scope, path)
        layers = body.get("layers")
        if not isinstance(layers, list) or not layers:
            raise SpecError("`layers` must list at least one node",
                            location_of(body, "layers") or location_of(body), path)
        last = self._expand_list(layers, scope, entry, f"{path}.layers" if path else "layers")
        outputs = body.get("outputs")
        self.graph.outputs = self._outputs(outputs, scope, last, body, path)
        self._resolve_pending()
        self._apply_renames()
        self.graph.sort()
        return self.graph

    def _inputs(self, body, scope, path):
        if "input" in body and "inputs" in body:
            raise SpecError("give either `input` (one input) or `inputs` (named inputs), not both",
                            location_of(body, "inputs"), path)
        if "input" in body:
            shapes = {"input": (body["input"], location_of(body, "input"))}
        elif "inputs" in body:
            named = body["inputs"]
            shapes = {key: (value, location_of(named, key)) for key, value in named.items()}
        else:
            raise SpecError("the model needs `input: [height, width, channels]` (or `inputs`)",
                            location_of(body), path)
        first = None
        for input_name, (shape, location) in shapes.items():
            if not _NAME.match(str(input_name)):
                raise SpecError(f"input name '{input_name}' must be an identifier", location, path)
            resolved = self._resolve_value(shape, scope, location, f"{path}.input" if path else "input")
            if not isinstance(resolved, list) or not all(
                    (isinstance(d, int) and not isinstance(d, bool) and d >= 1) or d is None for d in resolved):
                raise SpecError(f"an input shape is a list of positive integers (null for a free "
                                f"dimension); got {resolved!r}", location, path)
            self.graph.inputs[input_name] = tuple(resolved)
            self.graph.input_locations[input_name] = location
            scope.names[input_name] = Ref(input_name)
            first = first or Ref(input_name)
        return first

    def _outputs(self, outputs, scope, last, body, path):
        if outputs is None:
            return [last]
        items = [outputs] if isinstance(outputs, str) else list(outputs)
        refs = []
        for i, text in enumerate(items):
            location = location_of(outputs, i) if isinstance(outputs, LocatedList) else location_of(body, "outputs")
            ref = self._lookup(text, scope, location, f"{path}.outputs" if path else "outputs",
                               allow_switched_off=True)
            if ref is not None:
                refs.append(ref)
        if not refs:
            raise SpecError("every listed output is switched off by `when`", location_of(body, "outputs"), path)
        return refs

    # -- node lists ---------------------------------------------------------------------------
    def _expand_list(self, items, scope: _Scope, entry, path: str):
        scope.reserved |= _written_names(items)
        current = entry
        for i, item in enumerate(items):
            location = location_of(items, i) or Location(self.file, 1, 1)
            current = self._expand_node(item, scope, current, location, f"{path}[{i}]")
        return current

    def _expand_node(self, item, scope: _Scope, entry, location: Location, path: str):
        if isinstance(item, str):
            type_key, args, meta = item, None, {}
            type_location = location
        elif isinstance(item, dict):
            type_keys = [key for key in item if key not in RESERVED_NODE_KEYS]
            if len(type_keys) != 1:
                found = ", ".join(f"'{k}'" for k in type_keys) or "none"
                raise SpecError(f"a node has exactly one type key (a layer, block or construct) "
                                f"besides name/from/when; found {found}", location, path)
            type_key = type_keys[0]
            args, meta = item[type_key], {k: item[k] for k in RESERVED_NODE_KEYS if k in item}
            type_location = item.key_loc(type_key) if isinstance(item, LocatedDict) else location
        else:
            raise SpecError(f"a node is a type name or a mapping; got {item!r}", location, path)
        type_name = self._resolve_type(type_key, scope, type_location, path)
        node_path = f"{path}.{type_name}"
        deferred = None
        if "when" in meta:
            switch = self._resolve_argument(meta["when"], scope, location_of(item, "when"), path + ".when")
            if isinstance(switch, Unresolved):  # reads the block's input shape: decided when built
                deferred = switch
            elif not isinstance(switch, bool):
                raise SpecError(f"`when` must be true or false; got {switch!r}", location_of(item, "when"), path)
            elif not switch:
                if "name" in meta:
                    scope.switched_off.add(self._local_name(meta, scope, type_name, item, path, probe=True))
                return entry
        local = self._local_name(meta, scope, type_name, item, path)
        inputs = self._inputs_of(meta, item, scope, entry, path)
        args_location = location_of(item, type_key) if isinstance(item, dict) else location
        first_new = len(self.graph.nodes)
        if type_name in CONSTRUCTS:
            output = self._construct(type_name, args, scope, local, "name" in meta, inputs,
                                     location, node_path)
        elif type_name in self.blocks:
            output = self._block(type_name, args, scope, local, inputs, location, node_path)
        elif type_name in self.models:
            output = self._add(scope, local, SUBMODEL, {"model": type_name}, inputs, location, node_path)
        else:
            output = self._layer(type_name, args, scope, local, inputs, args_location, node_path, location)
        if "name" in meta and (type_name in CONSTRUCTS or type_name in self.blocks):
            output = self._carry_name(output, scope.full_name(local), first_new, location, node_path)
        if deferred is not None:
            self._condition(deferred, entry, first_new, location_of(item, "when"), path)
        scope.names[local] = output
        return output

    def _condition(self, switch: Unresolved, entry, first_new: int, location, path) -> None:
        """Every node the item made is built only where `switch` holds; elsewhere the item passes
        `entry`, the tensor it took, straight through."""
        if not isinstance(entry, Ref) or entry.index is not None:
            raise SpecError("a `when` that reads the block's input needs the node to take one plain input "
                            "(the one it passes through when switched off)", location, path)
        self._switch_nodes_from(first_new, Condition(f"{path}@{first_new}", switch, entry))  # one per block call

    def _switch_nodes_from(self, first_new: int, condition: Condition) -> None:
        """The nodes made since `first_new` are built only where `condition` holds."""
        for node in self.graph.nodes[first_new:]:
            node.conditions = (*node.conditions, condition)

    def _carry_name(self, output: Ref, name: str, first_new: int, location, path) -> Ref:
        """Give the output layer of a named block call (or construct) exactly the call's name, so
        `model.get_layer(name)` finds it; an identity layer of that name where the output is not a
        layer of its own (the call passed its input through, or picked one of several outputs).
        An optional skip's merge takes the name, and passes it to the body's output layer where
        the model is built without the skip."""
        made = {node.name: node for node in self.graph.nodes[first_new:]}
        node = made.get(output.node)
        optional_skip = node is not None and node.guard is not None and node.guard.build_when_shapes_match \
            and node.guard.output == node.name
        if output.index is not None or node is None or (node.guard is not None and not optional_skip) \
                or name in self.taken:
            if name in self.taken:
                return output
            return self._add_named(name, "identity", [output], location, path)
        if optional_skip:
            node.guard = dataclasses.replace(node.guard, names_body=True)
        del self.taken[node.name]
        self.renamed[node.name] = name
        node.name = name
        self.taken[name] = node
        return Ref(name)

    def _add_named(self, name, type_name, inputs, location, path) -> Ref:
        node = Node(name, type_name, {}, list(inputs), location, path, calls=tuple(self.calls))
        self.graph.nodes.append(node)
        self.taken[name] = node
        return Ref(name)

    def _apply_renames(self) -> None:
        if not self.renamed:
            return

        def final(ref):
            name = ref.node
            while name in self.renamed:
                name = self.renamed[name]
            return Ref(name, ref.index) if name != ref.node else ref

        for node in self.graph.nodes:
            node.inputs = [final(ref) for ref in node.inputs]
            node.after = tuple(final(Ref(name)).node for name in node.after)
            if node.guard is not None:
                guard = node.guard
                node.guard = dataclasses.replace(guard, body=final(guard.body),
                                                 shortcut_input=final(guard.shortcut_input),
                                                 output=final(Ref(guard.output)).node)
            node.conditions = tuple(dataclasses.replace(condition, bypass=final(condition.bypass))
                                    for condition in node.conditions)
        self.graph.outputs = [final(ref) for ref in self.graph.outputs]
        self.graph.aliases = {old: final(Ref(old)).node for old in self.renamed}

    def _resolve_type(self, type_key, scope, location, path) -> str:
        type_name = type_key
        if isinstance(type_key, str) and type_key.startswith("$"):
            type_name = self._resolve_value(type_key, scope, location, path)
        known = set(self.types) | set(CONSTRUCTS) | set(self.blocks) | set(self.models)
        if not isinstance(type_name, str) or type_name not in known:
            raise SpecError(f"unknown layer type '{type_name}'{did_you_mean(type_name, known)}",
                            location, path)
        return type_name

    def _local_name(self, meta, scope, type_name, item, path, probe=False) -> str:
        if "name" not in meta:
            return scope.auto_name(type_name)
        location = location_of(item, "name")
        local = self._resolve_value(meta["name"], scope, location, path + ".name")
        if not isinstance(local, str) or not _NAME.match(local):
            raise SpecError(f"a node name is an identifier (letters, digits, _); got {local!r}",
                            location, path)
        if not probe and local in scope.names:
            raise SpecError(f"the name '{local}' is already used in this scope", location, path)
        return local

    def _inputs_of(self, meta, item, scope, entry, path) -> list:
        if "from" not in meta:
            if entry is None:
                raise SpecError("this node has no input: add `from:`", location_of(item), path)
            return [entry]
        refs = meta["from"]
        texts = [refs] if isinstance(refs, str) else list(refs)
        base = location_of(item, "from")
        inputs = []
        for i, text in enumerate(texts):
            text = str(self._resolve_value(text, scope, base, path + ".from"))
            location = location_of(refs, i) if isinstance(refs, LocatedList) else base
            match = _REFERENCE.match(text)
            if match and scope.lookup(match.group(1)) not in (None, "switched off"):
                inputs.append(self._lookup(text, scope, location, path + ".from"))
            else:  # a forward reference (or an error), resolved once the whole graph exists
                inputs.append(_Pending(text, scope, location, path + ".from"))
        return inputs

    # -- leaves ------------------------------------------------------------------------------
    def _layer(self, type_name, args, scope, local, inputs, location, path, node_location):
        entry = self.types[type_name]
        resolved = self._resolve_args(args, scope, location, path)
        for arg_name, value in resolved.items():
            arg = entry.args.get(arg_name)
            where = location_of(args, arg_name) or location
            if arg is None:
                raise SpecError(unknown_argument(type_name, arg_name, entry.args), where, path)
            if isinstance(value, Unresolved):
                continue  # it reads the block's input shape: checked when the model is built
            if not arg.check(value):
                raise SpecError(wrong_argument_value(type_name, arg_name, arg, value), where, path)
        resolved = {**self.defaults.get(type_name, {}), **resolved}  # checked where they are declared
        missing = [name for name, arg in entry.args.items() if arg.required and name not in resolved]
        if missing:
            raise SpecError(missing_argument(type_name, missing[0]), location, path)
        problem = entry.input_count_problem(len(inputs))
        if problem:
            raise SpecError(problem, node_location, path)
        return self._add(scope, local, type_name, resolved, inputs, node_location, path)

    def _add(self, scope, local, type_name, args, inputs, location, path) -> Ref:
        name = scope.full_name(local)
        if name in self.taken:
            other = self.taken[name]
            raise SpecError(f"two nodes would both be named '{name}' (the other is at "
                            f"{other.location}); give one a different `name`", location, path)
        if len(self.graph.nodes) >= self.max_nodes:
            raise SpecError(f"the spec expands to more than {self.max_nodes} nodes; check `repeat` "
                            "counts (the limit is builder.expand.MAX_NODES)", location, path)
        node = Node(name, type_name, args, [], location, path, calls=tuple(self.calls))
        for ref in inputs:
            if isinstance(ref, _Pending):
                self.pending.append((node, len(node.inputs), ref))
                node.inputs.append(None)
            else:
                node.inputs.append(ref)
        self.graph.nodes.append(node)
        self.taken[name] = node
        return Ref(name)

    # -- blocks ------------------------------------------------------------------------------
    def _block(self, block_name, args, scope, local, inputs, location, path) -> Ref:
        block = self.blocks[block_name]
        if block_name in self.block_stack:
            chain = " -> ".join(self.block_stack[self.block_stack.index(block_name):] + [block_name])
            raise SpecError(f"block '{block_name}' uses itself ({chain}); blocks cannot recurse",
                            location, path)
        if len(inputs) != 1:
            raise SpecError(f"block '{block_name}' takes one input; got {len(inputs)} in `from`",
                            location, path)
        if args is not None and not isinstance(args, dict):
            raise SpecError(f"the arguments of block '{block_name}' are a mapping; got {args!r}",
                            location, path)
        args = args or {}
        for key in args:
            if key not in block.params:
                raise SpecError(f"unknown argument '{key}' for block '{block_name}'"
                                f"{did_you_mean(key, block.params)} (it takes: "
                                f"{', '.join(block.params) or 'nothing'})",
                                location_of(args, key) or location, path)
        variables = dict(self.params)
        inner = scope.child(scope.full_name(local), variables, isolated=True)
        anchor = self._add(inner, "input", "identity", {}, inputs, location, path) \
            if isinstance(inputs[0], _Pending) else inputs[0]
        inner.names["input"] = anchor
        variables["input"] = ShapeOf(anchor)  # `${input.channels}`: resolved when the model is built
        # Arguments are evaluated where the block is called; defaults inside the block, over the
        # spec's params, the block's earlier params and its input, and located at the default.
        for key, default in block.params.items():
            if key in args:
                variables[key] = self._resolve_argument(args[key], scope, location_of(args, key) or location,
                                                        f"{path}.{key}")
            else:
                variables[key] = self._resolve_argument(default, scope.with_variables(variables),
                                                        location_of(block.params, key) or block.location,
                                                        f"blocks.{block_name}.params.{key}")
        self.block_stack.append(block_name)
        self.calls.append((block_name, location))
        try:
            return self._expand_list(block.layers, inner, anchor, f"blocks.{block_name}.layers")
        except SpecError as exc:
            raise exc.called_from(block_name, location) from None
        finally:
            self.block_stack.pop()
            self.calls.pop()

    # -- constructs --------------------------------------------------------------------------
    def _construct(self, kind, args, scope, local, named, inputs, location, path) -> Ref:
        if len(inputs) != 1:
            raise SpecError(f"{kind} takes one input; got {len(inputs)} in `from`", location, path)
        entry = inputs[0]
        if isinstance(entry, _Pending):
            entry = self._add(scope, scope.auto_name("input"), "identity", {}, [entry], location, path)
        inner = scope.child(scope.full_name(local)) if named else scope
        if kind == "repeat":
            return self._repeat(args, inner, entry, location, path)
        if kind == "residual":
            return self._residual(args, inner, entry, location, path)
        return self._parallel(args, inner, entry, location, path)

    def _repeat(self, args, scope, entry, location, path):
        times = self._resolve_value(args["times"], scope, location_of(args, "times"), path + ".times")
        if not isinstance(times, int) or isinstance(times, bool) or times < 0:
            raise SpecError(f"`times` must be a non-negative integer; got {times!r}",
                            location_of(args, "times"), path)
        if times > self.max_nodes:
            raise SpecError(f"`times: {times}` exceeds the node limit ({self.max_nodes})",
                            location_of(args, "times"), path)
        index = args.get("index")
        current = entry
        for i in range(times):
            view = scope.with_variables({**scope.variables, index: i} if index else scope.variables)
            current = self._expand_list(args["layers"], view, current, path + ".layers")
        return current

    def _residual(self, args, scope, entry, location, path):
        body = self._expand_list(args["layers"], scope, entry, path + ".layers")
        shortcut = args.get("shortcut")
        if isinstance(shortcut, str):
            where = location_of(args, "shortcut") or location
            shortcut = self._resolve_argument(shortcut, scope, where, path + ".shortcut")
            if not isinstance(shortcut, Unresolved) and shortcut not in SHORTCUT_MODES:
                raise SpecError(unknown_shortcut(shortcut), where, path + ".shortcut")
        if isinstance(shortcut, Unresolved):  # reads the block's input shape: decided when built
            merged = self._skip_decided_when_built(args, scope, entry, body, shortcut, location, path)
        else:
            merged = self._skip(args, scope, entry, body, shortcut, location, path)
        return self._expand_list(args["post"], scope, merged, path + ".post") if args.get("post") else merged

    def _skip(self, args, scope, entry, body, shortcut, location, path) -> Ref:
        """The residual's merge of `body` with the shortcut `shortcut` asks for (a mode, or layers)."""
        merge = args.get("merge", "add")
        if shortcut == NO_SKIP:
            return body
        if shortcut == IF_SHAPES_MATCH:
            merged = self._add(scope, scope.auto_name(merge), merge, {}, [body, entry], location, path)
            node = self.graph.nodes[-1]
            node.guard = Guard(merged.node, body, entry, merged.node, build_when_shapes_match=True)
            node.after = (body.node,)
            return merged
        if shortcut == "identity":
            shortcut_out = entry
        elif shortcut is not None and shortcut != PROJECTION_MODE:
            inner = scope.child(scope.full_name(scope.auto_name("shortcut")))
            shortcut_out = self._expand_list(shortcut, inner, entry, path + ".shortcut")
        else:
            inner = scope.child(scope.full_name(scope.auto_name("shortcut")))
            start = len(self.graph.nodes)
            if args.get("projection"):
                shortcut_out = self._expand_list(args["projection"], inner, entry, path + ".projection")
            else:
                inherited = {key: value for key, value in self.defaults.get("conv", {}).items()
                             if key not in PROJECTION_FIXED}
                shortcut_out = self._add(inner, "projection", PROJECTION, inherited, [entry, body],
                                         location, path)
            group = self.graph.nodes[start:]
            guard = Guard(inner.prefix, body, entry, shortcut_out.node)
            for node in group:
                node.guard = guard
                node.after = (body.node,)
        return self._add(scope, scope.auto_name(merge), merge, {}, [body, shortcut_out], location, path)

    def _skip_decided_when_built(self, args, scope, entry, body, shortcut: Unresolved, location, path) -> Ref:
        """A shortcut mode read off the block's input shape: each mode's skip is laid out, switched on
        only where the mode is the one chosen; a skip switched off stands for the one before it, so
        the last stands for the chosen skip, or for the body alone (`none`)."""
        current = body
        for mode in (PROJECTION_MODE, "identity", IF_SHAPES_MATCH):
            first_new = len(self.graph.nodes)
            made = self._skip(args, scope, entry, body, mode, location, path)
            self._switch_nodes_from(first_new, Condition(f"{path}.shortcut={mode}@{first_new}",
                                                         ModeChosen(shortcut, mode), current))
            current = made
        return current

    def _parallel(self, args, scope, entry, location, path):
        outputs = []
        for k, branch in enumerate(args["branches"]):
            inner = scope.child(scope.full_name(scope.auto_name("branch")))
            outputs.append(self._expand_list(branch, inner, entry, f"{path}.branches[{k}]") if branch else entry)
        if len(outputs) == 1:
            return outputs[0]
        merge = args.get("merge", "concat")
        return self._add(scope, scope.auto_name(merge), merge, {}, outputs, location, path)

    # -- values and references ---------------------------------------------------------------
    def _resolve_value(self, value, scope, location, path):
        """A value that shapes the graph (a count, a switch, a name): known now, never from the
        block input's shape."""
        try:
            return deep_substitute(value, scope.variables)
        except ExpressionError as exc:
            raise SpecError(str(exc), location, path) from None
        except NeedsShape:
            raise SpecError("this value shapes the graph, so it cannot read the block's input shape "
                            "(known only when the model is built); `input.*` may be used in layer and block "
                            "arguments", location, path) from None

    def _resolve_argument(self, value, scope, location, path):
        """A layer or block argument: resolved now, or kept `Unresolved` until the model is built
        when it reads the block's input shape."""
        try:
            return deep_substitute(value, scope.variables)
        except ExpressionError as exc:
            raise SpecError(str(exc), location, path) from None
        except NeedsShape:
            return Unresolved(value, dict(scope.variables), location, path)

    def _resolve_args(self, args, scope, location, path) -> dict:
        if args is None:
            return {}
        if not isinstance(args, dict):
            raise SpecError(f"layer arguments are a mapping; got {args!r}", location, path)
        return {key: self._resolve_argument(value, scope, location_of(args, key) or location, f"{path}.{key}")
                for key, value in args.items()}

    def _lookup(self, text, scope, location, path, allow_switched_off=False):
        match = _REFERENCE.match(str(text))
        if not match:
            raise SpecError(f"'{text}' is not a node reference (a name, or name[index])", location, path)
        name, index = match.group(1), match.group(2)
        found = scope.lookup(name)
        if found == "switched off":
            if allow_switched_off:
                return None
            raise SpecError(f"'{name}' is switched off by its `when`, so nothing can take input from it",
                            location, path)
        if found is None:
            raise SpecError(f"unresolved reference '{name}'{did_you_mean(name, scope.visible())}",
                            location, path)
        return Ref(found.node, int(index)) if index is not None else found

    def _resolve_pending(self) -> None:
        for node, position, pending in self.pending:
            node.inputs[position] = self._lookup(pending.text, pending.scope, pending.location, pending.path)


@dataclass(frozen=True)
class ModeChosen:
    """A `Condition`'s switch: whether a shortcut expression that reads the block's input picks
    `mode` (checked to be a mode when the model is built)."""

    shortcut: Unresolved
    mode: str

    @property
    def location(self):
        return self.shortcut.location

    @property
    def path(self) -> str:
        return self.shortcut.path

    def resolve(self, shape_of) -> bool:
        chosen = self.shortcut.resolve(shape_of)
        if chosen not in SHORTCUT_MODES:
            raise ExpressionError(unknown_shortcut(chosen))
        return chosen == self.mode


def _written_names(items) -> set:
    """The literal `name:`s of a node list and of the unnamed constructs in it (which share its
    scope), so automatic names never take one the spec writes further down."""
    names: set = set()
    for item in items if isinstance(items, list) else ():
        if not isinstance(item, dict):
            continue
        name = item.get("name")
        if isinstance(name, str) and "$" not in name:
            names.add(name)
        elif name is None:
            for construct in ("repeat", "residual"):
                body = item.get(construct)
                if isinstance(body, dict):
                    for key in ("layers", "post"):
                        names |= _written_names(body.get(key))
    return names


# -- the document level --------------------------------------------------------------------------
def resolve_params(document: LocatedDict, overrides: dict | None, file: str,
                   functions: dict | None = None) -> dict:
    """Top-level params with defaults (each may use earlier ones and the functions), then `--set`
    overrides."""
    declared = document.get("params") or {}
    functions = functions or {}
    overrides = dict(overrides or {})
    for key in overrides:
        if key not in declared:
            known = ", ".join(declared) or "none"
            raise SpecError(f"cannot override '{key}': the spec has no such param"
                            f"{did_you_mean(key, declared)} (params: {known})",
                            Location(file, 1, 1), f"--set {key}")
    params: dict = {}
    for key, default in declared.items():
        location = location_of(declared, key)
        if not _NAME.match(str(key)):
            raise SpecError(f"param names are identifiers; got '{key}'", location, f"params.{key}")
        if key in functions:
            raise SpecError(f"'{key}' is both a param and a function (declared at {functions[key].where}); "
                            "rename one", location, f"params.{key}")
        if key in overrides:
            value = overrides[key]
            if not fits_param(default, value):
                raise SpecError(f"override {key}={value!r} does not fit the param's default "
                                f"{default!r} (a {type(default).__name__})", location, f"--set {key}")
        else:
            try:
                value = deep_substitute(default, {**functions, **params})
            except ExpressionError as exc:
                raise SpecError(str(exc), location, f"params.{key}") from None
        params[key] = value
    return params


def resolve_defaults(document: LocatedDict, params: dict, functions: dict) -> dict:
    """`defaults:` (layer type -> arguments every node of that type gets unless it sets its own),
    checked against the layer registry and resolved over the params where they are written."""
    declared = document.get("defaults") or {}
    variables = {**functions, **params}
    resolved: dict = {}
    for type_name, args in declared.items():
        location = location_of(declared, type_name)
        path = f"defaults.{type_name}"
        if type_name not in LAYER_TYPES:
            raise SpecError(f"`defaults` are for layer types; '{type_name}' is not one"
                            f"{did_you_mean(type_name, LAYER_TYPES)}", location, path)
        entry = LAYER_TYPES[type_name]
        resolved[type_name] = {}
        for arg_name, value in (args or {}).items():
            where = location_of(args, arg_name) or location
            if arg_name not in entry.args:
                raise SpecError(unknown_argument(type_name, arg_name, entry.args), where, f"{path}.{arg_name}")
            try:
                value = deep_substitute(value, variables)
            except ExpressionError as exc:
                raise SpecError(str(exc), where, f"{path}.{arg_name}") from None
            if not entry.args[arg_name].check(value):
                raise SpecError(wrong_argument_value(type_name, arg_name, entry.args[arg_name], value),
                                where, f"{path}.{arg_name}")
            resolved[type_name][arg_name] = value
    return resolved


def fits_param(default, value) -> bool:
    """Whether `value` may replace a param whose default is `default` (an int param takes whole
    numbers only; an expression default takes anything)."""
    if default is None or isinstance(default, str) and "$" in default:
        return True
    if isinstance(default, bool) or isinstance(value, bool):
        return isinstance(default, bool) and isinstance(value, bool)
    if isinstance(default, (int, float)):
        return isinstance(value, (int, float)) and (isinstance(default, float) or isinstance(value, int))
    return isinstance(value, type(default))


def load_library(document: LocatedDict, file: str, load_file) -> Library:
    """Blocks and functions of the spec and of the libraries it includes (recursively), with
    every function body checked against the whole set."""
    library = Library()
    _collect(document, file, load_file, set(), library)
    check_functions(library.functions, library.declarations)
    return library


def _collect(document: LocatedDict, file: str, load_file, seen: set, library: Library) -> None:
    seen = seen | {str(Path(file).resolve())}
    includes = document.get("include") or []
    for i, relative in enumerate(includes):
        location = location_of(includes, i)
        target = find_library(file, relative)
        if str(target) in seen:
            raise SpecError(f"'{relative}' is already being included (an include cycle)", location,
                            f"include[{i}]")
        if not target.is_file():
            raise SpecError(f"included file '{relative}' not found (looked at {target} and in the zoo's "
                            f"blocks: {', '.join(sorted(p.name for p in (zoo_dir() / 'blocks').glob('*.yaml')))})",
                            location,
                            f"include[{i}]")
        included = load_file(target)
        for key in included:
            if key not in LIBRARY_KEYS:
                raise SpecError(f"a block library holds only {', '.join(f'`{k}`' for k in LIBRARY_KEYS)}; "
                                f"found '{key}'", location_of(included, key), key)
        _collect(included, str(target), load_file, seen, library)
    declare_functions(document.get("functions"), file, library.functions)
    library.declarations.update(document.get("functions") or {})
    blocks = library.blocks
    for name, body in (document.get("blocks") or {}).items():
        location = location_of(document["blocks"], name)
        if name in LAYER_TYPES or name in CONSTRUCTS or name in RESERVED_NODE_KEYS:
            raise SpecError(f"block name '{name}' is already a layer type or keyword; rename the block",
                            location, f"blocks.{name}")
        params = body.get("params") or {}  # kept as loaded: its defaults' locations name errors
        if "input" in params:
            raise SpecError("a block param cannot be named `input`: inside a block, `input` is the block's input "
                            "(`${input.channels}`)", location_of(params, "input"), f"blocks.{name}.params.input")
        _add_block(blocks, name, Block(name, params, body["layers"], location))


def _add_block(blocks, name, block):
    if name in blocks:
        raise SpecError(f"block '{name}' is defined twice (also at {blocks[name].location})",
                        block.location, f"blocks.{name}")
    blocks[name] = block


def expand_document(document: LocatedDict, file: str, params: dict, library: Library,
                    max_nodes: int = MAX_NODES, defaults: dict | None = None) -> tuple[dict, str]:
    """All graphs of a spec and the name of the main one."""
    blocks = library.blocks
    if "models" in document:
        for key in ("input", "inputs", "layers", "outputs"):
            if key in document:
                raise SpecError(f"with `models`, put `{key}` inside each model", location_of(document, key), key)
        graphs: dict[str, Graph] = {}
        for name, body in document["models"].items():
            if name in LAYER_TYPES or name in blocks or name in CONSTRUCTS:
                raise SpecError(f"model name '{name}' is already a layer type or block",
                                location_of(document["models"], name), f"models.{name}")
            expander = _Expander(document, file, library, params, graphs, max_nodes, defaults)
            graphs[name] = expander.expand_graph(name, body, f"models.{name}")
        main = document.get("main", list(graphs)[-1])
        if main not in graphs:
            raise SpecError(f"`main: {main}` names no model{did_you_mean(main, graphs)}",
                            location_of(document, "main"), "main")
        return graphs, main
    if "layers" not in document:
        raise SpecError("a spec needs `layers` (or `models`)", location_of(document), "")
    name = str(document.get("name", Path(file).stem))
    expander = _Expander(document, file, library, params, None, max_nodes, defaults)
    return {name: expander.expand_graph(name, document, "")}, name
