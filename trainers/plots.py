"""Pictures for the run folder: learning curves and the confusion matrix."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")  # files only; no display needed
    import matplotlib.pyplot as plt

    return plt


def learning_curve(history: list, path: Path) -> None:
    plt = _pyplot()
    metrics = sorted({k for row in history for k in row if k != "epoch" and not k.startswith("val_")
                      and k not in ("learning_rate",)})
    fig, axes = plt.subplots(1, len(metrics), figsize=(5 * len(metrics), 4), squeeze=False)
    epochs = [row["epoch"] for row in history]
    for ax, metric in zip(axes[0], metrics):
        ax.plot(epochs, [row.get(metric) for row in history], marker="o", label="train")
        if any(f"val_{metric}" in row for row in history):
            ax.plot(epochs, [row.get(f"val_{metric}") for row in history], marker="o", label="validation")
        ax.set_xlabel("epoch")
        ax.set_title(metric)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, class_names: list, path: Path) -> np.ndarray:
    plt = _pyplot()
    n = len(class_names)
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (labels, predictions), 1)
    size = max(4, 0.5 * n + 2)
    fig, ax = plt.subplots(figsize=(size, size))
    ax.imshow(matrix, cmap="Blues")
    ax.set_xticks(range(n), class_names, rotation=45, ha="right")
    ax.set_yticks(range(n), class_names)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    accuracy = np.trace(matrix) / max(1, matrix.sum())
    ax.set_title(f"test accuracy {accuracy:.3f}")
    if n <= 20:
        for i in range(n):
            for j in range(n):
                ax.text(j, i, matrix[i, j], ha="center", va="center",
                        color="white" if matrix[i, j] > matrix.max() / 2 else "black", fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return matrix
