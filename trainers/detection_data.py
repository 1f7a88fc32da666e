"""Detection data: images with boxes and classes. `shapes_boxes` is generated (seeded, any
size): 1 to 5 filled circles, squares and triangles of random colour, size and position on a
noisy background, each with its tight box."""

from __future__ import annotations

import numpy as np

from .datasets import SHAPE_CLASSES, shape_mask

MAX_OBJECTS = 5


def generate_shapes_boxes(count: int, size: int = 64, seed: int = 0, max_objects: int = MAX_OBJECTS):
    """(images (count, size, size, 3) in [0, 1], boxes (count, max_objects, 4) xyxy in pixels,
    classes (count, max_objects), -1 where an image has fewer objects). Later shapes are drawn over
    earlier ones; a shape mostly hidden (under half its pixels left) is dropped with its box."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    images = rng.uniform(0.0, 0.35, (count, size, size, 3)).astype("float32")
    boxes = np.zeros((count, max_objects, 4), "float32")
    classes = np.full((count, max_objects), -1, "int64")
    for i in range(count):
        owner = np.full((size, size), -1)
        drawn = []
        for k in range(int(rng.integers(1, max_objects + 1))):
            kind = int(rng.integers(len(SHAPE_CLASSES)))
            radius = rng.uniform(0.08, 0.2) * size
            cy, cx = rng.uniform(radius, size - radius, 2)
            inside = shape_mask(kind, cy, cx, radius, rows, cols)
            images[i][inside] = rng.uniform(0.55, 1.0, 3).astype("float32")
            owner[inside] = k
            drawn.append((kind, int(inside.sum())))
        kept = 0
        for k, (kind, area) in enumerate(drawn):
            ys, xs = np.nonzero(owner == k)
            if len(ys) < 0.5 * area or not len(ys):
                continue
            boxes[i, kept] = (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1)
            classes[i, kept] = kind
            kept += 1
    return images, boxes, classes
