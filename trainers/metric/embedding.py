"""The metric trainer: one `embedding` network learns a space where images of a class lie close
together (contrastive or triplet loss on P classes x K images per batch), then open-set
identification is measured on classes held out of training, as the seeds' face-ID notes describe:
recall@1 against an enrolled gallery, verification ROC AUC and equal error rate on pairs, and the
rejection of unseen identities at a distance threshold chosen on validation data."""

from __future__ import annotations

import json
from dataclasses import dataclass

import keras
import numpy as np

from builder.errors import SpecError

from ..data.datasets import load_dataset
from ..data.pipeline import Preprocessing, TrainStream, materialize, model_image_shape
from ..errors import DataError
from ..run import loop, plots
from ..run.folder import atomic_write
from ..run.optimization import make_optimizer
from ..run.trainer import ResumePoint, Trainer, TrainingJob
from .losses import MetricLoss
from .options import METRIC_OPTIONS, METRIC_SETTINGS

NETWORK = "embedding"
ACCEPTED_KNOWN = 0.95  # the threshold accepts this share of known validation images


def shared_embedding(models: dict):
    """The spec's `embedding` model; refuses a spec whose multi-input models build towers of their
    own instead of calling it (their towers would not share weights)."""
    if NETWORK not in models:
        raise SpecError(f"the metric trainer trains a model named '{NETWORK}' that every tower calls; the spec "
                        f"defines {', '.join(models)} (see specs/siamese.yaml)")
    embedding = models[NETWORK]
    for name, model in models.items():
        if name != NETWORK and len(model.inputs) > 1 and not any(layer is embedding for layer in model.layers):
            raise SpecError(f"model '{name}' takes {len(model.inputs)} inputs but does not call the '{NETWORK}' "
                            f"model, so its towers do not share weights: call `- {NETWORK}: {{}}` from each input "
                            "(see specs/siamese.yaml)")
    if len(embedding.outputs) != 1 or len(embedding.outputs[0].shape) != 2:
        raise SpecError(f"the '{NETWORK}' model must output one vector per image, (batch, dim); it outputs "
                        f"{[tuple(output.shape) for output in embedding.outputs]}")
    return embedding


@dataclass
class OpenSetData:
    """Images prepared for the model and labels, per split; which classes are held out."""

    images: dict
    labels: dict
    holdout: list
    class_names: list

    def known(self, split: str) -> np.ndarray:
        return ~np.isin(self.labels[split], self.holdout)


def prepare_data(model, config: dict) -> OpenSetData:
    splits = load_dataset(config["data"])
    prep = Preprocessing.of(model_image_shape(model), {})
    arrays = {name: materialize(split, prep) for name, split in splits.named().items()}
    holdout = list(config["data"].get("holdout_classes") or [])
    present = sorted(set(np.concatenate([labels for _, labels in arrays.values()]).tolist()))
    missing = [c for c in holdout if c not in present]
    if missing:
        raise DataError(f"data.holdout_classes names {missing}, which the data does not have (classes: {present})")
    if len(holdout) >= len(present):
        raise DataError("data.holdout_classes holds out every class: nothing is left to train on")
    images = {name: split_images for name, (split_images, _) in arrays.items()}
    labels = {name: split_labels for name, (_, split_labels) in arrays.items()}
    return OpenSetData(images, labels, holdout, list(splits.class_names))


class ClassBalancedBatches(keras.utils.PyDataset):
    """Batches of P classes x K images of each, drawn from (seed, epoch, step): the same run gives
    the same batches, on every backend."""

    def __init__(self, images, labels, classes_per_batch: int, images_per_class: int, seed: int, first_epoch=0):
        super().__init__()
        self.images, self.labels = images, labels
        self.per_batch, self.per_class, self.seed, self.epoch = classes_per_batch, images_per_class, seed, first_epoch
        self.by_class = {int(c): np.flatnonzero(labels == c) for c in np.unique(labels)}
        self.eligible = sorted(c for c, rows in self.by_class.items() if len(rows) >= images_per_class)
        if len(self.eligible) < classes_per_batch:
            counts = ", ".join(f"{c}: {len(rows)}" for c, rows in sorted(self.by_class.items()))
            raise DataError(f"a batch of {classes_per_batch} classes x {images_per_class} images cannot be filled: "
                            f"{len(self.eligible)} training classes have {images_per_class} or more images ({counts}); "
                            "lower metric.classes_per_batch or metric.images_per_class")
        self.steps = max(1, len(labels) // (classes_per_batch * images_per_class))

    def __len__(self):
        return self.steps

    def __getitem__(self, step):
        rng = np.random.default_rng([self.seed, self.epoch, step])
        classes = rng.choice(self.eligible, self.per_batch, replace=False)
        rows = np.concatenate([rng.choice(self.by_class[c], self.per_class, replace=False) for c in classes])
        return self.images[rows], self.labels[rows].astype("int32")

    def on_epoch_end(self):
        self.epoch += 1


def embed(model, images: np.ndarray) -> np.ndarray:
    return np.asarray(model.predict(images, verbose=0, batch_size=256), dtype="float64")


def open_set_metrics(model, data: OpenSetData):
    """The metrics of metrics.json, and what the pictures need."""
    from sklearn.metrics import pairwise_distances, roc_auc_score, roc_curve
    from sklearn.neighbors import NearestNeighbors

    emb = {split: embed(model, data.images[split]) for split in data.images}
    known = {split: data.known(split) for split in emb}
    gallery = NearestNeighbors(n_neighbors=1).fit(emb["train"][known["train"]])
    metrics = {}
    if data.holdout:  # identities never trained on: enrolled from train/val, probed with test
        enrolled = np.concatenate([emb["train"][~known["train"]], emb["val"][~known["val"]]])
        enrolled_labels = np.concatenate([data.labels["train"][~known["train"]], data.labels["val"][~known["val"]]])
        probes, probe_labels = emb["test"][~known["test"]], data.labels["test"][~known["test"]]
    else:  # no held-out classes: the same measures on the known classes' test images
        enrolled, enrolled_labels = emb["train"], data.labels["train"]
        probes, probe_labels = emb["test"], data.labels["test"]
    nearest = NearestNeighbors(n_neighbors=1).fit(enrolled).kneighbors(probes)[1][:, 0]
    metrics["recall_at_1"] = float(np.mean(enrolled_labels[nearest] == probe_labels))
    rows, cols = np.triu_indices(len(probes), 1)
    same = probe_labels[rows] == probe_labels[cols]
    scores = -pairwise_distances(probes)[rows, cols]
    metrics["verification_auc"] = float(roc_auc_score(same, scores))
    fpr, tpr, _ = roc_curve(same, scores)
    crossing = int(np.argmin(np.abs(fpr - (1.0 - tpr))))
    metrics["eer"] = float((fpr[crossing] + 1.0 - tpr[crossing]) / 2.0)
    threshold = float(np.quantile(gallery.kneighbors(emb["val"][known["val"]])[0][:, 0], ACCEPTED_KNOWN))
    metrics["threshold"] = threshold
    metrics["known_acceptance_rate"] = float(np.mean(gallery.kneighbors(emb["test"][known["test"]])[0] <= threshold))
    if data.holdout:
        unseen = gallery.kneighbors(emb["test"][~known["test"]])[0]
        metrics["unknown_rejection_rate"] = float(np.mean(unseen > threshold))
    metrics["test_examples"] = int(len(data.labels["test"]))
    return metrics, {"embeddings": emb["test"], "labels": data.labels["test"], "fpr": fpr, "tpr": tpr}


def compile_embedding(model, config: dict, steps: int) -> None:
    settings = config["metric"]
    optimizer = make_optimizer(config["optimizer"], config["schedule"], steps, config["epochs"])
    model.compile(optimizer=optimizer, loss=MetricLoss(settings["loss"], settings["margin"], settings["mining"]),
                  **loop.speed_settings(config))


class MetricTrainer(Trainer):
    """The built-in `metric` trainer (its entry is in trainers.builtin)."""

    search_metric = "recall_at_1"
    honours = METRIC_SETTINGS
    options = METRIC_OPTIONS

    def fit(self, job: TrainingJob) -> dict:
        config, folder = job.config, job.folder
        model = shared_embedding(job.models)
        data = prepare_data(model, config)
        known = data.known("train")
        settings = config["metric"]
        batches = ClassBalancedBatches(data.images["train"][known], data.labels["train"][known],
                                       settings["classes_per_batch"], settings["images_per_class"], config["seed"],
                                       job.initial_epoch)
        if job.resume is None:
            seen = data.images["train"][known]  # the images the embedding trains on
            loop.start_weights(model, config, lambda: (seen[i:i + 256] for i in range(0, len(seen), 256)))
            compile_embedding(model, config, len(batches))
        atomic_write(folder / "classes.json", json.dumps(data.class_names) + "\n")
        loop.fit(model, TrainStream(batches), None, job)
        metrics, shown = open_set_metrics(model, data)
        loop.finish(model, None, 0, folder, metrics=metrics)
        names = data.class_names or [str(c) for c in sorted(set(shown["labels"].tolist()))]
        plots.embedding_map(shown["embeddings"], shown["labels"], names, data.holdout, folder / "embeddings.png")
        plots.roc(shown["fpr"], shown["tpr"], metrics["verification_auc"], metrics["eer"], folder / "roc.png")
        return metrics

    def evaluate(self, model, config: dict) -> dict:
        return open_set_metrics(model, prepare_data(model, config))[0]

    def resume_models(self, spec_file: str, params: dict, resume: ResumePoint) -> dict:
        return {NETWORK: super().resume_models(spec_file, params, resume)["main"]}
