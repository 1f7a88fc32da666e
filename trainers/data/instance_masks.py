"""Instance masks in COCO's run-length encoding (RLE) through `pycocotools.mask`, the encoding COCO's
annotations and its `segm` evaluation use: a mask to JSON-ready RLE and back, a COCO annotation's
`segmentation` (polygons, uncompressed RLE or compressed RLE) checked and held as compressed RLE
text (a few hundred bytes an object, so a file's masks cost memory like its boxes), and an image's
masks decoded at the model's input size inside the input pipeline."""

from __future__ import annotations

from numbers import Real

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


def checked_rle_text(segmentation, height: int, width: int) -> str:
    """A COCO `segmentation` of an object in a height x width image as compressed RLE text, or
    ValueError saying what is wrong with it. pycocotools takes some malformed input silently (a
    four-number polygon is read as a box), so the form is checked here first."""
    if isinstance(segmentation, list):
        if not segmentation:
            raise ValueError("the segmentation holds no polygon")
        for polygon in segmentation:
            if not isinstance(polygon, list) or not all(isinstance(value, Real) for value in polygon):
                raise ValueError("a polygon is a flat list of numbers [x1, y1, x2, y2, ...]")
            if len(polygon) < 6 or len(polygon) % 2:
                raise ValueError(f"a polygon needs at least 3 (x, y) points, one has {len(polygon)} numbers")
    elif isinstance(segmentation, dict) and "counts" in segmentation and "size" in segmentation:
        size, counts = segmentation["size"], segmentation["counts"]
        if not isinstance(size, list) or len(size) != 2 or not all(isinstance(side, int) for side in size):
            raise ValueError(f"an RLE's size is [height, width], not {size!r}")
        if size != [height, width]:
            raise ValueError(f"the RLE's size {size} is not the image's [{height}, {width}] (height, width)")
        if isinstance(counts, list) and not all(isinstance(run, int) for run in counts):
            raise ValueError("an RLE's run lengths are whole numbers")
        if not isinstance(counts, (list, str)):
            raise ValueError("an RLE's counts are a list of run lengths or COCO's compressed text")
        runs = counts if isinstance(counts, list) else run_lengths(counts)
        if min(runs, default=0) < 0:
            raise ValueError("the RLE has a negative run length")
        if sum(runs) != height * width:
            raise ValueError(f"the RLE's counts add up to {sum(runs)} pixels, not the image's {height * width}")
    else:
        raise ValueError("a segmentation is a list of polygons or an RLE {size: [height, width], counts: ...}")
    try:
        rle = _compressed(segmentation, height, width)
        area = int(coco_mask.area(rle))
    except (ValueError, TypeError, UnicodeError) as exc:
        raise ValueError(f"pycocotools cannot read the segmentation ({exc})") from None
    if area == 0:
        raise ValueError("the segmentation covers no pixel of the image")
    return rle["counts"].decode("ascii")


def run_lengths(text: str) -> list:
    """The run lengths in COCO's compressed RLE text (pycocotools' `rleFrString`: 5 bits a
    character from "0", a sixth saying more follow, the last character's fifth bit the sign, each
    count from the third on stored as its difference from the count two before). pycocotools
    decodes a malformed text into garbage without a word, so annotations are read with this first."""
    runs, position = [], 0
    while position < len(text):
        value, shift, more = 0, 0, True
        while more:
            if position == len(text):
                raise ValueError("the RLE's compressed counts end in the middle of a number")
            code = ord(text[position]) - 48
            if not 0 <= code < 64:
                raise ValueError(f"the RLE's compressed counts hold {text[position]!r}, not a COCO RLE character")
            value |= (code & 0x1F) << shift
            more, position, shift = bool(code & 0x20), position + 1, shift + 5
            if not more and code & 0x10:
                value |= -1 << shift
        runs.append(value + (runs[-2] if len(runs) > 2 else 0))
    return runs


def masks_at_size(counts: np.ndarray, image_size: np.ndarray, size) -> np.ndarray:
    """One image's objects as (objects, height, width) uint8 masks at `size` (height, width),
    sampled from their compressed RLE text at `image_size` by nearest neighbour (so a mask stays
    0/1 and lines up with the image resized to the same size); an empty string is no object."""
    image_height, image_width = (int(side) for side in image_size)
    height, width = (int(side) for side in size)
    rows = ((np.arange(height) + 0.5) * image_height / height).astype(int)
    cols = ((np.arange(width) + 0.5) * image_width / width).astype(int)
    masks = np.zeros((len(counts), height, width), "uint8")
    present = [k for k, text in enumerate(counts) if len(text)]
    if present:
        rles = [{"size": [image_height, image_width], "counts": bytes(counts[k])} for k in present]
        full = coco_mask.decode(rles)  # (image_height, image_width, objects)
        masks[present] = np.transpose(full[rows][:, cols], (2, 0, 1))
    return masks


def masks_at_size_tensor(counts, image_size, size):
    """`masks_at_size` inside tf.data (one image's element)."""
    import tensorflow as tf

    masks = tf.numpy_function(lambda text, shape: masks_at_size(text, shape, size), [counts, image_size], tf.uint8,
                              stateful=False)
    masks.set_shape([None, *size])
    return masks
