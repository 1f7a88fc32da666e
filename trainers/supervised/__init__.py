"""Supervised training: image classification and semantic segmentation, their settings and metrics.

Its trainer classes import from here: `SupervisedTrainer`, `SegmentationTrainer`."""

from ..former_paths import family_exports

__getattr__ = family_exports(
    __name__, {"SupervisedTrainer": "classification", "SegmentationTrainer": "segmentation"},
    former="classification")
