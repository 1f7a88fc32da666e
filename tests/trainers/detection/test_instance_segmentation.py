"""Instance segmentation (Mask R-CNN) with the detection trainer on the current backend: the mask
head cut out of the network gives the network's masks, masks travel with their images through the
training stream's flips, a mask read over its box and pasted back is the same mask, COCO's `segm`
evaluation scores true masks 1 and swapped ones lower, a mask head refuses data of boxes alone,
and a tiny run of specs/mask_rcnn_shapes.yaml on a COCO file of instances (images and RLE masks
on disk) learns masks, evaluates them and draws them, and `detect` writes them as COCO RLE."""

import json
from pathlib import Path

import numpy as np
import pytest

from builder import SpecError, build_model
from builder.cli.main import main
from trainers.errors import DataError

pytestmark = pytest.mark.xdist_group("test_instance_segmentation")

ROOT = Path(__file__).resolve().parents[3]
SPEC = ROOT / "specs" / "mask_rcnn_shapes.yaml"
BOX_TINY = {"width": 4, "regions": 8, "hidden": 16}
TINY = BOX_TINY | {"mask_width": 4}


def to_numpy(value):
    import keras

    return keras.ops.convert_to_numpy(value)


def tensor(value):
    import keras

    return keras.ops.convert_to_tensor(value)


def test_the_mask_head_cut_from_the_network_gives_the_networks_masks():
    from trainers.detection.two_stage import split

    network = build_model(SPEC, TINY)
    first, head, masks = split(network)
    tower_weights = len(masks.tower.weights)
    assert tower_weights == 8 and len(first.weights) + len(head.weights) + tower_weights == len(network.weights)
    images = np.random.default_rng(0).uniform(0, 1, (2, 64, 64, 3)).astype("float32")
    _, _, proposals, *maps = first(images)
    whole = network(images)
    assert tuple(whole[3].shape) == (2, 8, 28, 28, 3)
    np.testing.assert_allclose(to_numpy(masks.logits(proposals, maps)), to_numpy(whole[3]), atol=1e-4)
    # the mask head reads any number of regions: the positives of a training sample
    assert tuple(masks.logits(proposals[:, :3], maps).shape) == (2, 3, 28, 28, 3)


def test_a_mask_head_without_batch_to_regions_is_refused_by_name(write_spec):
    from trainers.detection.single_shot import wrap

    text = SPEC.read_text().replace("outputs: [proposals, class_logits, box_offsets, masks]",
                                    "outputs: [proposals, class_logits, box_offsets, mask_regions]")
    network = build_model(write_spec(text), TINY)
    with pytest.raises(SpecError, match=r"mask logits \(8, size, size, classes\) from batch_to_regions"):
        wrap(network, {"detection": {}, "seed": 0})


def test_a_mask_read_over_its_box_and_pasted_back_is_the_same_mask():
    """RoI Align (checked against torchvision's definition) reads each instance's mask over its box
    at 28x28, as the training targets are made; pasting that grid back into the box gives the mask."""
    from trainers.detection.data import generate_shapes_instances
    from trainers.detection.inference import paste_masks
    from trainers.detection.region_targets import mask_targets

    _, boxes, classes, masks = generate_shapes_instances(12, 64, seed=4)
    objects = np.arange(boxes.shape[1])[None].repeat(len(boxes), 0)
    grids = mask_targets(tensor(boxes), tensor(objects), tensor(masks), 28)
    pasted = to_numpy(paste_masks(grids, tensor(boxes), (64, 64))) >= 0.5
    for image_classes, image_masks, image_pasted in zip(classes, masks, pasted):
        for present, mask, again in zip(image_classes >= 0, image_masks, image_pasted):
            if present:
                iou = np.logical_and(mask, again).sum() / np.logical_or(mask, again).sum()
                assert iou >= 0.9, iou
    one = to_numpy(paste_masks(tensor(np.ones((1, 1, 28, 28), "float32")),
                               tensor(np.array([[[10, 20, 30, 26]]], "float32")), (64, 64)))[0, 0]
    rows, cols = np.nonzero(one > 0)
    assert (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1) == (10, 20, 30, 26) and np.allclose(one[one > 0], 1)


def test_masks_move_with_their_images_through_the_training_flips():
    from trainers.data.pipeline import Preprocessing
    from trainers.detection.data import load_shapes_instances
    from trainers.detection.single_shot import DetectionData, datasets

    def first_batch(augment):
        config = {"data": {"dataset": "shapes_instances", "count": 40}, "augment": augment, "batch_size": 16,
                  "seed": 0, "epochs": 1}
        splits = load_shapes_instances(config["data"])
        data = DetectionData(splits, Preprocessing.of((64, 64, 3), config["data"]), ["circle", "square", "triangle"])
        train, _, _ = datasets(data, config)
        return next(iter(train.dataset.as_numpy_iterator()))

    (images, targets), (plain_images, plain) = first_batch([{"flip": {"mode": "horizontal_and_vertical"}}]), \
        first_batch([])
    for boxes, classes, masks in zip(targets["boxes"], targets["classes"], targets["masks"]):
        for box, label, mask in zip(boxes, classes, masks):
            if label >= 0:
                rows, cols = np.nonzero(mask)
                np.testing.assert_allclose((cols.min(), rows.min(), cols.max() + 1, rows.max() + 1), box, atol=0.5)
    flipped = [i for i in range(len(images)) if not np.array_equal(images[i], plain_images[i])]
    assert flipped and all(not np.array_equal(targets["masks"][i], plain["masks"][i]) for i in flipped)


def test_coco_segm_evaluation_scores_true_masks_one_and_swapped_masks_lower():
    from trainers.detection.data import generate_shapes_instances
    from trainers.detection.inference import Detections
    from trainers.detection.metrics import coco_average_precision

    _, boxes, classes, masks = generate_shapes_instances(10, 64, seed=6)
    truth = [(b[c >= 0], c[c >= 0], m[c >= 0].astype(bool)) for b, c, m in zip(boxes, classes, masks)]
    exact = [Detections(b, np.ones(len(c)), c, m) for b, c, m in truth]
    assert coco_average_precision(truth, exact, 3) == {"map": 1.0, "map50": 1.0, "mask_map": 1.0, "mask_map50": 1.0}
    shifted = [Detections(b, np.ones(len(c)), c, np.roll(m, 6, axis=2)) for b, c, m in truth]
    measures = coco_average_precision(truth, shifted, 3)
    assert measures["map"] == 1.0 and measures["mask_map"] < 0.9
    boxes_only = coco_average_precision([t[:2] for t in truth],
                                        [Detections(b, np.ones(len(c)), c) for b, c, _ in truth], 3)
    assert set(boxes_only) == {"map", "map50"}


def test_a_mask_head_asks_for_instance_masks_and_a_box_detector_leaves_them_unread():
    from trainers.detection.data import load_shapes_boxes, load_shapes_instances
    from trainers.detection.single_shot import prepare

    config = {"data": {"dataset": "shapes_boxes", "count": 20}}
    with pytest.raises(DataError, match="'mask_rcnn_shapes' predicts instance masks, and dataset 'shapes_boxes' has "
                                        "boxes only; use shapes_instances, or a coco file"):
        prepare(build_model(SPEC, TINY), config, 3, load_shapes_boxes(config["data"]))
    instances = load_shapes_instances({"count": 20})
    boxes_only = prepare(build_model(ROOT / "specs" / "faster_rcnn_shapes.yaml", BOX_TINY),
                         config, 3, instances)
    assert instances.train.has_instance_masks and not boxes_only.splits.train.has_instance_masks


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory):
    """A tiny Mask R-CNN trained on generated instances brought as people bring theirs: PNG files
    and a COCO file whose masks are RLE, streamed from disk."""
    from trainers import run_training

    from .coco_instances import write_coco_instances

    path, _ = write_coco_instances(tmp_path_factory.mktemp("coco"), 120)
    out = tmp_path_factory.mktemp("runs")
    return run_training(SPEC, overrides=TINY, out=out, verbose=0,
                        train_overrides={"epochs": 2, "batch_size": 16, "data": {"dataset": "coco", "path": str(path)}})


def test_a_tiny_run_learns_masks_and_reports_mask_map(trained_run):
    folder, metrics = trained_run
    rows = [row.split(",") for row in (folder / "history.csv").read_text().splitlines()]
    mask_loss = [float(row[rows[0].index("mask_loss")]) for row in rows[1:]]
    assert len(mask_loss) == 2 and mask_loss[1] < mask_loss[0] < 0.75  # from about log 2 at the start, down
    assert 0 <= metrics["mask_map"] <= metrics["mask_map50"] <= 1 and "map50" in metrics
    assert (folder / "detections.png").is_file()


def test_detect_writes_each_mask_as_coco_rle_at_the_images_own_size(trained_run, tmp_path):
    from PIL import Image

    from trainers.data.instance_masks import to_mask
    from trainers.detection.data import generate_shapes_instances

    folder, _ = trained_run
    images, _, _, _ = generate_shapes_instances(1, 64, seed=9)
    path = tmp_path / "large.png"
    Image.fromarray((images[0] * 255).astype("uint8")).resize((96, 80)).save(path)
    assert main(["detect", str(folder), str(path), "-o", str(tmp_path / "found"), "--min-score", "0"]) == 0
    [entry] = json.loads((tmp_path / "found" / "detections.json").read_text())
    assert entry["detections"]
    for detection in entry["detections"]:
        mask = to_mask(detection["mask"], 80, 96)
        assert detection["mask"]["size"] == [80, 96] and mask.shape == (80, 96)
        if mask.any():  # inside its box, scaled to the file's pixels
            left, top, right, bottom = detection["box"]
            rows, cols = np.nonzero(mask)
            assert left - 2 <= cols.min() and cols.max() <= right + 2
            assert top - 2 <= rows.min() and rows.max() <= bottom + 2
    assert list((tmp_path / "found").glob("*.png"))
