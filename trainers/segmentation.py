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

from . import loop, plots
from .augmentation import augmentation_layers, augmentation_name
from .datasets import load_dataset, mask_class_names
from .errors import DataError
from .optimization import make_optimizer
from .pipeline import first_output, fit_masks, make_mask_dataset, model_image_shape, prepare_images, steps_per_epoch
from .registries import AUGMENTATIONS
from .run_folder import atomic_write
from .trainer import Trainer, TrainingJob


@dataclass
class SegmentationData:
    splits: object
    masks: dict  # split name -> masks at the model's output size
    image_shape: tuple
    class_names: list


def prepare(model, config: dict) -> SegmentationData:
    shape = model_image_shape(model)
    output = tuple(model.outputs[0].shape[1:])
    if len(output) != 3 or None in output:
        raise SpecError(f"the segmentation trainer needs a model that outputs (height, width, classes); "
                        f"'{model.name}' outputs {output}")
    splits = load_dataset(config["data"])
    if not splits.masks:
        raise DataError(f"dataset '{config['data']['dataset']}' has no per-pixel masks; use shapes or mask_folder")
    masks = {name: fit_masks(values, shape[:2], output[:2]) for name, values in splits.masks.items()}
    classes = output[-1]
    top = max(int(m.max()) for m in masks.values() if m.size)
    if top >= classes:
        raise DataError(f"the masks hold class values up to {top} but the model outputs {classes} classes per "
                        f"pixel: set the spec's class count, e.g. --set classes={top + 1}")
    names = mask_class_names(splits)
    names = names + [str(i) for i in range(len(names), classes)]
    return SegmentationData(splits, masks, shape, names[:classes])


def _augmentations(config: dict, shape: tuple):
    """Augmentations that move pixels exactly (flips) are applied to image and mask as one; the
    photometric ones to the image only; interpolating ones would blend class indices: refused."""
    joint, image_only = [], []
    for entry in config["augment"]:
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


def datasets(data: SegmentationData, config: dict):
    splits, shape, batch, seed = data.splits, data.image_shape, config["batch_size"], config["seed"]
    flips, photometric = _augmentations(config, shape)
    train = make_mask_dataset(splits.x_train, data.masks["train"], shape, batch, shuffle=True, flips=flips,
                              photometric=photometric, seed=seed)
    val = make_mask_dataset(splits.x_val, data.masks["val"], shape, batch) if len(splits.x_val) else None
    test = make_mask_dataset(splits.x_test, data.masks["test"], shape, batch) if len(splits.x_test) else None
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


def predict_masks(model, images: np.ndarray, image_shape) -> np.ndarray:
    outputs = first_output(model.predict(prepare_images(images, image_shape), verbose=0, batch_size=64))
    return np.argmax(outputs, axis=-1)


class SegmentationTrainer(Trainer):
    """The built-in `segmentation` trainer (its entry is in trainers.builtin)."""


    def fit(self, job: TrainingJob) -> dict:
        model, config, folder = job.model, job.config, job.folder
        data = prepare(model, config)
        atomic_write(folder / "classes.json", json.dumps(data.class_names) + "\n")
        train, val, test = datasets(data, config)
        if job.resume is None:
            loop.start_weights(model, config)
            compile_model(model, config, len(data.class_names),
                          steps_per_epoch(len(data.splits.x_train), config["batch_size"]))
        with _quiet_mean_iou():
            loop.fit(model, train, val, job)
            metrics = loop.finish(model, test, len(data.splits.x_test), folder)
        split = "test" if len(data.splits.x_test) else "train"
        images = (data.splits.x_test if split == "test" else data.splits.x_train)[:6]
        predicted = predict_masks(model, images, data.image_shape)
        plots.segmentation_overlay(prepare_images(images, data.image_shape), data.masks[split][:6], predicted,
                                   data.class_names, folder / "segmentation.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        data = prepare(model, config)
        _, _, test = datasets(data, config)
        with _quiet_mean_iou():
            return loop.evaluate(model, test, len(data.splits.x_test))
