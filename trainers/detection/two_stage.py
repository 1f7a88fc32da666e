"""Two-stage detection (Faster R-CNN, Ren et al. 2015) and instance segmentation (Mask R-CNN, He et
al. 2017) with the detection trainer: a network whose spec has a `region_proposals` layer (the
Region Proposal Network's objectness and offsets in, a fixed number of proposals out) and a box
head reading the proposals through `roi_align`; Mask R-CNN adds a mask head: its own `roi_align`,
`regions_to_batch`, convolutions, and `batch_to_regions`.

The network's outputs are `[proposals (regions, 4), class logits (regions, classes + 1) with
background first, box offsets (regions, 4)]`, and for Mask R-CNN `masks (regions, m, m, classes)`
(a mask's logits per class). Training splits it where the proposals enter the heads: the first
stage (image to RPN outputs, proposals and the maps the heads read) runs on the batch; the RPN
learns from a balanced sample of anchors; the box head then runs on a balanced sample of regions
(the proposals plus the true boxes), as the paper's approximate joint training does, and the mask
head on the positive regions of that sample only, learning its true class's mask; all in
`compute_loss` through `keras.ops`."""

from __future__ import annotations

import keras
from keras import ops

from builder.errors import SpecError
from layers import BatchToRegions, RegionProposals, RegionsToBatch, RoIAlign

from ..run.distribution import per_replica
from .region_targets import POSITIVE_LABEL, mask_targets, rpn_targets, sample_balanced, sample_regions

LAYOUT = ("a two-stage detector's outputs are [proposals (the region_proposals layer's), class logits ({regions}, "
          "classes + 1) with background first, box offsets ({regions}, 4)], and for masks, mask logits ({regions}, "
          "size, size, classes) from batch_to_regions (see specs/faster_rcnn_shapes.yaml, specs/mask_rcnn_shapes.yaml)")


def proposal_layer(network):
    """The network's one `region_proposals` layer, or None for a single-shot network."""
    found = [layer for layer in network.layers if isinstance(layer, RegionProposals)]
    if len(found) > 1:
        raise SpecError(f"'{network.name}' has {len(found)} region_proposals layers; a two-stage detector has one")
    return found[0] if found else None


def has_mask_head(network) -> bool:
    """Whether the network is Mask R-CNN: two-stage, with the fourth output (mask logits)."""
    return proposal_layer(network) is not None and len(network.outputs) == 4


def check_two_stage(network) -> int:
    """The class count (background excluded) of a two-stage network, after checking its outputs."""
    proposals = proposal_layer(network)
    shapes = [tuple(output.shape[1:]) for output in network.outputs]
    regions = proposals.post_nms
    if (len(shapes) not in (3, 4) or network.outputs[0] is not proposals.output or shapes[1][:1] != (regions,)
            or len(shapes[1]) != 2 or shapes[1][1] < 2 or shapes[2] != (regions, 4)
            or (len(shapes) == 4 and (len(shapes[3]) != 4 or shapes[3][0] != regions
                                      or shapes[3][3] != shapes[1][1] - 1))):
        raise SpecError(f"{LAYOUT.format(regions=regions)}; '{network.name}' outputs {', '.join(map(str, shapes))}")
    if not [layer for layer in network.layers if isinstance(layer, RoIAlign)]:
        raise SpecError(f"'{network.name}' has region proposals but no roi_align reading them")
    return int(shapes[1][1]) - 1


def _producer(network, tensor):
    return next((layer for layer in network.layers if layer.output is tensor), None)


class MaskBranch:
    """Mask R-CNN's mask head, cut into what training calls itself: the `roi_align` layer it reads
    regions with (and which of the first stage's maps it reads), and the tower from
    `regions_to_batch` to `batch_to_regions`: (regions of all images, grid) -> (regions, m, m, classes)."""

    def __init__(self, network, maps: list):
        unfold = _producer(network, network.outputs[3])
        folds = [layer for layer in network.layers if isinstance(layer, RegionsToBatch)]
        roi = _producer(network, folds[0].input) if len(folds) == 1 else None
        if not isinstance(unfold, BatchToRegions) or not isinstance(roi, RoIAlign):
            raise SpecError(f"'{network.name}': a mask head reads its regions with roi_align, then regions_to_batch "
                            "(one in the network), convolutions, and batch_to_regions as the fourth output "
                            "(see specs/mask_rcnn_shapes.yaml)")
        self.roi = roi
        self.map_indices = [_index(maps, tensor) for tensor in roi.input[1:]]
        self.tower = keras.Model(folds[0].output, unfold.input[0], name=f"{network.name}_mask_tower")
        self.size = int(network.outputs[3].shape[2])

    def logits(self, regions, maps, training=None):
        """(batch, k, m, m, classes) mask logits of `regions` (batch, k, 4)."""
        grids = self.roi([regions, *(maps[i] for i in self.map_indices)])
        folded = self.tower(ops.reshape(grids, (-1, *grids.shape[2:])), training=training)
        return ops.reshape(folded, (-1, ops.shape(regions)[1], *folded.shape[1:]))


def _index(tensors: list, tensor) -> int:
    return next(i for i, known in enumerate(tensors) if known is tensor)


def _distinct(tensors) -> list:
    """The tensors in order, each once (by identity: symbolic tensors do not compare by value)."""
    kept = []
    for tensor in tensors:
        if all(tensor is not known for known in kept):
            kept.append(tensor)
    return kept


def mask_of_class(masks, classes):
    """Each region's mask for one class: masks (batch, regions, m, m, classes), classes (batch,
    regions) -> (batch, regions, m, m)."""
    return ops.take_along_axis(masks, classes[:, :, None, None, None], axis=-1)[..., 0]


def split(network) -> tuple[keras.Model, keras.Model, MaskBranch | None]:
    """(first stage: image -> [objectness, offsets, proposals, *maps], box head: [regions, *maps it
    reads] -> [class logits, box offsets], the mask branch or None): the same layers and weights
    as the network, cut where the proposals enter the `roi_align` layers."""
    proposals_layer = proposal_layer(network)
    readers = [layer for layer in network.layers if isinstance(layer, RoIAlign)]
    for layer in readers:
        if layer.input[0] is not proposals_layer.output:
            raise SpecError(f"roi_align '{layer.name}' reads boxes other than the region proposals; in a two-stage "
                            "detector each roi_align reads `from: [proposals, map, ...]`")
    maps = _distinct(tensor for layer in readers for tensor in layer.input[1:])
    objectness, offsets = proposals_layer.input
    first = keras.Model(network.input, [objectness, offsets, proposals_layer.output, *maps],
                        name=f"{network.name}_first_stage")
    masks = MaskBranch(network, maps) if has_mask_head(network) else None
    box_maps = _distinct(tensor for layer in readers if masks is None or layer is not masks.roi
                         for tensor in layer.input[1:])
    head = keras.Model([proposals_layer.output, *box_maps], network.outputs[1:3], name=f"{network.name}_head")
    head.map_indices = [_index(maps, tensor) for tensor in box_maps]
    return first, head, masks


@keras.saving.register_keras_serializable(package="blueprint")
class TwoStageTraining(keras.Model):
    """Trains a two-stage detector: loss = RPN objectness + RPN box + region class + region box
    (+ mask), each averaged over its sample (the box terms over the sample, counting positives
    only, as torchvision does; the mask term over the positive regions' pixels).

    Args:
        network: the spec-built two-stage detector (see the module's docstring).
        detection: the `train.detection` settings.
        seed: seeds the anchor and region samples.
    """

    def __init__(self, network, detection: dict, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.network, self.detection, self.seed = network, detection, seed
        self.classes = check_two_stage(network)
        self.first_stage, self.head, self.masks = split(network)
        proposals = proposal_layer(network)
        self.anchors = ops.convert_to_tensor(proposals.anchors())
        self.regions = proposals.post_nms  # the head learns from as many regions as it reads at inference
        # the mask head reads at most as many regions as the sample can hold positives
        self.mask_regions = max(1, int(self.regions * detection["region_positive_fraction"]))
        self.sampling = keras.random.SeedGenerator(seed)
        terms = ("objectness_loss", "proposal_box_loss", "class_loss", "box_loss",
                 *(("mask_loss",) if self.masks else ()), "positive_regions")
        self.trackers = {name: keras.metrics.Mean(name=name) for name in terms}

    def call(self, inputs, training=None):
        return self.first_stage(inputs, training=training)

    def compute_loss(self, x=None, y=None, y_pred=None, sample_weight=None, training=True):
        settings = self.detection
        objectness, proposal_offsets, proposals, *maps = y_pred
        boxes, classes = ops.cast(y["boxes"], "float32"), y["classes"]
        labels, targets = rpn_targets(self.anchors, boxes, classes, settings["rpn_positive_iou"],
                                      settings["rpn_negative_iou"])
        anchors = ops.cast(sample_balanced(labels, settings["rpn_samples"], 0.5, self.sampling), "float32")
        positive_anchors = anchors * ops.cast(labels == POSITIVE_LABEL, "float32")
        sampled = ops.maximum(ops.sum(anchors), 1.0)
        objectness = ops.reshape(ops.cast(objectness, "float32"), ops.shape(labels))
        objectness_loss = ops.sum(_sigmoid_cross_entropy(positive_anchors, objectness) * anchors) / sampled
        proposal_box_loss = ops.sum(_box_loss(targets, proposal_offsets) * positive_anchors) / sampled

        regions, region_classes, offsets, matched, chosen = sample_regions(
            proposals, boxes, classes, self.regions, settings["region_positive_fraction"],
            settings["positive_iou"], self.sampling)
        logits, predicted_offsets = self.head([regions, *(maps[i] for i in self.head.map_indices)],
                                              training=training)
        logits = ops.cast(logits, "float32")
        counted = ops.maximum(ops.sum(chosen), 1.0)
        per_region = keras.losses.sparse_categorical_crossentropy(region_classes, logits, from_logits=True)
        class_loss = ops.sum(per_region * chosen) / counted
        positive_regions = chosen * ops.cast(region_classes > 0, "float32")
        box_loss = ops.sum(_box_loss(offsets, predicted_offsets) * positive_regions) / counted

        terms = {"objectness_loss": objectness_loss, "proposal_box_loss": proposal_box_loss,
                 "class_loss": class_loss, "box_loss": box_loss}
        total = objectness_loss + proposal_box_loss + class_loss + settings["box_weight"] * box_loss
        if self.masks:
            terms["mask_loss"] = self._mask_loss(regions, region_classes, matched, positive_regions, maps, y["masks"],
                                                 training)
            total = total + terms["mask_loss"]
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        self.trackers["positive_regions"].update_state(ops.sum(positive_regions) / ops.cast(ops.shape(chosen)[0],
                                                                                             "float32"))
        return per_replica(total)

    def _mask_loss(self, regions, region_classes, matched, positive, maps, masks, training):
        """Per-pixel sigmoid cross-entropy of each positive region's mask for its true class only
        (Mask R-CNN's L_mask), against its object's mask read by RoI Align over the region."""
        first = ops.argsort(-positive, axis=-1)[:, :self.mask_regions]  # the positive regions first
        boxes = ops.take_along_axis(regions, first[..., None], axis=1)
        weights = ops.take_along_axis(positive, first, axis=1)
        true_class = ops.maximum(ops.take_along_axis(region_classes, first, axis=1) - 1, 0)
        logits = mask_of_class(ops.cast(self.masks.logits(boxes, maps, training=training), "float32"), true_class)
        targets = mask_targets(boxes, ops.take_along_axis(matched, first, axis=1), masks, self.masks.size)
        per_region = ops.mean(_sigmoid_cross_entropy(targets, logits), axis=(-2, -1))
        return ops.sum(per_region * weights) / ops.maximum(ops.sum(weights), 1.0)

    def get_config(self):
        return {"name": self.name, "network": keras.saving.serialize_keras_object(self.network),
                "detection": self.detection, "seed": self.seed}

    @classmethod
    def from_config(cls, config):
        config = dict(config)
        network = keras.saving.deserialize_keras_object(config.pop("network"))
        return cls(network, **config)


def _sigmoid_cross_entropy(targets, logits):
    return keras.losses.binary_crossentropy(targets[..., None], logits[..., None], from_logits=True)


def _box_loss(targets, offsets):
    """Smooth L1 (Huber, delta 1) summed over the four offsets."""
    return keras.losses.huber(targets, ops.cast(offsets, "float32"), delta=1.0) * 4.0
