"""COCO's detection measures, computed by pycocotools itself (not a hand-written AP): mAP
averaged over IoU thresholds .50:.05:.95 (COCO's primary measure) and mAP at IoU 0.5 (Pascal
VOC's), over every class and every object size."""

from __future__ import annotations

import contextlib
import io


def _xywh(box) -> list:
    x1, y1, x2, y2 = (float(v) for v in box)
    return [x1, y1, x2 - x1, y2 - y1]


def coco_average_precision(truth: list, detections: list, classes: int) -> dict:
    """`truth`: per image (boxes (n, 4) xyxy, classes (n,)); `detections`: per image an object with
    `boxes`, `scores` and `classes`. Returns {"map": mAP@[.5:.95], "map50": mAP@0.5}; both 0 when
    nothing was detected."""
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    images, annotations = [], []
    for image_id, (boxes, labels) in enumerate(truth):
        images.append({"id": image_id})
        for box, label in zip(boxes, labels):
            x, y, w, h = _xywh(box)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": int(label),
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": 0})
    results = [{"image_id": image_id, "category_id": int(label), "bbox": _xywh(box), "score": float(score)}
               for image_id, found in enumerate(detections)
               for box, score, label in zip(found.boxes, found.scores, found.classes)]
    if not results or not annotations:
        return {"map": 0.0, "map50": 0.0}
    quiet = io.StringIO()  # pycocotools prints its progress and its table; metrics.json keeps the figures
    with contextlib.redirect_stdout(quiet):
        reference = COCO()
        reference.dataset = {"images": images, "annotations": annotations,
                             "categories": [{"id": c, "name": str(c)} for c in range(classes)]}
        reference.createIndex()
        evaluation = COCOeval(reference, reference.loadRes(results), "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    mean_ap, mean_ap50 = (float(value) for value in evaluation.stats[:2])
    return {"map": max(mean_ap, 0.0), "map50": max(mean_ap50, 0.0)}  # -1: no object of any class
