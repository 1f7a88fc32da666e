"""The errors a user of Keras Blueprint can catch: every one is a `BlueprintError`.

A spec error is one line, `file:line:col: path: message`; data and training errors (raised by
`trainers`) subclass `BlueprintError` too, so `except builder.BlueprintError` catches them all.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass


class BlueprintError(Exception):
    """The base of every error Keras Blueprint raises on purpose.

    `label` prefixes the message on the command line (`data error: ...`); empty for errors whose
    message already says where it comes from (a spec error starts with the file and line).
    """

    label = ""

    def cli_message(self) -> str:
        return f"{self.label}: {self}" if self.label else str(self)


@dataclass(frozen=True)
class Location:
    """Where a value sits in a spec file (1-based line and column)."""

    file: str
    line: int
    column: int

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}"


class SpecError(BlueprintError):
    """A spec that cannot be turned into a model, located at the offending line; inside blocks,
    `calls` holds the block calls that led there, outermost first: (block name, Location)."""

    def __init__(self, message: str, location: Location | None = None, path: str = "", calls: tuple = ()):
        self.message = message
        self.location = location
        self.path = path
        self.calls = tuple(calls)
        super().__init__(str(self))

    def __str__(self) -> str:
        parts = []
        if self.location is not None:
            parts.append(str(self.location))
        if self.path:
            parts.append(self.path)
        parts.append(self.message + call_chain(self.calls))
        return ": ".join(parts)

    def called_from(self, block: str, location: Location) -> SpecError:
        """The same error, seen from one block call further out."""
        return SpecError(self.message, self.location, self.path, ((block, location), *self.calls))


def call_chain(calls) -> str:
    """Where each enclosing block was called, innermost first ('' outside blocks)."""
    if not calls:
        return ""
    return " (in " + ", in ".join(f"block '{name}' called at {where}" for name, where in reversed(calls)) + ")"


class UnknownName(BlueprintError, KeyError):
    """A name that no registry entry has; the message lists a close match and what is known."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class PluginError(BlueprintError):
    """A plugin (an entry point of `keras_blueprint.plugins`) that failed to load."""

    label = "plugin error"


def did_you_mean(word: str, candidates) -> str:
    """A `; did you mean 'x'?` suffix when a close candidate exists, else ''."""
    matches = difflib.get_close_matches(str(word), sorted(set(map(str, candidates))), n=1, cutoff=0.6)
    return f"; did you mean '{matches[0]}'?" if matches else ""
