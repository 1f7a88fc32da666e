"""A small, safe evaluator for `$name` and `${expression}` values in specs.

Expressions are parsed with `ast` and interpreted node by node from a whitelist (`allowed()`
says what it holds): numbers, strings, booleans, lists and mappings, names bound in the current
scope, indexing (`widths[i]`, `table['key']`), arithmetic, comparisons, `and`/`or`/`not`,
`a if cond else b`, a few built-in functions, and the spec's own `functions:` (`SpecFunction`).
Nothing is ever passed to `eval`.
"""

from __future__ import annotations

import ast
import contextvars
import math
import operator
import re
from dataclasses import dataclass, field

# operator -> (symbol, function)
_BINARY = {
    ast.Add: ("+", operator.add),
    ast.Sub: ("-", operator.sub),
    ast.Mult: ("*", operator.mul),
    ast.Div: ("/", operator.truediv),
    ast.FloorDiv: ("//", operator.floordiv),
    ast.Mod: ("%", operator.mod),
    ast.Pow: ("**", operator.pow),
}
_UNARY = {ast.UAdd: ("+", operator.pos), ast.USub: ("-", operator.neg), ast.Not: ("not", operator.not_)}
_COMPARE = {
    ast.Eq: ("==", operator.eq),
    ast.NotEq: ("!=", operator.ne),
    ast.Lt: ("<", operator.lt),
    ast.LtE: ("<=", operator.le),
    ast.Gt: (">", operator.gt),
    ast.GtE: (">=", operator.ge),
}
def _is_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_whole(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _sum(values):
    if not isinstance(values, (list, tuple)) or not all(map(_is_number, values)):
        raise ExpressionError(f"sum takes a list of numbers; got {values!r}")
    return sum(values)


def _whole(function):
    def rounded(value):
        if not _is_number(value):
            raise ExpressionError(f"{function.__name__} takes a number; got {value!r}")
        return function(value)

    return rounded


_FUNCTIONS = {"min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round, "len": len,
              "sum": _sum, "ceil": _whole(math.ceil), "floor": _whole(math.floor)}

# Keeps `2 ** 10 ** 10` from freezing the process.
_MAX_EXPONENT = 256
_MAX_STRING = 10_000  # items of a string or list an expression may build
# Spec functions cannot recurse (checked when they are declared); these bound what is left:
# nesting of calls, and calls made while evaluating one expression (f3 calling f2 twice, f2
# calling f1 twice, ... would otherwise double at every level).
MAX_CALL_DEPTH = 32
MAX_CALLS = 10_000

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_EMBEDDED = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def allowed() -> str:
    """What expressions may hold, from the tables the interpreter uses."""
    return ("numbers, strings, true/false, names, lists [a, b], mappings {'k': v}, indexing x[i] and x['key'], "
            "slices x[a:b], "
            f"inside blocks input.{', input.'.join(SHAPE_ATTRIBUTES)}, "
            f"{' '.join(symbol for symbol, _ in _BINARY.values())}, unary - and +, "
            f"{' '.join(symbol for symbol, _ in _COMPARE.values())}, and/or/not, 'a if c else b', "
            f"the functions {', '.join(sorted(_FUNCTIONS))}, and the spec's own `functions:`")


class ExpressionError(ValueError):
    """An expression that cannot be evaluated; the message says why."""


class NeedsShape(Exception):  # noqa: N818 (a signal, not an error)
    """Raised while expanding a spec by an expression that reads a block's input shape, which is
    known only when the model is built; the value is kept `Unresolved` until then."""


SHAPE_ATTRIBUTES = {
    "height": "the input's height (its first axis after the batch)",
    "width": "the input's width (its second axis after the batch)",
    "channels": "the input's last axis",
    "rank": "the number of axes after the batch",
    "shape": "the whole shape after the batch, a list",
}


@dataclass(frozen=True)
class ShapeOf:
    """`input` inside a block while the spec is expanded: the block's input, by node reference."""

    ref: object


@dataclass(frozen=True)
class InputShape:
    """`input` inside a block when the model is built: `input.channels`, `input.height`, ..."""

    shape: tuple

    def attribute(self, name: str):
        if name not in SHAPE_ATTRIBUTES:
            from ..errors import did_you_mean

            raise ExpressionError(f"input has no '{name}'{did_you_mean(name, SHAPE_ATTRIBUTES)} "
                                  f"(it has: {', '.join(SHAPE_ATTRIBUTES)})")
        if name == "shape":
            return list(self.shape)
        if name == "rank":
            return len(self.shape)
        if name == "channels":
            return self.shape[-1]
        axis = 0 if name == "height" else 1
        if len(self.shape) < 3:
            raise ExpressionError(f"input.{name} needs a feature map (height, width, channels); the input "
                                  f"has shape {tuple(self.shape)}")
        return self.shape[axis]


@dataclass(frozen=True, eq=False)
class Unresolved:
    """A spec value that reads a block's input shape: the value as written, the variables it was
    written with (where `input` is a `ShapeOf`), and where it was written."""

    value: object
    variables: dict
    location: object
    path: str

    def resolve(self, shape_of):
        """The value, with `shape_of(ref)` giving the shape of a block input (without the batch)."""
        variables = {name: _resolved_variable(value, shape_of) for name, value in self.variables.items()}
        return deep_substitute(self.value, variables)


def _resolved_variable(value, shape_of):
    if isinstance(value, ShapeOf):
        return InputShape(tuple(shape_of(value.ref)))
    if isinstance(value, Unresolved):
        return value.resolve(shape_of)
    return value


def deep_substitute(value, variables):
    """`substitute` through the mappings and lists of a spec value."""
    if isinstance(value, dict):
        return {key: deep_substitute(item, variables) for key, item in value.items()}
    if isinstance(value, list):
        return [deep_substitute(item, variables) for item in value]
    return substitute(value, variables)


@dataclass(frozen=True)
class SpecFunction:
    """A helper declared under `functions:`, called from expressions like a built-in.

    Its body sees only its arguments, its `let` bindings (in order) and the other functions:
    never the spec's params, so a call means the same thing wherever it is written.
    """

    name: str
    args: tuple
    defaults: dict
    let: tuple  # (name, value) pairs
    returns: object
    where: str  # "file:line:col", for messages
    table: dict = field(default_factory=dict, compare=False, repr=False)  # name -> SpecFunction

    def invoke(self, positional: list, keywords: dict):
        if len(positional) > len(self.args):
            raise ExpressionError(f"{self.name}() takes {len(self.args)} argument(s) "
                                  f"({', '.join(self.args)}); got {len(positional)}")
        bound = dict(zip(self.args, positional))
        for key, value in keywords.items():
            if key not in self.args:
                raise ExpressionError(f"{self.name}() has no argument '{key}' (it takes {', '.join(self.args)})")
            if key in bound:
                raise ExpressionError(f"{self.name}() got argument '{key}' twice")
            bound[key] = value
        for key in self.args:
            if key not in bound:
                if key not in self.defaults:
                    raise ExpressionError(f"{self.name}() needs argument '{key}'")
                bound[key] = self.defaults[key]
        stack = _CALLS.get()
        if len(stack.names) >= MAX_CALL_DEPTH:
            raise ExpressionError(f"function calls nest deeper than {MAX_CALL_DEPTH}: "
                                  + " -> ".join(stack.names[-5:]))
        stack.count[0] += 1
        if stack.count[0] > MAX_CALLS:
            raise ExpressionError(f"more than {MAX_CALLS} function calls in one expression")
        token = _CALLS.set(_CallStack(stack.names + (self.name,), stack.count))
        scope = {**self.table, **bound}
        try:
            for key, value in self.let:
                scope[key] = substitute(value, scope)
            return substitute(self.returns, scope)
        except ExpressionError as exc:
            if str(exc).startswith("in function "):
                raise
            raise ExpressionError(f"in function '{self.name}' ({self.where}): {exc}") from None
        finally:
            _CALLS.reset(token)


@dataclass(frozen=True)
class _CallStack:
    names: tuple = ()
    count: list = field(default_factory=lambda: [0])


_CALLS: contextvars.ContextVar[_CallStack] = contextvars.ContextVar("spec_function_calls")


def builtin_functions() -> tuple:
    return tuple(sorted(_FUNCTIONS))


def names_used(source: str) -> tuple[set, set]:
    """(names read, functions called) by one expression, for checks made before evaluating it."""
    tree = ast.parse(source, mode="eval")
    called = {node.func.id for node in ast.walk(tree)
              if isinstance(node, ast.Call) and isinstance(node.func, ast.Name)}
    read = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)} - called - {"true", "false"}
    return read, called


def expressions_in(value) -> list[str]:
    """The expression sources inside one spec value (`$name` as `name`, `${e}` as `e`)."""
    if not isinstance(value, str) or "$" not in value:
        return []
    escaped = value.replace("$$", "")
    return [expr or name for expr, name in _EMBEDDED.findall(escaped)]


def is_expression(value) -> bool:
    return isinstance(value, str) and "$" in value


def substitute(value, scope: dict):
    """Resolve `$name`, `${expr}` and strings with embedded `${...}` against `scope`.

    A string that is exactly one reference keeps the referenced value's type (`$width` -> 64);
    a reference embedded in longer text is formatted into the string (`block${i + 1}`).
    `$$` escapes a literal dollar sign.
    """
    if not isinstance(value, str) or "$" not in value:
        return value
    whole = _WHOLE_NAME.match(value)
    if whole:
        return _lookup(whole.group(1), scope)
    if value.startswith("${") and value.endswith("}") and _EMBEDDED.fullmatch(value):
        return evaluate(value[2:-1], scope)
    parts, last = [], 0
    escaped = value.replace("$$", "\0")
    for match in _EMBEDDED.finditer(escaped):
        parts.append(escaped[last:match.start()])
        expr, name = match.group(1), match.group(2)
        parts.append(str(evaluate(expr, scope) if expr is not None else _lookup(name, scope)))
        last = match.end()
    parts.append(escaped[last:])
    return "".join(parts).replace("\0", "$")


def _lookup(name: str, scope: dict):
    if name == "input" and name not in scope:
        raise ExpressionError("unknown name 'input': inside a block, `input.channels`, `input.height`, "
                              "`input.width` describe the block's input")
    if name not in scope:
        values = [key for key, value in scope.items() if not isinstance(value, SpecFunction)]
        known = ", ".join(sorted(values)) or "none"
        from ..errors import did_you_mean

        raise ExpressionError(f"unknown name '{name}'{did_you_mean(name, scope)} (known: {known})")
    value = scope[name]
    if isinstance(value, (ShapeOf, Unresolved)):
        raise NeedsShape(name)
    if isinstance(value, SpecFunction):
        raise ExpressionError(f"'{name}' is a function: call it, e.g. {name}({', '.join(value.args)})")
    return value


def evaluate(source: str, scope: dict):
    """Evaluate one expression (the text inside `${...}`)."""
    source = source.strip()
    if not source:
        raise ExpressionError("empty expression '${}'")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression '{source}': {exc.msg}") from None
    fresh = _CALLS.get(None) is None
    token = _CALLS.set(_CallStack()) if fresh else None
    try:
        return _Interpreter(scope).visit(tree.body)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in '{source}'") from None
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"cannot evaluate '{source}': {exc}") from None
    finally:
        if token is not None:
            _CALLS.reset(token)


class _Interpreter(ast.NodeVisitor):
    def __init__(self, scope: dict):
        self.scope = scope

    def generic_visit(self, node):
        raise ExpressionError(f"'{type(node).__name__}' is not allowed in expressions; use {allowed()}")

    def visit_Constant(self, node):
        if isinstance(node.value, (int, float, str, bool)) or node.value is None:
            return node.value
        return self.generic_visit(node)

    def visit_Name(self, node):
        if node.id in ("true", "false"):
            return node.id == "true"
        return _lookup(node.id, self.scope)

    def visit_Attribute(self, node):
        value = self.visit(node.value)
        if isinstance(value, InputShape):
            return value.attribute(node.attr)
        return self.generic_visit(node)

    def visit_List(self, node):
        return [self.visit(item) for item in node.elts]

    visit_Tuple = visit_List

    def visit_Dict(self, node):
        if any(key is None for key in node.keys):  # {**other}
            return self.generic_visit(node)
        return {self.visit(key): self.visit(value) for key, value in zip(node.keys, node.values)}

    def visit_Subscript(self, node):
        if isinstance(node.slice, ast.Slice):
            return self._sliced(self.visit(node.value), node.slice)
        container, index = self.visit(node.value), self.visit(node.slice)
        if isinstance(container, dict):
            if index not in container:
                from ..errors import did_you_mean

                keys = ", ".join(map(repr, container)) or "none"
                raise ExpressionError(f"no key {index!r}{did_you_mean(str(index), map(str, container))} "
                                      f"(keys: {keys})")
            return container[index]
        if not isinstance(container, (list, tuple, str)):
            raise ExpressionError(f"only lists, strings and mappings can be indexed; got {container!r}")
        if not _is_whole(index):
            raise ExpressionError(f"a list index is a whole number; got {index!r}")
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"index {index} is out of range for {container!r} ({len(container)} items)")
        return container[index]

    def _sliced(self, container, bounds: ast.Slice):
        """`x[a:b]`, `x[a:]`, `x[:b]`, `x[::step]` of a list or string, as Python slices them."""
        if not isinstance(container, (list, tuple, str)):
            raise ExpressionError(f"only lists and strings can be sliced; got {container!r}")
        parts = [None if part is None else self.visit(part) for part in (bounds.lower, bounds.upper, bounds.step)]
        if any(part is not None and not _is_whole(part) for part in parts):
            raise ExpressionError(f"slice bounds are whole numbers; got {parts[0]!r}:{parts[1]!r}:{parts[2]!r}")
        if parts[2] == 0:
            raise ExpressionError("a slice step cannot be zero")
        return container[slice(*parts)]

    def visit_BinOp(self, node):
        if type(node.op) not in _BINARY:
            return self.generic_visit(node)
        op = _BINARY[type(node.op)][1]
        left, right = self.visit(node.left), self.visit(node.right)
        if op is operator.pow and isinstance(right, (int, float)) and abs(right) > _MAX_EXPONENT:
            raise ExpressionError(f"exponent {right} is too large (at most {_MAX_EXPONENT})")
        if op is operator.mul and (isinstance(left, (str, list)) or isinstance(right, (str, list))):
            count = right if isinstance(left, (str, list)) else left
            size = len(left if isinstance(left, (str, list)) else right)
            if isinstance(count, int) and count * size > _MAX_STRING:
                raise ExpressionError("repeated string or list would be too long")
        result = op(left, right)
        if isinstance(result, (str, list)) and len(result) > _MAX_STRING:
            raise ExpressionError(f"a string or list longer than {_MAX_STRING} items")
        return result

    def visit_UnaryOp(self, node):
        if type(node.op) not in _UNARY:
            return self.generic_visit(node)
        return _UNARY[type(node.op)][1](self.visit(node.operand))

    def visit_BoolOp(self, node):
        if isinstance(node.op, ast.And):
            result = True
            for value in node.values:
                result = self.visit(value)
                if not result:
                    return result
            return result
        result = False
        for value in node.values:
            result = self.visit(value)
            if result:
                return result
        return result

    def visit_Compare(self, node):
        left = self.visit(node.left)
        for op_node, right_node in zip(node.ops, node.comparators):
            if type(op_node) not in _COMPARE:
                return self.generic_visit(op_node)
            op = _COMPARE[type(op_node)][1]
            right = self.visit(right_node)
            if not op(left, right):
                return False
            left = right
        return True

    def visit_IfExp(self, node):
        return self.visit(node.body) if self.visit(node.test) else self.visit(node.orelse)

    def visit_Call(self, node):
        name = node.func.id if isinstance(node.func, ast.Name) else None
        declared = self.scope.get(name) if name is not None else None
        if isinstance(declared, SpecFunction):
            if any(keyword.arg is None for keyword in node.keywords):  # f(**kw)
                return self.generic_visit(node)
            return declared.invoke([self.visit(arg) for arg in node.args],
                                   {keyword.arg: self.visit(keyword.value) for keyword in node.keywords})
        if name not in _FUNCTIONS or node.keywords:
            own = sorted(key for key, value in self.scope.items() if isinstance(value, SpecFunction))
            raise ExpressionError(
                f"only these functions may be called: {', '.join(sorted(_FUNCTIONS) + own)}"
            )
        return _FUNCTIONS[name](*[self.visit(arg) for arg in node.args])
