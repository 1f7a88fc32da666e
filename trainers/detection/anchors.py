"""The anchor set of a single-shot detector, as `train.detection` declares it: levels of
strides, sizes and aspect ratios, laid out cell by cell in the order the spec's heads
concatenate them, and the check that a built network's heads add up to it."""

from __future__ import annotations

from builder.errors import SpecError
from layers.boxes import AnchorLevel, anchor_boxes, anchor_count_in_words

from ..data.pipeline import model_image_shape


def anchor_levels(settings: dict) -> list:
    return [AnchorLevel(level["stride"], tuple(level["sizes"]),
                        tuple(level.get("aspect_ratios") or settings["aspect_ratios"]))
            for level in settings["anchors"]]


def describe_anchors(settings: dict, image_size: tuple) -> str:
    """'480 (8x8 cells x 6 at stride 8 + 4x4 cells x 6 at stride 16)': `summary`'s and errors' words."""
    return anchor_count_in_words(anchor_levels(settings), image_size)


def check_network(network, settings: dict) -> int:
    """The class count of a detection network, after checking its outputs against the anchors."""
    shapes = [tuple(output.shape[1:]) for output in network.outputs]
    if len(shapes) != 2 or len(shapes[0]) != 2 or shapes[1][-1:] != (4,) or shapes[0][0] != shapes[1][0]:
        raise SpecError(f"the detection trainer needs a main model with two outputs, per anchor class logits "
                        f"(anchors, classes) and box offsets (anchors, 4) (see specs/ssd_shapes.yaml); "
                        f"'{network.name}' outputs {', '.join(map(str, shapes))}")
    size = model_image_shape(network)[:2]
    declared = len(anchors_for(settings, size))
    if shapes[0][0] != declared:
        raise SpecError(f"the model's heads give {shapes[0][0]:,} anchors per image but train.detection.anchors "
                        f"declares {describe_anchors(settings, size)} at {size[0]}x{size[1]}: each level's head "
                        "outputs (sizes x aspect ratios) values per cell, levels in the declared order")
    return int(shapes[0][1])


def anchors_for(settings: dict, image_size: tuple):
    """(anchors, 4) xyxy pixel boxes of the declared levels for an image of `image_size`."""
    return anchor_boxes(anchor_levels(settings), image_size)
