"""One registry type for every extension point: layer types, trainers, datasets, optimizers,
schedules, augmentations, losses, metrics and CLI commands.

A registry maps names to entries of one kind. Registering a taken name is an error unless
`replace=True`; looking up a missing name raises `UnknownName` with a did-you-mean. Schema enums,
CLI choices and docs read their names from here, so a name is never typed twice.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Generic, TypeVar

from .errors import UnknownName, did_you_mean

Entry = TypeVar("Entry")


class Registry(Generic[Entry]):
    """Names of one kind of extension (`kind`, e.g. "dataset") and their entries, in
    registration order. `check_name` may refuse a name with a ValueError saying why."""

    def __init__(self, kind: str, check_name: Callable[[str], None] | None = None):
        self.kind = kind
        self._check_name = check_name
        self._entries: dict[str, Entry] = {}

    def register(self, name: str, entry: Entry, *, replace: bool = False) -> Entry:
        if not isinstance(name, str) or not name:
            raise ValueError(f"a {self.kind} name is a non-empty string; got {name!r}")
        if self._check_name is not None:
            self._check_name(name)
        if name in self._entries and not replace:
            raise ValueError(f"{self.kind} '{name}' is already registered; pass replace=True to override it")
        self._entries[name] = entry
        return entry

    def unregister(self, name: str) -> None:
        self._entries.pop(name, None)

    def get(self, name: str) -> Entry:
        try:
            return self._entries[name]
        except (KeyError, TypeError):
            raise UnknownName(self.unknown(name)) from None

    __getitem__ = get

    def unknown(self, name) -> str:
        """The message for a name that is not registered."""
        known = ", ".join(self._entries) or "none"
        return f"unknown {self.kind} '{name}'{did_you_mean(name, self._entries)} (known: {known})"

    def names(self) -> list[str]:
        return list(self._entries)

    def items(self):
        return self._entries.items()

    def __contains__(self, name) -> bool:
        return name in self._entries

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._entries))

    def __len__(self) -> int:
        return len(self._entries)

    def __repr__(self) -> str:
        return f"Registry({self.kind!r}, {len(self._entries)} entries)"
