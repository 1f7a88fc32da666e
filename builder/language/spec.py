"""Loading a spec: YAML -> schema validation -> expansion into graphs. No Keras import."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..errors import Location, SpecError, did_you_mean
from .expand import MAX_NODES, expand_document, load_library, resolve_defaults, resolve_params
from .expressions import ExpressionError, Unresolved, deep_substitute
from .schema import validate_document
from .search_space import check_space, spec_search_space
from .yaml_loader import LocatedDict, load_yaml_file, location_of
from .zoo import find_spec_file, zoo_names


@dataclass(frozen=True)
class Spec:
    """A loaded, validated and expanded spec."""

    name: str
    file: str
    params: dict
    overrides: dict
    graphs: dict
    main: str
    expect: dict = field(default_factory=dict)
    test_overrides: dict = field(default_factory=dict)
    train: dict = field(default_factory=dict)
    search: tuple = ()  # the `search:` section's Dimensions (builder.language.search_space)
    document: LocatedDict | None = field(default=None, repr=False, compare=False)

    @property
    def graph(self):
        """The main model's graph."""
        return self.graphs[self.main]

    def shape_dependent_arguments(self) -> int:
        """Arguments that read a block's input shape (`${input.channels}`): known, and checked,
        only when the model is built."""
        return sum(isinstance(value, Unresolved) for graph in self.graphs.values() for node in graph.nodes
                   for value in node.args.values())

    def shape_dependent_choices(self) -> int:
        """`when`s and `shortcut`s that read a block's input shape: decided, once per block call,
        when the model is built (a shortcut's choice switches several skips on or off)."""
        return len({id(getattr(condition.switch, "shortcut", condition.switch)) for graph in self.graphs.values()
                    for node in graph.nodes for condition in node.conditions})

    def check_model(self, name: str) -> None:
        """Refuse a model name the spec does not define, listing those it does."""
        if name not in self.graphs:
            raise SpecError(f"the spec defines no model '{name}' (it has: {', '.join(self.graphs)})")


def _load_library(path: Path) -> LocatedDict:
    document = load_yaml_file(path)
    validate_document(document, str(path))
    return document


def load_spec(path: str | Path, overrides: dict | None = None, max_nodes: int = MAX_NODES) -> Spec:
    """Load, validate and expand a spec file (or the zoo spec of that name, when no such file
    exists); raise `SpecError` naming the spec line on failure.

    `overrides` maps param names to values (what `--set name=value` gives on the command line).
    """
    path = find_spec_file(path)
    file = str(path)
    if not path.is_file() and not path.suffix and path.parent == Path("."):
        raise SpecError(f"no such file, and no zoo spec of that name{did_you_mean(path.name, zoo_names())} "
                        f"(zoo: {', '.join(zoo_names())})", Location(file, 1, 1))
    document = load_yaml_file(path)
    validate_document(document, file)
    library = load_library(document, file, _load_library)
    params = resolve_params(document, overrides, file, library.functions)
    defaults = resolve_defaults(document, params, library.functions)
    graphs, main = expand_document(document, file, params, library, max_nodes, defaults)
    expect = _resolved(document, "expect", params, file)
    search = spec_search_space(document, file)
    check_space(search, document, file)
    return Spec(
        name=str(document.get("name", Path(file).stem)),
        file=file,
        params=params,
        overrides=dict(overrides or {}),
        graphs=graphs,
        main=main,
        expect=expect,
        test_overrides=dict(document.get("test_overrides") or {}),
        train=dict(document.get("train") or {}),
        search=tuple(search),
        document=document,
    )


def _resolved(document, key, params, file) -> dict:
    try:
        return deep_substitute(dict(document.get(key) or {}), params)
    except ExpressionError as exc:
        raise SpecError(str(exc), location_of(document, key) or Location(file, 1, 1), key) from None
