"""Generated instances written as people bring them: PNG files and a COCO annotation file whose
masks are compressed RLE text and uncompressed RLE (run lengths), alternately."""

import json

import numpy as np
from PIL import Image

from trainers.data.datasets import SHAPE_CLASSES
from trainers.data.instance_masks import to_rle
from trainers.detection.data import generate_shapes_instances


def uncompressed_rle(mask: np.ndarray) -> dict:
    """COCO's run lengths (column-major, starting with a run of zeros) of a mask."""
    flat = mask.flatten(order="F").astype(int)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    return {"size": list(mask.shape), "counts": np.diff(np.concatenate([[0], changes])).tolist()}


def write_coco_instances(folder, count: int, size: int = 64, seed: int = 0):
    """`shapes_instances`' first `count` images at `size` as `folder`/images/*.png and
    `folder`/instances.json; returns the annotation file's path and the generated arrays."""
    images, boxes, classes, masks = generate_shapes_instances(count, size, seed)
    (folder / "images").mkdir(parents=True, exist_ok=True)
    document = {"images": [], "annotations": [],
                "categories": [{"id": 10 + k, "name": name} for k, name in enumerate(SHAPE_CLASSES)]}
    for i in range(count):
        name = f"{i:04d}.png"
        Image.fromarray(np.round(images[i] * 255).astype("uint8")).save(folder / "images" / name)
        document["images"].append({"id": i, "file_name": f"images/{name}", "width": size, "height": size})
        for k in np.flatnonzero(classes[i] >= 0):
            x1, y1, x2, y2 = (float(v) for v in boxes[i, k])
            mask = masks[i, k]
            segmentation = to_rle(mask) if len(document["annotations"]) % 2 else uncompressed_rle(mask)
            document["annotations"].append({"id": len(document["annotations"]) + 1, "image_id": i,
                                            "category_id": 10 + int(classes[i, k]), "bbox": [x1, y1, x2 - x1, y2 - y1],
                                            "area": float(mask.sum()),
                                            "iscrowd": 0, "segmentation": segmentation})
    path = folder / "instances.json"
    path.write_text(json.dumps(document))
    return path, (images, boxes, classes, masks)
