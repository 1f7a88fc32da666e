"""Dataset loaders on small local files, and bad data reported in one clear line."""

import gzip
import pickle

import numpy as np
import pytest

from builder import build_model
from builder.cli import main
from trainers.data.datasets import generate_shapes, load_dataset
from trainers.data.pipeline import Preprocessing, check_compatible, materialize
from trainers.data.sources import FileSplit
from trainers.errors import DataError

from ...conftest import SPECS


def test_digits_are_real_and_split_fixed():
    first, second = load_dataset({"dataset": "digits"}), load_dataset({"dataset": "digits"})
    assert len(first.train) + len(first.val) + len(first.test) == 1797
    images = first.train.images
    assert images.shape[1:] == (8, 8, 1) and 0.0 <= images.min() and images.max() <= 1.0
    np.testing.assert_array_equal(first.test.labels, second.test.labels)
    assert set(np.unique(first.test.labels)) == set(range(10))


def test_shapes_are_deterministic_with_masks():
    images, labels, masks = generate_shapes(30, size=24, seed=3)
    again = generate_shapes(30, size=24, seed=3)
    np.testing.assert_array_equal(images, again[0])
    assert images.shape == (30, 24, 24, 3) and masks.shape == (30, 24, 24)
    for label, mask in zip(labels, masks):
        assert set(np.unique(mask)) == {0, label + 1}
    other = generate_shapes(30, size=24, seed=4)[0]
    assert not np.array_equal(images, other)
    splits = load_dataset({"dataset": "shapes", "count": 60, "image_size": [16, 16]})
    assert splits.class_names == ["circle", "square", "triangle"] and splits.test.masks.shape[1:] == (16, 16)


def _write_images(root, layout):
    from PIL import Image

    for cls, modes in layout.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i, mode in enumerate(modes):
            shape = (12, 10) if mode == "L" else (12, 10, 3)
            data = np.random.default_rng(i).integers(0, 255, shape, dtype=np.uint8)
            Image.fromarray(data, mode).save(root / cls / f"{i}.png")


def test_image_folder_streams_files_and_decodes_them_exactly(tmp_path):
    from PIL import Image

    _write_images(tmp_path, {"cats": ["RGB"] * 10, "dogs": ["RGB"] * 10})
    splits = load_dataset({"dataset": "image_folder", "path": str(tmp_path)})
    assert splits.class_names == ["cats", "dogs"]
    assert all(isinstance(split, FileSplit) for split in splits.named().values())  # paths, not pixels
    assert len(splits.train) + len(splits.val) + len(splits.test) == 20
    images, labels = materialize(splits.test, Preprocessing((12, 10, 3)))
    expected = [np.asarray(Image.open(file), "float32") / 255.0 for file in splits.test.files]
    np.testing.assert_allclose(images, np.stack(expected), atol=1e-6)
    np.testing.assert_array_equal(labels, splits.test.labels)


def test_image_folder_with_train_and_test(tmp_path):
    _write_images(tmp_path / "train", {"a": ["L"] * 6, "b": ["L"] * 6})
    _write_images(tmp_path / "test", {"a": ["L"] * 2, "b": ["L"] * 2})
    splits = load_dataset({"dataset": "image_folder", "path": str(tmp_path)})
    assert len(splits.test) == 4 and len(splits.train) + len(splits.val) == 12
    assert materialize(splits.train, Preprocessing((8, 8, 1)))[0].shape[1:] == (8, 8, 1)


@pytest.mark.parametrize("setup, message", [
    (lambda root: None, "no such folder"),
    (lambda root: root.mkdir(), "has no images: put them in class sub-folders"),
])
def test_image_folder_errors(tmp_path, setup, message):
    root = tmp_path / "images"
    setup(root)
    with pytest.raises(DataError, match=message):
        load_dataset({"dataset": "image_folder", "path": str(root)})


@pytest.mark.parametrize("channels", [1, 3])
def test_mixed_channels_become_what_the_model_takes(tmp_path, channels):
    _write_images(tmp_path, {"a": ["RGB", "L", "RGB"], "b": ["L", "L", "RGB"]})
    splits = load_dataset({"dataset": "image_folder", "path": str(tmp_path), "test_split": 0.0,
                           "validation_split": 0.0})
    assert materialize(splits.train, Preprocessing((12, 10, channels)))[0].shape == (6, 12, 10, channels)


def test_npz_both_layouts(tmp_path):
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "xy.npz", x=rng.integers(0, 255, (40, 9, 9), dtype=np.uint8), y=np.arange(40) % 4)
    splits = load_dataset({"dataset": "npz", "path": str(tmp_path / "xy.npz")})
    assert splits.train.images.shape[1:] == (9, 9, 1) and splits.num_classes == 4
    assert splits.train.images.max() <= 1.0
    np.savez(tmp_path / "tt.npz", x_train=rng.random((30, 6, 6, 3)), y_train=np.arange(30) % 3,
             x_test=rng.random((9, 6, 6, 3)), y_test=np.arange(9) % 3)
    splits = load_dataset({"dataset": "npz", "path": str(tmp_path / "tt.npz")})
    assert len(splits.test) == 9 and splits.class_names == ["0", "1", "2"]


@pytest.mark.parametrize("arrays, message", [
    ({"x": np.zeros((5, 3)), "y": np.zeros(5, int)}, "expected images"),
    ({"x": np.zeros((5, 4, 4)), "y": np.zeros(4, int)}, "5 images in 'x' but 4 labels"),
    ({"x": np.zeros((5, 4, 4)), "y": np.zeros(5)}, "must be integer class labels"),
    ({"a": np.zeros(3)}, "expected x and y"),
])
def test_npz_errors(tmp_path, arrays, message):
    np.savez(tmp_path / "bad.npz", **arrays)
    with pytest.raises(DataError, match=message):
        load_dataset({"dataset": "npz", "path": str(tmp_path / "bad.npz")})


def test_keras_mnist_from_a_cache_file(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    (tmp_path / "datasets").mkdir()
    rng = np.random.default_rng(0)
    np.savez(tmp_path / "datasets" / "mnist.npz", x_train=rng.integers(0, 255, (50, 28, 28), dtype=np.uint8),
             y_train=np.arange(50) % 10, x_test=rng.integers(0, 255, (20, 28, 28), dtype=np.uint8),
             y_test=np.arange(20) % 10)
    splits = load_dataset({"dataset": "keras:mnist"})
    assert splits.train.images.shape[1:] == (28, 28, 1) and len(splits.test) == 20 and splits.num_classes == 10


def test_keras_fashion_mnist_and_cifar10_from_cache_files(tmp_path, monkeypatch):
    monkeypatch.setenv("KERAS_HOME", str(tmp_path))
    folder = tmp_path / "datasets" / "fashion-mnist"
    folder.mkdir(parents=True)
    for prefix, count in (("train", 30), ("t10k", 10)):
        with gzip.open(folder / f"{prefix}-labels-idx1-ubyte.gz", "wb") as handle:
            handle.write(bytes(8) + bytes(np.arange(count, dtype=np.uint8) % 10))
        with gzip.open(folder / f"{prefix}-images-idx3-ubyte.gz", "wb") as handle:
            handle.write(bytes(16) + bytes(np.zeros(count * 28 * 28, np.uint8)))
    assert len(load_dataset({"dataset": "keras:fashion_mnist"}).test) == 10

    cifar = tmp_path / "datasets" / "cifar-10-batches-py"
    cifar.mkdir()
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(cifar / name, "wb") as handle:
            pickle.dump({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1, 2, 3]}, handle)
    splits = load_dataset({"dataset": "keras:cifar10"})
    assert splits.train.images.shape[1:] == (32, 32, 3) and len(splits.test) == 4


def test_keras_dataset_without_cache_or_network_is_one_line(tmp_path, monkeypatch):
    import keras

    monkeypatch.setenv("KERAS_HOME", str(tmp_path))

    def offline():
        raise OSError("network unreachable")

    monkeypatch.setattr(keras.datasets.mnist, "load_data", offline)
    with pytest.raises(DataError, match="could not be downloaded"):
        load_dataset({"dataset": "keras:mnist"})


def test_unknown_dataset_suggests():
    with pytest.raises(DataError, match="did you mean 'digits'"):
        load_dataset({"dataset": "digit"})


def test_labels_beyond_the_model_outputs():
    model = build_model(SPECS / "lenet5.yaml", {"classes": 5})
    with pytest.raises(DataError, match=r"labels go up to 9 \(10 classes\) but the model outputs 5.*--set classes=10"):
        check_compatible(load_dataset({"dataset": "digits"}), model)


def test_data_shape_incompatible_with_the_spec_input(write_spec):
    model = build_model(write_spec("""
        input: [16]
        layers:
          - dense: {units: 10, activation: softmax}
    """))
    from trainers.data.pipeline import model_image_shape

    with pytest.raises(DataError, match=r"the model's input is \(16,\); image datasets need"):
        model_image_shape(model)


def test_cli_reports_bad_data_in_one_line(tmp_path, capsys):
    assert main(["train", str(SPECS / "lenet5.yaml"), "--data", f"image_folder:{tmp_path}/none",
                 "--out", str(tmp_path)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.startswith("data error: ") and "no such folder" in err and "\n" not in err
