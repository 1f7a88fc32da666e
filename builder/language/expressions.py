"""A small, safe evaluator for `$name` and `${expression}` values in specs.

Expressions are parsed with `ast` and interpreted node by node from a whitelist (`allowed()`
says what it holds): numbers, strings, booleans, lists and mappings, names bound in the current
scope, indexing (`widths[i]`, `table['key']`), arithmetic, comparisons, `and`/`or`/`not`,
`a if cond else b`, and a few functions. Nothing is ever passed to `eval`.
"""

from __future__ import annotations

import ast
import operator
import re

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
_FUNCTIONS = {"min": min, "max": max, "abs": abs, "int": int, "float": float, "round": round, "len": len}

# Keeps `2 ** 10 ** 10` from freezing the process.
_MAX_EXPONENT = 256
_MAX_STRING = 10_000

_WHOLE_NAME = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)$")
_EMBEDDED = re.compile(r"\$\{([^{}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)")


def allowed() -> str:
    """What expressions may hold, from the tables the interpreter uses."""
    return ("numbers, strings, true/false, names, lists [a, b], mappings {'k': v}, indexing x[i] and x['key'], "
            f"{' '.join(symbol for symbol, _ in _BINARY.values())}, unary - and +, "
            f"{' '.join(symbol for symbol, _ in _COMPARE.values())}, and/or/not, 'a if c else b', "
            f"and the functions {', '.join(sorted(_FUNCTIONS))}")


class ExpressionError(ValueError):
    """An expression that cannot be evaluated; the message says why."""


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
    if name not in scope:
        known = ", ".join(sorted(scope)) or "none"
        from ..errors import did_you_mean

        raise ExpressionError(f"unknown name '{name}'{did_you_mean(name, scope)} (known: {known})")
    return scope[name]


def evaluate(source: str, scope: dict):
    """Evaluate one expression (the text inside `${...}`)."""
    source = source.strip()
    if not source:
        raise ExpressionError("empty expression '${}'")
    try:
        tree = ast.parse(source, mode="eval")
    except SyntaxError as exc:
        raise ExpressionError(f"cannot parse expression '{source}': {exc.msg}") from None
    try:
        return _Interpreter(scope).visit(tree.body)
    except ZeroDivisionError:
        raise ExpressionError(f"division by zero in '{source}'") from None
    except (TypeError, ValueError, OverflowError) as exc:
        if isinstance(exc, ExpressionError):
            raise
        raise ExpressionError(f"cannot evaluate '{source}': {exc}") from None


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

    def visit_List(self, node):
        return [self.visit(item) for item in node.elts]

    visit_Tuple = visit_List

    def visit_Dict(self, node):
        if any(key is None for key in node.keys):  # {**other}
            return self.generic_visit(node)
        return {self.visit(key): self.visit(value) for key, value in zip(node.keys, node.values)}

    def visit_Subscript(self, node):
        if isinstance(node.slice, ast.Slice):
            raise ExpressionError("slices are not allowed in expressions; index one item, e.g. widths[i]")
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
        if not isinstance(index, int) or isinstance(index, bool):
            raise ExpressionError(f"a list index is a whole number; got {index!r}")
        if not -len(container) <= index < len(container):
            raise ExpressionError(f"index {index} is out of range for {container!r} ({len(container)} items)")
        return container[index]

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
        return op(left, right)

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
        if not isinstance(node.func, ast.Name) or node.func.id not in _FUNCTIONS or node.keywords:
            raise ExpressionError(
                f"only these functions may be called: {', '.join(sorted(_FUNCTIONS))}"
            )
        return _FUNCTIONS[node.func.id](*[self.visit(arg) for arg in node.args])
