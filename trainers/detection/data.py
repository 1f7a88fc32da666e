"""Detection data: images with boxes and classes. `shapes_boxes` is generated (seeded, any
size): 1 to 5 filled circles, squares and triangles of random colour, size and position on a
noisy background, each with its tight box; `generate_shapes_instances` draws the same shapes on
varied grounds with each instance's mask. COCO and Pascal VOC files are read by
`trainers.detection.annotations` into the same splits."""

from __future__ import annotations

import numpy as np

from ..data.datasets import SHAPE_CLASSES, Splits, shape_mask, split_indices
from ..data.sources import ArraySplit, FileSplit

MAX_OBJECTS = 5


def generate_shapes_boxes(count: int, size: int = 64, seed: int = 0, max_objects: int = MAX_OBJECTS):
    """(images (count, size, size, 3) in [0, 1], boxes (count, max_objects, 4) xyxy in pixels,
    classes (count, max_objects), -1 where an image has fewer objects). Later shapes are drawn over
    earlier ones; a shape mostly hidden (under half its pixels left) is dropped with its box."""
    rng = np.random.default_rng(seed)
    images = rng.uniform(0.0, 0.35, (count, size, size, 3)).astype("float32")
    boxes = np.zeros((count, max_objects, 4), "float32")
    classes = np.full((count, max_objects), -1, "int64")
    for i in range(count):
        shapes = _draw_shapes(rng, images[i], max_objects, (0.08, 0.2), lambda _: rng.uniform(0.55, 1.0, 3))
        for k, (kind, visible) in enumerate(shapes):
            boxes[i, k], classes[i, k] = _tight_box(visible), kind
    return images, boxes, classes


def generate_shapes_instances(count: int, size: int = 64, seed: int = 0, max_objects: int = MAX_OBJECTS,
                              min_contrast: float = 0.3):
    """`shapes_boxes`' shapes as instances: (images (count, size, size, 3) in [0, 1], boxes
    (count, max_objects, 4) xyxy pixels, classes (count, max_objects) with -1 for none, masks
    (count, max_objects, size, size) uint8, each instance's visible pixels).

    Shapes overlap: later ones are drawn over earlier ones, each mask is what is left visible of its
    shape and its box is that mask's tight box; a shape under half visible is dropped. So that a
    shape is learnt by its outline, not its colour, each image's background is a gradient between two
    random colours with noise (dark, bright, grey or saturated), and each shape a random colour at
    least `min_contrast` (largest channel difference) from the background where it lies."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    images = np.empty((count, size, size, 3), "float32")
    boxes = np.zeros((count, max_objects, 4), "float32")
    classes = np.full((count, max_objects), -1, "int64")
    masks = np.zeros((count, max_objects, size, size), "uint8")
    for i in range(count):
        angle = rng.uniform(0, 2 * np.pi)
        ramp = ((np.cos(angle) * cols + np.sin(angle) * rows) / size)[..., None] % 1.0
        start, end = rng.uniform(0, 1, (2, 3))
        images[i] = start + (end - start) * ramp + rng.normal(0, 0.04, (size, size, 3))
        shapes = _draw_shapes(rng, images[i], max_objects, (0.1, 0.22),
                              lambda under: _contrasting_colour(rng, under.mean(axis=0), min_contrast))
        for k, (kind, visible) in enumerate(shapes):
            boxes[i, k], classes[i, k], masks[i, k] = _tight_box(visible), kind, visible
    return np.clip(images, 0.0, 1.0), boxes, classes, masks


def _draw_shapes(rng, image, max_objects: int, radius: tuple, colour_over) -> list:
    """Draw 1 to `max_objects` shapes on `image` (in place), each in `colour_over(the pixels it
    covers)`; returns (class, visible pixels) of those at least half visible, in drawing order."""
    size = image.shape[0]
    rows, cols = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    owner = np.full((size, size), -1)
    drawn = []
    for k in range(int(rng.integers(1, max_objects + 1))):
        kind = int(rng.integers(len(SHAPE_CLASSES)))
        shape_radius = rng.uniform(*radius) * size
        cy, cx = rng.uniform(shape_radius, size - shape_radius, 2)
        inside = shape_mask(kind, cy, cx, shape_radius, rows, cols)
        image[inside] = colour_over(image[inside])
        owner[inside] = k
        drawn.append((kind, int(inside.sum())))
    visible = [(kind, owner == k) for k, (kind, _) in enumerate(drawn)]
    return [(kind, pixels) for (kind, pixels), (_, area) in zip(visible, drawn)
            if pixels.any() and pixels.sum() >= 0.5 * area]


def _tight_box(pixels) -> tuple:
    ys, xs = np.nonzero(pixels)
    return xs.min(), ys.min(), xs.max() + 1, ys.max() + 1


def _contrasting_colour(rng, background, min_contrast: float) -> np.ndarray:
    while True:
        colour = rng.uniform(0, 1, 3)
        if np.abs(colour - background).max() >= min_contrast:
            return colour


def load_shapes_boxes(config: dict) -> Splits:
    """`shapes_boxes` at `data.image_size` (square, default 64) with `data.count` images (default 1,500)."""
    size = (config.get("image_size") or [64, 64])[0]
    images, boxes, classes = generate_shapes_boxes(config.get("count", 1500), size, config.get("seed", 0))
    return split_detections(images, boxes / size, classes, config, SHAPE_CLASSES)


def load_shapes_instances(config: dict) -> Splits:
    """`shapes_instances` at `data.image_size` (square, default 64) with `data.count` images (default 1,500)."""
    size = (config.get("image_size") or [64, 64])[0]
    images, boxes, classes, masks = generate_shapes_instances(config.get("count", 1500), size, config.get("seed", 0))
    return split_detections(images, boxes / size, classes, config, SHAPE_CLASSES, instance_masks=masks)


def padded(objects: list, max_objects: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Per-image lists of (class, box) as arrays padded to the most objects in one image:
    (examples, max_objects, 4) and (examples, max_objects) with -1 for no object."""
    most = max_objects or max([len(found) for found in objects] + [1])
    boxes = np.zeros((len(objects), most, 4), "float32")
    classes = np.full((len(objects), most), -1, "int64")
    for i, found in enumerate(objects):
        for k, (label, box) in enumerate(found[:most]):
            boxes[i, k], classes[i, k] = box, label
    return boxes, classes


def split_detections(images, boxes, classes, config: dict, class_names, skipped=(), instance_masks=None,
                     instance_rles=None) -> Splits:
    """Train/validation/test splits (seeded, as the other datasets') of images in memory (an array)
    or on disk (a list of files), with boxes as fractions of each image's size and, for instance
    segmentation, each object's mask: images in memory, `instance_masks` (examples, max_objects,
    height, width); image files, `instance_rles` (RLE texts (examples, max_objects), the (height,
    width) each image's RLEs cover (examples, 2))."""
    parts = split_indices(np.zeros(len(images), "int64"), config)  # one stratum: images hold several classes
    splits = []
    for part in parts:
        labels = np.zeros(len(part), "int64")
        if isinstance(images, np.ndarray):
            splits.append(ArraySplit(images[part], labels, boxes=boxes[part], box_classes=classes[part],
                                     instance_masks=None if instance_masks is None else instance_masks[part]))
        else:
            rles, sizes = (None, None) if instance_rles is None else (instance_rles[0][part], instance_rles[1][part])
            splits.append(FileSplit([images[i] for i in part], labels, boxes=boxes[part], box_classes=classes[part],
                                    instance_rles=rles, instance_image_sizes=sizes))
    channels = int(images.shape[-1]) if isinstance(images, np.ndarray) else None
    return Splits(*splits, list(class_names), channels=channels, skipped=list(skipped))
