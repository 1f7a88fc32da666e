"""Instance data: the generated `shapes_instances` (masks that match their boxes and classes,
occlusion, backgrounds and colours varied so that only the outline tells the class) and COCO's
run-length encoding both ways through pycocotools, and its compressed text read back as run lengths."""

import json

import numpy as np
import pytest
from pycocotools import mask as coco_mask

from trainers.data.instance_masks import run_lengths, to_mask, to_rle
from trainers.detection.data import generate_shapes_instances

from .coco_instances import uncompressed_rle


@pytest.fixture(scope="module")
def instances():
    return generate_shapes_instances(120, size=48, seed=3)


def test_each_mask_is_its_instances_visible_pixels_inside_its_tight_box(instances):
    images, boxes, classes, masks = instances
    assert images.shape == (120, 48, 48, 3) and masks.shape == (120, 5, 48, 48)
    assert 0.0 <= images.min() and images.max() <= 1.0
    for image_boxes, image_classes, image_masks in zip(boxes, classes, masks):
        present = image_classes >= 0
        assert present[0] and list(present) == sorted(present, reverse=True)  # padding after the instances
        assert not image_masks[~present].any()
        assert image_masks.sum(axis=0).max() <= 1  # no pixel belongs to two instances
        for (x1, y1, x2, y2), mask in zip(image_boxes[present], image_masks[present]):
            ys, xs = np.nonzero(mask)
            assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
    assert set(np.unique(classes)) == {-1, 0, 1, 2}


def test_shapes_overlap_and_their_masks_stay_apart(instances):
    """Boxes overlap in many images while no pixel is in two masks (checked above): the covered part
    of a shape is not in its mask."""
    _, boxes, classes, _ = instances
    overlapping = 0
    for image_boxes, image_classes in zip(boxes, classes):
        present = image_boxes[image_classes >= 0]
        for a in range(len(present)):
            for b in range(a + 1, len(present)):
                low, high = np.maximum(present[a, :2], present[b, :2]), np.minimum(present[a, 2:], present[b, 2:])
                overlapping += bool(np.all(low < high))
    assert overlapping >= 10


def test_backgrounds_and_colours_vary_so_only_the_outline_tells_the_class(instances):
    images, _, classes, masks = instances
    backgrounds = np.array([image[~mask.any(axis=0)].mean() for image, mask in zip(images, masks)])
    assert backgrounds.min() < 0.3 and backgrounds.max() > 0.7  # dark and bright grounds
    colour_by_class = {kind: [] for kind in range(3)}
    for image, image_classes, image_masks in zip(images, classes, masks):
        for kind, mask in zip(image_classes, image_masks):
            if kind >= 0:
                colour_by_class[int(kind)].append(image[mask.astype(bool)].mean(axis=0))
    means = np.array([np.mean(colours, axis=0) for colours in colour_by_class.values()])
    assert np.abs(means - means.mean(axis=0)).max() < 0.1  # no class has a colour of its own
    for colours in colour_by_class.values():
        assert np.std(colours, axis=0).min() > 0.2  # each class in every colour


def test_a_shape_is_one_colour_that_stands_out_from_the_ground_around_it():
    images, _, classes, masks = generate_shapes_instances(40, size=32, seed=1, max_objects=1, min_contrast=0.3)
    assert (classes[:, 0] >= 0).all()
    for image, mask in zip(images, masks[:, 0].astype(bool)):
        inside = image[mask]
        assert np.ptp(inside, axis=0).max() < 1e-6  # flat: the class is in the outline, not a texture
        ring = np.zeros_like(mask)
        ys, xs = np.nonzero(mask)
        ring[max(ys.min() - 2, 0):ys.max() + 3, max(xs.min() - 2, 0):xs.max() + 3] = True
        around = image[ring & ~mask].mean(axis=0)
        assert np.abs(inside[0] - around).max() >= 0.3 - 0.05  # the ground's gradient and noise, nearby


@pytest.mark.parametrize("seed", [0, 1])
def test_masks_round_trip_through_coco_run_length_encoding(seed):
    rng = np.random.default_rng(seed)
    mask = rng.random((23, 31)) > 0.6
    rle = json.loads(json.dumps(to_rle(mask)))  # as a JSON file holds it
    assert rle["size"] == [23, 31] and isinstance(rle["counts"], str)
    np.testing.assert_array_equal(to_mask(rle, 23, 31), mask)
    assert coco_mask.area(coco_mask.encode(np.asfortranarray(mask.astype("uint8")))) == mask.sum()


def test_polygons_and_uncompressed_rle_become_the_same_mask():
    square = [[4.0, 2.0, 12.0, 2.0, 12.0, 10.0, 4.0, 10.0]]  # x, y corners of an 8x8 square
    from_polygon = to_mask(square, 16, 16)
    ys, xs = np.nonzero(from_polygon)
    assert (xs.min(), ys.min(), xs.max(), ys.max()) == (4, 2, 11, 9) and from_polygon.sum() == 64
    np.testing.assert_array_equal(to_mask(uncompressed_rle(from_polygon), 16, 16), from_polygon)


@pytest.mark.parametrize("shape", [(23, 31), (480, 640)])
def test_compressed_rle_text_reads_as_its_run_lengths(shape):
    rng = np.random.default_rng(len(shape))
    rows, cols = np.mgrid[0:shape[0], 0:shape[1]]
    masks = [rng.random(shape) > 0.6, np.ones(shape, bool), np.zeros(shape, bool),
             (rows - shape[0] / 2) ** 2 + (cols - shape[1] / 3) ** 2 < (shape[0] / 3) ** 2]  # long runs
    for mask in masks:
        assert run_lengths(to_rle(mask)["counts"]) == uncompressed_rle(mask)["counts"]
    with pytest.raises(ValueError, match="end in the middle of a number"):
        run_lengths(to_rle(masks[0])["counts"] + "h")  # "h": more characters follow
    with pytest.raises(ValueError, match="hold '~'"):
        run_lengths("12~4")
