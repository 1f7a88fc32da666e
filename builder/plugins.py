"""Plugins: installed distributions that extend Keras Blueprint through entry points.

An entry point in the group `keras_blueprint.plugins` names a module (imported) or a callable
(called with no arguments); either registers layer types, trainers, datasets or commands through
the public API (`builder.register_layer`, `trainers.register_trainer`, ...). They are loaded once,
before a spec is read, by the CLI and by the Python API. The `trainers` package is itself the
first such plugin: `builder` never imports it.
"""

from __future__ import annotations

import importlib.metadata
import types

from .errors import PluginError

GROUP = "keras_blueprint.plugins"
_loaded: list[str] = []
_started = False


def load_plugins() -> list[str]:
    """Load every plugin once; returns the names loaded. A plugin that fails raises `PluginError`
    naming it and its error."""
    global _started
    if _started:
        return list(_loaded)
    _started = True  # a failing plugin is reported once, not at every spec
    seen = set()
    for entry_point in sorted(importlib.metadata.entry_points(group=GROUP), key=lambda e: e.name):
        if (entry_point.name, entry_point.value) in seen:  # the same distribution found twice on sys.path
            continue
        seen.add((entry_point.name, entry_point.value))
        try:
            target = entry_point.load()
            if callable(target) and not isinstance(target, types.ModuleType):
                target()
        except Exception as exc:  # a plugin's own bug is reported as one line naming it
            raise PluginError(f"plugin '{entry_point.name}' ({entry_point.value}) failed: "
                              f"{type(exc).__name__}: {exc}") from exc
        _loaded.append(entry_point.name)
    return list(_loaded)
