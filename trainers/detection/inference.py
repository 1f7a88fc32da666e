"""Detections from a trained detector (single-shot or two-stage): its outputs decoded into boxes,
scored, thinned by per-class non-maximum suppression (all in `keras.ops`, compiled by `predict` on
every backend), and `detect`'s boxes in each image file's own pixels."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import keras
import numpy as np
from keras import ops
from PIL import Image

from layers.boxes import has_area

from ..data.instance_masks import to_rle
from ..data.pipeline import Preprocessing, image_file_inputs, model_image_shape
from ..run.folder import read_run_record, require_run_for
from ..run.loop import load_trained_model
from .anchors import anchors_for
from .boxes import batched_non_max_suppression, decode
from .two_stage import check_two_stage, mask_of_class, proposal_layer

BATCH = 32  # images per predict call in `detect`


class DecodeDetections(keras.layers.Layer):
    """The network's outputs as detections: boxes decoded from the offsets and clipped to the
    image, each anchor's best class and its sigmoid score, the `candidates` best anchors, then
    per-class non-maximum suppression, at most `max_detections` per image. Outputs boxes
    (batch, max, 4), scores and classes (batch, max), and the count of valid detections (batch,);
    the invalid ones score -1."""

    def __init__(self, anchors, image_size: tuple, settings: dict, **kwargs):
        super().__init__(**kwargs)
        self.anchors = ops.convert_to_tensor(anchors)
        self.image_size = tuple(image_size)
        self.settings = settings

    def call(self, logits, deltas):
        height, width = self.image_size
        scores_per_class = ops.sigmoid(ops.cast(logits, "float32"))
        scores, classes = ops.max(scores_per_class, axis=-1), ops.argmax(scores_per_class, axis=-1)
        boxes = decode(self.anchors, ops.cast(deltas, "float32"))
        boxes = ops.clip(boxes, 0.0, ops.convert_to_tensor([width, height, width, height], "float32"))
        return select_detections(boxes, scores, classes, self.settings)


class DecodeRegions(keras.layers.Layer):
    """A two-stage network's outputs as detections, in `DecodeDetections`' form: each region's box
    decoded from its offsets and clipped, its best class other than background with that class's
    softmax probability; zero-size regions (the proposals' padding) never kept; then as there.
    Given Mask R-CNN's mask logits too, a fifth output: each detection's mask for its class, pasted
    into its box on the image, (batch, max, height, width) probabilities."""

    def __init__(self, image_size: tuple, settings: dict, **kwargs):
        super().__init__(**kwargs)
        self.image_size = tuple(image_size)
        self.settings = settings

    def call(self, proposals, logits, offsets, masks=None):
        height, width = self.image_size
        probabilities = ops.softmax(ops.cast(logits, "float32"), axis=-1)[..., 1:]
        scores, classes = ops.max(probabilities, axis=-1), ops.argmax(probabilities, axis=-1)
        # the regions' offsets use Faster R-CNN's scaling (10, 10, 5, 5), which is SSD's variance
        boxes = decode(ops.cast(proposals, "float32"), ops.cast(offsets, "float32"))
        boxes = ops.clip(boxes, 0.0, ops.convert_to_tensor([width, height, width, height], "float32"))
        found = _select(boxes, ops.where(has_area(proposals), scores, -1.0), classes, self.settings)
        if masks is None:
            return found[:4]
        boxes, scores, classes, count, regions = found
        region_masks = ops.take_along_axis(ops.cast(masks, "float32"), regions[:, :, None, None, None], axis=1)
        pasted = paste_masks(ops.sigmoid(mask_of_class(region_masks, ops.maximum(classes, 0))), boxes, self.image_size)
        return boxes, scores, classes, count, pasted * ops.cast(scores >= 0, "float32")[:, :, None, None]


def paste_masks(masks, boxes, image_size: tuple):
    """Masks (batch, n, m, m) defined over boxes (batch, n, 4) xyxy, resampled (bilinearly) onto the
    image's pixels: (batch, n, height, width), zero outside each box."""
    height, width = image_size
    size = int(masks.shape[-1])

    def weights(low, high, pixels):  # (batch, n, pixels, size): each pixel centre's share of each mask cell
        centres = ops.arange(pixels, dtype="float32") + 0.5
        span = ops.maximum(high - low, 1e-6)[..., None]
        position = (centres - low[..., None]) / span * size - 0.5
        inside = ops.cast(ops.logical_and(centres >= low[..., None], centres <= high[..., None]), "float32")
        cells = ops.arange(size, dtype="float32")
        share = ops.relu(1.0 - ops.abs(ops.clip(position, 0.0, size - 1.0)[..., None] - cells))
        return share * inside[..., None]

    rows = weights(boxes[..., 1], boxes[..., 3], height)
    cols = weights(boxes[..., 0], boxes[..., 2], width)
    return ops.einsum("bnhi,bnij,bnwj->bnhw", rows, masks, cols)


def select_detections(boxes, scores, classes, settings: dict):
    """The `candidates` best-scoring boxes, per-class non-maximum suppression, at most
    `max_detections`: (boxes (batch, max, 4), scores (-1 where invalid), classes (-1), count)."""
    return _select(boxes, scores, classes, settings)[:4]


def _select(boxes, scores, classes, settings: dict):
    """`select_detections`, and each detection's index among the boxes given."""
    candidates = min(settings["candidates"], int(boxes.shape[-2]))
    scores, best = ops.top_k(scores, k=candidates)
    boxes = ops.take_along_axis(boxes, best[..., None], axis=-2)
    classes = ops.take_along_axis(classes, best, axis=-1)
    keep, count = batched_non_max_suppression(boxes, scores, classes, settings["max_detections"],
                                              settings["nms_iou"], settings["score_threshold"])
    valid = ops.arange(ops.shape(keep)[-1])[None, :] < count[:, None]
    boxes = ops.take_along_axis(boxes, keep[..., None], axis=-2)
    scores = ops.where(valid, ops.take_along_axis(scores, keep, axis=-1), -1.0)
    classes = ops.where(valid, ops.take_along_axis(classes, keep, axis=-1), -1)
    return boxes, scores, classes, count, ops.take_along_axis(best, keep, axis=-1)


def detector(network, settings: dict) -> keras.Model:
    """The network followed by `DecodeDetections` (or `DecodeRegions` for a two-stage network):
    images in, detections out (compiled by predict)."""
    size = model_image_shape(network)[:2]
    if proposal_layer(network) is not None:
        check_two_stage(network)
        outputs = DecodeRegions(size, settings)(*network.outputs)
    else:
        logits, deltas = network.outputs[:2]
        outputs = DecodeDetections(anchors_for(settings, size), size, settings)(logits, deltas)
    return keras.Model(network.inputs, outputs, name=f"{network.name}_detector")


@dataclass
class Detections:
    """One image's detections: boxes (n, 4) xyxy in the model input's pixels, scores, classes, and
    from an instance-segmentation network masks (n, height, width) bool."""

    boxes: np.ndarray
    scores: np.ndarray
    classes: np.ndarray
    masks: np.ndarray | None = None


MASK_THRESHOLD = 0.5  # a pixel belongs to the instance where its mask probability reaches this


def detect_batches(model, batches) -> list:
    """Detections for every image of `batches` (arrays of model inputs), as a list of `Detections`."""
    found = []
    for images in batches:
        boxes, scores, classes, count, *masks = (np.asarray(v) for v in model.predict_on_batch(images))
        found += [Detections(boxes[i, :n], scores[i, :n], classes[i, :n],
                             masks[0][i, :n] >= MASK_THRESHOLD if masks else None) for i, n in enumerate(count)]
    return found


def detect_files(run, paths: list, min_score: float) -> list:
    """Detections of a detection run on image files, boxes in each file's own pixels: per file
    {image, width, height, detections: [{class, class_index, score, box: [x1, y1, x2, y2][, mask]}]},
    best first, those scoring at least `min_score`; an instance-segmentation run's `mask` is COCO
    RLE ({size: [height, width], counts}) at the file's size."""
    config = read_run_record(run)["train"]
    require_run_for("detect", run, config, "detect draws the boxes a detection run finds")
    network = load_trained_model(run)
    classes_file = Path(run) / "classes.json"
    names = json.loads(classes_file.read_text()) if classes_file.is_file() else []
    prep = Preprocessing.of(model_image_shape(network), config["data"])
    inputs = image_file_inputs(paths, prep)
    found = detect_batches(detector(network, config["detection"]),
                           (inputs[start:start + BATCH] for start in range(0, len(inputs), BATCH)))
    height, width = prep.size
    results = []
    for path, detections in zip(paths, found):
        with Image.open(path) as image:
            original_width, original_height = image.size
        scale = np.array([original_width / width, original_height / height] * 2, "float32")
        keep = detections.scores >= min_score
        found = [{"class": names[int(label)] if int(label) < len(names) else str(int(label)), "class_index": int(label),
                  "score": round(float(score), 4), "box": [round(float(v), 2) for v in box * scale]}
                 for box, score, label in zip(detections.boxes[keep], detections.scores[keep],
                                              detections.classes[keep])]
        if detections.masks is not None:
            for entry, mask in zip(found, detections.masks[keep]):
                entry["mask"] = to_rle(_resized(mask, original_width, original_height))
        results.append({"image": str(path), "width": original_width, "height": original_height, "detections": found})
    return results


def _resized(mask: np.ndarray, width: int, height: int) -> np.ndarray:
    """A mask at the model input's size scaled to an image file's own (nearest neighbour)."""
    if mask.shape == (height, width):
        return mask
    return np.asarray(Image.fromarray(mask.astype("uint8")).resize((width, height), Image.NEAREST)).astype(bool)
