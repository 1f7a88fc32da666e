"""Spec errors: one line each, `file:line:col: path: message`."""

from __future__ import annotations

import difflib
from dataclasses import dataclass


@dataclass(frozen=True)
class Location:
    """Where a value sits in a spec file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SpecError(Exception):
    """A spec that cannot be turned into a model, located at the offending line."""

    def __init__(self, message: str, location: Location | None = None, path: str = ""):
        self.message = message
        self.location = location
        self.path = path
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        parts.append(self.message)
        return ": ".join(parts)


def did_you_mean(word: str, candidates) -> str:
    """A `; did you mean 'x'?` suffix when a close candidate exists, else ''."""
    matches = difflib.get_close_matches(str(word), sorted(set(map(str, candidates))), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
