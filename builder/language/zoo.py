"""The model zoo that installs with the package: spec files found by name, block libraries
that `include:` can name from anywhere.

In a wheel the zoo is the package data `builder/zoo/` (built from `specs/`, which stays the
source); in a source checkout or editable install it is `specs/` itself.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parents[1]


def zoo_dir() -> Path:
    installed = _PACKAGE / "zoo"
    return installed if installed.is_dir() else _PACKAGE.parent / "specs"


def zoo_names() -> list[str]:
    return sorted(path.stem for path in zoo_dir().glob("*.yaml"))


def find_spec_file(text: str | Path) -> Path:
    """A spec path as given when that file exists, else the zoo spec of that name
    (`resnet50` or `resnet50.yaml`), else the path as given (its loader reports it missing)."""
    path = Path(text)
    if path.is_file() or path.parent != Path("."):
        return path
    candidate = zoo_dir() / (path.name if path.suffix == ".yaml" else f"{path.name}.yaml")
    return candidate if candidate.is_file() else path


def find_library(including_file: str, relative: str) -> Path:
    """An `include:` target: relative to the including file, else a zoo block library
    (`blocks/resnet.yaml`)."""
    local = (Path(including_file).parent / relative).resolve()
    if local.is_file():
        return local
    in_zoo = (zoo_dir() / relative).resolve()
    return in_zoo if in_zoo.is_file() and zoo_dir().resolve() in in_zoo.parents else local
