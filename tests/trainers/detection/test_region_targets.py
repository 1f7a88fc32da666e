"""What the two stages learn: balanced samples of anchors and regions, their labels against IoU
computed in NumPy here, offsets that decode back to the objects, and mask targets against the
NumPy RoI Align of tests/test_region_layers.py."""

import numpy as np
import pytest
from keras import ops

from layers.boxes import AnchorLevel, anchor_boxes, decode
from trainers.detection.boxes import DELTA_VARIANCE
from trainers.detection.region_targets import mask_targets, rpn_targets, sample_balanced, sample_regions

from ...test_region_layers import roi_align_reference


def iou_numpy(a, b):
    low, high = np.maximum(a[:, None, :2], b[None, :, :2]), np.minimum(a[:, None, 2:], b[None, :, 2:])
    inter = np.prod(np.clip(high - low, 0, None), axis=-1)
    area = lambda boxes: np.prod(boxes[:, 2:] - boxes[:, :2], axis=-1)  # noqa: E731
    return inter / (area(a)[:, None] + area(b)[None, :] - inter)


def test_a_balanced_sample_takes_at_most_its_share_of_positives_and_fills_with_negatives():
    labels = np.array([[1] * 10 + [0] * 30 + [-1] * 10,   # many positives: a quarter of 16
                       [1] * 2 + [0] * 40 + [-1] * 8,     # few: all of them, negatives fill
                       [1] * 3 + [0] * 5 + [-1] * 42], "int32")  # too few candidates: all taken
    chosen = np.asarray(sample_balanced(ops.convert_to_tensor(labels), 16, 0.25, seed=1))
    taken = lambda row, label: int(np.sum(chosen[row] & (labels[row] == label)))  # noqa: E731
    assert [(taken(row, 1), taken(row, 0)) for row in range(3)] == [(4, 12), (2, 14), (3, 5)]
    assert not (chosen & (labels == -1)).any()
    other = np.asarray(sample_balanced(ops.convert_to_tensor(labels), 16, 0.25, seed=2))
    assert (other != chosen).any()  # drawn at random


def test_rpn_targets_label_anchors_by_overlap_and_encode_unscaled_offsets():
    anchors = anchor_boxes([AnchorLevel(8, (16.0,), (1.0,))], (32, 32))
    boxes = np.array([[[2, 2, 18, 18], [20, 4, 30, 30], [0, 0, 0, 0]]], "float32")
    classes = np.array([[0, 2, -1]], "int64")
    labels, offsets = rpn_targets(ops.convert_to_tensor(anchors), boxes, classes, 0.7, 0.3)
    labels, offsets = np.asarray(labels)[0], np.asarray(offsets)[0]
    iou = iou_numpy(anchors, boxes[0, :2])
    best = iou.max(axis=1)
    claimed = set(iou.argmax(axis=0))  # each object's best anchor learns it, however low its IoU
    for anchor, label in enumerate(labels):
        expected = 1 if best[anchor] >= 0.7 or anchor in claimed else 0 if best[anchor] < 0.3 else -1
        assert label == expected, (anchor, label, best[anchor])
    positive = labels == 1
    decoded = np.asarray(decode(anchors[positive], offsets[positive], (1.0, 1.0, 1.0, 1.0)))
    np.testing.assert_allclose(decoded, boxes[0, iou[positive].argmax(axis=1)], atol=1e-3)


def test_regions_include_the_true_boxes_and_carry_their_class_offsets_and_object():
    rng = np.random.default_rng(0)
    boxes = np.array([[[4, 4, 20, 20], [30, 10, 60, 40], [0, 0, 0, 0]],
                      [[10, 30, 40, 60], [0, 0, 0, 0], [0, 0, 0, 0]]], "float32")
    classes = np.array([[1, 0, -1], [2, -1, -1]], "int64")
    corners = rng.uniform(0, 64, (2, 40, 2, 2))
    proposals = np.concatenate([corners.min(axis=2), corners.max(axis=2) + 1], axis=-1).astype("float32")
    proposals[:, -5:] = 0.0  # the proposal layer's padding: never a region
    regions, region_classes, offsets, matched, weights = (np.asarray(t) for t in sample_regions(
        ops.convert_to_tensor(proposals), boxes, classes, count=24, positive_fraction=0.25, seed=3))
    assert regions.shape == (2, 24, 4) and weights.shape == (2, 24)
    for image in range(2):
        chosen = weights[image] > 0
        assert chosen[:chosen.sum()].all()  # the chosen first
        valid = classes[image] >= 0
        iou = iou_numpy(regions[image][chosen], boxes[image][valid])
        positive = iou.max(axis=1) >= 0.5
        assert 1 <= positive.sum() <= 6  # the true boxes are candidates; at most a quarter of 24
        expected_classes = np.where(positive, classes[image][valid][iou.argmax(axis=1)] + 1, 0)
        np.testing.assert_array_equal(region_classes[image][chosen], expected_classes)
        assert (np.prod(regions[image][chosen][:, 2:] - regions[image][chosen][:, :2], axis=1) > 0).all()
        objects = boxes[image][matched[image][chosen][positive]]
        decoded = np.asarray(decode(regions[image][chosen][positive], offsets[image][chosen][positive],
                                    DELTA_VARIANCE))
        np.testing.assert_allclose(decoded, objects, atol=1e-3)


@pytest.mark.parametrize("size", [7, 14])
def test_mask_targets_are_roi_align_of_each_regions_object_thresholded(size):
    rng = np.random.default_rng(size)
    masks = (rng.random((1, 2, 32, 32)) > 0.5).astype("uint8")
    masks[0, 0, 4:20, 6:18] = 1
    regions = np.array([[[6, 4, 18, 20], [0, 0, 32, 32], [10, 12, 14.5, 30]]], "float32")
    matched = np.array([[0, 1, 1]], "int32")
    got = np.asarray(mask_targets(ops.convert_to_tensor(regions), ops.convert_to_tensor(matched), masks, size))
    assert got.shape == (1, 3, size, size)
    np.testing.assert_array_equal(got[0, 0], np.ones((size, size)))  # the region is the filled rectangle
    for region in range(3):
        mask = masks[0, matched[0, region]].astype("float32")[..., None]
        sampled = roi_align_reference(mask, regions[0, region:region + 1], size, 1.0, 2, True)[0, ..., 0]
        clear = np.abs(sampled - 0.5) > 1e-5  # a bin exactly at the threshold may round either way
        assert clear.mean() > 0.9
        np.testing.assert_array_equal(got[0, region][clear], sampled[clear] >= 0.5)
