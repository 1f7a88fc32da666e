"""The supervised trainer: images and class labels, plain `compile` / `fit`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import keras
import numpy as np

from . import loop, plots
from .augmentation import augmentation_layers
from .datasets import load_dataset
from .errors import DataError
from .optimization import make_optimizer
from .pipeline import check_compatible, first_output, make_dataset, model_image_shape, prepare_images, steps_per_epoch
from .registries import METRICS
from .run_folder import atomic_write
from .trainer import Trainer, TrainingJob
from .trainer_options import SUPERVISED_OPTIONS


@dataclass
class Prepared:
    model: object
    splits: object
    image_shape: tuple
    outputs: int


def class_weights(config_value, labels: np.ndarray, num_classes: int):
    if config_value is None:
        return None
    if config_value == "balanced":
        counts = np.bincount(labels, minlength=num_classes).astype("float64")
        return {i: float(len(labels) / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}
    return {int(k): float(v) for k, v in config_value.items()}


def compile_model(model, config: dict, steps_per_epoch: int):
    outputs = len(model.outputs)
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps_per_epoch, config["epochs"])
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config["label_smoothing"])
    metrics = [METRICS.get(name).make() for name in config["metrics"]]
    speed = loop.speed_settings(config)
    if outputs == 1:
        model.compile(optimizer=optimizer, loss=loss, metrics=metrics, **speed)
    else:  # auxiliary heads (GoogLeNet) learn the same labels at weight 0.3, as in the paper
        model.compile(optimizer=optimizer, loss=[loss] * outputs, loss_weights=[1.0] + [0.3] * (outputs - 1),
                      metrics=[metrics] + [[] for _ in range(outputs - 1)], **speed)


def datasets(prepared: Prepared, config: dict):
    splits, shape, classes = prepared.splits, prepared.image_shape, int(prepared.model.outputs[0].shape[-1])
    seed, batch = config["seed"], config["batch_size"]
    augment = augmentation_layers(config["augment"], shape, seed)
    common = dict(image_shape=shape, num_classes=classes, batch_size=batch, repeat_labels=prepared.outputs)
    train = make_dataset(splits.x_train, splits.y_train, shuffle=True, augment=augment, seed=seed, **common)
    val = make_dataset(splits.x_val, splits.y_val, **common) if len(splits.x_val) else None
    test = make_dataset(splits.x_test, splits.y_test, **common) if len(splits.x_test) else None
    return train, val, test


def prepare(model, config: dict) -> Prepared:
    splits = load_dataset(config["data"])
    if not splits.class_names:
        raise DataError("the data has no class labels (a folder of images without class sub-folders?): "
                        "put the images in class sub-folders, or use a trainer that needs no labels "
                        "(reconstruction, vae)")
    check_compatible(splits, model)
    return Prepared(model, splits, model_image_shape(model), len(model.outputs))


def predict_classes(model, images: np.ndarray, image_shape) -> np.ndarray:
    outputs = first_output(model.predict(prepare_images(images, image_shape), verbose=0, batch_size=256))
    return np.argmax(outputs, axis=-1)


class SupervisedTrainer(Trainer):
    """The built-in `supervised` trainer (its entry is in trainers.builtin)."""

    options = SUPERVISED_OPTIONS

    def fit(self, job: TrainingJob) -> dict:
        """Train into `folder`; returns the final test metrics (also written to metrics.json)."""
        model, config, folder = job.model, job.config, job.folder
        prepared = prepare(model, config)
        atomic_write(folder / "classes.json", json.dumps(prepared.splits.class_names) + "\n")
        train, val, test = datasets(prepared, config)
        if job.resume is None:
            loop.start_weights(model, config)
            compile_model(model, config, steps_per_epoch(len(prepared.splits.x_train), config["batch_size"]))
        weights = class_weights(config["class_weight"], prepared.splits.y_train, int(model.outputs[0].shape[-1]))
        loop.fit(model, train, val, job,
                 class_weight=weights)
        metrics = loop.finish(model, test, len(prepared.splits.x_test), folder)
        predictions = predict_classes(model, prepared.splits.x_test, prepared.image_shape)
        plots.confusion_matrix(prepared.splits.y_test, predictions, prepared.splits.class_names,
                               folder / "confusion_matrix.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        """Test metrics of a trained model (the `evaluate` command)."""
        prepared = prepare(model, config)
        _, _, test = datasets(prepared, config)
        return loop.evaluate(model, test, len(prepared.splits.x_test))
