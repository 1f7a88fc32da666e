"""Metric learning: the losses against NumPy references, the shared-weight spec, the P x K sampler,
a short open-set run with its commands, and the one-line refusals (CI runs both backends)."""

import itertools
import json

import keras
import numpy as np
import pytest

from builder import SpecError, build_models, load_spec
from builder.cli import main
from builder.language.train_section import resolve_train
from trainers import run_training
from trainers.errors import DataError
from trainers.metric.embedding import ClassBalancedBatches
from trainers.metric.losses import contrastive_loss, triplet_loss

from ...conftest import SPECS

LABELS = np.array([0, 0, 1, 1, 2, 0])
EMBEDDINGS = np.random.default_rng(3).normal(size=(6, 3)).astype("float32")


def _distances(e):
    return np.sqrt(((e[:, None, :] - e[None, :, :]) ** 2).sum(-1))


def _reference(kind, margin, mining=None):
    """Loops over pairs and triplets, written from the papers' definitions."""
    d, n = _distances(EMBEDDINGS.astype("float64")), len(LABELS)
    if kind == "contrastive":
        terms = [0.5 * d[i, j] ** 2 if LABELS[i] == LABELS[j] else 0.5 * max(0.0, margin - d[i, j]) ** 2
                 for i, j in itertools.permutations(range(n), 2)]
        return np.mean(terms)
    positives = [(a, p) for a, p in itertools.permutations(range(n), 2) if LABELS[a] == LABELS[p]]
    negatives = {a: [k for k in range(n) if LABELS[k] != LABELS[a]] for a in range(n)}
    if mining == "batch_all":
        losses = [max(0.0, d[a, p] - d[a, k] + margin) for a, p in positives for k in negatives[a]]
        active = [x for x in losses if x > 1e-16]
        return sum(active) / max(len(active), 1)
    if mining == "batch_hard":
        anchors = [a for a in range(n) if any(LABELS[p] == LABELS[a] for p in range(n) if p != a)]
        return np.mean([max(0.0, max(d[a, p] for p in range(n) if p != a and LABELS[p] == LABELS[a])
                            - min(d[a, k] for k in negatives[a]) + margin) for a in anchors])
    losses = []
    for a, p in positives:  # semi-hard: the nearest negative farther than the positive, else the farthest
        farther = [d[a, k] for k in negatives[a] if d[a, k] > d[a, p]]
        chosen = min(farther) if farther else max(d[a, k] for k in negatives[a])
        losses.append(max(0.0, d[a, p] - chosen + margin))
    return np.mean(losses)


@pytest.mark.parametrize("kind, mining, margin", [("contrastive", None, 1.0), ("triplet", "batch_all", 0.5),
                                                  ("triplet", "batch_hard", 0.5), ("triplet", "semi_hard", 0.3)])
def test_losses_match_numpy_references(kind, mining, margin):
    labels, embeddings = keras.ops.convert_to_tensor(LABELS), keras.ops.convert_to_tensor(EMBEDDINGS)
    value = contrastive_loss(labels, embeddings, margin) if kind == "contrastive" else \
        triplet_loss(labels, embeddings, margin, mining)
    assert float(keras.ops.convert_to_numpy(value)) == pytest.approx(_reference(kind, margin, mining), rel=1e-4)


def test_the_towers_share_one_set_of_weights():
    spec = load_spec(SPECS / "siamese.yaml", load_spec(SPECS / "siamese.yaml").test_overrides)
    models = build_models(spec)
    embedding = models["embedding"]
    for name in ("siamese", "triplet"):  # every tower is the one `embedding` model, called once per input
        assert [layer for layer in models[name].layers if isinstance(layer, keras.Model)] == [embedding]
        assert {id(w) for w in models[name].weights} == {id(w) for w in embedding.weights}
        assert models[name].count_params() == embedding.count_params()
    x = np.random.default_rng(0).uniform(size=(2, 8, 8, 1)).astype("float32")
    distance = keras.ops.convert_to_numpy(models["siamese"]([x, x[::-1]]))
    vectors = keras.ops.convert_to_numpy(embedding(x))
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)  # l2_normalize
    np.testing.assert_allclose(distance[:, 0], np.linalg.norm(vectors - vectors[::-1], axis=1), atol=1e-5)


def test_towers_that_do_not_share_weights_are_refused(write_spec, tmp_path):
    spec = write_spec("""
        models:
          embedding: {input: [8, 8, 1], layers: [flatten, dense: {units: 4}, l2_normalize]}
          siamese:
            inputs: {left: [8, 8, 1], right: [8, 8, 1]}
            layers:
              - flatten: {}
                from: left
                name: left_tower
              - flatten: {}
                from: right
                name: right_tower
              - pair_distance: {}
                from: [left_tower, right_tower]
        train: {trainer: metric, epochs: 1}
    """)
    with pytest.raises(SpecError, match="model 'siamese' takes 2 inputs but does not call the 'embedding' model, "
                                        "so its towers do not share weights"):
        run_training(spec, out=tmp_path, verbose=0)


def test_a_batch_that_cannot_be_filled_is_one_line():
    labels = np.array([0] * 5 + [1] * 3 + [2] * 8)
    with pytest.raises(DataError, match=r"a batch of 3 classes x 4 images cannot be filled: 2 training classes have 4 "
                                        r"or more images \(0: 5, 1: 3, 2: 8\)"):
        ClassBalancedBatches(np.zeros((16, 2)), labels, 3, 4, seed=0)
    batches = ClassBalancedBatches(np.arange(16)[:, None], labels, 2, 3, seed=0)
    images, batch_labels = batches[0]
    assert sorted(np.bincount(batch_labels)[np.bincount(batch_labels) > 0]) == [3, 3]
    np.testing.assert_array_equal(images[:, 0], batches[0][0][:, 0])  # seeded: the same step, the same batch


def test_the_metric_trainer_owns_its_settings():
    config = resolve_train({"trainer": "metric", "data": {"dataset": "digits", "holdout_classes": [9]}})
    assert config["metric"]["loss"] == "triplet" and config["data"]["holdout_classes"] == [9]
    with pytest.raises(SpecError, match="the metric trainer does not use 'batch_size'"):
        resolve_train({"trainer": "metric", "batch_size": 32})
    with pytest.raises(SpecError, match="unknown key 'holdout_classes'"):
        resolve_train({"data": {"dataset": "digits", "holdout_classes": [9]}})  # supervised has none


def _write_digit(path, image):
    from PIL import Image

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray((image * 255 / 16).astype("uint8")).save(path)


@pytest.mark.slow
def test_a_short_open_set_run_and_its_commands(tmp_path, capsys):
    from sklearn.datasets import load_digits

    changes = {"epochs": 6}
    folder, metrics = run_training(SPECS / "siamese.yaml", {"size": 8, "width": 16}, changes, out=tmp_path / "runs",
                                   verbose=0)
    # pairs of held-out identities: over seeds, backends and compilers this short run's AUC spreads
    # over 0.65-0.72; a collapsed embedding scores 0.5
    assert metrics["recall_at_1"] >= 0.8 and metrics["verification_auc"] >= 0.6
    assert 0.5 <= metrics["known_acceptance_rate"] <= 1 and 0 <= metrics["unknown_rejection_rate"] <= 1
    assert json.loads((folder / "metrics.json").read_text()) == metrics
    assert (folder / "embeddings.png").is_file() and (folder / "roc.png").is_file()

    digits = load_digits()
    sevens, eights = np.flatnonzero(digits.target == 7)[:3], np.flatnonzero(digits.target == 8)[:3]
    gallery = tmp_path / "gallery"
    for name, rows in (("seven", sevens), ("eight", eights)):
        for row in rows:
            _write_digit(gallery / name / f"{row}.png", digits.images[row])
    query = gallery / "eight" / f"{eights[0]}.png"
    assert main(["embed", str(folder), str(query), str(gallery / "seven" / f"{sevens[1]}.png"),
                 "-o", str(tmp_path / "e.npy")]) == 0
    assert np.load(tmp_path / "e.npy").shape == (2, 32)
    capsys.readouterr()
    assert main(["identify", str(folder), "--gallery", str(gallery), str(query)]) == 0
    assert capsys.readouterr().out.strip() == f"{query}: eight (distance 0.000)"
    assert main(["identify", str(folder), "--gallery", str(gallery), str(query), "--threshold", "-1"]) == 0
    assert capsys.readouterr().out.startswith(f"{query}: unknown (nearest eight at 0.000")
    (tmp_path / "empty" / "nobody").mkdir(parents=True)
    assert main(["identify", str(folder), "--gallery", str(tmp_path / "empty"), str(query)]) == 1
    assert capsys.readouterr().err.strip().startswith(f"data error: {tmp_path / 'empty'} has no images")
    assert main(["evaluate", str(folder)]) == 0
    assert json.loads(capsys.readouterr().out)["recall_at_1"] == pytest.approx(metrics["recall_at_1"])
