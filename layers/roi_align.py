import math

import keras
from keras import ops


@keras.saving.register_keras_serializable(package="blueprint")
class RoIAlign(keras.layers.Layer):
    """RoI Align (He et al. 2017, Mask R-CNN): a fixed grid of features for each box, read from the
    feature map by bilinear sampling with no rounding of the box or its bins, as torchvision's
    `roi_align` and Detectron2's `ROIAlign` define it.

    Each box (image pixels, `xyxy`) is scaled onto the map by 1 / `stride`, split into `size` bins,
    and each bin is the mean of `sampling_ratio` x `sampling_ratio` bilinear samples at evenly spaced
    points inside it; a sample more than one pixel outside the map reads zero. With `aligned` the
    box is shifted by half a feature pixel first, so a pixel's centre maps to the position of its
    value (Detectron2's `aligned=True`); without it a box is at least one feature pixel wide
    (torchvision's default, and the paper's).

    Bilinear sampling over a grid of points is separable, so each box's bins are computed as two
    small matrix products with the map: a box's row weights, the map, its column weights. The boxes
    get no gradient (in Faster R-CNN they are proposals, treated as constants).

    With several feature maps (a feature pyramid), each box is read from one level, chosen by its
    size as in Lin et al. 2017 (FPN), eq. 1: a box of `canonical_size` pixels square is read at
    stride `canonical_stride`, one twice as large at twice the stride, clamped to the levels given.

    Call: `[boxes, map]` or `[boxes, map_1, ..., map_n]`, boxes `(batch, boxes, 4)`, maps
    `(batch, height, width, channels)` with the same channels, in order of `strides`. Output:
    `(batch, boxes, size[0], size[1], channels)`.

    Args:
        size: the output grid, an int or (height, width).
        strides: image pixels per feature pixel of each map, one per map; several must be powers
            of two, each twice the one before.
        sampling_ratio: samples per bin along each axis.
        aligned: shift boxes by half a feature pixel (see above).
        canonical_size: with several maps, the box size (square root of its area) read at
            `canonical_stride`.
        canonical_stride: with several maps, the stride a box of `canonical_size` is read at.
    """

    def __init__(self, size=7, strides=(16,), sampling_ratio=2, aligned=True, canonical_size=224,
                 canonical_stride=16, **kwargs):
        super().__init__(**kwargs)
        self.size = (int(size), int(size)) if isinstance(size, int) else tuple(int(s) for s in size)
        self.strides = (int(strides),) if isinstance(strides, (int, float)) else tuple(int(s) for s in strides)
        if int(sampling_ratio) < 1:
            raise ValueError(f"RoIAlign needs sampling_ratio >= 1. Received: sampling_ratio={sampling_ratio}")
        self.sampling_ratio = int(sampling_ratio)
        self.aligned = bool(aligned)
        self.canonical_size, self.canonical_stride = float(canonical_size), int(canonical_stride)
        doubling = all(later == 2 * earlier for earlier, later in zip(self.strides, self.strides[1:]))
        if len(self.strides) > 1 and not (doubling and self.strides[0] & (self.strides[0] - 1) == 0):
            raise ValueError("RoIAlign's pyramid levels must have strides that are powers of two, each twice the "
                             "one before. "
                             f"Received: strides={list(self.strides)}")

    def build(self, input_shape):
        maps = input_shape[1:]
        if len(input_shape) < 2 or len(input_shape[0]) != 3 or input_shape[0][-1] != 4:
            raise ValueError("RoIAlign takes [boxes, feature map, ...] with boxes (batch, boxes, 4). "
                             f"Received: input_shape={input_shape}")
        if len(maps) != len(self.strides):
            raise ValueError(f"RoIAlign was given {len(maps)} feature map(s) and {len(self.strides)} stride(s) "
                             f"{list(self.strides)}: give one stride per map")
        if len({shape[-1] for shape in maps}) != 1 or any(len(shape) != 4 for shape in maps):
            raise ValueError(f"RoIAlign's feature maps must be (batch, height, width, channels) with the same "
                             f"channels. Received: {[tuple(shape) for shape in maps]}")

    def call(self, inputs):
        boxes, maps = ops.stop_gradient(ops.cast(inputs[0], self.compute_dtype)), inputs[1:]
        if len(maps) == 1:
            return self._align(boxes, maps[0], self.strides[0])
        chosen = self.levels(boxes)
        aligned = 0.0
        for level, (features, stride) in enumerate(zip(maps, self.strides)):
            here = ops.cast(chosen == level, self.compute_dtype)[:, :, None, None, None]
            aligned = aligned + here * self._align(boxes, features, stride)
        return aligned

    def levels(self, boxes):
        """Each box's pyramid level (an index into `strides`), by FPN's eq. 1."""
        width, height = boxes[..., 2] - boxes[..., 0], boxes[..., 3] - boxes[..., 1]
        scale = ops.sqrt(ops.maximum(width * height, 1e-6))
        log_stride = ops.floor(math.log2(self.canonical_stride) + ops.log2(scale / self.canonical_size) + 1e-6)
        return ops.cast(ops.clip(log_stride - math.log2(self.strides[0]), 0, len(self.strides) - 1), "int32")

    def _align(self, boxes, features, stride):
        rows, cols = bin_weights(boxes / stride, self.size, features.shape[1:3], self.sampling_ratio, self.aligned,
                                 self.compute_dtype)
        return ops.einsum("brph,bhwc,brqw->brpqc", rows, ops.cast(features, self.compute_dtype), cols)

    def compute_output_shape(self, input_shape):
        boxes, features = input_shape[0], input_shape[1]
        return (boxes[0], boxes[1], *self.size, features[-1])

    def get_config(self):
        return {**super().get_config(), "size": list(self.size), "strides": list(self.strides),
                "sampling_ratio": self.sampling_ratio, "aligned": self.aligned,
                "canonical_size": self.canonical_size, "canonical_stride": self.canonical_stride}


def bin_weights(boxes, size: tuple, map_size: tuple, sampling_ratio: int, aligned: bool, dtype="float32"):
    """RoI Align as two weight matrices: for `boxes` (batch, boxes, 4) xyxy in map pixels, the row
    weights (batch, boxes, size[0], height) and column weights (batch, boxes, size[1], width) such
    that rows @ map @ cols^T is each box's grid of bin means of bilinear samples."""
    offset = 0.5 if aligned else 0.0
    rows = _axis_weights(boxes[..., 1] - offset, boxes[..., 3] - offset, size[0], map_size[0], sampling_ratio,
                         aligned, dtype)
    cols = _axis_weights(boxes[..., 0] - offset, boxes[..., 2] - offset, size[1], map_size[1], sampling_ratio,
                         aligned, dtype)
    return rows, cols


def _axis_weights(start, end, bins: int, length: int, sampling_ratio: int, aligned: bool, dtype):
    """(batch, boxes, bins, length): each bin's mean bilinear weights over the map's `length`
    positions along one axis, for boxes from `start` to `end` (map pixels)."""
    extent = end - start
    if not aligned:
        extent = ops.maximum(extent, 1.0)
    samples = bins * sampling_ratio
    fractions = (ops.arange(samples, dtype=dtype) + 0.5) / samples  # along the box
    points = start[..., None] + extent[..., None] * fractions  # (batch, boxes, samples)
    inside = ops.cast(ops.logical_and(points >= -1.0, points <= length), dtype)  # zero further out
    points = ops.clip(points, 0.0, length - 1)
    lower = ops.floor(points)
    upper = ops.minimum(lower + 1, length - 1)
    upper_weight = points - lower
    positions = ops.arange(length, dtype=dtype)
    weights = ((1 - upper_weight)[..., None] * ops.cast(positions == lower[..., None], dtype)
               + upper_weight[..., None] * ops.cast(positions == upper[..., None], dtype))
    weights = weights * inside[..., None]
    batch_boxes = ops.shape(weights)[:2]
    return ops.mean(ops.reshape(weights, (*batch_boxes, bins, sampling_ratio, length)), axis=3)
