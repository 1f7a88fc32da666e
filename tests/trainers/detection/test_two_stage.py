"""Two-stage detection with the detection trainer on the current backend: the network split where
the proposals enter the head (same layers, same outputs), regions decoded into detections, the
outputs a two-stage network must have, a tiny run of specs/faster_rcnn_shapes.yaml that trains
both stages, evaluates, detects and resumes, and specs/faster_rcnn_fpn_shapes.yaml's feature
pyramid (one RPN head on both levels, regions read at the level their size chooses) in a tiny run."""

import json
from pathlib import Path

import numpy as np
import pytest

from builder import SpecError, build_model
from builder.cli.main import main

pytestmark = pytest.mark.xdist_group("test_two_stage")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "specs" / "faster_rcnn_shapes.yaml"
TINY = {"width": 4, "regions": 8, "hidden": 16}


def to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def settings(**changes):
    import trainers  # noqa: F401  (registers the detection trainer)
    from builder.language.train_section import resolve_train

    return resolve_train({"trainer": "detection", "detection": changes})["detection"]


def test_the_split_network_is_the_network():
    """The first stage's proposals and the head run on them give the network's own outputs."""
    from trainers.detection.two_stage import split

    network = build_model(SPEC, TINY)
    first, head, masks = split(network)
    assert masks is None and len(first.weights) + len(head.weights) == len(network.weights)
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    objectness, offsets, proposals, features = first(images)
    assert tuple(objectness.shape) == (2, 8 * 8 * 3) and tuple(offsets.shape) == (2, 8 * 8 * 3, 4)
    whole = network(images)
    np.testing.assert_allclose(to_numpy(proposals), to_numpy(whole[0]), atol=1e-4)
    for part, full in zip(head([proposals, features]), whole[1:]):
        np.testing.assert_allclose(to_numpy(part), to_numpy(full), atol=1e-4)


def test_regions_decode_to_their_best_class_other_than_background():
    import keras

    from trainers.detection.boxes import encode
    from trainers.detection.inference import DecodeRegions

    proposals = np.array([[[4, 4, 20, 20], [30, 30, 50, 50], [6, 6, 20, 22], [0, 0, 0, 0]]], "float32")
    truth = np.array([[[5, 5, 21, 19], [28, 30, 52, 54], [5, 5, 21, 19], [0, 0, 0, 0]]], "float32")
    offsets = to_numpy(encode(keras.ops.convert_to_tensor(proposals), keras.ops.convert_to_tensor(truth)))
    logits = np.array([[[0, 6, 0, 0], [0, 0, 0, 5], [0, 4, 0, 0], [0, 0, 9, 0]]], "float32")  # background first
    boxes, scores, classes, count = (to_numpy(v) for v in DecodeRegions((64, 64), settings(nms_iou=0.5))(
        proposals, logits, offsets))
    assert int(count[0]) == 2  # the third overlaps the first, same class; the fourth is padding
    np.testing.assert_allclose(boxes[0, :2], truth[0, :2], atol=1e-3)
    assert classes[0, :2].tolist() == [0, 2] and scores[0, 0] > scores[0, 1] > 0.5 and (scores[0, 2:] == -1).all()


def test_a_two_stage_network_with_the_wrong_outputs_is_refused_in_one_line(write_spec):
    from trainers.detection.single_shot import wrap

    text = SPEC.read_text().replace("outputs: [proposals, class_logits, box_offsets]", "outputs: [class_logits, "
                                                                                        "box_offsets]")
    network = build_model(write_spec(text), TINY)
    with pytest.raises(SpecError, match=r"a two-stage detector's outputs are \[proposals .*class logits \(8, "
                                        r"classes \+ 1\) with background first, box offsets \(8, 4\)\]"):
        wrap(network, {"detection": settings(), "seed": 0})


def test_summary_shows_the_proposal_anchors(capsys):
    assert main(["summary", str(SPEC), "--set", "width=4"]) == 0
    out = capsys.readouterr().out
    assert "Anchors (train: section): 192 (8x8 cells x 3 at stride 8), in region_proposals 'proposals' " \
           "(two stages)" in out
    assert "RegionProposals" in out and "RoIAlign" in out


FPN_SPEC = ROOT / "specs" / "faster_rcnn_fpn_shapes.yaml"
FPN_TINY = {"width": 4, "pyramid": 8, "regions": 8, "hidden": 16}


def test_the_feature_pyramid_runs_one_rpn_head_on_both_levels_and_reads_each_region_at_its_size():
    import keras

    from layers import RoIAlign
    from trainers.detection.two_stage import split

    network = build_model(FPN_SPEC, FPN_TINY)
    [rpn_head] = [layer for layer in network.layers if isinstance(layer, keras.Model)]
    images = np.random.default_rng(1).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    first, head, _ = split(network)
    objectness, offsets, proposals, fine, coarse = first(images)
    assert tuple(fine.shape) == (2, 16, 16, 8) and tuple(coarse.shape) == (2, 8, 8, 8)
    # anchors of the finer level first, both levels scored by the one head's weights
    assert tuple(objectness.shape) == (2, 16 * 16 * 2 + 8 * 8 * 2)
    for level, (start, end) in zip((fine, coarse), ((0, 512), (512, 640))):
        level_scores, level_offsets = rpn_head(level)
        np.testing.assert_allclose(to_numpy(objectness)[:, start:end], to_numpy(level_scores), atol=1e-5)
        np.testing.assert_allclose(to_numpy(offsets)[:, start:end], to_numpy(level_offsets), atol=1e-5)
    whole = network(images)
    for part, full in zip(head([proposals, fine, coarse]), whole[1:]):
        np.testing.assert_allclose(to_numpy(part), to_numpy(full), atol=1e-4)
    [regions] = [layer for layer in network.layers if isinstance(layer, RoIAlign)]
    boxes = np.array([[[0, 0, 12, 12], [0, 0, 31, 31], [0, 0, 32, 32], [0, 0, 64, 64]]], "float32")
    assert to_numpy(regions.levels(keras.ops.convert_to_tensor(boxes))).tolist() == [[0, 0, 1, 1]]


def test_a_tiny_feature_pyramid_run_trains_both_stages(tmp_path):
    from trainers import run_training

    folder, metrics = run_training(FPN_SPEC, overrides=FPN_TINY, out=tmp_path, verbose=0,
                                   train_overrides={"epochs": 1, "batch_size": 16,
                                                    "data": {"dataset": "shapes_boxes", "count": 48}})
    rows = (folder / "history.csv").read_text().splitlines()
    header, values = rows[0].split(","), rows[1].split(",")
    for term in ("objectness_loss", "proposal_box_loss", "class_loss", "box_loss"):
        assert np.isfinite(float(values[header.index(term)])), term
    assert 0 <= metrics["map"] <= metrics["map50"] <= 1 and (folder / "model.keras").is_file()


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    from trainers import run_training

    out = tmp_path_factory.mktemp("runs")
    return run_training(SPEC, overrides=TINY, out=out, verbose=0,
                        train_overrides={"epochs": 2, "batch_size": 16,
                                         "data": {"dataset": "shapes_boxes", "count": 160}})


def test_a_tiny_run_trains_both_stages_and_reports_coco_map(trained_run):
    folder, metrics = trained_run
    rows = (folder / "history.csv").read_text().splitlines()
    header = rows[0].split(",")
    for term in ("objectness_loss", "proposal_box_loss", "class_loss", "box_loss", "positive_regions"):
        assert term in header, header
    values = [float(value) for row in rows[1:] for value in row.split(",")[1:] if value]
    assert all(np.isfinite(values))
    assert 0 <= metrics["map"] <= metrics["map50"] <= 1
    assert (folder / "detections.png").is_file() and (folder / "model.keras").is_file()


def test_detect_and_evaluate_read_the_run_in_the_same_way(trained_run, tmp_path, capsys):
    from PIL import Image

    from trainers.detection.data import generate_shapes_boxes

    folder, metrics = trained_run
    assert main(["evaluate", str(folder)]) == 0
    again = json.loads(capsys.readouterr().out)
    assert again["map50"] == pytest.approx(metrics["map50"], abs=1e-6)
    images, _, _ = generate_shapes_boxes(2, 64, seed=5)
    paths = []
    for i, image in enumerate(images):
        paths.append(str(tmp_path / f"shapes_{i}.png"))
        Image.fromarray((image * 255).astype("uint8")).save(paths[-1])
    assert main(["detect", str(folder), *paths, "-o", str(tmp_path / "found"), "--min-score", "0"]) == 0
    written = json.loads((tmp_path / "found" / "detections.json").read_text())
    assert [entry["image"] for entry in written] == paths
    for entry in written:
        assert len(entry["detections"]) <= 8  # at most one per region
        for detection in entry["detections"]:
            left, top, right, bottom = detection["box"]
            assert 0 <= left <= right <= 64 and 0 <= top <= bottom <= 64


def test_the_checkpointed_two_stage_wrapper_loads_back_for_a_resume(trained_run):
    from trainers.detection.two_stage import TwoStageTraining
    from trainers.run.folder import last_checkpoint
    from trainers.run.loop import load_trained_model
    from trainers.run.trainer import ResumePoint
    from trainers.run.training import trainer_for

    folder, _ = trained_run
    config = json.loads((folder / "run.json").read_text())["train"]
    point = ResumePoint(*last_checkpoint(folder))
    resumed = trainer_for(config).resume_models(str(SPEC), TINY, point)["main"]
    assert isinstance(resumed, TwoStageTraining) and point.epoch == 2
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    for mine, final in zip(resumed.network(images), load_trained_model(folder)(images)):
        np.testing.assert_allclose(to_numpy(mine), to_numpy(final), atol=1e-5)
