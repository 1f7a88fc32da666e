"""Metric-learning losses on a batch of embeddings and their class labels, in `keras.ops` (one
implementation for every backend): contrastive over all pairs (Hadsell, Chopra & LeCun 2006) and
triplet with batch-all, batch-hard (Hermans, Beyer & Leibe 2017) or semi-hard (Schroff,
Kalenichenko & Philbin 2015) online mining. Labels are class indices, shape (batch,)."""

from __future__ import annotations

import keras
from keras import ops

MININGS = ("batch_all", "batch_hard", "semi_hard")


def pairwise_distances(embeddings):
    """Euclidean distances between every two rows, (batch, batch); 0 on the diagonal, with a
    gradient that stays finite there."""
    embeddings = ops.cast(embeddings, "float32")
    squared_norms = ops.sum(ops.square(embeddings), axis=1)
    squared = squared_norms[:, None] - 2.0 * ops.matmul(embeddings, ops.transpose(embeddings)) + squared_norms[None, :]
    squared = ops.maximum(squared, 0.0)
    zero = ops.cast(squared <= 1e-12, "float32")
    return ops.sqrt(squared + zero * 1e-12) * (1.0 - zero)


def _masks(labels):
    labels = ops.reshape(ops.cast(labels, "int32"), (-1,))
    same = ops.equal(labels[:, None], labels[None, :])
    not_self = ops.logical_not(ops.cast(ops.eye(ops.shape(labels)[0]), "bool"))
    return ops.logical_and(same, not_self), ops.logical_not(same)


def contrastive_loss(labels, embeddings, margin: float):
    """Mean over all pairs of 1/2 d^2 (same class) or 1/2 max(0, margin - d)^2 (different)."""
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    per_pair = ops.where(positive, 0.5 * ops.square(distances),
                         ops.where(negative, 0.5 * ops.square(ops.relu(margin - distances)), 0.0))
    pairs = ops.sum(ops.cast(ops.logical_or(positive, negative), "float32"))
    return ops.sum(per_pair) / ops.maximum(pairs, 1.0)


def triplet_loss(labels, embeddings, margin: float, mining: str):
    distances = pairwise_distances(embeddings)
    positive, negative = _masks(labels)
    if mining == "batch_all":
        return _batch_all(distances, positive, negative, margin)
    if mining == "batch_hard":
        return _batch_hard(distances, positive, negative, margin)
    return _semi_hard(distances, positive, negative, margin)


def _batch_all(distances, positive, negative, margin):
    """Every valid (anchor, positive, negative) triplet; the mean over those with a loss > 0."""
    losses = ops.relu(distances[:, :, None] - distances[:, None, :] + margin)
    valid = ops.logical_and(positive[:, :, None], negative[:, None, :])
    losses = ops.where(valid, losses, 0.0)
    active = ops.sum(ops.cast(losses > 1e-16, "float32"))
    return ops.sum(losses) / ops.maximum(active, 1.0)


def _batch_hard(distances, positive, negative, margin):
    """Per anchor: its farthest positive against its nearest negative."""
    hardest_positive = ops.max(ops.where(positive, distances, 0.0), axis=1)
    far = ops.max(distances) + 1.0
    hardest_negative = ops.min(ops.where(negative, distances, far), axis=1)
    has_both = ops.cast(ops.logical_and(ops.any(positive, axis=1), ops.any(negative, axis=1)), "float32")
    losses = ops.relu(hardest_positive - hardest_negative + margin) * has_both
    return ops.sum(losses) / ops.maximum(ops.sum(has_both), 1.0)


def _semi_hard(distances, positive, negative, margin):
    """Per (anchor, positive) pair: the nearest negative farther than the positive (semi-hard);
    where there is none, the farthest negative. The mean over all positive pairs."""
    d_ap = distances[:, :, None]
    d_an = distances[:, None, :]
    negatives = ops.broadcast_to(negative[:, None, :], ops.shape(positive)[:1] + ops.shape(negative))
    farther = ops.logical_and(negatives, d_an > d_ap)
    far = ops.max(distances) + 1.0
    nearest_farther = ops.min(ops.where(farther, d_an, far), axis=2)
    farthest = ops.max(ops.where(negatives, d_an, 0.0), axis=2)
    chosen = ops.where(ops.any(farther, axis=2), nearest_farther, farthest)
    losses = ops.where(positive, ops.relu(distances - chosen + margin), 0.0)
    pairs = ops.sum(ops.cast(positive, "float32"))
    return ops.sum(losses) / ops.maximum(pairs, 1.0)


@keras.saving.register_keras_serializable(package="blueprint")
class MetricLoss(keras.losses.Loss):
    """A Keras loss over a batch: `y_true` class labels, `y_pred` embeddings.

    Args:
        kind: "contrastive" or "triplet".
        margin: the margin m of either loss.
        mining: for the triplet loss, "batch_all", "batch_hard" or "semi_hard".
    """

    def __init__(self, kind="triplet", margin=0.2, mining="semi_hard", name="metric_loss", **kwargs):
        super().__init__(name=name, **kwargs)
        if kind not in ("contrastive", "triplet"):
            raise ValueError(f"Invalid value received for argument `kind`. Expected 'contrastive' or 'triplet'. "
                             f"Received: kind={kind}")
        if mining not in MININGS:
            raise ValueError(f"Invalid value received for argument `mining`. Expected one of {MININGS}. "
                             f"Received: mining={mining}")
        self.kind, self.margin, self.mining = kind, float(margin), mining

    def call(self, y_true, y_pred):
        if self.kind == "contrastive":
            return contrastive_loss(y_true, y_pred, self.margin)
        return triplet_loss(y_true, y_pred, self.margin, self.mining)

    def get_config(self):
        return {**super().get_config(), "kind": self.kind, "margin": self.margin, "mining": self.mining}
