"""The detection trainer (#16) on the current backend: batched matching and suppression against
the per-image forms, decoding back to the true boxes, COCO mAP from pycocotools on cases worked
by hand, boxes that move with augmented images, the spec's anchor checks and `summary`, a short
training run whose mAP rises, and the `detect` command."""

import json
from pathlib import Path

import numpy as np
import pytest

from builder.cli.main import main
from layers.boxes import anchor_boxes, non_max_suppression
from trainers.detection.boxes import encode, match_anchors
from trainers.detection.data import generate_shapes_boxes
from trainers.detection.metrics import coco_average_precision

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_detection")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "specs" / "ssd_shapes.yaml"


def tensor(value):
    import keras

    return keras.ops.convert_to_tensor(value)


def to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def settings(**changes):
    import trainers  # noqa: F401  (registers the detection trainer)
    from builder.language.train_section import resolve_train

    config = resolve_train({"trainer": "detection", "detection": {
        "anchors": [{"stride": 8, "sizes": [12, 18]}, {"stride": 16, "sizes": [24, 32]}],
        "aspect_ratios": [1.0], **changes}})
    return config["detection"]


class Found:
    def __init__(self, boxes, scores, classes):
        self.boxes, self.scores, self.classes = np.asarray(boxes, "float32"), np.asarray(scores), np.asarray(classes)


def test_batched_matching_is_the_per_image_matching():
    from trainers.detection.anchors import anchor_levels

    anchors = anchor_boxes(anchor_levels(settings()), (64, 64))
    _, boxes, classes = generate_shapes_boxes(6, 64, seed=3)
    labels, matched = match_anchors(tensor(anchors), tensor(boxes), tensor(classes))
    for i in range(len(boxes)):
        one_labels, one_matched = match_anchors(tensor(anchors), tensor(boxes[i]), tensor(classes[i]))
        np.testing.assert_array_equal(to_numpy(labels)[i], to_numpy(one_labels))
        np.testing.assert_allclose(to_numpy(matched)[i], to_numpy(one_matched))
    assert (to_numpy(labels) >= 0).sum(axis=1).min() >= 1  # every image's objects claim anchors


def test_batched_suppression_is_the_per_image_suppression():
    rng = np.random.default_rng(0)
    corner = rng.uniform(0, 60, (3, 40, 2))
    boxes = np.concatenate([corner, corner + rng.uniform(4, 30, (3, 40, 2))], -1).astype("float32")
    scores = rng.uniform(0, 1, (3, 40)).astype("float32")
    indices, valid = non_max_suppression(tensor(boxes), tensor(scores), 15, 0.4, 0.2)
    for i in range(3):
        one, one_valid = non_max_suppression(tensor(boxes[i]), tensor(scores[i]), 15, 0.4, 0.2)
        assert int(to_numpy(valid)[i]) == int(to_numpy(one_valid))
        count = int(to_numpy(one_valid))
        assert to_numpy(indices)[i][:count].tolist() == to_numpy(one)[:count].tolist()


def test_decoding_perfect_outputs_gives_back_the_true_boxes_and_map_one():
    """Outputs made from the matching itself (offsets that encode each matched box, high logits
    for the positive anchors) decode, after suppression, to exactly the true boxes (apart, so
    that suppression keeps each)."""
    from trainers.detection.anchors import anchor_levels
    from trainers.detection.inference import DecodeDetections

    config = settings()
    anchors = anchor_boxes(anchor_levels(config), (64, 64))
    boxes = np.array([[[4, 4, 20, 20], [30, 30, 50, 54], [40, 2, 60, 18]],
                      [[10, 10, 34, 30], [0, 0, 0, 0], [0, 0, 0, 0]],
                      [[2, 40, 14, 52], [20, 18, 44, 36], [0, 0, 0, 0]]], "float32")
    classes = np.array([[0, 1, 2], [2, -1, -1], [1, 0, -1]])
    labels, matched = (to_numpy(v) for v in match_anchors(tensor(anchors), tensor(boxes), tensor(classes)))
    deltas = to_numpy(encode(tensor(anchors), tensor(matched)))
    logits = np.where(np.eye(3)[np.maximum(labels, 0)] * (labels >= 0)[..., None] > 0, 8.0, -8.0).astype("float32")
    out_boxes, scores, out_classes, count = (to_numpy(v) for v in DecodeDetections(anchors, (64, 64), config)(
        tensor(logits), tensor(deltas)))
    truth, found = [], []
    for i in range(len(boxes)):
        real = classes[i] >= 0
        n = int(count[i])
        assert n == real.sum()
        order = np.lexsort(out_boxes[i, :n].T[::-1])
        expected = np.lexsort(boxes[i][real].T[::-1])
        np.testing.assert_allclose(out_boxes[i, :n][order], boxes[i][real][expected], atol=1e-3)
        assert out_classes[i, :n][order].tolist() == classes[i][real][expected].tolist()
        assert (scores[i, n:] == -1).all()
        truth.append((boxes[i][real], classes[i][real]))
        found.append(Found(out_boxes[i, :n], scores[i, :n], out_classes[i, :n]))
    assert coco_average_precision(truth, found, 3) == {"map": 1.0, "map50": 1.0}


def test_coco_map_counts_iou_thresholds_as_pycocotools_does():
    truth = [(np.array([[0, 0, 10, 10]], "float32"), np.array([0]))]
    # IoU 0.62 with the true box: a hit at IoU thresholds 0.5, 0.55 and 0.6 only, of COCO's ten
    found = [Found([[0, 0, 10, 6.2]], [0.9], [0])]
    result = coco_average_precision(truth, found, 1)
    assert result["map50"] == pytest.approx(1.0)
    assert result["map"] == pytest.approx(0.3)
    assert coco_average_precision(truth, [Found([[0, 0, 10, 10]], [0.9], [1])], 2)["map50"] == 0.0  # wrong class
    assert coco_average_precision(truth, [Found(np.zeros((0, 4)), [], [])], 1) == {"map": 0.0, "map50": 0.0}


def test_flips_and_shifts_move_the_boxes_with_the_objects():
    """After the box-aware augmentations (flip, shift, zoom), each box still bounds its
    (single-colour) object."""
    import tensorflow as tf

    from trainers.detection.single_shot import _augmentations, _finisher

    images = np.zeros((16, 64, 64, 3), "float32")
    boxes = np.zeros((16, 2, 4), "float32")
    classes = np.full((16, 2), -1, "int32")
    rng = np.random.default_rng(0)
    for i in range(16):
        x, y = rng.integers(14, 34, 2)
        images[i, y:y + 16, x:x + 12] = 1.0
        boxes[i, 0], classes[i, 0] = (x / 64, y / 64, (x + 12) / 64, (y + 16) / 64), 1
    config = {"augment": [{"flip": {"mode": "horizontal_and_vertical"}}, {"translation": {"factor": 0.15}},
                          {"zoom": {"factor": 0.1}}], "seed": 0}
    moving, photometric = _augmentations(config, (64, 64, 3))
    finish = _finisher((64, 64), moving, photometric)
    out_images, targets = finish({"image": tf.constant(images), "boxes": tf.constant(boxes),
                                  "box_classes": tf.constant(classes)})
    out_images, out_boxes = np.asarray(out_images), np.asarray(targets["boxes"])
    moved = 0
    for i in range(16):
        ys, xs = np.nonzero(out_images[i, ..., 0] > 0.5)
        np.testing.assert_allclose(out_boxes[i, 0], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1], atol=1.0)
        moved += not np.allclose(out_boxes[i, 0], boxes[i, 0] * 64, atol=0.5)
        assert np.asarray(targets["classes"])[i].tolist() == [1, -1]
    assert moved >= 12


def test_augmentations_that_cannot_carry_boxes_are_refused_by_name():
    from trainers.detection.single_shot import _augmentations
    from trainers.errors import DataError

    with pytest.raises(DataError, match="'rotation' would change the image without its boxes.*flip"):
        _augmentations({"augment": [{"rotation": {"factor": 0.1}}], "seed": 0}, (64, 64, 3))


def test_heads_that_disagree_with_the_declared_anchors_are_refused(trained_run):
    from builder import SpecError
    from trainers.detection.anchors import check_network
    from trainers.run.loop import load_trained_model

    network = load_trained_model(trained_run[0])  # the spec's heads: 2 anchors per cell
    assert check_network(network, settings()) == 3  # the class count
    three_per_cell = settings(aspect_ratios=[0.5, 1.0, 2.0], anchors=[{"stride": 8, "sizes": [12]},
                                                                      {"stride": 16, "sizes": [24]}])
    with pytest.raises(SpecError, match=r"heads give 160 anchors per image but train.detection.anchors declares "
                                        r"240 \(8x8 cells x 3 at stride 8 \+ 4x4 cells x 3 at stride 16\)"):
        check_network(network, three_per_cell)


def test_summary_shows_the_anchor_count(capsys):
    assert main(["summary", str(SPEC), "--set", "width=4"]) == 0
    assert "Anchors (train: section): 160 (8x8 cells x 2 at stride 8 + 4x4 cells x 2 at stride 16)" in \
        capsys.readouterr().out
    assert main(["summary", str(SPEC), "--set", "width=4", "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["training"]["anchors"].startswith("160 (")


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A short run of specs/ssd_shapes.yaml at a quarter of its width on 600 images (about a minute;
    the bench trains it in full)."""
    from trainers import run_training

    out = tmp_path_factory.mktemp("runs")
    return run_training(SPEC, overrides={"width": 8}, out=out, verbose=0,
                        train_overrides={"epochs": 8, "batch_size": 16,
                                         "data": {"dataset": "shapes_boxes", "count": 600}})


def test_a_short_run_learns_to_find_the_shapes(trained_run):
    folder, metrics = trained_run
    rows = (folder / "history.csv").read_text().splitlines()
    header, first, last = rows[0].split(","), rows[1].split(","), rows[-1].split(",")
    loss = header.index("loss")
    assert float(last[loss]) < 0.5 * float(first[loss])
    assert metrics["map50"] >= 0.4 and 0 < metrics["map"] < metrics["map50"]
    assert json.loads((folder / "metrics.json").read_text())["map50"] == metrics["map50"]
    assert (folder / "detections.png").stat().st_size > 10_000


def test_detect_writes_boxes_in_each_images_own_pixels(trained_run, tmp_path, capsys):
    from PIL import Image

    images, boxes, classes = generate_shapes_boxes(2, 64, seed=99)
    paths = []
    for i, image in enumerate(images):  # saved at twice the size: boxes come back in these pixels
        path = tmp_path / f"shapes_{i}.png"
        Image.fromarray((image * 255).astype("uint8")).resize((128, 128), Image.NEAREST).save(path)
        paths.append(str(path))
    folder, _ = trained_run
    assert main(["detect", str(folder), *paths, "-o", str(tmp_path / "found")]) == 0
    written = json.loads((tmp_path / "found" / "detections.json").read_text())
    assert [entry["image"] for entry in written] == paths
    assert {(entry["width"], entry["height"]) for entry in written} == {(128, 128)}
    names = json.loads((folder / "classes.json").read_text())
    for entry, true_boxes, true_classes in zip(written, boxes, classes):
        best = entry["detections"][0]
        assert set(best) == {"class", "class_index", "score", "box"} and best["class"] == names[best["class_index"]]
        real = true_boxes[true_classes >= 0] * 2
        overlaps = [_iou(best["box"], box) for box in real]
        assert max(overlaps) > 0.5, (best, real)
    assert len(list((tmp_path / "found").glob("*.png"))) == 2
    assert f"{paths[0]}: " in capsys.readouterr().out


def _iou(a, b):
    width = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    height = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = width * height
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def test_the_checkpointed_training_wrapper_loads_back_for_a_resume(trained_run):
    import keras

    from trainers.detection.single_shot import DetectionTraining
    from trainers.run.folder import last_checkpoint
    from trainers.run.loop import load_trained_model
    from trainers.run.trainer import ResumePoint
    from trainers.run.training import trainer_for

    folder, _ = trained_run
    config = json.loads((folder / "run.json").read_text())["train"]
    point = ResumePoint(*last_checkpoint(folder))
    resumed = trainer_for(config).resume_models(str(SPEC), {}, point)["main"]
    assert isinstance(resumed, DetectionTraining) and point.epoch == 8
    assert int(keras.ops.convert_to_numpy(resumed.optimizer.iterations)) == 8 * 27  # 420 training images, 16 a batch
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    for mine, final in zip(resumed.network(images), load_trained_model(folder)(images)):
        np.testing.assert_allclose(keras.ops.convert_to_numpy(mine), keras.ops.convert_to_numpy(final), atol=1e-5)


def test_evaluate_gives_the_runs_test_map_again(trained_run, capsys):
    folder, metrics = trained_run
    assert main(["evaluate", str(folder)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["map50"] == pytest.approx(metrics["map50"], abs=1e-6)
    assert again["map"] == pytest.approx(metrics["map"], abs=1e-6)


@pytest.mark.parametrize("classification", ["focal", "cross_entropy"])
@pytest.mark.parametrize("box", ["smooth_l1", "ciou"])
def test_each_loss_is_near_zero_for_perfect_outputs_and_not_for_blank_ones(trained_run, classification, box):
    from trainers.detection.anchors import anchors_for
    from trainers.detection.single_shot import DetectionTraining
    from trainers.run.loop import load_trained_model

    config = settings(classification_loss=classification, box_loss=box)
    training = DetectionTraining(load_trained_model(trained_run[0]), config)
    boxes = np.array([[[4, 4, 20, 20], [30, 30, 50, 54]], [[10, 10, 34, 30], [0, 0, 0, 0]]], "float32")
    classes = np.array([[0, 2], [1, -1]])
    anchors = anchors_for(config, (64, 64))
    labels, matched = (to_numpy(v) for v in match_anchors(tensor(anchors), tensor(boxes), tensor(classes)))
    perfect = (np.where(np.eye(3)[np.maximum(labels, 0)] * (labels >= 0)[..., None] > 0, 12.0, -12.0).astype("float32"),
               to_numpy(encode(tensor(anchors), tensor(matched))))
    blank = (np.zeros_like(perfect[0]), np.zeros_like(perfect[1]))
    targets = {"boxes": tensor(boxes), "classes": tensor(classes)}
    loss = {name: float(to_numpy(training.compute_loss(y=targets, y_pred=tuple(map(tensor, outputs)))))
            for name, outputs in (("perfect", perfect), ("blank", blank))}
    assert loss["perfect"] < 0.02 and loss["blank"] > 0.5, loss


def test_data_without_boxes_or_with_more_classes_than_the_heads_is_refused_in_one_line(trained_run):
    from trainers.data.datasets import load_dataset
    from trainers.detection.data import split_detections
    from trainers.detection.single_shot import prepare
    from trainers.errors import DataError
    from trainers.run.loop import load_trained_model

    network = load_trained_model(trained_run[0])
    config = {"data": {"dataset": "digits"}}
    with pytest.raises(DataError, match="dataset 'digits' has no object boxes; use shapes_boxes, shapes_instances, "
                                        "coco or voc"):
        prepare(network, config, 3, load_dataset(config["data"]))
    images, boxes, classes = generate_shapes_boxes(20, 64)
    four = split_detections(images, boxes / 64, classes, {}, ["a", "b", "c", "d"])
    with pytest.raises(DataError, match="the data has 4 classes .* but the model scores 3 per anchor: set the spec's "
                                        "class count, e.g. --set classes=4"):
        prepare(network, {"data": {"dataset": "shapes_boxes"}}, 3, four)
