"""Box operations of single-shot detection, in `keras.ops` so they run on every backend:
ground-truth matching by IoU, SSD's box encoding, and per-class non-maximum suppression. Anchors,
the delta encoding and NMS itself are the detection layers' (`layers.boxes`), so a network's
proposal layer and the trainer lay out and decode boxes the same way."""

from __future__ import annotations

from keras import ops
from keras.utils import bounding_boxes

from layers import boxes as boxes_geometry
from layers.boxes import BOX_FORMAT, non_max_suppression

IGNORED, NEGATIVE = -2, -1  # matched class of an anchor that learns nothing / learns "background"
DELTA_VARIANCE = (0.1, 0.1, 0.2, 0.2)  # SSD's scaling of centre and size offsets


def match_anchors(anchors, boxes, classes, positive: float = 0.5, negative: float = 0.4):
    """Per anchor: the class it learns (IGNORED between the thresholds, NEGATIVE below) and the
    ground-truth box it regresses to. `boxes` (..., max_boxes, 4) and `classes` (..., max_boxes)
    are one image's, or a batch's, padded with class -1. Each ground-truth box also claims its
    best anchor, so no object goes unmatched however small."""
    valid = classes >= 0
    iou = bounding_boxes.compute_iou(anchors, boxes, BOX_FORMAT)  # (..., anchors, boxes)
    iou = ops.where(ops.expand_dims(valid, -2), iou, -1.0)
    best_box = ops.argmax(iou, axis=-1)
    best_iou = ops.max(iou, axis=-1)
    best_anchor = ops.argmax(iou, axis=-2)  # each box's best anchor, which it claims if they overlap at all
    claimable = ops.logical_and(valid, ops.max(iou, axis=-2) > 0)
    claims = ops.logical_and(ops.arange(ops.shape(anchors)[0])[:, None] == ops.expand_dims(best_anchor, -2),
                             ops.expand_dims(claimable, -2))
    claimed = ops.any(claims, axis=-1)
    claimed_box = ops.argmax(ops.cast(claims, "int32"), axis=-1)
    best_box = ops.where(claimed, claimed_box, best_box)
    matched_class = ops.take_along_axis(classes, best_box, axis=-1)
    label = ops.where(best_iou >= positive, matched_class, ops.where(best_iou < negative, NEGATIVE, IGNORED))
    label = ops.where(claimed, matched_class, label)
    matched_boxes = ops.take_along_axis(boxes, ops.expand_dims(best_box, -1), axis=-2)
    return ops.cast(label, "int32"), matched_boxes


def encode(anchors, boxes):
    return boxes_geometry.encode(anchors, boxes, DELTA_VARIANCE)


def decode(anchors, deltas):
    return boxes_geometry.decode(anchors, deltas, DELTA_VARIANCE)


def batched_non_max_suppression(boxes, scores, classes, max_output: int, iou_threshold: float = 0.5,
                                score_threshold: float = float("-inf")):
    """Per-class NMS in one pass: each class's boxes are moved apart (by more than the largest
    coordinate) so boxes of different classes never overlap."""
    spread = ops.max(ops.abs(boxes)) + 1.0
    offsets = ops.expand_dims(ops.cast(classes, boxes.dtype), -1) * spread
    return non_max_suppression(boxes + offsets, scores, max_output, iou_threshold, score_threshold)
