"""Detection data in the formats people bring (#16): a COCO annotation file with its image
folder and a Pascal VOC folder, written here as small local files. Good boxes arrive as fractions
of their image; each bad annotation is one warning line naming the file and the box (or, under
`strict`, an error naming them); the generated `shapes_boxes` splits are seeded."""

import json

import numpy as np
import pytest
from PIL import Image

from trainers.data.datasets import load_dataset
from trainers.errors import DataError


def write_image(path, width, height):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.full((height, width, 3), 128, "uint8")).save(path)


@pytest.fixture
def coco_file(tmp_path):
    for name in ("a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg"):
        write_image(tmp_path / "images" / name, 40, 20)
    (tmp_path / "images" / "broken.jpg").write_bytes(b"")
    document = {
        "images": [{"id": i + 1, "file_name": name, "width": 40, "height": 20}
                   for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg", "d.jpg", "e.jpg", "gone.jpg", "broken.jpg"])],
        "categories": [{"id": 7, "name": "dog"}, {"id": 3, "name": "cat"}],
        "annotations": [
            {"id": 1, "image_id": 1, "category_id": 3, "bbox": [4, 2, 10, 8]},
            {"id": 2, "image_id": 1, "category_id": 7, "bbox": [20, 10, 20, 10]},
            {"id": 3, "image_id": 2, "category_id": 7, "bbox": [30, 5, 25, 5]},     # past the right edge
            {"id": 4, "image_id": 2, "category_id": 3, "bbox": [5, 5, -3, 4]},     # negative width
            {"id": 5, "image_id": 3, "category_id": 99, "bbox": [1, 1, 5, 5]},     # unknown category
            {"id": 6, "image_id": 4, "category_id": 3, "bbox": [0, 0, 40, 20], "iscrowd": 1},
            {"id": 7, "image_id": 6, "category_id": 3, "bbox": [1, 1, 5, 5]},      # its image has no file
            {"id": 8, "image_id": 42, "category_id": 3, "bbox": [1, 1, 5, 5]},     # no such image
            {"id": 9, "image_id": 5, "category_id": 7, "bbox": [0, 0, 10, 10]},
        ],
    }
    path = tmp_path / "annotations.json"
    path.write_text(json.dumps(document))
    return path


def assert_each_warned_once(warnings: list, expected: list) -> None:
    """One warning line per expected (file, words), each naming its file and saying its words."""
    assert len(warnings) == len(expected), warnings
    for file, words in expected:
        assert any(file in line and words in line for line in warnings), (file, words, warnings)


def all_objects(splits):
    found = {}
    for split in splits.named().values():
        for file, boxes, classes in zip(split.files, split.boxes, split.box_classes):
            found[file.rsplit("/", 1)[-1]] = [(int(c), [round(float(v), 3) for v in b])
                                              for b, c in zip(boxes, classes) if c >= 0]
    return found


def test_coco_boxes_become_fractions_and_each_bad_annotation_is_named(coco_file, capsys):
    splits = load_dataset({"dataset": "coco", "path": str(coco_file), "images": str(coco_file.parent / "images"),
                           "validation_split": 0.2, "test_split": 0.2})
    warnings = capsys.readouterr().err.splitlines()
    assert splits.class_names == ["cat", "dog"]  # categories in order of id
    objects = all_objects(splits)
    assert objects["a.jpg"] == [(0, [0.1, 0.1, 0.35, 0.5]), (1, [0.5, 0.5, 1.0, 1.0])]
    assert objects["b.jpg"] == [] and objects["c.jpg"] == [] and objects["d.jpg"] == []  # crowd left out
    assert objects["e.jpg"] == [(1, [0.0, 0.0, 0.25, 0.5])]
    assert "gone.jpg" not in objects and "broken.jpg" not in objects
    expected = [("b.jpg", "annotation 3 (box [30, 5, 25, 5], xywh): the box lies outside the 40x20 image"),
                ("b.jpg", "annotation 4 (box [5, 5, -3, 4], xywh): the box has zero or negative size"),
                ("c.jpg", "annotation 5 (box [1, 1, 5, 5], xywh): unknown category id 99"),
                ("annotations.json", "image 6 (gone.jpg): no such file"),
                ("annotations.json", "annotation 8 (box [1, 1, 5, 5], xywh): image 42 is not in `images`"),
                ("broken.jpg", "empty file")]
    assert_each_warned_once(warnings, expected)
    assert len(splits.skipped) == len(expected)


def test_strict_coco_refuses_the_first_bad_image_or_annotation_by_file_and_box(coco_file):
    config = {"dataset": "coco", "path": str(coco_file), "images": str(coco_file.parent / "images"), "strict": True}
    with pytest.raises(DataError, match=r"annotations\.json: image 6 \(gone\.jpg\): no such file in .*images; fix"):
        load_dataset(config)
    document = json.loads(coco_file.read_text())
    document["images"] = [image for image in document["images"] if image["file_name"] not in ("gone.jpg", "broken.jpg")]
    coco_file.write_text(json.dumps(document))
    with pytest.raises(DataError, match=r"b\.jpg: annotation 3 \(box \[30, 5, 25, 5\], xywh\): the box lies outside"):
        load_dataset(config)


def test_a_coco_file_that_is_not_one_says_so(tmp_path):
    path = tmp_path / "labels.json"
    path.write_text(json.dumps({"images": []}))
    with pytest.raises(DataError, match="labels.json: a COCO annotation file holds `images`, `annotations`"):
        load_dataset({"dataset": "coco", "path": str(path)})


def voc_annotation(filename, width, height, objects):
    rows = "".join(f"<object><name>{name}</name><difficult>0</difficult><bndbox><xmin>{x1}</xmin><ymin>{y1}</ymin>"
                   f"<xmax>{x2}</xmax><ymax>{y2}</ymax></bndbox></object>" for name, (x1, y1, x2, y2) in objects)
    return (f"<annotation><filename>{filename}</filename><size><width>{width}</width><height>{height}</height>"
            f"<depth>3</depth></size>{rows}</annotation>")


@pytest.fixture
def voc_folder(tmp_path):
    root = tmp_path / "VOC"
    (root / "Annotations").mkdir(parents=True)
    for name in ("one", "two", "three", "four", "five"):
        write_image(root / "JPEGImages" / f"{name}.jpg", 50, 40)
    files = {
        "one": [("dog", (1, 1, 25, 20)), ("person", (26, 21, 50, 40))],
        "two": [("dog", (10, 10, 5, 30))],                 # xmax before xmin
        "three": [("horse", (1, 1, 10, 10))],
        "four": [("person", (1, 1, 80, 10))],              # past the right edge
        "five": [],
        "six": [("dog", (1, 1, 10, 10))],                  # JPEGImages/six.jpg does not exist
    }
    for name, objects in files.items():
        (root / "Annotations" / f"{name}.xml").write_text(voc_annotation(f"{name}.jpg", 50, 40, objects))
    (root / "Annotations" / "seven.xml").write_text("<annotation><filename>")
    return root


def test_voc_reads_its_folders_and_names_each_bad_object(voc_folder, capsys):
    splits = load_dataset({"dataset": "voc", "path": str(voc_folder), "class_names": ["dog", "person"],
                           "validation_split": 0.2, "test_split": 0.2})
    warnings = capsys.readouterr().err.splitlines()
    assert splits.class_names == ["dog", "person"]
    objects = all_objects(splits)
    # VOC's 1-based pixels: xmin 1 is the image's left edge
    assert objects["one.jpg"] == [(0, [0.0, 0.0, 0.5, 0.5]), (1, [0.5, 0.5, 1.0, 1.0])]
    assert objects["two.jpg"] == objects["three.jpg"] == objects["four.jpg"] == objects["five.jpg"] == []
    expected = [("two.xml", "object 'dog' (box [10, 10, 5, 30], xmin ymin xmax ymax): the box has zero or negative"),
                ("three.xml", "object 'horse' (box [1, 1, 10, 10], xmin ymin xmax ymax): unknown class (classes: dog, "
                              "person)"),
                ("four.xml", "the box lies outside the 50x40 image"),
                ("six.xml", "its image six.jpg: no such file"),
                ("seven.xml", "not a VOC annotation")]
    assert_each_warned_once(warnings, expected)


def test_voc_without_declared_classes_takes_every_name_it_finds(voc_folder, capsys):
    splits = load_dataset({"dataset": "voc", "path": str(voc_folder)})
    assert splits.class_names == ["dog", "horse", "person"]
    assert all_objects(splits)["three.jpg"] == [(1, [0.0, 0.0, 0.2, 0.25])]


def test_a_folder_without_voc_layout_says_what_it_needs(tmp_path):
    with pytest.raises(DataError, match="needs the Pascal VOC folders Annotations/"):
        load_dataset({"dataset": "voc", "path": str(tmp_path)})


def test_shapes_boxes_are_seeded_and_hold_one_to_five_objects():
    first = load_dataset({"dataset": "shapes_boxes", "count": 40, "seed": 3})
    again = load_dataset({"dataset": "shapes_boxes", "count": 40, "seed": 3})
    np.testing.assert_array_equal(first.train.images, again.train.images)
    np.testing.assert_array_equal(first.test.boxes, again.test.boxes)
    assert first.class_names == ["circle", "square", "triangle"]
    counts = (np.concatenate([s.box_classes for s in first.named().values()]) >= 0).sum(axis=1)
    assert counts.min() >= 1 and counts.max() <= 5
    boxes = np.concatenate([s.boxes for s in first.named().values()])
    assert boxes.min() >= 0 and boxes.max() <= 1


# -- COCO instance masks -----------------------------------------------------------------------
def rectangle(top, left, bottom, right, height=20, width=40):
    mask = np.zeros((height, width), "uint8")
    mask[top:bottom, left:right] = 1
    return mask


@pytest.fixture
def coco_instances_file(tmp_path):
    """Three 40x20 images; a polygon, run lengths and compressed RLE text that are masks, and one
    of each way a segmentation goes wrong."""
    from trainers.data.instance_masks import to_rle

    from .coco_instances import uncompressed_rle

    for name in ("a.jpg", "b.jpg", "c.jpg"):
        write_image(tmp_path / name, 40, 20)

    def annotation(number, image, box, **segmentation):
        return {"id": number, "image_id": image, "category_id": 1, "bbox": box, **segmentation}

    document = {
        "images": [{"id": i + 1, "file_name": name, "width": 40, "height": 20}
                   for i, name in enumerate(["a.jpg", "b.jpg", "c.jpg"])],
        "categories": [{"id": 1, "name": "thing"}],
        "annotations": [
            annotation(1, 1, [4, 2, 10, 8], segmentation=[[4, 2, 14, 2, 14, 10, 4, 10]]),
            annotation(2, 1, [20, 10, 20, 10], segmentation=uncompressed_rle(rectangle(10, 20, 20, 40))),
            annotation(3, 2, [0, 5, 10, 10], segmentation=to_rle(rectangle(5, 0, 15, 10))),
            annotation(4, 2, [1, 1, 4, 4], segmentation=[[1, 1, 5, 5]]),  # pycocotools would read a box
            annotation(5, 2, [1, 1, 4, 4], segmentation={"size": [10, 10], "counts": [0, 100]}),
            annotation(6, 3, [1, 1, 4, 4], segmentation={"size": [20, 40], "counts": "xyz!!"}),
            annotation(7, 3, [1, 1, 4, 4], segmentation=[[1, 1, 5, 1, 9, 1]]),  # a line: no area
            annotation(8, 3, [1, 1, 4, 4]),
            annotation(9, 3, [1, 1, 4, 4], segmentation={"size": [20, 40], "counts": [5, 10]}),
            annotation(10, 3, [1, 1, 4, 4], segmentation="the mask"),
            annotation(12, 3, [1, 1, 4, 4], segmentation={"size": 20, "counts": [800]}),
            annotation(13, 3, [1, 1, 4, 4], segmentation={"size": [20, 40], "counts": ["800"]}),
            annotation(11, 3, [0, 0, 40, 20], segmentation=[[0, 0, 40, 0, 40, 20]], iscrowd=1),
        ],
    }
    path = tmp_path / "instances.json"
    path.write_text(json.dumps(document))
    return path


def streamed_targets(split, size):
    """Every image's training targets at the model's `size`, through the detection pipeline."""
    from trainers.data.pipeline import Preprocessing, StreamPlan, eval_stream
    from trainers.detection.single_shot import _finisher

    prep = Preprocessing.of((*size, 3), {})
    batches = list(eval_stream(split, prep, StreamPlan(_finisher(prep.size), 4)).as_numpy_iterator())
    return {key: np.concatenate([targets[key] for _, targets in batches]) for key in batches[0][1]}


def test_coco_polygons_and_rle_become_masks_at_the_models_size_and_each_bad_segmentation_is_named(
        coco_instances_file, capsys):
    splits = load_dataset({"dataset": "coco", "path": str(coco_instances_file), "validation_split": 0,
                           "test_split": 0})
    warnings = capsys.readouterr().err.splitlines()
    described = "annotation {} (box [1, 1, 4, 4], xywh): "
    expected = [("b.jpg", described.format(4) + "a polygon needs at least 3 (x, y) points, one has 4 numbers"),
                ("b.jpg", described.format(5) + "the RLE's size [10, 10] is not the image's [20, 40] (height, width)"),
                ("c.jpg", described.format(6) + "the RLE's compressed counts hold 'x', not a COCO RLE character"),
                ("c.jpg", described.format(7) + "the segmentation covers no pixel of the image"),
                ("c.jpg", described.format(8) + "no segmentation, and in a file with masks every object needs"),
                ("c.jpg", described.format(9) + "the RLE's counts add up to 15 pixels, not the image's 800"),
                ("c.jpg", described.format(10) + "a segmentation is a list of polygons or an RLE"),
                ("c.jpg", described.format(12) + "an RLE's size is [height, width], not 20"),
                ("c.jpg", described.format(13) + "an RLE's run lengths are whole numbers")]
    assert_each_warned_once(warnings, expected)
    assert len(splits.skipped) == len(expected)
    split = splits.train
    assert split.has_instance_masks
    order = [file.rsplit("/", 1)[-1] for file in split.files]
    truth = {"a.jpg": [rectangle(2, 4, 10, 14), rectangle(10, 20, 20, 40)], "b.jpg": [rectangle(5, 0, 15, 10)],
             "c.jpg": []}
    for size, step in (((20, 40), 1), ((10, 20), 2)):  # nearest neighbour: every other pixel's centre
        targets = streamed_targets(split, size)
        assert targets["masks"].shape == (3, 2, *size)
        for row, name in enumerate(order):
            objects = targets["classes"][row] >= 0
            assert objects.sum() == len(truth[name])
            for mask, box, expected_mask in zip(targets["masks"][row], targets["boxes"][row], truth[name]):
                np.testing.assert_array_equal(mask, expected_mask[step // 2::step, step // 2::step])
                rows, cols = np.nonzero(mask)
                np.testing.assert_allclose(box, [cols.min(), rows.min(), cols.max() + 1, rows.max() + 1], atol=0.5)
            assert not targets["masks"][row][~objects].any()


def test_strict_coco_refuses_the_first_bad_segmentation_by_file_and_annotation(coco_instances_file):
    with pytest.raises(DataError, match=r"b\.jpg: annotation 4 \(box \[1, 1, 4, 4\], xywh\): a polygon needs"):
        load_dataset({"dataset": "coco", "path": str(coco_instances_file), "strict": True})


def test_a_coco_file_of_boxes_alone_is_detection_data(coco_file):
    splits = load_dataset({"dataset": "coco", "path": str(coco_file), "images": str(coco_file.parent / "images")})
    assert splits.train.has_boxes and not splits.train.has_instance_masks


def test_generated_instances_written_as_a_coco_file_stream_as_the_generated_data_does(tmp_path):
    """The same images on disk (PNG, masks as RLE) and in memory give the same boxes and masks,
    at the images' size and at half of it."""
    from trainers.detection.data import split_detections

    from .coco_instances import write_coco_instances

    path, (images, boxes, classes, masks) = write_coco_instances(tmp_path, 12)
    config = {"validation_split": 0, "test_split": 0}
    on_disk = load_dataset({"dataset": "coco", "path": str(path), **config}).train
    order = [int(file.rsplit("/", 1)[-1].split(".")[0]) for file in on_disk.files]
    in_memory = split_detections(images[order], boxes[order] / 64, classes[order], config, ["c", "s", "t"],
                                 instance_masks=masks[order]).train
    assert len(on_disk) == len(in_memory) == 12
    for size in ((64, 64), (32, 32)):
        from_files, generated = streamed_targets(on_disk, size), streamed_targets(in_memory, size)
        for key in ("boxes", "classes", "masks"):
            np.testing.assert_allclose(from_files[key], generated[key], atol=1e-4, err_msg=key)
        assert generated["masks"].sum() > 0
