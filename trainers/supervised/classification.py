"""The supervised trainer: images and class labels, plain `compile` / `fit`."""

from __future__ import annotations

import json
from dataclasses import dataclass

import keras
import numpy as np

from ..data.datasets import load_dataset
from ..data.pipeline import (
    Preprocessing,
    check_compatible,
    denormalized,
    first_output,
    model_image_shape,
    model_inputs,
    split_streams,
    steps_per_epoch,
)
from ..errors import DataError
from ..registries import METRICS
from ..run import loop, plots
from ..run.folder import atomic_write
from ..run.optimization import make_optimizer
from ..run.trainer import Trainer, TrainingJob
from .explanations import explain
from .options import SUPERVISED_OPTIONS


@dataclass
class Prepared:
    model: object
    splits: object
    preprocessing: Preprocessing
    outputs: int

    @property
    def image_shape(self) -> tuple:
        return self.preprocessing.image_shape


def class_weights(config_value, counts: np.ndarray, num_classes: int):
    """Keras's class_weight from `train.class_weight` and the training split's examples per class."""
    if config_value is None:
        return None
    if config_value == "balanced":
        counts = np.asarray(counts, dtype="float64")[:num_classes]
        total = counts.sum()
        return {i: float(total / (num_classes * c)) if c else 0.0 for i, c in enumerate(counts)}
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


def label_finisher(classes: int, outputs: int, augment=()):
    """Batch -> (images, one-hot labels), with the augmentation layers on the images."""
    import tensorflow as tf

    def finish(batch):
        images = batch["image"]
        for layer in augment:
            images = layer(images, training=True)
        one_hot = tf.one_hot(batch["label"], classes)
        return images, (tuple([one_hot] * outputs) if outputs > 1 else one_hot)

    return finish


def datasets(prepared: Prepared, config: dict, job: TrainingJob | None = None, training: bool = True):
    """(training stream, validation batches, test batches); the training stream from where
    `job` resumes (None without `training`)."""
    classes = int(prepared.model.outputs[0].shape[-1])
    return split_streams(prepared.splits, prepared.preprocessing, config,
                         lambda layers: label_finisher(classes, prepared.outputs, layers), job, training)


def prepare(model, config: dict, splits=None) -> Prepared:
    splits = splits or load_dataset(config["data"])
    if not splits.class_names:
        raise DataError("the data has no class labels (a folder of images without class sub-folders?): "
                        "put the images in class sub-folders, or use a trainer that needs no labels "
                        "(reconstruction, vae)")
    check_compatible(splits, model)
    return Prepared(model, splits, Preprocessing.of(model_image_shape(model), config["data"]), len(model.outputs))


def predict_classes(model, batches) -> tuple[np.ndarray, np.ndarray]:
    """(true classes, predicted classes) over a stream of (images, one-hot labels) batches.
    `predict` rather than batch by batch: under a distribution strategy it splits each batch
    over the devices (`predict_on_batch` would run the whole batch on every one)."""
    truth = [np.argmax(first_output(labels), axis=-1) for _, labels in batches.as_numpy_iterator()]
    if not truth:
        return np.zeros(0, int), np.zeros(0, int)
    outputs = first_output(model.predict(batches, verbose=0))
    return np.concatenate(truth), np.argmax(np.asarray(outputs), axis=-1)


def explanation_picture(model, batches, prepared: Prepared, path, count: int = 16) -> None:
    """Grad-CAM on the first test images, the wrongly classified ones first, each framed green
    (right) or red (wrong); left out, with a line saying why, for a model without maps to weigh."""
    images, labels = [], []
    for batch_images, batch_labels in batches.as_numpy_iterator():
        images.append(batch_images)
        labels.append(np.argmax(first_output(batch_labels), axis=-1))
        if sum(len(chunk) for chunk in images) >= 2 * count:
            break
    if not images:
        return
    images, labels = np.concatenate(images)[:2 * count], np.concatenate(labels)[:2 * count]
    try:
        result = explain(model, images, "gradcam")
    except DataError as error:
        print(f"{path.name} left out: {error}")
        return
    right = result.classes == labels
    shown = np.concatenate([np.flatnonzero(~right), np.flatnonzero(right)])[:count]
    names = prepared.splits.class_names

    def name(index):  # a model may output more classes than the data names
        return names[index] if index < len(names) else str(index)

    prep = prepared.preprocessing
    pixels = denormalized(images[shown], prep)
    heatmaps = result.heatmaps(prep.image_shape[:2])[shown]
    titles = [f"{name(labels[i])} -> {name(result.classes[i])}" if not right[i] else
              f"{name(labels[i])} {result.scores()[i]:.2f}" for i in shown]
    plots.explanation_grid(pixels, heatmaps, titles, path, correct=right[shown],
                           title=f"Grad-CAM at layer {result.layer} on test images (red: wrong, true -> predicted)")


class SupervisedTrainer(Trainer):
    """The built-in `supervised` trainer (its entry is in trainers.builtin)."""

    search_metric = "val_accuracy"
    options = SUPERVISED_OPTIONS
    process_groups = True

    def fit(self, job: TrainingJob) -> dict:
        """Train into `folder`; returns the final test metrics (also written to metrics.json)."""
        model, config, folder = job.model, job.config, job.folder
        classes = int(model.outputs[0].shape[-1])
        prepared = prepare(model, config, loop.load_data(config, folder))
        atomic_write(folder / "classes.json", json.dumps(prepared.splits.class_names) + "\n")
        train, val, test = datasets(prepared, config, job)
        if job.resume is None:
            loop.start_weights(model, config, lambda: model_inputs(prepared.splits.train, prepared.preprocessing))
            steps = steps_per_epoch(len(prepared.splits.train), config["batch_size"], job.distributed)
            compile_model(model, config, steps)
        weights = class_weights(config["class_weight"], prepared.splits.train.label_counts(classes), classes)
        loop.fit(model, train, val, job, class_weight=weights)
        metrics = loop.finish(model, test, len(prepared.splits.test), folder)
        with loop.pictures_model(model, job) as drawing:
            if test is not None and drawing is not None:
                truth, predictions = predict_classes(drawing, test)
                plots.confusion_matrix(truth, predictions, prepared.splits.class_names,
                                       folder / "confusion_matrix.png")
                explanation_picture(drawing, test, prepared, folder / "explanations.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        """Test metrics of a trained model (the `evaluate` command)."""
        prepared = prepare(model, config)
        _, _, test = datasets(prepared, config, training=False)
        compile_model(model, config, steps_per_epoch=1)  # a saved model holds no loss or metrics
        return loop.evaluate(model, test, len(prepared.splits.test))
