"""Data at scale: folders streamed from disk, bad files named and skipped, TFRecord shards,
the ImageNet recipe's crops and normalisation, and a run killed mid-epoch that resumes exactly."""

import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from builder.cli import main
from trainers import run_training
from trainers.data.datasets import load_dataset
from trainers.data.image_files import problem
from trainers.data.pipeline import Preprocessing, StreamPlan, materialize, train_stream
from trainers.data.records import load_tfrecord, pack
from trainers.errors import DataError

from ...conftest import BUILDER, ROOT, SPECS


def _folder(root, per_class=12, size=(20, 24)):
    """Three classes of JPEGs, each tinted by its class's colour channel."""
    rng = np.random.default_rng(0)
    for label in range(3):
        (root / f"class{label}").mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            pixels = rng.uniform(0, 60, (*size, 3))
            pixels[..., label] += 180
            Image.fromarray(pixels.clip(0, 255).astype("uint8")).save(root / f"class{label}" / f"{i}.jpg")
    return root


def _bad_files(root):
    """An empty, a truncated, and a mislabelled file, and a file that is not an image at all."""
    (root / "class0" / "empty.jpg").write_bytes(b"")
    whole = (root / "class1" / "0.jpg").read_bytes()
    (root / "class1" / "cut.jpg").write_bytes(whole[:len(whole) // 2])
    (root / "class2" / "fake.png").write_text("not a picture")
    (root / "class2" / "notes.txt").write_text("a note")
    return {str(root / "class0" / "empty.jpg"), str(root / "class1" / "cut.jpg"), str(root / "class2" / "fake.png")}


def test_bad_files_are_named_skipped_and_counted(tmp_path, capsys):
    root = _folder(tmp_path / "images")
    bad = _bad_files(root)
    splits = load_dataset({"dataset": "image_folder", "path": str(root)})
    err = capsys.readouterr().err
    for file in bad:
        assert f"warning: skipping {file}: " in err
    assert "notes.txt" in err and "not images are ignored" in err
    assert {file for file, _ in splits.skipped} == bad
    assert len(splits.train) + len(splits.val) + len(splits.test) == 36
    with pytest.raises(DataError, match=r"empty\.jpg: an empty file .*and 2 more.*strict: false"):
        load_dataset({"dataset": "image_folder", "path": str(root), "strict": True})


def test_problem_names_each_kind_of_bad_file(tmp_path):
    good = tmp_path / "good.png"
    Image.fromarray(np.zeros((4, 4, 3), "uint8")).save(good)
    assert problem(good) is None
    (tmp_path / "cut.png").write_bytes(good.read_bytes()[:30])
    assert "truncated PNG" in problem(tmp_path / "cut.png")
    assert "cannot be read" in problem(tmp_path / "missing.jpg")


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "CMYK", "I;16"])
def test_every_colour_mode_is_converted(tmp_path, mode):
    rgb = np.random.default_rng(1).integers(0, 255, (10, 12, 3), dtype=np.uint8)
    image = Image.fromarray(rgb)
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(rgb[..., 0].astype("uint16") * 257)
    suffix = "jpg" if mode == "CMYK" else "png"
    (tmp_path / "a").mkdir()
    image.save(tmp_path / "a" / f"x.{suffix}")
    splits = load_dataset({"dataset": "image_folder", "path": str(tmp_path), "test_split": 0, "validation_split": 0})
    decoded, _ = materialize(splits.train, Preprocessing((10, 12, 3)))
    with Image.open(tmp_path / "a" / f"x.{suffix}") as saved:
        reference = saved.convert("RGB") if mode != "I;16" else Image.fromarray(rgb[..., 0]).convert("RGB")
        expected = np.asarray(reference, "float32") / 255.0
    np.testing.assert_allclose(decoded[0], expected, atol=0.02)  # CMYK: the two libraries round differently


def test_a_folder_without_images_is_one_line(tmp_path, capsys):
    (tmp_path / "only").mkdir()
    (tmp_path / "only" / "readme.txt").write_text("x")
    assert main(["train", str(SPECS / "lenet5.yaml"), "--data", f"image_folder:{tmp_path / 'only'}",
                 "--out", str(tmp_path / "runs")]) == 1
    errors = [line for line in capsys.readouterr().err.splitlines() if line.startswith("data error")]
    assert len(errors) == 1 and "has no images" in errors[0]


def test_random_resized_crop_is_seeded_and_center_crop_keeps_the_middle():
    import tensorflow as tf

    from trainers.data.augmentation import random_resized_crop_window

    windows = [[int(v) for v in random_resized_crop_window({"scale": [0.2, 0.5]}, tf.constant([100, 80]),
                                                           tf.constant([7, key], tf.int64))] for key in (1, 1, 2)]
    assert windows[0] == windows[1] and windows[0] != windows[2]
    top, left, height, width = windows[0]
    assert 0 <= top and top + height <= 100 and 0 <= left and left + width <= 80
    assert 0.2 * 8000 * 0.9 <= height * width <= 0.5 * 8000 * 1.1

    from trainers.data.sources import ArraySplit

    image = np.zeros((1, 64, 64, 1), "float32")
    image[0, 8:56, 8:56] = 1.0  # a bright square in the middle 48 x 48
    split = ArraySplit(image, np.zeros(1, "int64"))
    cropped, _ = materialize(split, Preprocessing((16, 16, 1), center_crop=0.75))
    assert cropped.min() > 0.99  # the centre 48 x 48, resized: only the square
    normalized = Preprocessing.of((16, 16, 1), {"normalize": {"mean": [0.5], "std": [0.25]}})
    plan = StreamPlan(lambda batch: (batch["image"], batch["label"]), 1)
    stream = train_stream(split, normalized, plan, epochs=1)
    assert np.unique(next(iter(stream.dataset))[0].numpy()).tolist() == [-2.0, 2.0]


def test_pack_writes_shards_with_the_folders_split_and_trains(tmp_path):
    root = _folder(tmp_path / "images")
    _bad_files(root)
    out = tmp_path / "shards"
    assert main(["data", "pack", str(root), "-o", str(out), "--shard-size", "8"]) == 0
    index = json.loads((out / "index.json").read_text())
    folder = load_dataset({"dataset": "image_folder", "path": str(root)})
    assert {name: entry["count"] for name, entry in index["splits"].items()} == \
        {name: len(split) for name, split in folder.named().items()}
    assert len(index["splits"]["train"]["shards"]) == -(-len(folder.train) // 8) and len(index["skipped"]) == 3
    shards = load_tfrecord({"path": str(out)})
    prep = Preprocessing((20, 24, 3))
    from_shards, shard_labels = materialize(shards.test, prep)
    from_files, file_labels = materialize(folder.test, prep)
    np.testing.assert_array_equal(shard_labels, file_labels)
    np.testing.assert_allclose(from_shards, from_files, atol=1e-6)  # the same bytes, decoded alike
    with pytest.raises(DataError, match="already holds shards"):
        pack(root, out)

    run, metrics = run_training(SPECS / "lenet5.yaml", train_overrides={
        "epochs": 2, "batch_size": 8, "data": {"dataset": "tfrecord", "path": str(out)},
        "augment": [{"random_resized_crop": {"scale": [0.5, 1.0]}}, "flip"]}, out=tmp_path / "runs", verbose=0)
    assert metrics["test_examples"] == len(folder.test)
    history = (run / "history.csv").read_text().splitlines()
    assert len(history) == 3


def test_tfrecord_errors_name_the_folder(tmp_path):
    with pytest.raises(DataError, match="no index.json; make shards with: python -m builder data pack"):
        load_tfrecord({"path": str(tmp_path)})


def test_an_epoch_order_is_a_function_of_seed_and_epoch(tmp_path):
    import tensorflow as tf

    root = _folder(tmp_path / "images", per_class=4)
    split = load_dataset({"dataset": "image_folder", "path": str(root), "test_split": 0, "validation_split": 0}).train

    def labels(epoch, skip=0):
        handles, read = split.epoch_order(tf.constant(epoch, tf.int64), 5, skip)
        return [int(element["label"]) for element in handles.map(read)]

    order = [labels(epoch) for epoch in (0, 0, 1)]
    assert order[0] == order[1] and sorted(order[0]) == sorted(order[2])
    assert labels(0, skip=5) == order[0][5:]


KILLED_RUN = """
import os, signal, sys
import keras
from trainers import run_training

class KillAt(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seen = 0
    def on_train_batch_end(self, batch, logs=None):
        self.seen += 1
        if self.seen == int(sys.argv[2]):
            os.kill(os.getpid(), signal.SIGKILL)

run_training(sys.argv[3], None, {"epochs": 2, "batch_size": 64, "checkpoint_every_steps": 4,
             "augment": [{"random_resized_crop": {"scale": [0.6, 1.0]}}]}, sys.argv[1], verbose=0,
             extra_callbacks=[KillAt()] if int(sys.argv[2]) else [])
"""


@pytest.mark.slow
def test_a_run_killed_mid_epoch_resumes_to_the_same_weights(tmp_path):
    """digits: 1,257 training images, 20 steps an epoch. Killed at step 27 (epoch 2, step 7), the
    run keeps the step-24 checkpoint; resumed, it ends with the uninterrupted run's weights."""
    from trainers.run.loop import load_trained_model

    runs = {}
    for name, kill_at in (("whole", 0), ("killed", 27)):
        result = subprocess.run([sys.executable, "-c", KILLED_RUN, str(tmp_path / name), str(kill_at),
                                 str(SPECS / "lenet5.yaml")], cwd=ROOT, capture_output=True, text=True, timeout=600)
        assert result.returncode == (-9 if kill_at else 0), result.stderr[-2000:]
        runs[name] = next((tmp_path / name / "lenet5").iterdir())
    state = json.loads((runs["killed"] / "checkpoints" / "state.json").read_text())
    assert (state["epoch"], state["step"]) == (1, 4) and not (runs["killed"] / "model.keras").exists()
    resumed = subprocess.run([*BUILDER, "train", "--resume", str(runs["killed"]), "--quiet"],
                             cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert "after epoch 1 and 4 steps of 2" in resumed.stdout
    whole, killed = load_trained_model(runs["whole"]), load_trained_model(runs["killed"])
    for a, b in zip(whole.get_weights(), killed.get_weights()):
        np.testing.assert_array_equal(a, b)
    epochs = [line.split(",")[0] for line in (runs["killed"] / "history.csv").read_text().splitlines()[1:]]
    assert epochs == ["1", "2"]
