"""The built-in dataset loaders, each returning train/validation/test splits (registered in
`trainers.builtin`; `load_dataset` looks a name up in `trainers.registries.DATASETS`).

Small datasets (`digits`, `shapes`, `npz`, `keras:<name>`) are arrays in memory: float32 in
[0, 1] with a channel axis, and integer labels. Folders of images stay on disk: a loader lists
and checks the files and splits the list; the input pipeline (`trainers.data.pipeline`) decodes them
batch by batch, so memory does not grow with the folder.
"""

from __future__ import annotations

import gzip
import os
import pickle
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..errors import DataError
from .image_files import check_files, image_files, note_other_files
from .pseudo_labels import cluster_labels
from .sources import ArraySplit, FileSplit, Split


@dataclass
class Splits:
    """Training, validation and test splits, plus what the labels mean. `channels` is the
    channel count of images held in memory (None: files, decoded to what the model takes)."""

    train: Split
    val: Split
    test: Split
    class_names: list
    channels: int | None = None
    skipped: list = field(default_factory=list)  # (file, reason) of images left out

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    def named(self) -> dict:
        return {"train": self.train, "val": self.val, "test": self.test}


def load_dataset(config: dict) -> Splits:
    """The splits of `data: {dataset: NAME, ...}`, through the dataset registry (their labels
    replaced by clusters of the images under `labels: {clusters: K}`)."""
    from builder import UnknownName

    from ..registries import DATASETS

    try:
        entry = DATASETS.get(config["dataset"])
    except UnknownName as exc:
        raise DataError(str(exc)) from None
    splits = entry.load(config)
    if config.get("labels"):
        splits = cluster_labels(splits, config["labels"]["clusters"], config.get("seed", 0), config["dataset"])
    return splits


def split_indices(y: np.ndarray, config: dict) -> list:
    """A fixed, stratified train/validation/test split of positions (seeded by data.seed, default 0)."""
    seed = config.get("seed", 0)
    test_fraction = config.get("test_split", 0.2)
    val_fraction = config.get("validation_split", 0.1)
    rng = np.random.default_rng(seed)
    train_idx, val_idx, test_idx = [], [], []
    for label in np.unique(y):
        idx = rng.permutation(np.flatnonzero(y == label))
        n_test = int(round(len(idx) * test_fraction))
        n_val = int(round(len(idx) * val_fraction))
        test_idx += list(idx[:n_test])
        val_idx += list(idx[n_test:n_test + n_val])
        train_idx += list(idx[n_test + n_val:])
    return [np.sort(np.array(part, dtype=int)) for part in (train_idx, val_idx, test_idx)]


def split_arrays(x, y, config, class_names, masks=None) -> Splits:
    """Arrays split by `split_indices` into in-memory splits."""
    parts = split_indices(y, config)
    splits = [ArraySplit(x[part], y[part], None if masks is None else masks[part]) for part in parts]
    return Splits(*splits, list(class_names), channels=int(x.shape[-1]))


def split_files(files: list, y: np.ndarray, config: dict, class_names, mask_files=None, skipped=()) -> Splits:
    """File lists split by `split_indices` into on-disk splits."""
    parts = split_indices(y, config)
    files = np.asarray(files, dtype=object)
    masks = None if mask_files is None else np.asarray(mask_files, dtype=object)
    splits = [FileSplit(list(files[part]), y[part], None if masks is None else list(masks[part])) for part in parts]
    return Splits(*splits, list(class_names), skipped=list(skipped))


# -- digits ------------------------------------------------------------------------------------
def load_digits(config: dict) -> Splits:
    """scikit-learn's 1,797 real 8x8 handwritten digits (shipped with the package, no download)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    x = (bunch.images / 16.0).astype("float32")[..., None]
    return split_arrays(x, bunch.target.astype("int64"), config, [str(d) for d in range(10)])


# -- shapes ------------------------------------------------------------------------------------
SHAPE_CLASSES = ("circle", "square", "triangle")


def shape_mask(kind: int, cy: float, cx: float, radius: float, rows, cols):
    """Pixels inside a circle (0), square (1) or triangle (2) of about `radius` around (cy, cx);
    `rows` and `cols` are the pixel centres' coordinates."""
    if kind == 0:
        return (rows - cy) ** 2 + (cols - cx) ** 2 <= radius ** 2
    if kind == 1:
        half = radius * 0.85
        return (np.abs(rows - cy) <= half) & (np.abs(cols - cx) <= half)
    top, base = cy - radius, cy + radius * 0.8
    half_width = (rows - top) / (base - top) * radius
    return (rows >= top) & (rows <= base) & (np.abs(cols - cx) <= half_width)


def generate_shapes(count: int, size: int = 32, seed: int = 0, radius: tuple = (0.18, 0.32)):
    """Coloured circles, squares and triangles on noise: images, labels and per-pixel masks.

    Masks hold 0 for background and class index + 1 on the shape. Each shape's radius is drawn
    from `radius` (fractions of the image size). Deterministic by seed.
    """
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size].astype("float32") + 0.5
    images = rng.uniform(0.0, 0.35, (count, size, size, 3)).astype("float32")
    labels = np.arange(count) % len(SHAPE_CLASSES)
    rng.shuffle(labels)
    masks = np.zeros((count, size, size), dtype="int64")
    for i, label in enumerate(labels):
        scale = rng.uniform(*radius) * size
        cy, cx = rng.uniform(scale, size - scale, 2)
        inside = shape_mask(label, cy, cx, scale, rows, cols)
        colour = rng.uniform(0.55, 1.0, 3).astype("float32")
        images[i][inside] = colour
        masks[i][inside] = label + 1
    return images, labels.astype("int64"), masks


def load_shapes(config: dict) -> Splits:
    size = (config.get("image_size") or [32, 32])[0]
    images, labels, masks = generate_shapes(config.get("count", 1200), size, config.get("seed", 0))
    return split_arrays(images, labels, config, SHAPE_CLASSES, masks)


def mask_class_names(splits: Splits) -> list:
    """Names of the mask values: shapes' masks hold 0 for background and class index + 1."""
    if list(splits.class_names) == list(SHAPE_CLASSES):
        return ["background", *SHAPE_CLASSES]
    return list(splits.class_names)


# -- image folders -----------------------------------------------------------------------------
def load_image_folder(config: dict) -> Splits:
    """A folder of class sub-folders (`root/cat/1.png`, `root/dog/7.jpg`); sub-folders `train/`
    and `test/` are used if present. A folder of plain images (no sub-folders) gives unlabelled
    images (all label 0, no class names) for the trainers that need no labels. Files are checked
    (`trainers.data.image_files`) and listed, never loaded here."""
    root = existing_path(config, "image_folder", want_dir=True)
    strict = bool(config.get("strict", False))
    if (root / "train").is_dir() and (root / "test").is_dir():
        files, y, names, skipped = _class_folder_files(root / "train", strict)
        test_files, y_test, test_names, test_skipped = _class_folder_files(root / "test", strict)
        if test_names != names:
            raise DataError(f"{root}/train and {root}/test have different classes: {names} vs {test_names}")
        inner = split_files(files, y, {**config, "test_split": 0.0}, names, skipped=skipped + test_skipped)
        inner.test = FileSplit(test_files, y_test)
        return inner
    files, y, names, skipped = _class_folder_files(root, strict)
    return split_files(files, y, config, names, skipped=skipped)


def _class_folder_files(root: Path, strict: bool):
    """(files, labels, class names, skipped) of a folder of class sub-folders or of plain images."""
    classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    listed, others = [], []
    for label, name in enumerate(classes):
        images, not_images = image_files(root / name, recursive=True)
        listed += [(file, label) for file in images]
        others += not_images
    if not classes:
        images, others = image_files(root)
        listed = [(file, 0) for file in images]
    note_other_files(others, root)
    if not listed:
        raise DataError(f"{root} has no images: put them in class sub-folders ({root}/<class name>/<image>), "
                        "or directly in the folder for training without labels (.png, .jpg, .jpeg, .bmp, .gif)")
    labels = {str(file): label for file, label in listed}
    check = check_files([file for file, _ in listed])
    good = check.report(strict, str(root))
    return good, np.array([labels[file] for file in good], dtype="int64"), classes, check.bad


# -- image / mask pairs ------------------------------------------------------------------------
def load_mask_folder(config: dict) -> Splits:
    """Segmentation data: `root/images/<name>.png` with `root/masks/<name>.png` (same file stem),
    each mask a single-channel image whose pixel values are class indices (0: background)."""
    root = existing_path(config, "mask_folder", want_dir=True)
    image_dir, mask_dir = root / "images", root / "masks"
    if not image_dir.is_dir() or not mask_dir.is_dir():
        raise DataError(f"{root} needs two sub-folders, images/ and masks/, with files of the same name")
    images, others = image_files(image_dir)
    note_other_files(others, image_dir)
    masks = {f.stem: f for f in image_files(mask_dir)[0]}
    if not images:
        raise DataError(f"{image_dir} has no images (.png, .jpg, .jpeg, .bmp, .gif)")
    missing = [f.name for f in images if f.stem not in masks]
    if missing:
        raise DataError(f"{len(missing)} image(s) in {image_dir} have no mask of the same name in {mask_dir}, "
                        f"e.g. {missing[0]}")
    check = check_files(images + [masks[f.stem] for f in images])
    bad = {path for path, _ in check.bad}
    check.good = [str(f) for f in images if str(f) not in bad and str(masks[f.stem]) not in bad]
    good = check.report(bool(config.get("strict", False)), str(root))
    mask_files = [str(masks[Path(f).stem]) for f in good]
    top = max(_mask_values(mask_files))
    names = config.get("class_names") or ["background"] + [str(i) for i in range(1, top + 1)]
    return split_files(good, np.zeros(len(good), dtype="int64"), config, names, mask_files, check.bad)


def _mask_values(mask_files: list) -> list:
    """The largest class index of each mask (one pass over the masks, refusing colour masks)."""
    from PIL import Image

    def largest(file):
        with Image.open(file) as mask:
            if mask.mode not in ("L", "P", "I", "1", "I;16"):
                raise DataError(f"{file}: a mask is a single-channel image of class indices; got mode {mask.mode}")
            return int(np.asarray(mask).max())

    with ThreadPoolExecutor(max_workers=4) as pool:
        return list(pool.map(largest, mask_files))


def existing_path(config: dict, dataset: str, want_dir: bool) -> Path:
    if not config.get("path"):
        raise DataError(f"dataset '{dataset}' needs `data: {{path: ...}}` (or --data {dataset}:PATH)")
    path = Path(config["path"]).expanduser()
    if not path.exists():
        raise DataError(f"{path}: no such {'folder' if want_dir else 'file'}")
    if want_dir and not path.is_dir():
        raise DataError(f"{path} is a file; dataset '{dataset}' reads a folder")
    return path


# -- npz files ---------------------------------------------------------------------------------
def load_npz(config: dict) -> Splits:
    """Arrays from a .npz file: `x` and `y` (split here), or `x_train`, `y_train`, `x_test`,
    `y_test` (and optionally `x_val`, `y_val`). Integer pixels are scaled from 0..255 to 0..1."""
    path = existing_path(config, "npz", want_dir=False)
    try:
        with np.load(path, allow_pickle=False) as archive:
            arrays = {key: archive[key] for key in archive.files}
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable .npz file ({exc})") from None
    names = config.get("class_names")
    if "x" in arrays and "y" in arrays:
        x, y = _images(arrays["x"], path, "x"), _labels(arrays["y"], path, "y")
        _same_length(x, y, path, "x", "y")
        return split_arrays(x, y, config, names or _class_names(y))
    needed = [key for key in ("x_train", "y_train", "x_test", "y_test") if key not in arrays]
    if needed:
        raise DataError(f"{path} holds {sorted(arrays)}; expected x and y, or x_train, y_train, x_test, y_test")
    return _from_train_test(arrays, config, path, names)


def _from_train_test(arrays, config, source, names=None) -> Splits:
    x, y = _images(arrays["x_train"], source, "x_train"), _labels(arrays["y_train"], source, "y_train")
    x_test, y_test = _images(arrays["x_test"], source, "x_test"), _labels(arrays["y_test"], source, "y_test")
    _same_length(x, y, source, "x_train", "y_train")
    _same_length(x_test, y_test, source, "x_test", "y_test")
    if x.shape[1:] != x_test.shape[1:]:
        raise DataError(f"{source}: x_train images are {x.shape[1:]} but x_test images are {x_test.shape[1:]}")
    if "x_val" in arrays:
        val = ArraySplit(_images(arrays["x_val"], source, "x_val"), _labels(arrays["y_val"], source, "y_val"))
        splits = Splits(ArraySplit(x, y), val, ArraySplit(x_test, y_test), [], channels=int(x.shape[-1]))
    else:
        splits = split_arrays(x, y, {**config, "test_split": 0.0}, [])
        splits.test = ArraySplit(x_test, y_test)
    all_labels = np.concatenate([splits.train.labels, splits.val.labels, splits.test.labels])
    splits.class_names = list(names or _class_names(all_labels))
    return splits


def _images(x, source, key) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim == 3:
        x = x[..., None]
    if x.ndim != 4 or x.shape[-1] not in (1, 3, 4):
        raise DataError(f"{source}: '{key}' has shape {x.shape}; expected images as (count, height, width) "
                        "or (count, height, width, 1 or 3 channels)")
    if x.shape[-1] == 4:
        x = x[..., :3]
    scale = 255.0 if np.issubdtype(x.dtype, np.integer) or x.max(initial=0) > 1.5 else 1.0
    return (x / scale).astype("float32")


def _labels(y, source, key) -> np.ndarray:
    y = np.asarray(y).reshape(-1) if np.asarray(y).ndim == 2 and np.asarray(y).shape[1] == 1 else np.asarray(y)
    if y.ndim != 1 or not np.issubdtype(y.dtype, np.integer):
        raise DataError(f"{source}: '{key}' must be integer class labels of shape (count,); got {y.dtype} {y.shape}")
    if y.size and y.min() < 0:
        raise DataError(f"{source}: '{key}' has negative labels ({y.min()}); labels are 0 .. classes-1")
    return y.astype("int64")


def _same_length(x, y, source, x_key, y_key):
    if len(x) != len(y):
        raise DataError(f"{source}: {len(x)} images in '{x_key}' but {len(y)} labels in '{y_key}'")


def _class_names(y) -> list:
    return [str(i) for i in range(int(y.max()) + 1)] if len(y) else []


# -- keras.datasets ----------------------------------------------------------------------------
def _mnist_like(name):
    def read(cache: Path):
        file = cache / f"{name}.npz"
        if not file.is_file():
            return None
        with np.load(file, allow_pickle=False) as archive:
            return {key: archive[key] for key in ("x_train", "y_train", "x_test", "y_test")}
    return read


def _read_fashion(cache: Path):
    folder = cache / "fashion-mnist"
    files = {"y_train": "train-labels-idx1-ubyte.gz", "x_train": "train-images-idx3-ubyte.gz",
             "y_test": "t10k-labels-idx1-ubyte.gz", "x_test": "t10k-images-idx3-ubyte.gz"}
    if not all((folder / f).is_file() for f in files.values()):
        return None
    arrays = {}
    for key, name in files.items():
        with gzip.open(folder / name, "rb") as handle:
            raw = np.frombuffer(handle.read(), np.uint8)
        arrays[key] = raw[8:] if key.startswith("y") else raw[16:].reshape(-1, 28, 28)
    return arrays


def _cifar_reader(folder_name, train_files, test_file, label_key):
    def read(cache: Path):
        folder = cache / folder_name
        if not all((folder / f).is_file() for f in (*train_files, test_file)):
            return None
        def batch(name):
            with open(folder / name, "rb") as handle:
                entry = _CifarUnpickler(handle, encoding="bytes").load()
            data = np.asarray(entry[b"data"], np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1)
            return data, np.asarray(entry[label_key], np.int64)
        parts = [batch(name) for name in train_files]
        x_test, y_test = batch(test_file)
        return {"x_train": np.concatenate([p[0] for p in parts]), "y_train": np.concatenate([p[1] for p in parts]),
                "x_test": x_test, "y_test": y_test}
    return read


class _CifarUnpickler(pickle.Unpickler):
    """The published CIFAR files are pickles of dicts, lists, bytes and NumPy arrays: refuse
    every other global, so a tampered cache file cannot run code."""

    ALLOWED = {("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "_reconstruct"),
               ("numpy._core.multiarray", "_reconstruct"), ("numpy.core.multiarray", "scalar"),
               ("numpy._core.multiarray", "scalar")}

    def find_class(self, module, name):
        if (module, name) not in self.ALLOWED:
            raise DataError(f"refusing to load '{module}.{name}' from a CIFAR cache file: not CIFAR data")
        return super().find_class(module, name)


_KERAS_DATASETS = {
    "mnist": _mnist_like("mnist"),
    "fashion_mnist": _read_fashion,
    "cifar10": _cifar_reader("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], "test_batch", b"labels"),
    "cifar100": _cifar_reader("cifar-100-python", ["train"], "test", b"fine_labels"),
}


def keras_cache_dir() -> Path:
    return Path(os.environ.get("KERAS_HOME", Path.home() / ".keras")) / "datasets"


def load_keras_dataset(name: str, config: dict) -> Splits:
    """keras.datasets.<name>: read from Keras's cache folder when present, else downloaded by Keras.

    Only Keras's own, documented datasets are known here: the name picks an entry of a fixed table.
    The CIFAR files are Python pickles, as published; they are read only from Keras's own cache.
    """
    arrays = _KERAS_DATASETS[name](keras_cache_dir())
    if arrays is None:
        arrays = _download_keras_dataset(name)
    return _from_train_test(arrays, config, f"keras:{name}")


def _download_keras_dataset(name: str) -> dict:
    import keras

    loaders = {"mnist": keras.datasets.mnist, "fashion_mnist": keras.datasets.fashion_mnist,
               "cifar10": keras.datasets.cifar10, "cifar100": keras.datasets.cifar100}
    try:
        (x_train, y_train), (x_test, y_test) = loaders[name].load_data()
    except Exception as exc:  # no network, a proxy, a broken partial download
        raise DataError(f"keras:{name} is not in {keras_cache_dir()} and could not be downloaded "
                        f"({type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''})") from None
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}
