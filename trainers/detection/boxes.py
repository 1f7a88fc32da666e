"""Box operations of single-shot detection, in `keras.ops` so they run on every backend: anchors
at every location of each feature level, ground-truth matching by IoU, box encoding, and
per-class non-maximum suppression. Boxes are `xyxy` in pixels; IoU and the delta encoding are
Keras's own (`keras.utils.bounding_boxes`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops
from keras.utils import bounding_boxes

BOX_FORMAT = "xyxy"
IGNORED, NEGATIVE = -2, -1  # matched class of an anchor that learns nothing / learns "background"
DELTA_VARIANCE = (0.1, 0.1, 0.2, 0.2)  # SSD's scaling of centre and size offsets


@dataclass(frozen=True)
class AnchorLevel:
    """The anchors of one feature level: one per size and aspect ratio at every cell."""

    stride: int
    sizes: tuple
    aspect_ratios: tuple = (0.5, 1.0, 2.0)


def anchor_boxes(levels, image_size: tuple) -> np.ndarray:
    """(anchors, 4) xyxy boxes for an image of `image_size` (height, width), level by level, cell
    by cell (row-major), size by size, ratio by ratio: the order the heads' outputs use."""
    height, width = image_size
    boxes = []
    for level in levels:
        rows, cols = -(-height // level.stride), -(-width // level.stride)
        shapes = np.array([(size * np.sqrt(ratio), size / np.sqrt(ratio))  # (w, h), area size**2
                           for size in level.sizes for ratio in level.aspect_ratios], "float32")
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * level.stride, (np.arange(cols) + 0.5) * level.stride,
                             indexing="ij")
        centers = np.stack([cx, cy], -1).reshape(-1, 1, 2)
        half = shapes.reshape(1, -1, 2) / 2
        boxes.append(np.concatenate([centers - half, centers + half], -1).reshape(-1, 4))
    return np.concatenate(boxes).astype("float32")


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
    return bounding_boxes.encode_box_to_deltas(anchors, boxes, anchor_format=BOX_FORMAT, box_format=BOX_FORMAT,
                                               variance=DELTA_VARIANCE)


def decode(anchors, deltas):
    return bounding_boxes.decode_deltas_to_boxes(anchors, deltas, anchor_format=BOX_FORMAT,
                                                 box_format=BOX_FORMAT, variance=DELTA_VARIANCE)


def non_max_suppression(boxes, scores, max_output: int, iou_threshold: float = 0.5,
                        score_threshold: float = float("-inf")):
    """Greedy NMS as `tf.image.non_max_suppression` does it: in order of score, keep a box unless
    it overlaps a kept one by more than `iou_threshold`; boxes scoring below `score_threshold`
    are never kept. `boxes` (..., count, 4) and `scores` (..., count): one image's or a batch's
    (count static). Returns (indices into `boxes`, how many are valid): `max_output` indices (or
    `count`, if fewer), the valid ones first, in order of score."""
    count = int(boxes.shape[-2])
    order = ops.argsort(-scores, axis=-1)
    boxes = ops.take_along_axis(boxes, ops.expand_dims(order, -1), axis=-2)
    scores = ops.take_along_axis(scores, order, axis=-1)
    overlaps = bounding_boxes.compute_iou(boxes, boxes, BOX_FORMAT) > iou_threshold
    position = ops.arange(count)
    candidate = scores >= score_threshold

    def keep_or_drop(i, kept):
        earlier_kept = ops.logical_and(kept, position < i)
        suppressed = ops.any(ops.logical_and(earlier_kept, ops.take(overlaps, i, axis=-1)), axis=-1)
        keep = ops.logical_and(ops.take(candidate, i, axis=-1), ops.logical_not(suppressed))
        return ops.where(position == i, ops.expand_dims(keep, -1), kept)

    kept = ops.fori_loop(0, count, keep_or_drop, ops.zeros(ops.shape(scores), "bool"))
    ranked = ops.where(kept, ops.cast(count - position, "float32"), 0.0)  # score order among the kept
    top = min(max_output, count)
    _, picks = ops.top_k(ranked, k=top)
    valid = ops.sum(ops.cast(kept, "int32"), axis=-1)
    return ops.take_along_axis(order, picks, axis=-1), ops.minimum(valid, top)


def batched_non_max_suppression(boxes, scores, classes, max_output: int, iou_threshold: float = 0.5,
                                score_threshold: float = float("-inf")):
    """Per-class NMS in one pass: each class's boxes are moved apart (by more than the largest
    coordinate) so boxes of different classes never overlap."""
    spread = ops.max(ops.abs(boxes)) + 1.0
    offsets = ops.expand_dims(ops.cast(classes, boxes.dtype), -1) * spread
    return non_max_suppression(boxes + offsets, scores, max_output, iou_threshold, score_threshold)
