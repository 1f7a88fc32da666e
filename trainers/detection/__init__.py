"""Object detection: anchors, box operations, matching and losses of the single-shot and two-stage
detectors, inference with non-maximum suppression, COCO-style metrics, generated and
annotation-file data.

Its trainer classes import from here: `DetectionTrainer`."""

from ..former_paths import family_exports

__getattr__ = family_exports(__name__, {"DetectionTrainer": "single_shot"}, former="single_shot")
