import math

import keras
import numpy as np
from keras import ops

from .boxes import AnchorLevel, anchor_boxes, anchor_count_in_words, decode, non_max_suppression

# Faster R-CNN's (torchvision's) bound on a decoded size offset: a box at most 1000/16 times its anchor.
LARGEST_SIZE_OFFSET = math.log(1000.0 / 16)
_DROPPED = -1e9  # the score of a box too small to keep, below NMS's floor


@keras.saving.register_keras_serializable(package="blueprint")
class RegionProposals(keras.layers.Layer):
    """Faster R-CNN's proposal step (Ren et al. 2015): a Region Proposal Network's objectness and
    box offsets at every anchor become a fixed number of boxes per image. Offsets are decoded
    against the anchors, boxes are clipped to the image, boxes smaller than `min_size` are
    dropped, the `pre_nms` best-scoring are kept, non-maximum suppression at `nms_iou` removes
    overlaps, and the `post_nms` best remain, best first. Where fewer remain, the rest are zero
    boxes. The proposals are constants to the layers after them (no gradient flows back through
    them: the paper's approximate joint training).

    Anchors are laid out as the single-shot detector's are (`layers.boxes.anchor_boxes`): level by
    level in the order of `strides`, cell by cell, size by size, aspect ratio by aspect ratio; the
    RPN head's outputs must follow the same order. `sizes` are split evenly among the levels in
    order: `strides: [16]` with `sizes: [32, 64, 128]` is one level with three sizes;
    `strides: [8, 16]` with `sizes: [16, 32]` gives each level one.

    Call: `[objectness, offsets]`, objectness `(batch, anchors)` or `(batch, anchors, 1)` logits and
    offsets `(batch, anchors, 4)` in Keras's encoding (`keras.utils.bounding_boxes`): centre y and x
    shifts over the anchor's height and width, then log height and width ratios. Output:
    `(batch, post_nms, 4)` boxes, `xyxy` in image pixels.

    Args:
        image_size: (height, width) of the network's input, in pixels.
        strides: image pixels per cell of each level the head predicts at.
        sizes: anchor sizes (square root of the area), split evenly among the levels.
        aspect_ratios: anchor width / height, the same at every level.
        variance: the offsets' scaling, in their order (centre y, centre x, height, width).
        pre_nms: the best-scoring boxes per image that reach non-maximum suppression.
        post_nms: the boxes kept per image.
        nms_iou: a box overlapping a better one by more than this is removed.
        min_size: boxes narrower or shorter than this (pixels) are dropped.
    """

    def __init__(self, image_size, strides=(16,), sizes=(32, 64, 128), aspect_ratios=(0.5, 1.0, 2.0),
                 variance=(1.0, 1.0, 1.0, 1.0), pre_nms=1000, post_nms=300, nms_iou=0.7, min_size=1.0, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(int(side) for side in image_size)
        self.strides = tuple(int(stride) for stride in _listed(strides))
        self.sizes = tuple(float(size) for size in _listed(sizes))
        self.aspect_ratios = tuple(float(ratio) for ratio in _listed(aspect_ratios))
        self.variance = tuple(float(scale) for scale in variance)
        if len(self.image_size) != 2 or len(self.variance) != 4:
            raise ValueError(f"RegionProposals needs image_size (height, width) and four variances. Received: "
                             f"image_size={image_size}, variance={variance}")
        if len(self.sizes) % len(self.strides):
            raise ValueError(f"RegionProposals splits its {len(self.sizes)} sizes evenly among {len(self.strides)} "
                             f"levels: give a multiple of {len(self.strides)} sizes")
        self.pre_nms, self.post_nms = int(pre_nms), int(post_nms)
        self.nms_iou, self.min_size = float(nms_iou), float(min_size)

    def levels(self) -> list:
        per_level = len(self.sizes) // len(self.strides)
        return [AnchorLevel(stride, self.sizes[k * per_level:(k + 1) * per_level], self.aspect_ratios)
                for k, stride in enumerate(self.strides)]

    def anchors(self) -> np.ndarray:
        """(anchors, 4) xyxy pixel boxes, in the order the head's outputs must follow."""
        return anchor_boxes(self.levels(), self.image_size)

    def build(self, input_shape):
        if len(input_shape) != 2:
            raise ValueError(f"RegionProposals takes [objectness, offsets]. Received {len(input_shape)} inputs")
        scores, offsets = input_shape
        count = len(self.anchors())
        if scores[1] != count or offsets[1] != count or offsets[-1] != 4 or (len(scores) == 3 and scores[-1] != 1):
            raise ValueError(f"RegionProposals expects objectness (batch, {count}) and offsets (batch, {count}, 4): "
                             f"{anchor_count_in_words(self.levels(), self.image_size)} anchors at "
                             f"{self.image_size[0]}x{self.image_size[1]}. Received: {scores} and {offsets}")

    def call(self, inputs):
        scores, offsets = (ops.stop_gradient(ops.cast(tensor, "float32")) for tensor in inputs)
        if len(scores.shape) == 3:
            scores = ops.squeeze(scores, axis=-1)
        bound = np.array([np.inf, np.inf, *(LARGEST_SIZE_OFFSET / v for v in self.variance[2:])], "float32")
        offsets = ops.minimum(offsets, bound)
        height, width = self.image_size
        boxes = decode(ops.convert_to_tensor(self.anchors()), offsets, self.variance)
        boxes = ops.clip(boxes, 0.0, ops.convert_to_tensor([width, height, width, height], "float32"))
        large_enough = ops.logical_and(boxes[..., 2] - boxes[..., 0] >= self.min_size,
                                       boxes[..., 3] - boxes[..., 1] >= self.min_size)
        scores = ops.where(large_enough, scores, _DROPPED)
        scores, best = ops.top_k(scores, k=min(self.pre_nms, int(scores.shape[-1])))
        boxes = ops.take_along_axis(boxes, best[..., None], axis=-2)
        kept, valid = non_max_suppression(boxes, scores, self.post_nms, self.nms_iou, score_threshold=_DROPPED / 2)
        proposals = ops.take_along_axis(boxes, kept[..., None], axis=-2)
        filled = ops.arange(ops.shape(kept)[-1])[None, :] < valid[..., None]
        proposals = ops.where(filled[..., None], proposals, 0.0)
        if proposals.shape[-2] < self.post_nms:  # fewer anchors than post_nms
            proposals = ops.pad(proposals, [[0, 0], [0, self.post_nms - proposals.shape[-2]], [0, 0]])
        return proposals

    def compute_output_shape(self, input_shape):
        return (input_shape[0][0], self.post_nms, 4)

    def get_config(self):
        return {**super().get_config(), "image_size": list(self.image_size), "strides": list(self.strides),
                "sizes": list(self.sizes), "aspect_ratios": list(self.aspect_ratios), "variance": list(self.variance),
                "pre_nms": self.pre_nms, "post_nms": self.post_nms, "nms_iou": self.nms_iou,
                "min_size": self.min_size}


def _listed(value):
    return value if isinstance(value, (list, tuple)) else (value,)
