"""Object annotations in the formats people bring: a COCO JSON file with its image folder, and a
Pascal VOC folder (`Annotations/*.xml`, `JPEGImages/`). Each becomes image files plus boxes (and,
from a COCO file with segmentations, each object's mask as compressed RLE text), split like every
dataset and streamed from disk by the pipeline.

A bad annotation costs one line, never the run: a box outside its image, a box of zero or negative
size, an unknown class, a segmentation that cannot be read or covers nothing, or an image without
a file is named (file and annotation) on stderr and left out; under `data: {strict: true}` the
first one is an error instead."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data.datasets import Splits, existing_path
from ..data.image_files import check_files
from ..data.instance_masks import checked_rle_text
from ..errors import DataError
from .data import padded, split_detections

EDGE_TOLERANCE = 1.0  # pixels a box may pass the image's edge by (rounding in annotation tools)


@dataclass
class Problems:
    """The annotations left out, each with its file, box and reason."""

    strict: bool
    found: list = field(default_factory=list)  # (file, reason)

    def add(self, file, reason: str) -> None:
        if self.strict:
            raise DataError(f"{file}: {reason}; fix the annotation, or set `data: {{strict: false}}` to skip bad "
                            "annotations with a warning")
        print(f"warning: skipping {reason} in {file}", file=sys.stderr)
        self.found.append((str(file), reason))


def box_problem(box, width: float, height: float) -> str | None:
    """Why an xyxy pixel box cannot be trained on, or None."""
    x1, y1, x2, y2 = box
    if x2 <= x1 or y2 <= y1:
        return "has zero or negative size"
    if x1 < -EDGE_TOLERANCE or y1 < -EDGE_TOLERANCE or x2 > width + EDGE_TOLERANCE or y2 > height + EDGE_TOLERANCE:
        return f"lies outside the {width:g}x{height:g} image"
    return None


def _relative(box, width: float, height: float) -> list:
    x1, y1, x2, y2 = box
    return [max(0.0, x1) / width, max(0.0, y1) / height, min(width, x2) / width, min(height, y2) / height]


def _finish(config: dict, files: list, objects: list, class_names: list, problems: Problems, where,
            masks: dict | None = None) -> Splits:
    """Check the image files themselves, drop the unreadable ones (named), and split. `masks`:
    {"rles": per image, its objects' RLE texts (in the order of `objects`), "sizes": per image,
    the (height, width) they cover}."""
    check = check_files(files)
    good = set(check.report(bool(config.get("strict", False)), str(where)))
    kept = [i for i, file in enumerate(files) if str(file) in good]
    boxes, classes = padded([objects[i] for i in kept])
    instances = None
    if masks is not None:
        rles = np.full(classes.shape, "", dtype=object)
        for row, i in enumerate(kept):
            rles[row, :len(masks["rles"][i])] = masks["rles"][i]
        instances = (rles, np.asarray([masks["sizes"][i] for i in kept], "int32").reshape(-1, 2))
    return split_detections([str(files[i]) for i in kept], boxes, classes, config, class_names,
                            skipped=problems.found + check.bad, instance_rles=instances)


# -- COCO --------------------------------------------------------------------------------------
def load_coco(config: dict) -> Splits:
    """A COCO detection annotation file (`data.path`); images are found under `data.images`
    (default: the annotation file's folder) by their `file_name`. Classes are the file's
    categories in order of id; crowd regions are left out (COCO's own evaluation ignores them).
    When its annotations carry `segmentation`s (polygons or RLE), the data has instance masks and
    every object needs a readable one; a file of boxes alone is detection data."""
    path = existing_path(config, "coco", want_dir=False)
    try:
        document = json.loads(path.read_text())
        images, annotations = document["images"], document["annotations"]
        categories = sorted(document["categories"], key=lambda category: category["id"])
        class_names = [str(category["name"]) for category in categories]
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a readable COCO annotation file ({exc})") from None
    except (KeyError, TypeError):
        raise DataError(f"{path}: a COCO annotation file holds `images`, `annotations` and `categories` (each "
                        "category with an id and a name)") from None
    folder = Path(config.get("images") or path.parent).expanduser()
    problems = Problems(bool(config.get("strict", False)))
    class_of = {category["id"]: index for index, category in enumerate(categories)}
    files, objects, index_of = [], [], {}
    listed = {image.get("id") for image in images}
    with_masks = any(annotation.get("segmentation") and not annotation.get("iscrowd")
                     for annotation in annotations)
    masks = {"rles": [], "sizes": []} if with_masks else None
    for image in images:
        try:
            file, size = folder / image["file_name"], (float(image["width"]), float(image["height"]))
        except (KeyError, TypeError, ValueError):
            problems.add(path, f"image {image.get('id', '?')}: an image entry needs file_name, width and height")
            continue
        if not file.is_file():
            problems.add(path, f"image {image['id']} ({image['file_name']}): no such file in {folder}")
            continue
        index_of[image["id"]] = (len(files), *size)
        files.append(file)
        objects.append([])
        if masks is not None:
            masks["rles"].append([])
            masks["sizes"].append((int(size[1]), int(size[0])))
    for annotation in annotations:
        if annotation.get("iscrowd"):
            continue
        try:
            x, y, w, h = (float(value) for value in annotation["bbox"])
            image_id, category_id = annotation["image_id"], annotation["category_id"]
        except (KeyError, TypeError, ValueError):
            problems.add(path, f"annotation {annotation.get('id', '?')}: an annotation needs image_id, category_id "
                               "and bbox [x, y, width, height]")
            continue
        described = f"annotation {annotation.get('id', '?')} (box [{x:g}, {y:g}, {w:g}, {h:g}], xywh)"
        if image_id not in index_of:
            if image_id not in listed:
                problems.add(path, f"{described}: image {image_id} is not in `images`")
            continue  # its image has no file: already named
        position, width, height = index_of[image_id]
        if category_id not in class_of:
            problems.add(files[position], f"{described}: unknown category id {category_id}")
            continue
        box = (x, y, x + w, y + h)
        reason = box_problem(box, width, height)
        if reason:
            problems.add(files[position], f"{described}: the box {reason}")
            continue
        if masks is not None:
            try:
                if not annotation.get("segmentation"):
                    raise ValueError("no segmentation, and in a file with masks every object needs its own")
                masks["rles"][position].append(checked_rle_text(annotation["segmentation"], int(height), int(width)))
            except ValueError as exc:
                problems.add(files[position], f"{described}: {exc}")
                continue
        objects[position].append((class_of[category_id], _relative(box, width, height)))
    if not files:
        raise DataError(f"{path}: none of its {len(images)} images is a file under {folder}; set `data.images` "
                        "to the image folder")
    return _finish(config, files, objects, class_names, problems, path, masks)


# -- Pascal VOC --------------------------------------------------------------------------------
def load_voc(config: dict) -> Splits:
    """A Pascal VOC folder (`data.path`): `Annotations/<name>.xml` for `JPEGImages/<filename>`.
    Classes are `data.class_names` (an object of another class is named and left out) or every
    name the annotations use, sorted. VOC's 1-based pixel coordinates become 0-based edges."""
    root = existing_path(config, "voc", want_dir=True)
    annotation_dir, image_dir = root / "Annotations", root / "JPEGImages"
    if not annotation_dir.is_dir() or not image_dir.is_dir():
        raise DataError(f"{root} needs the Pascal VOC folders Annotations/ (one .xml per image) and JPEGImages/")
    problems = Problems(bool(config.get("strict", False)))
    declared = config.get("class_names")
    records = []
    for xml_file in sorted(annotation_dir.glob("*.xml")):
        try:
            tree = ElementTree.parse(xml_file).getroot()
            file = image_dir / tree.findtext("filename", f"{xml_file.stem}.jpg")
            width, height = float(tree.findtext("size/width")), float(tree.findtext("size/height"))
            found = [(element.findtext("name", "").strip(),
                      [float(element.findtext(f"bndbox/{key}")) for key in ("xmin", "ymin", "xmax", "ymax")])
                     for element in tree.iter("object")]
        except (ElementTree.ParseError, TypeError, ValueError) as exc:
            problems.add(xml_file, f"the whole file: not a VOC annotation with size and boxes ({exc})")
            continue
        if not file.is_file():
            problems.add(xml_file, f"its image {file.name}: no such file in {image_dir}")
            continue
        records.append((xml_file, file, width, height, found))
    if not records:
        raise DataError(f"{annotation_dir} has no usable annotations (.xml files whose images are in {image_dir})")
    class_names = list(declared) if declared else sorted({name for *_, found in records for name, _ in found})
    class_of = {name: index for index, name in enumerate(class_names)}
    files, objects = [], []
    for xml_file, file, width, height, found in records:
        kept = []
        for name, (x1, y1, x2, y2) in found:
            box = (x1 - 1.0, y1 - 1.0, x2, y2)
            described = f"object '{name}' (box [{x1:g}, {y1:g}, {x2:g}, {y2:g}], xmin ymin xmax ymax)"
            if name not in class_of:
                problems.add(xml_file, f"{described}: unknown class (classes: {', '.join(class_names)})")
                continue
            reason = box_problem(box, width, height)
            if reason:
                problems.add(xml_file, f"{described}: the box {reason}")
                continue
            kept.append((class_of[name], _relative(box, width, height)))
        files.append(file)
        objects.append(kept)
    return _finish(config, files, objects, class_names, problems, root)
