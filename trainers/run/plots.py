"""Pictures for the run folder: learning curves, the confusion matrix, image grids, segmentation
overlays, detections, embedding maps, ROC curves and heatmap explanations."""

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


def image_grid(rows: list, path: Path, row_titles: list | None = None, title: str | None = None) -> None:
    """Images laid out in rows (each row a sequence of HxWxC arrays in [0, 1]): reconstructions
    under their inputs, samples, interpolation strips."""
    plt = _pyplot()
    columns = max(len(row) for row in rows)
    fig, axes = plt.subplots(len(rows), columns, figsize=(1.1 * columns + (1.2 if row_titles else 0), 1.2 * len(rows)),
                             squeeze=False)
    for r, row in enumerate(rows):
        for c in range(columns):
            ax = axes[r][c]
            ax.set_xticks([])
            ax.set_yticks([])
            for spine in ax.spines.values():
                spine.set_visible(False)
            if c < len(row):
                ax.imshow(_displayable(row[c]), cmap="gray" if np.asarray(row[c]).shape[-1] == 1 else None,
                          vmin=0.0, vmax=1.0)
        if row_titles:
            axes[r][0].set_ylabel(row_titles[r], rotation=0, ha="right", va="center")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _displayable(image) -> np.ndarray:
    image = np.clip(np.asarray(image, dtype="float32"), 0.0, 1.0)
    return image[..., 0] if image.shape[-1] == 1 else image


def segmentation_overlay(images: np.ndarray, truth: np.ndarray, predicted: np.ndarray, class_names: list,
                         path: Path) -> None:
    """Per example: the image, the true mask over it, the predicted mask over it (background
    left clear), so errors show where they are."""
    plt = _pyplot()
    colours = plt.get_cmap("tab10")(np.arange(10))[:, :3]
    fig, axes = plt.subplots(len(images), 3, figsize=(6.6, 2.2 * len(images)), squeeze=False)
    for r, (image, mask, guess) in enumerate(zip(images, truth, predicted)):
        base = _displayable(image)
        base = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
        top, left = (base.shape[0] - mask.shape[0]) // 2, (base.shape[1] - mask.shape[1]) // 2
        base = base[top:top + mask.shape[0], left:left + mask.shape[1]]  # an unpadded U-Net's output area
        for c, (panel, name) in enumerate(((None, "image"), (mask, "true"), (guess, "predicted"))):
            shown = base if panel is None else np.where(panel[..., None] > 0,
                                                        0.45 * base + 0.55 * colours[panel % 10], base)
            axes[r][c].imshow(shown)
            axes[r][c].set_xticks([])
            axes[r][c].set_yticks([])
            if r == 0:
                axes[r][c].set_title(name)
    legend = [plt.Rectangle((0, 0), 1, 1, color=colours[i % 10]) for i in range(1, len(class_names))]
    fig.legend(legend, class_names[1:], loc="lower center", ncol=max(1, len(legend)))
    fig.tight_layout(rect=(0, 0.05, 1, 1))
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _box(plt, ax, box, colour, label: str | None = None, linewidth: float = 1.5, fontsize: int = 6,
         linestyle: str = "-") -> None:
    """An xyxy box outlined in `colour`, with `label` on a tag of the same colour above it."""
    x1, y1, x2, y2 = (float(v) for v in box)
    ax.add_patch(plt.Rectangle((x1, y1), x2 - x1, y2 - y1, fill=False, linewidth=linewidth, linestyle=linestyle,
                               edgecolor=colour))
    if label:
        ax.text(x1, y1, label, fontsize=fontsize, color="white", va="bottom",
                bbox={"facecolor": colour, "pad": 1, "linewidth": 0})


def _class_colours(plt):
    return plt.get_cmap("tab10")(np.arange(10))[:, :3]


def _mask(ax, mask, colour, alpha: float = 0.45) -> None:
    """An instance's mask (height, width) filled translucent in `colour` over the image."""
    overlay = np.zeros((*mask.shape, 4))
    overlay[mask.astype(bool)] = (*colour, alpha)
    ax.imshow(overlay, interpolation="nearest")


def detections(images: np.ndarray, truth: list, found: list, class_names: list, path: Path,
               min_score: float, columns: int = 4) -> None:
    """Each image with its true boxes (dashed) and the predicted ones scoring at least
    `min_score` (solid, with class and score), a colour per class."""
    plt = _pyplot()
    colours = _class_colours(plt)
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(3.0 * columns, 3.0 * rows), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for ax, image, (true_boxes, true_classes, *_), predicted in zip(axes.flat, images, truth, found):
        ax.imshow(_displayable(image), cmap="gray")
        for box, label in zip(true_boxes, true_classes):
            _box(plt, ax, box, colours[int(label) % 10], linewidth=1, linestyle="--")
        masks = predicted.masks if predicted.masks is not None else [None] * len(predicted.boxes)
        for box, score, label, mask in zip(predicted.boxes, predicted.scores, predicted.classes, masks):
            if score >= min_score:
                if mask is not None:
                    _mask(ax, mask, colours[int(label) % 10])
                _box(plt, ax, box, colours[int(label) % 10], f"{class_names[int(label)]} {score:.2f}")
    shown = "detections (and their masks, filled)" if any(p.masks is not None for p in found) else "detections"
    fig.suptitle(f"dashed: true boxes; solid: {shown} scoring {min_score:g} or more (class, score)", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def detected_image(result: dict, path: Path, masks: list | None = None) -> None:
    """One image file with the boxes `detect` found in it (a result of `detection.detect_files`), and
    each one's mask (height, width) filled where `masks` are given."""
    from PIL import Image

    plt = _pyplot()
    colours = _class_colours(plt)
    with Image.open(result["image"]) as image:
        pixels = np.asarray(image.convert("RGB"))
    fig, ax = plt.subplots(figsize=(6, 6 * pixels.shape[0] / pixels.shape[1]))
    ax.imshow(pixels)
    ax.axis("off")
    for k, found in enumerate(result["detections"]):
        if masks is not None:
            _mask(ax, masks[k], colours[found["class_index"] % 10])
        _box(plt, ax, found["box"], colours[found["class_index"] % 10], f"{found['class']} {found['score']:.2f}",
             linewidth=2, fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def embedding_map(embeddings: np.ndarray, labels: np.ndarray, class_names: list, held_out: list, path: Path) -> None:
    """Test embeddings projected on their two principal components, coloured by class; classes
    held out of training drawn as crosses."""
    from sklearn.decomposition import PCA

    plt = _pyplot()
    points = PCA(n_components=2, random_state=0).fit_transform(embeddings) if len(embeddings) > 2 else embeddings
    colours = plt.get_cmap("tab20")
    fig, ax = plt.subplots(figsize=(7, 6))
    for index, label in enumerate(sorted(set(labels.tolist()))):
        chosen = labels == label
        name = class_names[label] if label < len(class_names) else str(label)
        unseen = label in held_out
        ax.scatter(points[chosen, 0], points[chosen, 1], s=14, color=colours(index % 20), marker="x" if unseen else "o",
                   label=f"{name} (held out)" if unseen else name)
    ax.set_title("test embeddings, first two principal components")
    ax.legend(fontsize=7, markerscale=1.2, loc="best")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def roc(fpr: np.ndarray, tpr: np.ndarray, auc: float, eer: float, path: Path) -> None:
    """The verification ROC curve with its area and equal error rate."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(5, 5))
    ax.plot(fpr, tpr, label=f"AUC {auc:.3f}")
    ax.plot([0, 1], [0, 1], color="grey", linestyle=":")
    ax.plot([eer], [1 - eer], "o", color="black", label=f"EER {eer:.3f}")
    ax.set_xlabel("false accept rate (different identities)")
    ax.set_ylabel("true accept rate (same identity)")
    ax.set_title("verification on pairs of test images")
    ax.legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _blend(plt, image, heatmap) -> np.ndarray:
    """`heatmap` (in [0, 1], the image's height and width) in the jet colours over the image."""
    base = _displayable(image)
    base = np.repeat(base[..., None], 3, axis=-1) if base.ndim == 2 else base
    return 0.5 * base + 0.5 * plt.get_cmap("jet")(heatmap)[..., :3]


def explanation(image, heatmap, title: str, path: Path) -> None:
    """One image, its heatmap and the two blended, under `title` (the class and its score)."""
    plt = _pyplot()
    fig, axes = plt.subplots(1, 3, figsize=(7.5, 2.9))
    for ax, shown, name in zip(axes, (_displayable(image), heatmap, _blend(plt, image, heatmap)),
                               ("image", "heatmap", "blend")):
        ax.imshow(shown, cmap="gray" if shown.ndim == 2 and name == "image" else "jet" if name == "heatmap" else None,
                  vmin=0.0, vmax=1.0)
        ax.set_title(name, fontsize=9)
        ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def explanation_grid(images, heatmaps, titles: list, path: Path, correct=None, title: str | None = None,
                     columns: int = 8) -> None:
    """Each image with its heatmap blended over it and its title; with `correct`, a green frame
    around right predictions and a red one around wrong ones."""
    plt = _pyplot()
    columns = max(1, min(columns, len(images)))
    rows = max(1, -(-len(images) // columns))
    fig, axes = plt.subplots(rows, columns, figsize=(1.6 * columns + 0.4, 1.8 * rows + 0.4), squeeze=False)
    for ax in axes.flat:
        ax.set_xticks([])
        ax.set_yticks([])
        ax.axis("off")
    for number, (ax, image, heatmap, text) in enumerate(zip(axes.flat, images, heatmaps, titles)):
        ax.axis("on")
        ax.imshow(_blend(plt, image, heatmap))
        ax.set_title(text, fontsize=7)
        if correct is not None:
            for spine in ax.spines.values():
                spine.set_edgecolor("tab:green" if correct[number] else "tab:red")
                spine.set_linewidth(3)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
