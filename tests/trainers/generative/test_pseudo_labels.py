"""`data.labels: {clusters: K}` and the self-conditioned GAN (specs/scgan_digits.yaml) on the
current backend (CI runs TensorFlow and JAX): the clusters replace the labels, the other splits
take the nearest cluster, streamed data is refused in one line, and `sample` draws the clusters
as often as the training images fall in them."""

import json

import numpy as np
import pytest
from PIL import Image

from builder import load_spec
from builder.errors import SpecError
from builder.language.train_section import resolve_train
from trainers import run_training
from trainers.data.datasets import load_dataset
from trainers.errors import DataError
from trainers.generative import adversarial, sampling

from ...conftest import SPECS

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_pseudo_labels")

SPEC = SPECS / "scgan_digits.yaml"
DIGITS = {"dataset": "digits", "labels": {"clusters": 10}}


def _data(changes: dict) -> dict:
    return resolve_train({"data": changes})["data"]


def test_the_clusters_replace_the_labels_and_group_the_digits():
    plain, clustered = load_dataset(_data({"dataset": "digits"})), load_dataset(_data(DIGITS))
    assert clustered.class_names == [f"cluster {i}" for i in range(10)]
    for name, split in clustered.named().items():
        np.testing.assert_array_equal(split.images, plain.named()[name].images)  # the same images, relabelled
        assert split.labels.dtype == np.int32 and set(split.labels) <= set(range(10))
    assert len(set(clustered.train.labels)) == 10
    # Each cluster is mostly one digit (k-means on the pixels of the 8x8 digits): purity well above
    # the 0.10-0.11 of labels unrelated to the digits.
    purity = sum(np.bincount(plain.train.labels[clustered.train.labels == c]).max() for c in range(10)) \
        / len(plain.train.labels)
    assert purity > 0.6
    # Validation and test images take the nearest centre, the centres being the training clusters' means.
    flat = clustered.train.images.reshape(len(clustered.train), -1)
    centres = np.stack([flat[clustered.train.labels == c].mean(axis=0) for c in range(10)])
    for split in (clustered.val, clustered.test):
        pixels = split.images.reshape(len(split), -1)
        nearest = np.argmin(((pixels[:, None, :] - centres[None]) ** 2).sum(axis=-1), axis=1)
        np.testing.assert_array_equal(split.labels, nearest)
    again = load_dataset(_data(DIGITS))  # seeded: the same clusters
    np.testing.assert_array_equal(again.train.labels, clustered.train.labels)


def test_streamed_data_and_impossible_counts_are_refused_in_one_line(tmp_path):
    for label in ("a", "b"):
        (tmp_path / label).mkdir()
        for i in range(5):
            Image.fromarray(np.full((8, 8, 3), 40 * i, "uint8")).save(tmp_path / label / f"{i}.png")
    with pytest.raises(DataError, match="image_folder streams its images from disk"):
        load_dataset(_data({"dataset": "image_folder", "path": str(tmp_path), "labels": {"clusters": 2}}))
    with pytest.raises(DataError, match=r"5000 clusters of \d+ training images; ask for at most"):
        load_dataset(_data({"dataset": "digits", "labels": {"clusters": 5000}}))
    with pytest.raises(SpecError, match="clusters"):
        _data({"dataset": "digits", "labels": {"clusters": 1}})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder, _ = run_training(SPEC, load_spec(SPEC).test_overrides, {"epochs": 1, "batch_size": 64},
                             out=tmp_path_factory.mktemp("runs"), verbose=0)
    return folder


def test_the_gan_trains_on_the_clusters_and_records_how_many_images_each_has(run):
    config = json.loads((run / "run.json").read_text())["train"]
    count = config["data"]["labels"]["clusters"]
    _, images, labels = adversarial.real_batches(config, (32, 32, 1), classes=count)
    splits = load_dataset(config["data"])
    clusters = np.concatenate([splits.train.labels, splits.val.labels])
    np.testing.assert_array_equal(labels.argmax(axis=1), clusters)  # the images' clusters, not their digits
    trained = json.loads((run / "run.json").read_text())["data_used"]["trained_per_class"]
    assert trained == np.bincount(clusters, minlength=count).tolist() and sum(trained) == len(images)


def test_samples_draw_each_cluster_as_often_as_it_was_trained_on(run, monkeypatch):
    asked = []
    original = sampling.draw

    def recording(generator, count, seed=0, classes=None, noise=None):
        asked.append(classes)
        return original(generator, count, seed, classes, noise)

    monkeypatch.setattr(sampling, "draw", recording)
    images = sampling.sample_run(run, 4000, seed=5)
    assert images.shape == (4000, 32, 32, 1) and 0 <= images.min() and images.max() <= 1
    trained = np.asarray(json.loads((run / "run.json").read_text())["data_used"]["trained_per_class"])
    shares = np.bincount(asked[0], minlength=len(trained)) / 4000
    np.testing.assert_allclose(shares, trained / trained.sum(), atol=0.025)  # 4 standard errors at most
    assert not np.allclose(trained / trained.sum(), 1 / len(trained), atol=0.01)  # the clusters differ in size
    sampling.sample_run(run, 8, seed=5, class_index=3)
    assert set(asked[-1]) == {3}
