"""Instance masks in COCO's run-length encoding (RLE) through `pycocotools.mask`, the encoding COCO's
annotations and its `segm` evaluation use: a mask to JSON-ready RLE and back, and a COCO
annotation's `segmentation` (polygons, uncompressed RLE or compressed RLE) to a mask."""

from __future__ import annotations

import numpy as np
from pycocotools import mask as coco_mask


def to_rle(mask: np.ndarray) -> dict:
    """A (height, width) mask as compressed RLE with a text `counts`, as COCO's JSON holds it."""
    rle = coco_mask.encode(np.asfortranarray(mask.astype("uint8")))
    return {"size": [int(side) for side in rle["size"]], "counts": rle["counts"].decode("ascii")}


def _compressed(segmentation, height: int, width: int) -> dict:
    """Any COCO `segmentation` as pycocotools' compressed RLE (bytes counts)."""
    if isinstance(segmentation, list):  # polygons, one flat [x1, y1, x2, y2, ...] list per part
        return coco_mask.merge(coco_mask.frPyObjects(segmentation, height, width))
    if isinstance(segmentation.get("counts"), list):  # uncompressed RLE
        return coco_mask.frPyObjects(segmentation, height, width)
    counts = segmentation["counts"]
    return {"size": list(segmentation["size"]), "counts": counts.encode("ascii") if isinstance(counts, str) else counts}


def to_mask(segmentation, height: int, width: int) -> np.ndarray:
    """The (height, width) uint8 mask of a COCO `segmentation`."""
    return coco_mask.decode(_compressed(segmentation, height, width))

