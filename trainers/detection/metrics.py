"""COCO's detection and instance-segmentation measures, computed by pycocotools itself (not a
hand-written AP): mAP averaged over IoU thresholds .50:.05:.95 (COCO's primary measure) and mAP at
IoU 0.5 (Pascal VOC's), over every class and every object size; for boxes (`bbox`) and, where the
network predicts masks, for masks (`segm`)."""

from __future__ import annotations

import contextlib
import io

from ..data.instance_masks import to_rle


def _xywh(box) -> list:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_average_precision(truth: list, detections: list, classes: int) -> dict:
    """`truth`: per image (boxes (n, 4) xyxy, classes (n,)[, masks (n, height, width)]);
    `detections`: per image an object with `boxes`, `scores`, `classes` and, from an instance-
    segmentation network, `masks` (n, height, width). Returns {"map": mAP@[.5:.95], "map50":
    mAP@0.5}, and "mask_map", "mask_map50" when both sides have masks; each 0 when nothing was
    detected."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    with_masks = bool(detections) and all(getattr(found, "masks", None) is not None for found in detections) and all(
        len(image) == 3 for image in truth)
    images, annotations = [], []
    for image_id, (boxes, labels, *masks) in enumerate(truth):
        size = dict(zip(("height", "width"), masks[0].shape[1:])) if with_masks else {}  # segm reads them
        images.append({"id": image_id, **size})
        for k, (box, label) in enumerate(zip(boxes, labels)):
            x, y, w, h = _xywh(box)
            annotation = {"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                          "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0}
            if with_masks:
                annotation["segmentation"] = to_rle(masks[0][k])
                annotation["area"] = float(masks[0][k].sum())
            annotations.append(annotation)
    results = [{"image_id": image_id, "category_id": int(label), "bbox": _xywh(box), "score": float(score),
                **({"segmentation": to_rle(found.masks[k])} if with_masks else {})}
               for image_id, found in enumerate(detections)
               for k, (box, score, label) in enumerate(zip(found.boxes, found.scores, found.classes))]
    kinds = {"bbox": "", **({"segm": "mask_"} if with_masks else {})}
    if not results or not annotations:
        return {f"{prefix}{name}": 0.0 for prefix in kinds.values() for name in ("map", "map50")}
    measures = {}
    quiet = io.StringIO()  # pycocotools prints its progress and its table; metrics.json keeps the figures
    with contextlib.redirect_stdout(quiet):
        reference = COCO()
        reference.dataset = {"images": images, "annotations": annotations,
                             "categories": [{"id": c, "name": str(c)} for c in range(classes)]}
        reference.createIndex()
        found = reference.loadRes(results)
        for kind, prefix in kinds.items():
            evaluation = COCOeval(reference, found, kind)
            evaluation.evaluate()
            evaluation.accumulate()
            evaluation.summarize()
            mean_ap, mean_ap50 = (float(value) for value in evaluation.stats[:2])
            measures[f"{prefix}map"], measures[f"{prefix}map50"] = max(mean_ap, 0.0), max(mean_ap50, 0.0)  # -1: none
    return measures
