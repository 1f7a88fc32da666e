"""Where a split's examples come from: arrays in memory, image files on disk, or TFRecord shards.

Every split gives the same thing to the input pipeline (`trainers.data.pipeline`): a tf.data stream
of elements `{"image": ..., "label": ..., ["mask": ...]}`, one epoch at a time, in an order that
depends only on (seed, epoch) so a run stopped mid-epoch resumes at the same example. Images on
disk stay encoded until the pipeline decodes them (`encoded` is True), so memory holds paths and
labels, never the dataset.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from .traced import as_written

SHUFFLE_BUFFER = 2048  # records read ahead for shuffling shards: about 40 MB of 224x224 JPEGs


class Split:
    """One split (train, val or test) of a dataset."""

    encoded = False   # elements hold encoded image bytes, decoded by the pipeline
    random_access = True  # an epoch can be put in any order without reading it
    boxes = None  # detection data: object boxes per example (see `box_columns`)
    instance_masks = None  # instance segmentation, images in memory: each object's mask (see `box_columns`)
    instance_rles = None  # instance segmentation, image files: each object's mask as RLE (see `box_columns`)

    def __len__(self) -> int:
        raise NotImplementedError

    def label_counts(self, classes: int) -> np.ndarray:
        """Examples per class (length `classes`, or more when the labels go beyond it)."""
        labels = self.labels
        return np.bincount(labels, minlength=classes) if len(labels) else np.zeros(classes, int)

    @property
    def has_masks(self) -> bool:
        return False

    @property
    def has_boxes(self) -> bool:
        return self.boxes is not None

    @property
    def has_instance_masks(self) -> bool:
        return self.instance_masks is not None or self.instance_rles is not None

    def boxes_only(self) -> Split:
        """This split without instance masks, for a detector of boxes alone (nothing to decode)."""
        return self

    def elements(self):
        """All elements in their stored order."""
        raise NotImplementedError

    def epoch_order(self, epoch, seed: int, skip=0):
        """(handles, read): a stream of cheap handles to the elements of `epoch` (a scalar tensor),
        in an order fixed by (seed, epoch), the first `skip` left out before anything is read (a
        resume mid-epoch); and `read(handle)`, the element. The pipeline calls `read` inside its
        own per-element stage: one function call per image, not one per stage."""
        raise NotImplementedError


def _permutation(count: int, seed: int, epoch):
    import tensorflow as tf

    seeds = tf.stack([tf.constant(seed, tf.int64), tf.cast(epoch, tf.int64)])
    return tf.random.experimental.stateless_shuffle(tf.range(count, dtype=tf.int64), seed=seeds)


@dataclass
class ArraySplit(Split):
    """Images in memory (float32 in [0, 1], with a channel axis), labels, optional masks or
    object boxes (see `box_columns`)."""

    images: np.ndarray
    labels: np.ndarray
    masks: np.ndarray | None = None
    boxes: np.ndarray | None = None
    box_classes: np.ndarray | None = None
    instance_masks: np.ndarray | None = None

    def __len__(self):
        return len(self.images)

    @property
    def has_masks(self):
        return self.masks is not None

    def boxes_only(self):
        return replace(self, instance_masks=None)

    def _tensors(self):
        tensors = {"image": self.images.astype("float32"), "label": self.labels.astype("int32")}
        if self.masks is not None:
            tensors["mask"] = self.masks.astype("int32")
        return {**tensors, **box_columns(self)}

    def elements(self):
        import tensorflow as tf

        return tf.data.Dataset.from_tensor_slices(self._tensors())

    def epoch_order(self, epoch, seed, skip=0):
        import tensorflow as tf

        tensors = {key: tf.constant(value) for key, value in self._tensors().items()}
        order = tf.data.Dataset.from_tensor_slices(_permutation(len(self), seed, epoch)).skip(skip)
        return order, lambda i: {key: tf.gather(value, i) for key, value in tensors.items()}


def box_columns(split) -> dict:
    """A detection split's objects as pipeline columns: `boxes` (examples, max_objects, 4), xyxy
    as fractions of the image's width and height (so they survive resizing), `box_classes`
    (examples, max_objects), -1 where an image has fewer objects, and for instance segmentation
    `instance_masks` (examples, max_objects, height, width) uint8, each object's pixels; for image
    files, `instance_rles` (examples, max_objects), each object's mask as COCO's compressed RLE
    text ("" for none), and `instance_image_size` (examples, 2), the height and width the RLE
    covers. The pipeline decodes those into `instance_masks` at the model's size, image by image."""
    if split.boxes is None:
        return {}
    columns = {"boxes": split.boxes.astype("float32"), "box_classes": split.box_classes.astype("int32")}
    if split.instance_masks is not None:
        columns["instance_masks"] = split.instance_masks.astype("uint8")
    if split.instance_rles is not None:
        columns["instance_rles"] = np.asarray(split.instance_rles, dtype=object).astype(str)
        columns["instance_image_size"] = split.instance_image_sizes.astype("int32")
    return columns


@dataclass
class FileSplit(Split):
    """Image files (checked by `trainers.data.image_files`), their labels, optionally mask files or
    object boxes (see `box_columns`)."""

    files: list
    labels: np.ndarray
    mask_files: list | None = None
    boxes: np.ndarray | None = None
    box_classes: np.ndarray | None = None
    instance_rles: np.ndarray | None = None
    instance_image_sizes: np.ndarray | None = None
    encoded = True

    def __len__(self):
        return len(self.files)

    @property
    def has_masks(self):
        return self.mask_files is not None

    def boxes_only(self):
        return replace(self, instance_rles=None, instance_image_sizes=None)

    def _columns(self):
        columns = {"file": np.asarray(self.files, dtype=object).astype(str), "label": self.labels.astype("int32")}
        if self.mask_files is not None:
            columns["mask_file"] = np.asarray(self.mask_files, dtype=object).astype(str)
        return {**columns, **box_columns(self)}

    @staticmethod
    def _read(element):
        import tensorflow as tf

        result = {key: value for key, value in element.items() if key not in ("file", "mask_file")}
        result["image"] = tf.io.read_file(element["file"])
        if "mask_file" in element:
            result["mask"] = read_mask(element["mask_file"])
        return result

    def elements(self):
        import tensorflow as tf

        files = tf.data.Dataset.from_tensor_slices(self._columns())
        return files.map(as_written(self._read), num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_order(self, epoch, seed, skip=0):
        import tensorflow as tf

        columns = {key: tf.constant(value) for key, value in self._columns().items()}
        order = tf.data.Dataset.from_tensor_slices(_permutation(len(self), seed, epoch)).skip(skip)
        return order, lambda i: self._read({key: tf.gather(value, i) for key, value in columns.items()})


def read_mask(path):
    """A mask file as int32 class indices (height, width). Pillow reads it: TensorFlow's PNG
    decoder turns a palette mask into colours, and the palette indices are the classes."""
    import tensorflow as tf

    def load(file):
        from PIL import Image

        with Image.open(file.decode()) as mask:
            return np.asarray(mask, dtype="int32")

    mask = tf.numpy_function(load, [path], tf.int32, stateful=False)
    mask.set_shape([None, None])
    return mask


@dataclass
class RecordSplit(Split):
    """TFRecord shards written by `python -m builder data pack` (see `trainers.data.records`)."""

    shards: list
    count: int
    counts: list = field(default_factory=list)  # examples per class
    encoded = True
    random_access = False

    def __len__(self):
        return self.count

    def label_counts(self, classes):
        counts = np.zeros(max(classes, len(self.counts)), dtype=int)
        counts[:len(self.counts)] = self.counts
        return counts

    def _records(self, shards, cycle: int = 1):
        import tensorflow as tf

        files = tf.data.Dataset.from_tensor_slices(shards)
        if cycle == 1:
            return files.flat_map(tf.data.TFRecordDataset), parse_record
        records = files.interleave(tf.data.TFRecordDataset, cycle_length=cycle, block_length=1,
                                   num_parallel_calls=tf.data.AUTOTUNE, deterministic=True)
        return records, parse_record

    def elements(self):
        import tensorflow as tf

        records, parse = self._records(self.shards)
        return records.map(as_written(parse), num_parallel_calls=tf.data.AUTOTUNE)

    def epoch_order(self, epoch, seed, skip=0):
        import tensorflow as tf

        # Shards in a (seed, epoch) order, read several at a time, then each block of
        # SHUFFLE_BUFFER records permuted: the usual way to shuffle data that cannot be indexed,
        # with stateless permutations so that a resume sees the same order.
        shards = tf.gather(tf.constant(self.shards), _permutation(len(self.shards), seed, epoch))
        records, parse = self._records(shards, cycle=min(8, len(self.shards)))
        epoch_seed = tf.cast(epoch, tf.int64) * 1_000_003 + seed

        def permute(block_number, block):
            order = tf.random.experimental.stateless_shuffle(tf.range(tf.shape(block, out_type=tf.int64)[0]),
                                                             seed=tf.stack([epoch_seed, block_number]))
            return tf.gather(block, order)

        return records.batch(SHUFFLE_BUFFER).enumerate().map(as_written(permute)).unbatch().skip(skip), parse


def parse_record(serialized):
    """One record of `data pack`'s shards as a pipeline element: encoded image bytes and label."""
    import tensorflow as tf

    features = tf.io.parse_single_example(serialized, {
        "image": tf.io.FixedLenFeature([], tf.string),
        "label": tf.io.FixedLenFeature([], tf.int64),
    })
    return {"image": features["image"], "label": tf.cast(features["label"], tf.int32)}
