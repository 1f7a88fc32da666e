"""Metric learning: an embedding trained with contrastive or triplet losses, and open-set identification.

Its trainer classes import from here: `MetricTrainer`."""

from ..former_paths import family_exports

__getattr__ = family_exports(__name__, {"MetricTrainer": "embedding"}, former="embedding")
