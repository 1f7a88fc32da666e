"""YAML -> plain data that remembers where every value came from.

Mappings become `LocatedDict` and sequences `LocatedList`; both record the location of each
key and item, so any later stage can point a user at the exact spec line. Loading goes through
`yaml.SafeLoader` only (`SpecLoader` adds YAML 1.2's `1e-4`): a spec is data, and no YAML tag
can construct a Python object.
"""

from __future__ import annotations

import re
from pathlib import Path

import yaml

from ..errors import Location, SpecError

# Generous for any real network, small enough that an alias bomb ("billion laughs") is refused
# in milliseconds instead of exhausting memory.
MAX_YAML_NODES = 50_000


class SpecLoader(yaml.SafeLoader):
    """PyYAML's safe loader, reading `1e-4` as the number YAML 1.2 (and every user) means: YAML
    1.1 wants a dot (`1.0e-4`) and would leave it a string."""


SpecLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9][0-9_]*)(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"))


def load_scalar(text: str):
    """One YAML value as a spec would read it (command-line overrides)."""
    loader = SpecLoader(text)
    try:
        return loader.get_single_data()
    finally:
        loader.dispose()


_STANDARD_TAGS = tuple(f"tag:yaml.org,2002:{kind}" for kind in
                      ("map", "seq", "str", "int", "float", "bool", "null", "merge"))


class LocatedDict(dict):
    """A dict whose keys and values remember their spec location."""

    location: Location
    key_locations: dict
    value_locations: dict

    def loc(self, key=None) -> Location:
        if key is None:
            return self.location
        return self.value_locations.get(key, self.key_locations.get(key, self.location))

    def key_loc(self, key) -> Location:
        return self.key_locations.get(key, self.location)


class LocatedList(list):
    """A list whose items remember their spec location."""

    location: Location
    item_locations: list

    def loc(self, index=None) -> Location:
        if index is None or not 0 <= index < len(self.item_locations):
            return self.location
        return self.item_locations[index]


def location_of(container, key=None, default: Location | None = None) -> Location | None:
    """The location of `container[key]` (or the container) if it was loaded from YAML."""
    if isinstance(container, (LocatedDict, LocatedList)):
        return container.loc(key)
    return default


def _mark(file: str, node: yaml.Node) -> Location:
    return Location(file, node.start_mark.line + 1, node.start_mark.column + 1)


class _Converter:
    def __init__(self, file: str, loader: yaml.SafeLoader):
        self.file = file
        self.loader = loader
        self.visited = 0

    def convert(self, node: yaml.Node):
        self.visited += 1
        if self.visited > MAX_YAML_NODES:
            raise SpecError(
                f"the document expands to more than {MAX_YAML_NODES} YAML nodes "
                "(an alias bomb?); write the structure out or use `repeat`",
                _mark(self.file, node),
            )
        if not node.tag.startswith(_STANDARD_TAGS):
            raise SpecError(f"the YAML tag '{node.tag}' is not allowed: a spec is plain data "
                            "(mappings, lists, strings, numbers, booleans, null)", _mark(self.file, node))
        if isinstance(node, yaml.MappingNode):
            return self._mapping(node)
        if isinstance(node, yaml.SequenceNode):
            return self._sequence(node)
        return self.loader.construct_object(node, deep=True)

    def _mapping(self, node: yaml.MappingNode) -> LocatedDict:
        self.loader.flatten_mapping(node)  # resolves YAML merge keys (<<)
        result = LocatedDict()
        result.location = _mark(self.file, node)
        result.key_locations, result.value_locations = {}, {}
        for key_node, value_node in node.value:
            key = self.convert(key_node)
            if not isinstance(key, (str, int, float, bool)) or key is None:
                raise SpecError("mapping keys must be plain scalars", _mark(self.file, key_node))
            if key in result:
                raise SpecError(f"duplicate key '{key}'", _mark(self.file, key_node))
            result[key] = self.convert(value_node)
            result.key_locations[key] = _mark(self.file, key_node)
            result.value_locations[key] = _mark(self.file, value_node)
        return result

    def _sequence(self, node: yaml.SequenceNode) -> LocatedList:
        result = LocatedList(self.convert(item) for item in node.value)
        result.location = _mark(self.file, node)
        result.item_locations = [_mark(self.file, item) for item in node.value]
        return result


def load_yaml_text(text: str, file: str = "<string>"):
    """Parse one YAML document into located plain data; syntax errors become SpecErrors."""
    loader = SpecLoader(text)
    try:
        root = loader.get_single_node()
        if root is None:
            raise SpecError("the file is empty; a spec needs at least `input` and `layers`",
                            Location(file, 1, 1))
        return _Converter(file, loader).convert(root)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file, 1, 1)
        problem = exc.problem or exc.context or "invalid YAML"
        lines = text.splitlines()
        line = lines[where.line - 1] if 0 < where.line <= len(lines) else ""
        if "${" in line:
            problem += '; inside { } or [ ], quote expressions: "${width * 2}"'
        bare = _bare_type_above(lines, where.line) if "mapping values" in problem else None
        if bare:
            problem += (f"; '- {bare}' is a bare type name, which takes no keys: write '- {bare}: {{}}' "
                        f"and keep '{line.strip()}' below it")
        raise SpecError(f"not valid YAML: {problem}", where) from None
    except yaml.YAMLError as exc:
        raise SpecError(f"not valid YAML: {exc}", Location(file, 1, 1)) from None
    finally:
        loader.dispose()


_BARE_ITEM = re.compile(r"^(\s*)- ([A-Za-z_][A-Za-z0-9_]*)\s*(#.*)?$")
_KEY_LINE = re.compile(r"^(\s*)[A-Za-z_][A-Za-z0-9_]*\s*:")


def _bare_type_above(lines: list, line_number: int) -> str | None:
    """The type name of a `- type` list item directly above a `key: value` line (1-based), the
    one layout where YAML's "mapping values are not allowed here" means "add `: {}`"."""
    if not 1 < line_number <= len(lines):
        return None
    above, here = _BARE_ITEM.match(lines[line_number - 2]), _KEY_LINE.match(lines[line_number - 1])
    if above and here and len(here.group(1)) > len(above.group(1)):
        return above.group(2)
    return None


def load_yaml_file(path: str | Path):
    """Read and parse a spec file, reporting unreadable files as SpecErrors."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise SpecError("no such file", Location(str(path), 1, 1)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"cannot read the file: {exc}", Location(str(path), 1, 1)) from None
    return load_yaml_text(text, str(path))
