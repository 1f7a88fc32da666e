"""`functions:`: named helper expressions declared in a spec or a block library.

    functions:
      make_divisible:
        args: [value, divisor]
        defaults: {divisor: 8}
        let: {rounded: "${max(divisor, int(value + divisor / 2) // divisor * divisor)}"}
        returns: "${rounded + divisor if rounded < 0.9 * value else rounded}"

Everything about a declaration is checked where it is written, before any call: its names,
the names its body reads, the functions it calls, and that no function reaches itself through
calls (functions cannot recurse). The interpreter evaluates calls (`SpecFunction.invoke`).
"""

from __future__ import annotations

from ..errors import SpecError, did_you_mean
from .expressions import SpecFunction, builtin_functions, expressions_in, names_used
from .yaml_loader import location_of


def declare_functions(declarations, file: str, table: dict) -> None:
    """Add the functions of one document's `functions:` to `table` (shared by all of them)."""
    for name, body in (declarations or {}).items():
        location = location_of(declarations, name)
        path = f"functions.{name}"
        if not str(name).isidentifier():
            raise SpecError(f"a function name is an identifier; got '{name}'", location, path)
        if name in builtin_functions():
            raise SpecError(f"'{name}' is a built-in function; give yours another name", location, path)
        if name in table:
            raise SpecError(f"function '{name}' is declared twice (also at {table[name].where})", location, path)
        args = [str(arg) for arg in body["args"]]
        for i, arg in enumerate(args):
            if not arg.isidentifier() or arg in ("true", "false"):
                raise SpecError(f"an argument name is an identifier; got '{arg}'",
                                location_of(body["args"], i), f"{path}.args[{i}]")
            if args.count(arg) > 1:
                raise SpecError(f"argument '{arg}' is listed twice", location_of(body["args"], i), f"{path}.args")
        defaults = dict(body.get("defaults") or {})
        for key in defaults:
            if key not in args:
                raise SpecError(f"a default for '{key}', which is not an argument{did_you_mean(key, args)} "
                                f"(args: {', '.join(args)})", location_of(body["defaults"], key), f"{path}.defaults")
        let = list((body.get("let") or {}).items())
        for key, _ in let:
            if key in args or not str(key).isidentifier():
                raise SpecError(f"`let` name '{key}' must be an identifier that is not an argument",
                                location_of(body["let"], key), f"{path}.let")
        table[name] = SpecFunction(name, tuple(args), defaults, tuple(let), body["returns"],
                                   str(location), table)


def check_functions(table: dict, documents: dict) -> None:
    """Check every body against the whole table (so functions may call later ones): what it reads
    is an argument, an earlier `let` or a function; what it calls exists; nothing recurses.

    `documents` maps a function's name to its declaration (for locations).
    """
    calls: dict[str, set] = {}
    for name, function in table.items():
        body = documents[name]
        visible = set(function.args)
        calls[name] = set()
        steps = [*((f"let.{key}", value, location_of(body["let"], key)) for key, value in function.let),
                 ("returns", function.returns, location_of(body, "returns"))]
        for step, value, location in steps:
            for source in _sources(value):
                try:
                    read, called = names_used(source)
                except SyntaxError as exc:
                    raise SpecError(f"cannot parse expression '{source}': {exc.msg}", location,
                                    f"functions.{name}.{step}") from None
                for word in sorted(read - visible):
                    hint = ("; functions see only their arguments, `let` names and other functions, "
                            "not the spec's params: pass it as an argument") if word not in table else \
                        f"; '{word}' is a function: call it"
                    raise SpecError(f"function '{name}' reads '{word}', which it does not have"
                                    f"{did_you_mean(word, visible)}{hint}", location, f"functions.{name}.{step}")
                for callee in sorted(called - set(builtin_functions())):
                    if callee not in table:
                        raise SpecError(f"function '{name}' calls '{callee}', which is not a function"
                                        f"{did_you_mean(callee, [*table, *builtin_functions()])}",
                                        location, f"functions.{name}.{step}")
                    calls[name].add(callee)
            if step.startswith("let."):
                visible.add(step[4:])
    for name in table:
        cycle = _cycle_from(name, calls, [name], set())
        if cycle:
            raise SpecError(f"functions cannot recurse: {' -> '.join(cycle)}",
                            location_of(documents[name]), f"functions.{name}")


def _sources(value) -> list[str]:
    if isinstance(value, dict):
        return [source for item in value.values() for source in _sources(item)]
    if isinstance(value, list):
        return [source for item in value for source in _sources(item)]
    return expressions_in(value)


def _cycle_from(start: str, calls: dict, path: list, seen: set) -> list | None:
    for callee in sorted(calls[path[-1]]):
        if callee == start:
            return [*path, callee]
        if callee not in seen:
            seen.add(callee)
            found = _cycle_from(start, calls, [*path, callee], seen)
            if found:
                return found
    return None
