"""Two-stage detection (Faster R-CNN, Ren et al. 2015) with the detection trainer: a network whose
spec has a `region_proposals` layer (the Region Proposal Network's objectness and offsets in, a
fixed number of proposals out) and a box head reading the proposals through `roi_align`.

The network's outputs are `[proposals (regions, 4), class logits (regions, classes + 1) with
background first, box offsets (regions, 4)]`. Training splits it where the proposals enter the
head: the first stage (image to RPN outputs, proposals and the maps the head reads) runs on the
batch; the RPN learns from a balanced sample of anchors; the head then runs on a balanced sample
of regions (the proposals plus the true boxes), as the paper's approximate joint training does,
all in `compute_loss` through `keras.ops`."""

from __future__ import annotations

import keras
from keras import ops

from builder.errors import SpecError
from layers import RegionProposals, RoIAlign

from ..run.distribution import per_replica
from .region_targets import POSITIVE_LABEL, rpn_targets, sample_balanced, sample_regions


def proposal_layer(network):
    """The network's one `region_proposals` layer, or None for a single-shot network."""
    found = [layer for layer in network.layers if isinstance(layer, RegionProposals)]
    if len(found) > 1:
        raise SpecError(f"'{network.name}' has {len(found)} region_proposals layers; a two-stage detector has one")
    return found[0] if found else None


def check_two_stage(network) -> int:
    """The class count (background excluded) of a two-stage network, after checking its outputs."""
    proposals = proposal_layer(network)
    shapes = [tuple(output.shape[1:]) for output in network.outputs]
    regions = proposals.post_nms
    if (len(shapes) != 3 or network.outputs[0] is not proposals.output or shapes[1][:1] != (regions,)
            or len(shapes[1]) != 2 or shapes[1][1] < 2 or shapes[2] != (regions, 4)):
        raise SpecError(f"a two-stage detector's outputs are [proposals (the region_proposals layer's), class logits "
                        f"({regions}, classes + 1) with background first, box offsets ({regions}, 4)] (see "
                        f"specs/faster_rcnn_shapes.yaml); '{network.name}' outputs {', '.join(map(str, shapes))}")
    if not [layer for layer in network.layers if isinstance(layer, RoIAlign)]:
        raise SpecError(f"'{network.name}' has region proposals but no roi_align reading them")
    return int(shapes[1][1]) - 1


def split(network) -> tuple[keras.Model, keras.Model]:
    """(first stage: image -> [objectness, offsets, proposals, *maps], head: [regions, *maps] ->
    [class logits, box offsets]): the same layers and weights as the network, cut where the
    proposals enter the `roi_align` layers."""
    proposals_layer = proposal_layer(network)
    maps = []
    for layer in network.layers:
        if isinstance(layer, RoIAlign):
            if layer.input[0] is not proposals_layer.output:
                raise SpecError(f"roi_align '{layer.name}' reads boxes other than the region proposals; in a two-stage "
                                "detector each roi_align reads `from: [proposals, map, ...]`")
            maps += [tensor for tensor in layer.input[1:] if all(tensor is not known for known in maps)]
    objectness, offsets = proposals_layer.input
    first = keras.Model(network.input, [objectness, offsets, proposals_layer.output, *maps],
                        name=f"{network.name}_first_stage")
    head = keras.Model([proposals_layer.output, *maps], network.outputs[1:], name=f"{network.name}_head")
    return first, head


@keras.saving.register_keras_serializable(package="blueprint")
class TwoStageTraining(keras.Model):
    """Trains a two-stage detector: loss = RPN objectness + RPN box + region class + region box,
    each averaged over its sample (the box terms over the sample, counting positives only, as
    torchvision does).

    Args:
        network: the spec-built two-stage detector (see the module's docstring).
        detection: the `train.detection` settings.
        seed: seeds the anchor and region samples.
    """

    def __init__(self, network, detection: dict, seed: int = 0, **kwargs):
        super().__init__(**kwargs)
        self.network, self.detection, self.seed = network, detection, seed
        self.classes = check_two_stage(network)
        self.first_stage, self.head = split(network)
        proposals = proposal_layer(network)
        self.anchors = ops.convert_to_tensor(proposals.anchors())
        self.regions = proposals.post_nms  # the head learns from as many regions as it reads at inference
        self.sampling = keras.random.SeedGenerator(seed)
        self.trackers = {name: keras.metrics.Mean(name=name) for name in
                         ("objectness_loss", "proposal_box_loss", "class_loss", "box_loss", "positive_regions")}

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

        regions, region_classes, offsets, _, chosen = sample_regions(
            proposals, boxes, classes, self.regions, settings["region_positive_fraction"],
            settings["positive_iou"], self.sampling)
        logits, predicted_offsets = self.head([regions, *maps], training=training)
        logits = ops.cast(logits, "float32")
        counted = ops.maximum(ops.sum(chosen), 1.0)
        per_region = keras.losses.sparse_categorical_crossentropy(region_classes, logits, from_logits=True)
        class_loss = ops.sum(per_region * chosen) / counted
        positive_regions = chosen * ops.cast(region_classes > 0, "float32")
        box_loss = ops.sum(_box_loss(offsets, predicted_offsets) * positive_regions) / counted

        terms = {"objectness_loss": objectness_loss, "proposal_box_loss": proposal_box_loss,
                 "class_loss": class_loss, "box_loss": box_loss}
        for name, value in terms.items():
            self.trackers[name].update_state(value)
        self.trackers["positive_regions"].update_state(ops.sum(positive_regions) / ops.cast(ops.shape(chosen)[0],
                                                                                             "float32"))
        return per_replica(objectness_loss + proposal_box_loss + class_loss + settings["box_weight"] * box_loss)

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
