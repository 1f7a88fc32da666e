"""The two-stage detection layers: RoI Align against a NumPy reference written here from
torchvision's definition and against `tf.image.crop_and_resize` where the two definitions agree,
with pyramid levels chosen by box size; and the region proposal layer against NumPy decoding,
clipping and TensorFlow's own non-maximum suppression."""

import numpy as np
import pytest

import layers


def bilinear(features, y, x):
    """torchvision's `bilinear_interpolate`: zero more than a pixel outside the map, clamped inside."""
    height, width = features.shape[:2]
    if y < -1.0 or y > height or x < -1.0 or x > width:
        return np.zeros(features.shape[-1])
    y, x = max(y, 0.0), max(x, 0.0)
    y_low, x_low = int(y), int(x)
    if y_low >= height - 1:
        y_low = y_high = height - 1
        y = float(y_low)
    else:
        y_high = y_low + 1
    if x_low >= width - 1:
        x_low = x_high = width - 1
        x = float(x_low)
    else:
        x_high = x_low + 1
    ly, lx = y - y_low, x - x_low
    return ((1 - ly) * (1 - lx) * features[y_low, x_low] + (1 - ly) * lx * features[y_low, x_high]
            + ly * (1 - lx) * features[y_high, x_low] + ly * lx * features[y_high, x_high])


def roi_align_reference(features, boxes, size, scale, ratio, aligned):
    """One image's RoI Align, loop by loop as torchvision's CPU kernel computes it."""
    out = np.zeros((len(boxes), size, size, features.shape[-1]))
    offset = 0.5 if aligned else 0.0
    for r, (x1, y1, x2, y2) in enumerate(boxes):
        start_x, start_y = x1 * scale - offset, y1 * scale - offset
        width, height = x2 * scale - offset - start_x, y2 * scale - offset - start_y
        if not aligned:
            width, height = max(width, 1.0), max(height, 1.0)
        bin_h, bin_w = height / size, width / size
        for i in range(size):
            for j in range(size):
                samples = [bilinear(features, start_y + i * bin_h + (iy + 0.5) * bin_h / ratio,
                                    start_x + j * bin_w + (ix + 0.5) * bin_w / ratio)
                           for iy in range(ratio) for ix in range(ratio)]
                out[r, i, j] = np.mean(samples, axis=0)
    return out


def _boxes(rng, count, image):
    """Boxes of every kind: inside the image, tiny, and reaching past its edges."""
    corners = rng.uniform(-0.2 * image, 1.1 * image, (count, 2, 2))
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1)], axis=-1)
    boxes[0] = (10.0, 12.0, 10.5, 12.2)  # smaller than a feature pixel
    return boxes.astype("float32")


@pytest.mark.parametrize("aligned", [True, False])
@pytest.mark.parametrize("ratio", [1, 2])
def test_roi_align_equals_torchvisions_definition(aligned, ratio):
    rng = np.random.default_rng(ratio + 2 * aligned)
    features = rng.normal(size=(2, 8, 10, 3)).astype("float32")  # a 64x80 image at stride 8
    boxes = np.stack([_boxes(rng, 6, 64), _boxes(rng, 6, 64)])
    layer = layers.RoIAlign(size=4, strides=[8], sampling_ratio=ratio, aligned=aligned)
    got = np.asarray(layer([boxes, features]))
    assert got.shape == (2, 6, 4, 4, 3)
    for image in range(2):
        expected = roi_align_reference(features[image], boxes[image], 4, 1 / 8, ratio, aligned)
        np.testing.assert_allclose(got[image], expected, atol=1e-5)


def test_roi_align_agrees_with_tensorflows_crop_and_resize():
    """With one sample per bin, RoI Align samples each bin's centre; `crop_and_resize` samples a
    grid from a normalized box's first to last pixel centre. For boxes inside the map the two grids
    are the same points, and the bilinear values must agree."""
    import tensorflow as tf

    rng = np.random.default_rng(7)
    features = rng.normal(size=(1, 12, 12, 5)).astype("float32")
    corners = rng.uniform(2, 40, (8, 2, 2))  # every sample inside the 12x12 map (a 48x48 image at stride 4)
    boxes = np.concatenate([corners.min(axis=1), corners.max(axis=1) + 4], axis=-1).astype("float32")
    size, stride = 5, 4
    got = np.asarray(layers.RoIAlign(size=size, strides=[stride], sampling_ratio=1)([boxes[None], features]))[0]
    scaled = boxes / stride - 0.5
    bin_size = (scaled[:, 2:] - scaled[:, :2]) / size
    first, last = scaled[:, :2] + bin_size / 2, scaled[:, 2:] - bin_size / 2  # (x, y) of the outer samples
    normalized = np.stack([first[:, 1], first[:, 0], last[:, 1], last[:, 0]], -1) / 11.0
    expected = tf.image.crop_and_resize(features, normalized, np.zeros(len(boxes), "int32"), (size, size)).numpy()
    np.testing.assert_allclose(got, expected, atol=1e-5)


def test_a_pyramid_reads_each_box_at_the_level_its_size_chooses():
    rng = np.random.default_rng(3)
    maps = [rng.normal(size=(1, 64 // stride, 64 // stride, 2)).astype("float32") for stride in (4, 8, 16)]
    # sqrt(area) 8, 16, 32, 64 with 32 read at stride 8: strides 4 (2, clamped), 4, 8, 16
    boxes = np.array([[[0, 0, 8, 8], [4, 4, 20, 20], [10, 6, 42, 38], [0, 0, 64, 64]]], "float32")
    layer = layers.RoIAlign(size=3, strides=[4, 8, 16], canonical_size=32, canonical_stride=8)
    np.testing.assert_array_equal(np.asarray(layer.levels(boxes))[0], [0, 0, 1, 2])
    got = np.asarray(layer([boxes, *maps]))[0]
    for box, level in zip(range(4), [0, 0, 1, 2]):
        stride = (4, 8, 16)[level]
        expected = roi_align_reference(maps[level][0], boxes[0, box:box + 1], 3, 1 / stride, 2, True)[0]
        np.testing.assert_allclose(got[box], expected, atol=1e-5)


def test_a_network_learns_through_roi_align_and_its_config_round_trips():
    """The features before RoI Align learn from a loss after it (the boxes are inputs, constants)."""
    import keras

    image, boxes = keras.Input((16, 16, 1)), keras.Input((3, 4))
    features = keras.layers.Conv2D(2, 3, strides=4, padding="same", name="features")(image)
    aligned = layers.RoIAlign(size=2, strides=[4])([boxes, features])
    model = keras.Model([image, boxes], keras.layers.GlobalAveragePooling3D()(aligned))
    rng = np.random.default_rng(0)
    inputs = [rng.normal(size=(4, 16, 16, 1)).astype("float32"),
              np.tile(np.array([[0, 0, 8, 8], [4, 4, 15, 12], [2, 0, 6, 16]], "float32"), (4, 1, 1))]
    before = model.get_layer("features").get_weights()[0].copy()
    model.compile(optimizer=keras.optimizers.SGD(0.1), loss="mse")
    model.fit(inputs, np.ones((4, 2), "float32"), epochs=1, verbose=0)
    assert not np.allclose(model.get_layer("features").get_weights()[0], before)
    restored = keras.Model.from_config(model.get_config())
    assert restored.layers[-2].get_config() == model.layers[-2].get_config()


def proposals_reference(anchors, scores, offsets, image_size, pre_nms, post_nms, iou, min_size):
    """One image's proposals from NumPy decoding (Faster R-CNN's parametrization, no variance, in
    Keras's order of the offsets: centre y, centre x, height, width) and TensorFlow's own NMS."""
    import tensorflow as tf

    height, width = image_size
    centre = (anchors[:, :2] + anchors[:, 2:]) / 2
    extent = anchors[:, 2:] - anchors[:, :2]
    centre = centre + offsets[:, 1::-1] * extent
    extent = np.exp(np.minimum(offsets[:, :1:-1], np.log(1000 / 16))) * extent
    boxes = np.concatenate([centre - extent / 2, centre + extent / 2], axis=-1)
    boxes = np.clip(boxes, 0, [width, height, width, height])
    keep = np.flatnonzero((boxes[:, 2] - boxes[:, 0] >= min_size) & (boxes[:, 3] - boxes[:, 1] >= min_size))
    keep = keep[np.argsort(-scores[keep], kind="stable")][:pre_nms]
    chosen = tf.image.non_max_suppression(boxes[keep][:, [1, 0, 3, 2]], scores[keep], post_nms, iou).numpy()
    out = np.zeros((post_nms, 4), "float32")
    out[:len(chosen)] = boxes[keep][chosen]
    return out


def test_region_proposals_decode_clip_drop_and_suppress_like_the_reference():
    layer = layers.RegionProposals(image_size=[32, 48], strides=[8, 16], sizes=[8, 16, 24, 32],
                                   aspect_ratios=[0.5, 1.0, 2.0], pre_nms=60, post_nms=20, nms_iou=0.6, min_size=3)
    anchors = layer.anchors()
    assert anchors.shape == (4 * 6 * 6 + 2 * 3 * 6, 4)  # 4x6 cells at stride 8, 2x3 at 16; 2 sizes x 3 ratios
    rng = np.random.default_rng(5)
    scores = rng.normal(size=(2, len(anchors))).astype("float32")
    offsets = rng.normal(scale=0.6, size=(2, len(anchors), 4)).astype("float32")
    offsets[0, :5, 2:] = -3.0  # tiny boxes, dropped
    offsets[1, :3, 2:] = 9.0  # huge: bounded, then clipped to the image
    got = np.asarray(layer([scores[..., None], offsets]))
    assert got.shape == (2, 20, 4)
    for image in range(2):
        expected = proposals_reference(anchors, scores[image], offsets[image], (32, 48), 60, 20, 0.6, 3)
        np.testing.assert_allclose(got[image], expected, atol=1e-4)


def test_region_proposals_pad_with_zero_boxes_and_name_a_head_that_does_not_fit():
    import keras

    layer = layers.RegionProposals(image_size=[16, 16], strides=[16], sizes=[8], aspect_ratios=[1.0], post_nms=5)
    scores, offsets = np.array([[2.0]], "float32"), np.zeros((1, 1, 4), "float32")
    np.testing.assert_allclose(np.asarray(layer([scores, offsets]))[0], [[4, 4, 12, 12]] + [[0, 0, 0, 0]] * 4)
    layer = layers.RegionProposals(image_size=[16, 16], strides=[16], sizes=[8], aspect_ratios=[1.0], post_nms=5)
    with pytest.raises(ValueError, match=r"objectness \(batch, 1\) and offsets \(batch, 1, 4\): 1 \(1x1 cells x 1 "
                                         r"at stride 16\) anchors at 16x16"):
        layer([keras.Input((3,)), keras.Input((3, 4))])
    with pytest.raises(ValueError, match="splits its 3 sizes evenly among 2 levels"):
        layers.RegionProposals(image_size=[16, 16], strides=[8, 16], sizes=[8, 16, 32])


TWO_STAGE = """
name: two_stage
params: {size: 32}
input: [$size, $size, 3]
layers:
  - conv: {filters: 8, kernel: 3, strides: 4, padding: same, activation: relu}
    name: features
  - conv: {filters: 3, kernel: 1}
  - reshape: {target_shape: [-1]}
    name: objectness
  - conv: {filters: 12, kernel: 1}
    from: features
  - reshape: {target_shape: [-1, 4]}
    name: offsets
  - region_proposals: {image_size: [$size, $size], strides: 4, sizes: [8, 16, 24], aspect_ratios: [1.0], post_nms: 10}
    from: [objectness, offsets]
    name: proposals
  - roi_align: {size: 3, strides: 4}
    from: [proposals, features]
    name: regions
outputs: [objectness, offsets, proposals, regions]
"""


def test_a_spec_wires_proposals_into_roi_align_and_summary_does_not_guess_their_field(write_spec):
    from builder import SpecError, build_model
    from builder.analysis.model_figures import analyze

    model = build_model(write_spec(TWO_STAGE))
    assert [tuple(output.shape[1:]) for output in model.outputs] == [(192,), (192, 4), (10, 4), (10, 3, 3, 8)]
    rows = {row["name"]: row for row in analyze(model)["rows"]}
    assert rows["features"]["receptive_field"] is not None
    assert rows["proposals"]["receptive_field"] is None and rows["regions"]["receptive_field"] is None
    path = write_spec(TWO_STAGE.replace("sizes: [8, 16, 24]", "sizes: [8, 16]"), "wrong.yaml")
    with pytest.raises(SpecError) as caught:
        build_model(path)
    assert str(caught.value).startswith(f"{path}:14:5: "), caught.value
    assert "offsets (batch, 128, 4): 128 (8x8 cells x 2 at stride 4) anchors at 32x32" in str(caught.value)
