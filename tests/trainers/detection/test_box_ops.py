"""Box operations of single-shot detection (#16's foundations), on the current backend: anchors,
IoU matching, delta encoding, and non-maximum suppression against TensorFlow's own; and the
generated `shapes_boxes` data."""

import numpy as np
import pytest

from layers.boxes import AnchorLevel, anchor_boxes, non_max_suppression
from trainers.detection.boxes import IGNORED, NEGATIVE, batched_non_max_suppression, decode, encode, match_anchors
from trainers.detection.data import generate_shapes_boxes


def tensor(value):
    import keras

    return keras.ops.convert_to_tensor(value)


def to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def random_boxes(rng, count):
    corner = rng.uniform(0, 100, (count, 2))
    return np.concatenate([corner, corner + rng.uniform(5, 40, (count, 2))], 1).astype("float32")


@pytest.mark.parametrize("trial", range(12))
def test_non_max_suppression_keeps_what_tensorflow_keeps(trial):
    import tensorflow as tf

    rng = np.random.default_rng(trial)
    count = int(rng.integers(5, 300))
    boxes, scores = random_boxes(rng, count), rng.uniform(0, 1, count).astype("float32")
    iou, floor, keep = float(rng.uniform(0.2, 0.7)), float(rng.uniform(0, 0.5)), int(rng.integers(1, 50))
    expected = tf.image.non_max_suppression(boxes[:, [1, 0, 3, 2]], scores, keep, iou, floor).numpy()
    indices, valid = non_max_suppression(tensor(boxes), tensor(scores), keep, iou, floor)
    assert to_numpy(indices)[: int(to_numpy(valid))].tolist() == expected.tolist()


def test_per_class_suppression_never_lets_one_class_hide_another():
    boxes = np.array([[0, 0, 10, 10], [1, 1, 11, 11], [0, 0, 10, 10]], "float32")
    scores = np.array([0.9, 0.8, 0.7], "float32")
    indices, valid = batched_non_max_suppression(tensor(boxes), tensor(scores), tensor(np.array([0, 0, 1])), 3)
    assert to_numpy(indices)[: int(to_numpy(valid))].tolist() == [0, 2]  # box 1 overlaps box 0 of its class


def test_anchors_cover_every_cell_of_every_level_in_head_order():
    levels = [AnchorLevel(8, (12, 20)), AnchorLevel(16, (28,), (1.0,))]
    anchors = anchor_boxes(levels, (64, 48))
    assert anchors.shape == (8 * 6 * 2 * 3 + 4 * 3 * 1, 4)
    first = anchors[:6]  # the first cell: sizes 12 and 20, ratios 0.5, 1, 2, centred at (4, 4)
    np.testing.assert_allclose((first[:, :2] + first[:, 2:]) / 2, 4.0)
    widths, heights = first[:, 2] - first[:, 0], first[:, 3] - first[:, 1]
    np.testing.assert_allclose(widths * heights, [144] * 3 + [400] * 3, rtol=1e-5)
    np.testing.assert_allclose(widths / heights, [0.5, 1, 2, 0.5, 1, 2], rtol=1e-5)
    np.testing.assert_allclose(anchors[-1], [40 - 14, 56 - 14, 40 + 14, 56 + 14])  # last cell of level 2


def test_matching_labels_anchors_by_iou_and_every_object_gets_one():
    anchors = np.array([[0, 0, 10, 10], [0, 0, 9, 10], [20, 20, 30, 30], [50, 50, 60, 60], [0, 0, 20, 20]],
                       "float32")
    boxes = np.array([[0, 0, 10, 10], [21, 21, 29, 29], [58, 58, 61, 61], [0, 0, 0, 0]], "float32")
    classes = np.array([1, 2, 0, -1])
    labels, matched = match_anchors(tensor(anchors), tensor(boxes), tensor(classes), positive=0.5, negative=0.3)
    labels = to_numpy(labels).tolist()
    # IoU 1 and 0.9 with box 0; 0.64 with box 1; 0.04 with the tiny box 2, whose best anchor it is, so
    # it claims it; 0.25 with box 0 -> negative
    assert labels == [1, 1, 2, 0, NEGATIVE]
    np.testing.assert_allclose(to_numpy(matched)[3], boxes[2])
    labels, _ = match_anchors(tensor(anchors), tensor(boxes[:1]), tensor(classes[:1]), positive=0.95, negative=0.2)
    assert to_numpy(labels).tolist()[:2] == [1, IGNORED] and to_numpy(labels).tolist()[4] == IGNORED


def test_encoding_round_trips():
    rng = np.random.default_rng(3)
    anchors, boxes = random_boxes(rng, 50), random_boxes(rng, 50)
    np.testing.assert_allclose(to_numpy(decode(tensor(anchors), encode(tensor(anchors), tensor(boxes)))), boxes,
                               atol=1e-3)


def test_shapes_boxes_are_tight_seeded_and_varied():
    images, boxes, classes = generate_shapes_boxes(300, size=64, seed=5)
    again = generate_shapes_boxes(300, size=64, seed=5)
    np.testing.assert_array_equal(images, again[0])
    np.testing.assert_array_equal(boxes, again[1])
    counts = (classes >= 0).sum(1)
    assert images.shape == (300, 64, 64, 3) and counts.min() >= 1 and counts.max() <= 5
    assert np.bincount(classes[classes >= 0]).min() > 0.2 * counts.sum() / 3
    for image, image_boxes, image_classes in zip(images[:50], boxes[:50], classes[:50]):
        for (x1, y1, x2, y2), kind in zip(image_boxes, image_classes):
            if kind < 0:
                continue
            assert 0 <= x1 < x2 <= 64 and 0 <= y1 < y2 <= 64
            inside = image[int(y1):int(y2), int(x1):int(x2)]
            assert inside.max() >= 0.55  # a shape's colour is inside its box; the background stays below 0.35
    small = generate_shapes_boxes(4, size=32, seed=0)
    assert small[0].shape == (4, 32, 32, 3) and (small[1] <= 32).all()
