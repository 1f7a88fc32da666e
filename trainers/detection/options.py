"""The detection trainer's own `train:` settings (the common ones are in `trainers.run.settings`).

Keras-free, so the trainer registry's schemas are built without a backend; the trainer class
declares the same constants as its `options`, so a subclass (a plugin's) inherits them."""

from __future__ import annotations

from ..run.settings import FRACTION, NON_NEGATIVE, POSITIVE, Setting


def _detection_schema() -> dict:
    level = {
        "type": "object",
        "description": "one feature level: its stride in pixels and the anchor sizes (square root of the area) "
                       "at each of its cells",
        "properties": {
            "stride": {"type": "integer", "minimum": 1},
            "sizes": {"type": "array", "items": POSITIVE, "minItems": 1},
            "aspect_ratios": {"type": "array", "items": POSITIVE, "minItems": 1,
                              "description": "width / height of the anchors (default: the section's)"},
        },
        "required": ["stride", "sizes"],
        "additionalProperties": False,
    }
    return {
        "type": "object",
        "description": "anchors, matching, losses and inference of the single-shot or two-stage detector",
        "properties": {
            "anchors": {"type": "array", "items": level, "minItems": 1,
                        "description": "a single-shot detector's feature levels in the order the heads concatenate "
                                       "them (a two-stage detector's anchors are its region_proposals layer's)"},
            "aspect_ratios": {"type": "array", "items": POSITIVE, "minItems": 1,
                              "description": "width / height of every level's anchors"},
            "positive_iou": {**FRACTION, "description": "an anchor (two stages: a region) this close to an object "
                                                        "learns its class"},
            "negative_iou": {**FRACTION, "description": "an anchor below this with every object learns background "
                                                        "(between the two: ignored)"},
            "classification_loss": {"enum": ["focal", "cross_entropy"],
                                    "description": "focal (Lin et al. 2017, on sigmoid scores) or plain sigmoid "
                                                   "cross-entropy"},
            "focal_alpha": {**FRACTION, "description": "the focal loss's weight of the positive class"},
            "focal_gamma": {**NON_NEGATIVE, "description": "the focal loss's focusing exponent (0: cross-entropy "
                                                           "weighted by alpha)"},
            "rpn_positive_iou": {**FRACTION, "description": "two stages: an anchor this close to an object (or "
                                                            "an object's best anchor) is an object to the RPN"},
            "rpn_negative_iou": {**FRACTION, "description": "two stages: an anchor below this with every object is "
                                                            "background to the RPN (between the two: ignored)"},
            "rpn_samples": {"type": "integer", "minimum": 2, "description": "two stages: the anchors per image the "
                                                                            "RPN learns from, at most half objects"},
            "region_positive_fraction": {**FRACTION, "description": "two stages: the largest share of objects among "
                                                                    "the regions the box head learns from (as many "
                                                                    "as the proposals, drawn from them and the true "
                                                                    "boxes)"},
            "box_loss": {"enum": ["smooth_l1", "ciou"],
                         "description": "smooth L1 on the encoded offsets (SSD) or 1 - CIoU of the decoded boxes"},
            "box_weight": {**NON_NEGATIVE, "description": "loss = classification + box_weight * box"},
            "score_threshold": {**FRACTION, "description": "detections scoring below this are dropped"},
            "nms_iou": {**FRACTION, "description": "per-class non-maximum suppression: a box overlapping a "
                                                   "higher-scoring one of its class by more than this is dropped"},
            "candidates": {"type": "integer", "minimum": 1,
                           "description": "the best-scoring anchors per image that reach non-maximum suppression"},
            "max_detections": {"type": "integer", "minimum": 1, "description": "detections kept per image"},
        },
        "additionalProperties": False,
    }


DETECTION_OPTIONS = {
    "detection": Setting(_detection_schema, {
        "anchors": [{"stride": 8, "sizes": [16, 24]}, {"stride": 16, "sizes": [32, 48]}],
        "aspect_ratios": [0.5, 1.0, 2.0], "positive_iou": 0.5, "negative_iou": 0.4,
        "classification_loss": "focal", "focal_alpha": 0.25, "focal_gamma": 2.0, "box_loss": "smooth_l1",
        "box_weight": 1.0, "rpn_positive_iou": 0.7, "rpn_negative_iou": 0.3, "rpn_samples": 256,
        "region_positive_fraction": 0.25, "score_threshold": 0.05, "nms_iou": 0.5, "candidates": 400,
        "max_detections": 100},
        merged=True),
}
