"""A spec's search space: the `search:` section and `tune --search`, one grammar for both.

    search:
      width: int(8, 64, log)                           # an integer range, sampled on a log scale
      depth: int(1, 3)
      dropout: float(0.0, 0.5, step=0.1)               # a float range on a grid of 0.1
      block: choice(basic, bottleneck)                  # categorical: YAML scalars
      train.optimizer.adam.learning_rate: float(1e-4, 1e-2, log)

A name is a param of the spec, or `train.` and the dotted path of a `train:` setting (as `--train`
writes it). Everything here is checked without a backend, each error at its spec line (or naming
its `--search` flag); whether a sampled combination builds is up to the trial that samples it.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

import yaml

from ..errors import Location, SpecError, did_you_mean
from .expand import fits_param
from .train_section import resolve_train
from .yaml_loader import load_scalar, location_of

KINDS = ("int", "float", "choice")
TRAIN_PREFIX = "train."
_FORM = re.compile(r"^\s*([a-z]+)\s*\((.*)\)\s*$", re.DOTALL)
SYNTAX = "int(LOW, HIGH[, log][, step=S]), float(LOW, HIGH[, log][, step=S]) or choice(A, B, ...)"


@dataclass(frozen=True)
class Dimension:
    """One searched setting. `low`/`high` bound a range (`log`: sampled on a log scale; `step`:
    on a grid of that spacing from `low`); `choices` are the values of a categorical one."""

    name: str
    kind: str
    low: float | int | None = None
    high: float | int | None = None
    log: bool = False
    step: float | int | None = None
    choices: tuple = ()
    written: str = ""

    @property
    def in_train(self) -> bool:
        return self.name.startswith(TRAIN_PREFIX)

    @property
    def setting(self) -> str:
        """The param name, or the dotted `train:` path without `train.`."""
        return self.name[len(TRAIN_PREFIX):] if self.in_train else self.name

    def grid(self) -> list | None:
        """Every value, for a grid search; None for a continuous range."""
        if self.kind == "choice":
            return list(self.choices)
        if self.kind == "int":
            return list(range(int(self.low), int(self.high) + 1, int(self.step or 1)))
        if self.step is None:
            return None
        count = int(math.floor((self.high - self.low) / self.step + 1e-9)) + 1
        return [round(self.low + i * self.step, 12) for i in range(count)]

    def __str__(self) -> str:
        return f"{self.name}={self.written}"


def parse_dimension(name: str, text, where: Location | None = None, flag: str = "") -> Dimension:
    """One entry (`int(8, 64, log)`), refused with its location or its flag."""
    path = flag or f"search.{name}"

    def refuse(message: str):
        return SpecError(message, where, path)

    if not isinstance(text, str) or not _FORM.match(text):
        raise refuse(f"expected {SYNTAX}; got {text!r}")
    kind, body = _FORM.match(text).groups()
    if kind not in KINDS:
        raise refuse(f"unknown kind '{kind}'{did_you_mean(kind, KINDS)}; expected {SYNTAX}")
    parts = [part.strip() for part in body.split(",")] if body.strip() else []
    if any(not part for part in parts):
        raise refuse(f"an empty item in {text!r}")
    try:
        values = [load_scalar(part) for part in parts]
    except yaml.YAMLError:
        raise refuse(f"{text!r} holds a value that is not a YAML scalar") from None
    written = re.sub(r"\s+", " ", text.strip())
    if kind == "choice":
        if not values:
            raise refuse("choice() needs at least one value")
        if len(set(map(repr, values))) < len(values):
            raise refuse(f"{text!r} repeats a value")
        return Dimension(name, kind, choices=tuple(values), written=written)
    return _range(name, kind, values, parts, text, written, refuse)


def _range(name, kind, values, parts, text, written, refuse) -> Dimension:
    if len(values) < 2 or not all(_number(value) for value in values[:2]):
        raise refuse(f"{kind}() starts with two numbers, LOW and HIGH; got {text!r}")
    low, high = values[:2]
    log, step = False, None
    for part in parts[2:]:
        key, sep, value = part.partition("=")
        if part == "log":
            log = True
        elif sep and key.strip() == "step" and _number(load_scalar(value.strip())):
            step = load_scalar(value.strip())
        else:
            raise refuse(f"{kind}() takes `log` and `step=S` after LOW and HIGH; got '{part}'")
    if kind == "int":
        if not all(isinstance(value, int) for value in (low, high, step if step is not None else 1)):
            raise refuse(f"int() takes whole numbers; got {text!r} (use float() for fractions)")
    low, high = (int(low), int(high)) if kind == "int" else (float(low), float(high))
    if low >= high:
        raise refuse(f"an empty range: LOW ({low}) must be below HIGH ({high})")
    if log and low <= 0:
        raise refuse(f"a log range needs LOW above 0; got {low}")
    if step is not None:
        if step <= 0:
            raise refuse(f"step must be above 0; got {step}")
        if log:
            raise refuse("a range is either `log` or on a `step` grid, not both")
        if step > high - low:
            raise refuse(f"step {step} is wider than the range {low}..{high}")
    return Dimension(name, kind, low, high, log, None if step is None else (int(step) if kind == "int" else
                                                                            float(step)), written=written)


def _number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def parse_search_flag(text: str) -> Dimension:
    """`--search 'width=int(16,128,log)'`."""
    name, sep, form = text.partition("=")
    if not sep or not name.strip():
        raise SpecError(f"expected NAME={SYNTAX}; got '{text}'", None, "--search")
    return parse_dimension(name.strip(), form, None, f"--search {name.strip()}")


def spec_search_space(document, file: str) -> list[Dimension]:
    """The entries of a loaded spec document's `search:` section."""
    section = document.get("search") or {}
    return [parse_dimension(str(name), text, location_of(section, name) or Location(file, 1, 1))
            for name, text in section.items()]


def check_space(dimensions: list[Dimension], document, file: str) -> None:
    """Every name is a param (searched with values of its type) or a `train:` setting the trainer
    accepts each value of; raise `SpecError` at the entry's line (or naming its flag) otherwise."""
    section = document.get("search") or {}
    params = document.get("params") or {}
    train = dict(document.get("train") or {})
    seen = set()
    for dimension in dimensions:
        where = location_of(section, dimension.name) if dimension.name in section else None
        path = f"search.{dimension.name}" if where else f"--search {dimension.name}"
        if dimension.name in seen:
            raise SpecError("searched twice (in the spec and on the command line, or twice on the command line)",
                            where, path)
        seen.add(dimension.name)
        if not dimension.in_train:
            if dimension.name not in params:
                known = ", ".join(params) or "none"
                raise SpecError(f"no param '{dimension.name}'{did_you_mean(dimension.name, params)} (params: {known}); "
                                "a train setting is written train.KEY.PATH", where, path)
            default = params[dimension.name]
            unfit = [value for value in _sample_values(dimension) if not fits_param(default, value)]
            if unfit:
                raise SpecError(f"the param's default is {default!r}, {_kind_of(default)}; {unfit[0]!r} does not fit "
                                "it" + (" (search it with int())" if isinstance(default, int) else ""), where, path)
            continue
        for value in _sample_values(dimension):
            try:
                resolve_train(train, {dimension.setting: value}, file)
            except SpecError as exc:
                raise SpecError(f"train setting {dimension.setting}={value!r}: {exc.message}", where, path) from None


def _kind_of(value) -> str:
    return {bool: "a boolean", int: "a whole number", float: "a number", str: "a string"}.get(type(value), "a value")


def _sample_values(dimension: Dimension) -> list:
    if dimension.kind == "choice":
        return list(dimension.choices)
    return [dimension.low, dimension.high]


def apply_values(values: dict) -> tuple[dict, dict]:
    """A trial's {name: value} split into (param overrides, `train:` overrides)."""
    params = {name: value for name, value in values.items() if not name.startswith(TRAIN_PREFIX)}
    train = {name[len(TRAIN_PREFIX):]: value for name, value in values.items() if name.startswith(TRAIN_PREFIX)}
    return params, train
