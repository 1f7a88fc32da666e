"""`data.labels: {clusters: K}`: the training images' k-means clusters as their labels, so that a
class-conditional generator learns from unlabelled images (a self-conditioned GAN, after Liu et
al. 2020, "Diverse Image Generation via Self-Conditioned GANs", who cluster the discriminator's
features; here the clusters are of the pixels, found once before training)."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from ..errors import DataError
from .sources import ArraySplit


def cluster_labels(splits, clusters: int, seed: int, dataset: str):
    """`splits` with every label replaced: the training images' cluster (scikit-learn's KMeans,
    10 restarts, seeded), and for validation and test images the nearest cluster centre."""
    from sklearn.cluster import KMeans

    named = splits.named()
    if not all(isinstance(split, ArraySplit) for split in named.values()):
        raise DataError(f"data.labels.clusters groups images held in memory (digits, shapes, npz, keras:*); "
                        f"{dataset} streams its images from disk")
    if len(splits.train) < clusters:
        raise DataError(f"data.labels.clusters: {clusters} clusters of {len(splits.train)} training images; "
                        "ask for at most as many clusters as images")
    pixels = {name: split.images.reshape(len(split), -1) for name, split in named.items()}
    kmeans = KMeans(clusters, n_init=10, random_state=seed).fit(pixels["train"])
    relabelled = {name: replace(split, labels=(kmeans.labels_ if name == "train" else
                                               kmeans.predict(pixels[name]) if len(split) else
                                               np.zeros(0)).astype("int32"))
                  for name, split in named.items()}
    return replace(splits, **relabelled, class_names=[f"cluster {i}" for i in range(clusters)])
