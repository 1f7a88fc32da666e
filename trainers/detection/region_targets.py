"""What the two stages of Faster R-CNN and Mask R-CNN learn, per training batch, in `keras.ops`:
the Region Proposal Network's objectness and offsets at a balanced sample of anchors, and the box
head's class, offsets and mask at a balanced sample of regions (the proposals plus the true boxes).
Shapes are fixed: a sample is a weight over all candidates, or the candidates reordered so the
chosen come first."""

from __future__ import annotations

from keras import ops, random
from keras.utils import bounding_boxes

from layers.boxes import BOX_FORMAT, encode, has_area
from layers.roi_align import bin_weights

from .boxes import DELTA_VARIANCE, NEGATIVE, match_anchors

POSITIVE_LABEL, NEGATIVE_LABEL, IGNORED_LABEL = 1, 0, -1
RPN_VARIANCE = (1.0, 1.0, 1.0, 1.0)  # the RPN's offsets are unscaled (Ren et al. 2015)


def sample_balanced(labels, count: int, positive_fraction: float, seed=None):
    """(batch, candidates) bool: at most `count` candidates per image drawn at random, of which at
    most `count * positive_fraction` are positive (label 1) and the rest negative (label 0); label
    -1 is never drawn. Where positives are few, negatives fill the sample (Faster R-CNN's rule)."""
    noise = random.uniform(ops.shape(labels), seed=seed)
    positive, negative = labels == POSITIVE_LABEL, labels == NEGATIVE_LABEL
    positives = ops.minimum(ops.sum(ops.cast(positive, "int32"), axis=-1), int(count * positive_fraction))
    negatives = ops.minimum(ops.sum(ops.cast(negative, "int32"), axis=-1), count - positives)
    return ops.logical_or(ops.logical_and(positive, _rank(ops.where(positive, noise, -1.0)) < positives[:, None]),
                          ops.logical_and(negative, _rank(ops.where(negative, noise, -1.0)) < negatives[:, None]))


def _rank(scores):
    """Each value's place in its row sorted from highest (0) down."""
    return ops.argsort(ops.argsort(-scores, axis=-1), axis=-1)


def rpn_targets(anchors, boxes, classes, positive_iou: float = 0.7, negative_iou: float = 0.3):
    """Per anchor: label 1 (an object's: above `positive_iou` with one, or the best anchor of one),
    0 (background: below `negative_iou` with all) or -1 (between: learns nothing), and the offsets
    to its object, `(batch, anchors)` and `(batch, anchors, 4)`."""
    matched_class, matched_boxes = match_anchors(anchors, boxes, classes, positive_iou, negative_iou)
    labels = ops.where(matched_class >= 0, POSITIVE_LABEL, ops.where(matched_class == NEGATIVE, NEGATIVE_LABEL,
                                                                     IGNORED_LABEL))
    return labels, encode(anchors, matched_boxes, RPN_VARIANCE)


def sample_regions(proposals, boxes, classes, count: int, positive_fraction: float = 0.25,
                   positive_iou: float = 0.5, seed=None):
    """The regions the box head learns from: the proposals and the true boxes together (so every
    object has a region from the first step), each labelled with the class + 1 of the object it
    overlaps by `positive_iou` or more, else background (0); a balanced sample of `count` per image,
    the chosen first. Returns regions (batch, count, 4), their class (batch, count), offsets to
    their object in Faster R-CNN's scaling (batch, count, 4), that object's index among `boxes`
    (batch, count), and weights (batch, count), 1 where a region was chosen."""
    candidates = ops.concatenate([ops.cast(proposals, "float32"), ops.cast(boxes, "float32")], axis=1)
    valid_boxes = classes >= 0
    iou = bounding_boxes.compute_iou(candidates, boxes, BOX_FORMAT)  # (batch, candidates, boxes)
    iou = ops.where(valid_boxes[:, None, :], iou, -1.0)
    best_iou, best = ops.max(iou, axis=-1), ops.argmax(iou, axis=-1)
    listed = ops.concatenate([ops.ones_like(proposals[..., 0], "bool"), valid_boxes], axis=1)  # not padding
    real = ops.logical_and(has_area(candidates), listed)
    labels = ops.where(real, ops.where(best_iou >= positive_iou, POSITIVE_LABEL, NEGATIVE_LABEL), IGNORED_LABEL)
    chosen = sample_balanced(labels, count, positive_fraction, seed)
    order = ops.argsort(-ops.cast(chosen, "float32"), axis=-1)[:, :count]  # the chosen first
    regions = ops.take_along_axis(candidates, order[..., None], axis=1)
    matched = ops.take_along_axis(best, order, axis=1)
    positive = ops.take_along_axis(labels, order, axis=1) == POSITIVE_LABEL
    region_classes = ops.where(positive, ops.take_along_axis(classes, matched, axis=1) + 1, 0)
    matched_boxes = ops.take_along_axis(ops.cast(boxes, "float32"), matched[..., None], axis=1)
    offsets = encode(regions, matched_boxes, DELTA_VARIANCE)
    weights = ops.cast(ops.take_along_axis(chosen, order, axis=1), "float32")
    return regions, ops.cast(region_classes, "int32"), offsets, matched, weights


def mask_targets(regions, matched, masks, size: int, sampling_ratio: int = 2):
    """Each region's mask target: its object's full-image mask (`masks` (batch, objects, height,
    width)) read by RoI Align over the region at `size` x `size` and thresholded at 0.5, as Mask
    R-CNN's targets are. Returns (batch, regions, size, size) in {0, 1}."""
    mask_of_region = ops.take_along_axis(ops.cast(masks, "float32"), matched[:, :, None, None], axis=1)
    rows, cols = bin_weights(regions, (size, size), tuple(masks.shape[2:4]), sampling_ratio, aligned=True)
    sampled = ops.einsum("brph,brhw,brqw->brpq", rows, mask_of_region, cols)
    return ops.cast(sampled >= 0.5, "float32")
