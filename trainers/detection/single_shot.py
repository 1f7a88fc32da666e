"""The detection trainer: a single-shot detector (SSD, RetinaNet) built from a spec, or a two-stage
one (`trainers.detection.two_stage`: a network with a `region_proposals` layer).

The spec's main model outputs, per anchor, class logits (anchors, classes) and box offsets
(anchors, 4); `train.detection.anchors` declares the anchor set (strides, sizes, aspect ratios)
in the order the heads concatenate it. Training wraps the network in a model whose
`compute_loss` matches anchors to the ground truth by IoU and adds a focal (or cross-entropy)
classification loss to a smooth-L1 (or CIoU) box loss, all in `keras.ops`: Keras's
backend-agnostic hook, so one trainer serves TensorFlow and JAX. Boxes are `xyxy` in the model
input's pixels throughout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace

import keras
from keras import ops
from keras.utils import bounding_boxes

from layers.boxes import anchor_count_in_words

from ..data.datasets import load_dataset
from ..data.pipeline import (
    Preprocessing,
    StreamPlan,
    eval_stream,
    model_image_shape,
    model_inputs,
    preview,
    steps_per_epoch,
    train_stream,
)
from ..errors import DataError
from ..registries import AUGMENTATIONS
from ..run import loop, plots
from ..run.distribution import per_replica
from ..run.folder import atomic_write
from ..run.optimization import make_optimizer
from ..run.trainer import Trainer, TrainingJob
from .anchors import anchors_for, check_network, describe_anchors
from .boxes import BOX_FORMAT, IGNORED, decode, encode, match_anchors
from .inference import detect_batches, detector
from .metrics import coco_average_precision
from .options import DETECTION_OPTIONS
from .two_stage import TwoStageTraining, has_mask_head, proposal_layer

MIN_BOX_SIZE = 1.0  # pixels: an augmented box narrower or lower than this has left the image
SHOWN_SCORE = 0.3  # detections.png draws the detections scoring at least this (mAP counts them all)


# -- training --------------------------------------------------------------------------------------
def _class_loss(settings: dict, targets, logits):
    """Per anchor, summed over classes: sigmoid focal loss (or plain sigmoid cross-entropy)."""
    classes = ops.shape(logits)[-1]
    if settings["classification_loss"] == "focal":
        per_class = keras.losses.binary_focal_crossentropy(
            targets, logits, apply_class_balancing=True, alpha=settings["focal_alpha"], gamma=settings["focal_gamma"],
            from_logits=True)
    else:
        per_class = keras.losses.binary_crossentropy(targets, logits, from_logits=True)
    return per_class * ops.cast(classes, per_class.dtype)  # Keras averages over the last axis


def _box_loss(settings: dict, anchors, matched, deltas):
    """Per anchor: smooth L1 (Huber, delta 1) on the encoded offsets, or 1 - CIoU of the boxes."""
    if settings["box_loss"] == "ciou":
        predicted = decode(anchors, deltas)
        return 1.0 - bounding_boxes.compute_ciou(matched, predicted, BOX_FORMAT)
    return keras.losses.huber(encode(anchors, matched), deltas, delta=1.0) * 4.0  # a sum over the 4 offsets


@keras.saving.register_keras_serializable(package="blueprint")
class DetectionTraining(keras.Model):
    """Trains a spec-built detector: loss = classification + box_weight * box, each summed over
    the batch's anchors and divided by its count of matched (positive) anchors.

    Args:
        network: a model whose outputs are `[class logits (anchors, classes), box offsets (anchors, 4)]`.
        detection: the `train.detection` settings (anchors, matching thresholds, losses).
    """

    def __init__(self, network, detection: dict, **kwargs):
        super().__init__(**kwargs)
        self.network = network
        self.detection = detection
        self.classes = check_network(network, detection)
        size = model_image_shape(network)[:2]
        self.anchors = ops.convert_to_tensor(anchors_for(detection, size))
        self.class_tracker = keras.metrics.Mean(name="class_loss")
        self.box_tracker = keras.metrics.Mean(name="box_loss")
        self.positive_tracker = keras.metrics.Mean(name="positive_anchors")

    def call(self, inputs, training=None):
        return self.network(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        settings = self.detection
        logits, deltas = (ops.cast(output, "float32") for output in y_pred[:2])
        labels, matched = match_anchors(self.anchors, ops.cast(y["boxes"], "float32"), y["classes"],
                                        settings["positive_iou"], settings["negative_iou"])
        positive = ops.cast(labels >= 0, "float32")
        counted = ops.cast(labels != IGNORED, "float32")
        targets = ops.one_hot(ops.maximum(labels, 0), self.classes) * positive[..., None]
        positives = ops.maximum(ops.sum(positive), 1.0)
        class_term = ops.sum(_class_loss(settings, targets, logits) * counted) / positives
        box_term = ops.sum(_box_loss(settings, self.anchors, matched, deltas) * positive) / positives
        self.class_tracker.update_state(class_term)
        self.box_tracker.update_state(box_term)
        self.positive_tracker.update_state(ops.sum(positive) / ops.cast(ops.shape(positive)[0], "float32"))
        return per_replica(class_term + settings["box_weight"] * box_term)

    def get_config(self):
        return {"name": self.name, "network": keras.saving.serialize_keras_object(self.network),
                "detection": self.detection}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def wrap(model, config: dict) -> DetectionTraining | TwoStageTraining:
    """The training wrapper around a spec-built detector, single-shot or two-stage (a resumed
    checkpoint already is one)."""
    if isinstance(model, (DetectionTraining, TwoStageTraining)):
        return model
    if proposal_layer(model) is not None:
        return TwoStageTraining(model, config["detection"], config["seed"], name=f"{model.name}_training")
    return DetectionTraining(model, config["detection"], name=f"{model.name}_training")


# -- data --------------------------------------------------------------------------------------------
@dataclass
class DetectionData:
    """The run's splits (boxes as fractions of each image), how images become model input, and
    the class names (the data's, then numbers up to the model's class count)."""

    splits: object
    preprocessing: Preprocessing
    class_names: list


def prepare(network, config: dict, classes: int, splits=None) -> DetectionData:
    splits = splits or load_dataset(config["data"])
    if not splits.train.has_boxes:
        raise DataError(f"dataset '{config['data']['dataset']}' has no object boxes; use shapes_boxes, "
                        "shapes_instances, coco or voc")
    masks_predicted = has_mask_head(network)
    if masks_predicted and not splits.train.has_instance_masks:
        raise DataError(f"'{network.name}' predicts instance masks, and dataset '{config['data']['dataset']}' has "
                        "boxes only; use shapes_instances, or a coco file whose annotations carry segmentations")
    if not masks_predicted and splits.train.has_instance_masks:  # boxes alone: masks not read at all
        splits = replace(splits, **{name: split.boxes_only() for name, split in splits.named().items()})
    if config["data"].get("center_crop"):
        raise DataError("data.center_crop would cut boxes off at the image's edge; the detection trainer resizes "
                        "whole images")
    names = list(splits.class_names)
    if len(names) > classes:
        raise DataError(f"the data has {len(names)} classes ({', '.join(names[:8])}...) but the model scores "
                        f"{classes} per anchor: set the spec's class count, e.g. --set classes={len(names)}")
    names += [str(i) for i in range(len(names), classes)]
    return DetectionData(splits, Preprocessing.of(model_image_shape(network), config["data"]), names)


def _augmentations(config: dict, shape: tuple) -> tuple[list, list]:
    """(layers that move boxes with the image, photometric layers); others are refused: they
    would move the image without its boxes."""
    from ..data.augmentation import augmentation_name, settings_of

    def photometric_only(known) -> bool:  # changes pixel values in place, from settings alone
        return known.moves_pixels == "no" and known.learns_from_training_pixels is None

    moving, photometric = [], []
    for i, entry in enumerate(config["augment"]):
        name = augmentation_name(entry)
        known = AUGMENTATIONS.get(name)
        seed = config["seed"] + i
        if known.with_boxes is not None:
            moving += known.with_boxes(keras, settings_of(entry), seed, shape)
        elif photometric_only(known):
            photometric += known.layers(keras, settings_of(entry), seed, shape)
        else:
            usable = [n for n, e in AUGMENTATIONS.items() if e.with_boxes is not None or photometric_only(e)]
            raise DataError(f"augmentation '{name}' would change the image without its boxes; the detection "
                            f"trainer takes {', '.join(usable)}")
    return moving, photometric


def _finisher(image_size: tuple, moving=(), photometric=()):
    """Batch -> (images, {boxes: xyxy pixels, classes[, masks]}). Boxes arrive as fractions of the
    image; the geometric layers move them with the image (Keras's bounding-box support), and a box
    the move pushed out of the image stops being an object. Instance masks (batch, objects, height,
    width), resized to the model's input by nearest neighbour, move with the image (one channel
    per object) and are cut at 0.5 after an interpolating move."""
    import tensorflow as tf

    height, width = image_size
    scale = tf.constant([width, height, width, height], tf.float32)

    def finish(batch):
        images, boxes, classes = batch["image"], batch["boxes"] * scale, batch["box_classes"]
        masks = None
        if "instance_masks" in batch:  # as channels: (batch, height, width, objects)
            masks = tf.transpose(tf.cast(batch["instance_masks"], tf.float32), [0, 2, 3, 1])
            if tuple(masks.shape[1:3]) != (height, width):
                masks = tf.image.resize(masks, (height, width), method="nearest")
        if moving:
            # Masks ride as extra channels of the image, so one draw moves both (Keras's own
            # segmentation_masks lose the tf.data backend beside bounding boxes under JAX).
            channels = images.shape[-1]
            pixels = images if masks is None else tf.concat([images, masks], axis=-1)
            data = {"images": pixels, "bounding_boxes": {"boxes": boxes, "labels": classes}}
            for layer in moving:
                data = layer(data, training=True)
            images, boxes = data["images"][..., :channels], data["bounding_boxes"]["boxes"]
            masks = None if masks is None else data["images"][..., channels:]
            boxes = tf.clip_by_value(boxes, 0.0, scale)
            size = boxes[..., 2:] - boxes[..., :2]
            inside = tf.reduce_all(size >= MIN_BOX_SIZE, axis=-1)
            classes = tf.where(inside, tf.cast(data["bounding_boxes"]["labels"], tf.int32), -1)
        for layer in photometric:
            images = layer(images, training=True)
        targets = {"boxes": boxes, "classes": classes}
        if masks is not None:
            targets["masks"] = tf.cast(tf.transpose(masks, [0, 3, 1, 2]) >= 0.5, tf.uint8)
        return images, targets

    return finish


def datasets(data: DetectionData, config: dict, job=None, training: bool = True):
    """(training stream, validation batches, test batches); no training stream without `training`."""
    prep, batch, seed = data.preprocessing, config["batch_size"], config["seed"]
    cache = config["data"].get("cache")
    plain = StreamPlan(_finisher(prep.size), batch, seed, cache=cache,
                       whole_batches=bool(job and job.placement and job.placement.group))
    train = None
    if training:
        moving, photometric = _augmentations(config, prep.image_shape)
        plan = StreamPlan(_finisher(prep.size, moving, photometric), batch, seed, cache=cache,
                          whole_batches=bool(job and job.distributed))
        train = train_stream(data.splits.train, prep, plan, epochs=config["epochs"],
                             first_epoch=job.initial_epoch if job else 0,
                             skip_batches=job.initial_step if job else 0,
                             resumable=bool(config.get("checkpoint_every_steps")))
    val = eval_stream(data.splits.val, prep, plain) if len(data.splits.val) else None
    test = eval_stream(data.splits.test, prep, plain) if len(data.splits.test) else None
    return train, val, test


def detect_stream(model, stream) -> tuple[list, list]:
    """(detections, ground truth) for every image of an evaluation stream, in one pass; the
    truth per image as (boxes (n, 4) in pixels, classes (n,)[, masks (n, height, width)]), padding
    removed."""
    found, truth = [], []
    for images, targets in stream.as_numpy_iterator():
        found += detect_batches(model, [images])
        masks = targets.get("masks", [None] * len(images))
        truth += [(boxes[classes >= 0], classes[classes >= 0], *(() if mask is None else (mask[classes >= 0],)))
                  for boxes, classes, mask in zip(targets["boxes"], targets["classes"], masks)]
    return found, truth


def average_precision(model, stream, classes: int) -> dict:
    """COCO mAP@[.5:.95] and mAP@0.5 of a `detector` model on an evaluation stream (pycocotools)."""
    found, truth = detect_stream(model, stream)
    return coco_average_precision(truth, found, classes)


def save_detections_picture(model, data: DetectionData, path, count: int = 8) -> None:
    split = data.splits.test if len(data.splits.test) else data.splits.train
    prep = data.preprocessing
    found, truth = detect_stream(model, eval_stream(split, prep, StreamPlan(_finisher(prep.size), count)).take(1))
    plots.detections(preview(split, prep, count)["image"], truth, found, data.class_names, path, SHOWN_SCORE)


class DetectionTrainer(Trainer):
    """The built-in `detection` trainer (its entry is in trainers.builtin)."""

    search_metric = "map50"
    options = DETECTION_OPTIONS

    def summary_figures(self, model, config: dict) -> dict:
        proposals = proposal_layer(model)
        if proposals is not None:
            count = anchor_count_in_words(proposals.levels(), proposals.image_size)
            return {"anchors": f"{count}, in region_proposals '{proposals.name}' (two stages)"}
        return {"anchors": describe_anchors(config["detection"], model_image_shape(model)[:2])}

    def fit(self, job: TrainingJob) -> dict:
        config, folder = job.config, job.folder
        trainer = wrap(job.model, config)
        network, settings = trainer.network, config["detection"]
        data = prepare(network, config, trainer.classes, loop.load_data(config, folder))
        atomic_write(folder / "classes.json", json.dumps(data.class_names) + "\n")
        train, val, test = datasets(data, config, job)
        if job.resume is None:
            loop.start_weights(network, config, lambda: model_inputs(data.splits.train, data.preprocessing))
            steps = steps_per_epoch(len(data.splits.train), config["batch_size"], job.distributed)
            optimizer = make_optimizer(config["optimizer"], config["schedule"], steps, config["epochs"])
            trainer.compile(optimizer=optimizer, **loop.speed_settings(config))
        loop.fit(trainer, train, val, job)
        finder = detector(network, settings)  # one compiled decoder for the test mAP and the picture
        metrics = loop.evaluate(trainer, test, len(data.splits.test))
        if test is not None:
            metrics.update(average_precision(finder, test, trainer.classes))
        metrics = loop.finish(trainer, test, len(data.splits.test), folder, metrics=metrics)
        save_detections_picture(finder, data, folder / "detections.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        trainer = wrap(model, config)
        if not trainer.compiled:
            trainer.compile(optimizer="adam")
        data = prepare(trainer.network, config, trainer.classes)
        _, _, test = datasets(data, config, training=False)
        metrics = loop.evaluate(trainer, test, len(data.splits.test))
        if test is not None:
            metrics.update(average_precision(detector(trainer.network, config["detection"]), test, trainer.classes))
        return metrics
