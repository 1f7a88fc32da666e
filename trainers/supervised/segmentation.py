"""The segmentation trainer: one class per pixel, sparse cross-entropy, mean IoU and pixel
accuracy. Data: `shapes` (generated masks) or `mask_folder` (image/mask file pairs)."""

from __future__ import annotations

import contextlib
import json
import warnings
from dataclasses import dataclass

import keras
import numpy as np

from builder.errors import SpecError

from ..data.augmentation import augmentation_layers, augmentation_name, with_training_statistics
from ..data.datasets import load_dataset, mask_class_names
from ..data.pipeline import (
    Preprocessing,
    StreamPlan,
    eval_stream,
    first_output,
    fit_masks,
    model_image_shape,
    model_inputs,
    normalized,
    pixel_statistics,
    preview,
    steps_per_epoch,
    train_stream,
)
from ..data.sources import ArraySplit
from ..errors import DataError
from ..registries import AUGMENTATIONS
from ..run import loop, plots
from ..run.folder import atomic_write
from ..run.optimization import make_optimizer
from ..run.trainer import Trainer, TrainingJob


@dataclass
class SegmentationData:
    splits: object  # masks in memory already cut to the model's output size
    preprocessing: Preprocessing
    class_names: list

    @property
    def image_shape(self) -> tuple:
        return self.preprocessing.image_shape


def prepare(model, config: dict, splits=None) -> SegmentationData:
    shape = model_image_shape(model)
    output = tuple(model.outputs[0].shape[1:])
    if len(output) != 3 or None in output:
        raise SpecError(f"the segmentation trainer needs a model that outputs (height, width, classes); "
                        f"'{model.name}' outputs {output}")
    splits = splits or load_dataset(config["data"])
    if not splits.train.has_masks:
        raise DataError(f"dataset '{config['data']['dataset']}' has no per-pixel masks; use shapes or mask_folder")
    if output[0] > shape[0] or output[1] > shape[1]:
        raise DataError(f"the model's output ({output[0]}x{output[1]}) is larger than its input "
                        f"({shape[0]}x{shape[1]}); a segmentation output is at most the input's size")
    for name, split in splits.named().items():
        if isinstance(split, ArraySplit):
            setattr(splits, name, ArraySplit(split.images, split.labels, fit_masks(split.masks, shape[:2], output[:2])))
    classes = output[-1]
    names = mask_class_names(splits)
    top = len(names) - 1 if splits.channels is None else max(
        int(split.masks.max()) for split in splits.named().values() if split.masks.size)
    if top >= classes:
        raise DataError(f"the masks hold class values up to {top} but the model outputs {classes} classes per "
                        f"pixel: set the spec's class count, e.g. --set classes={top + 1}")
    names = names + [str(i) for i in range(len(names), classes)]
    return SegmentationData(splits, Preprocessing.of(shape, config["data"], mask_size=output[:2]), names[:classes])


def _augmentations(config: dict, shape: tuple, pixel_statistics):
    """Augmentations that move pixels exactly (flips) are applied to image and mask as one; the
    photometric ones to the image only; interpolating ones would blend class indices: refused."""
    joint, image_only = [], []
    for entry in with_training_statistics(config["augment"], pixel_statistics):
        moves = AUGMENTATIONS.get(augmentation_name(entry)).moves_pixels
        if moves == "exactly":
            joint.append(entry)
        elif moves == "no":
            image_only.append(entry)
        else:
            usable = [name for name, known in AUGMENTATIONS.items() if known.moves_pixels != "interpolating"]
            raise DataError(f"augmentation '{augmentation_name(entry)}' would move the image without its mask; "
                            f"the segmentation trainer takes {', '.join(usable)}")
    seed = config["seed"]
    joint_shape = (*shape[:2], shape[2] + 1)  # image channels plus the mask
    return augmentation_layers(joint, joint_shape, seed), augmentation_layers(image_only, shape, seed + 100)


def _finisher(flips=(), photometric=()):
    """Batch -> (images, masks). Flips move image and mask together; brightness, contrast and
    colour changes touch the image only."""
    import tensorflow as tf

    def finish(batch):
        images, labels = batch["image"], batch["mask"]
        if flips:
            joined = tf.concat([images, tf.cast(labels[..., None], images.dtype)], axis=-1)
            for layer in flips:
                joined = layer(joined, training=True)
            images, labels = joined[..., :-1], tf.cast(tf.round(joined[..., -1]), tf.int32)
        for layer in photometric:
            images = layer(images, training=True)
        return images, labels

    return finish


def datasets(data: SegmentationData, config: dict, job=None, training: bool = True):
    """(training stream, validation batches, test batches); the training stream None without
    `training` (evaluation)."""
    splits, prep, batch, seed = data.splits, data.preprocessing, config["batch_size"], config["seed"]
    cache = config["data"].get("cache")
    plain = StreamPlan(_finisher(), batch, seed, cache=cache,
                       whole_batches=bool(job and job.placement and job.placement.group))
    train = None
    if training:
        flips, photometric = _augmentations(config, prep.image_shape, lambda: pixel_statistics(splits.train, prep))
        plan = StreamPlan(_finisher(flips, photometric), batch, seed, cache=cache,
                          whole_batches=bool(job and job.distributed))
        train = train_stream(splits.train, prep, plan, epochs=config["epochs"],
                             first_epoch=job.initial_epoch if job else 0,
                             skip_batches=job.initial_step if job else 0,
                             resumable=bool(config.get("checkpoint_every_steps")))
    val = eval_stream(splits.val, prep, plain) if len(splits.val) else None
    test = eval_stream(splits.test, prep, plain) if len(splits.test) else None
    return train, val, test


def compile_model(model, config: dict, classes: int, steps_per_epoch: int) -> None:
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps_per_epoch, config["epochs"])
    metrics = [keras.metrics.SparseCategoricalAccuracy(name="pixel_accuracy"),
               keras.metrics.MeanIoU(num_classes=classes, sparse_y_true=True, sparse_y_pred=False, name="mean_iou")]
    model.compile(optimizer=optimizer, loss=keras.losses.SparseCategoricalCrossentropy(), metrics=metrics,
                  **loop.speed_settings(config))


@contextlib.contextmanager
def _quiet_mean_iou():
    """Keras's MeanIoU asks for int64 indices, which JAX (32-bit by default) truncates to int32
    with a UserWarning per trace; class indices fit in int32, so the warning says nothing here."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Explicitly requested dtype int64", category=UserWarning)
        yield


def predict_masks(model, images: np.ndarray) -> np.ndarray:
    outputs = first_output(model.predict(images, verbose=0, batch_size=64))
    return np.argmax(outputs, axis=-1)


class SegmentationTrainer(Trainer):
    """The built-in `segmentation` trainer (its entry is in trainers.builtin)."""

    search_metric = "val_mean_iou"
    process_groups = True

    def fit(self, job: TrainingJob) -> dict:
        model, config, folder = job.model, job.config, job.folder
        data = prepare(model, config, loop.load_data(config, folder))
        atomic_write(folder / "classes.json", json.dumps(data.class_names) + "\n")
        train, val, test = datasets(data, config, job)
        if job.resume is None:
            loop.start_weights(model, config, lambda: model_inputs(data.splits.train, data.preprocessing))
            compile_model(model, config, len(data.class_names),
                          steps_per_epoch(len(data.splits.train), config["batch_size"], job.distributed))
        with _quiet_mean_iou():
            loop.fit(model, train, val, job)
            metrics = loop.finish(model, test, len(data.splits.test), folder)
        with loop.pictures_model(model, job) as drawing:
            if drawing is not None:
                shown = preview(data.splits.test if len(data.splits.test) else data.splits.train,
                                data.preprocessing, 6)
                predicted = predict_masks(drawing, normalized(shown["image"], data.preprocessing))
                plots.segmentation_overlay(shown["image"], shown["mask"], predicted, data.class_names,
                                           folder / "segmentation.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        data = prepare(model, config)
        _, _, test = datasets(data, config, training=False)
        compile_model(model, config, len(data.class_names), steps_per_epoch=1)  # a saved model holds no metrics
        with _quiet_mean_iou():
            return loop.evaluate(model, test, len(data.splits.test))
