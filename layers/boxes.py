"""Box geometry shared by the detection layers and the detection trainer, in `keras.ops` so it runs
on every backend: anchors at every cell of each feature level, offsets decoded against anchors, and
greedy non-maximum suppression. Boxes are `xyxy` in pixels; IoU and the delta encoding are Keras's
own (`keras.utils.bounding_boxes`)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from keras import ops
from keras.utils import bounding_boxes

BOX_FORMAT = "xyxy"


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


def anchor_count_in_words(levels, image_size: tuple) -> str:
    """'480 (8x8 cells x 6 at stride 8 + 4x4 cells x 6 at stride 16)', for messages."""
    height, width = image_size
    layout = [(level.stride, -(-height // level.stride), -(-width // level.stride),
               len(level.sizes) * len(level.aspect_ratios)) for level in levels]
    total = sum(rows * cols * per_cell for _, rows, cols, per_cell in layout)
    parts = [f"{rows}x{cols} cells x {per_cell} at stride {stride}" for stride, rows, cols, per_cell in layout]
    return f"{total:,} ({' + '.join(parts)})"


def has_area(boxes):
    """Which boxes are real: the region proposal layer pads its output with zero-size boxes."""
    return (boxes[..., 2] - boxes[..., 0]) * (boxes[..., 3] - boxes[..., 1]) > 0


def encode(anchors, boxes, variance):
    """Offsets of `boxes` from `anchors` (centre shift over anchor size, log size ratio), each
    divided by its `variance`."""
    return bounding_boxes.encode_box_to_deltas(anchors, boxes, anchor_format=BOX_FORMAT, box_format=BOX_FORMAT,
                                               variance=variance)


def decode(anchors, deltas, variance):
    """The boxes that `deltas` (as `encode` writes them) describe against `anchors`."""
    return bounding_boxes.decode_deltas_to_boxes(anchors, deltas, anchor_format=BOX_FORMAT,
                                                 box_format=BOX_FORMAT, variance=variance)


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
