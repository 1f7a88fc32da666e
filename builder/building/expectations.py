"""`expect:` enforced: the published figures a spec declares (parameter counts), checked against
the models it builds, so a wrong channel count or a missing layer cannot pass as the network the
spec names."""

from __future__ import annotations

import math

from ..errors import Location, SpecError
from ..language.yaml_loader import location_of

FIGURES = ("params", "trainable_params")


def count_values(weights) -> int:
    return sum(math.prod(int(d) for d in weight.shape) for weight in weights)


def expectations_for(spec, model_name: str) -> dict:
    """The figures `expect:` declares for one model: top-level figures belong to the main model,
    a mapping under a model's name to that model."""
    figures = {key: value for key, value in spec.expect.items() if key in FIGURES} if model_name == spec.main else {}
    nested = spec.expect.get(model_name)
    return {**figures, **(nested if isinstance(nested, dict) else {})}


def check_expectations(spec, model) -> dict:
    """The spec's `expect:` figures for this model against it: {figure: {expected, actual, ok}}."""
    actual = {"params": count_values(model.weights), "trainable_params": count_values(model.trainable_weights)}
    return {key: {"expected": value, "actual": actual[key], "ok": value == actual[key]}
            for key, value in expectations_for(spec, model.name).items()}


def enforce_expectations(spec, models: dict) -> None:
    """Refuse models whose counts differ from the spec's `expect:`, at the figure's spec line.
    The figures describe the spec at its own params: with overrides they are not checked."""
    if spec.overrides or not spec.expect:
        return
    for name, model in models.items():
        for key, check in check_expectations(spec, model).items():
            if check["ok"]:
                continue
            nested = name != spec.main or key not in spec.expect
            path = f"expect.{name}.{key}" if nested else f"expect.{key}"
            raise SpecError(
                f"model '{name}' has {check['actual']:,} {key.replace('_', ' ')} where expect: declares "
                f"{check['expected']:,} ({check['actual'] - check['expected']:+,}); fix the spec (or the figure), "
                "or build it anyway with --no-expect (check_expect=False in Python)",
                _location(spec, name if nested else None, key), path)


def _location(spec, model_name, key) -> Location:
    document = spec.document
    fallback = location_of(document, "expect", Location(spec.file, 1, 1))
    holder = document.get("expect") if document is not None else None
    if model_name and holder is not None:
        holder = holder.get(model_name)
    return location_of(holder, key, fallback)
