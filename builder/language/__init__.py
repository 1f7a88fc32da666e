"""The spec language: YAML loading with locations, safe expressions, the layer-type registry,
the JSON Schema, expansion into flat graphs, and the `train:` section. Never imports Keras."""

from . import builtin_layers  # noqa: F401  (registers the built-in layer types)
