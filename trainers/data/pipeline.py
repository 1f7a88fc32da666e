"""From a dataset's splits to tf.data pipelines shaped for the model (usable on every backend).

One pipeline serves every source (`trainers.data.sources`): elements are read (file bytes, records or
array rows), decoded and cropped per image in parallel, batched, then resized, augmented and
formatted per batch, and normalised last. Training streams come in two orders:

- *indexed*: each epoch is a permutation fixed by (seed, epoch), so a run resumed mid-epoch
  (`checkpoint_every_steps`) sees exactly the examples the interrupted run had left. Used for
  files and shards, and for arrays when step checkpoints or per-image crops are asked for.
- *reshuffled*: tf.data's own shuffle buffer, reshuffled each epoch; the pipeline of small
  in-memory datasets (their figures in docs/benchmarks.md were measured with it) and of cached data.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from ..errors import DataError
from .traced import as_written

IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)


def first_output(outputs):
    """A model's first output (its main head; auxiliary heads and VAE statistics follow it)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def steps_per_epoch(examples: int, batch_size: int, whole: bool = False) -> int:
    """Batches in one pass over `examples`: the last one may be partial, unless only `whole`
    batches are trained (data parallel, where a partial batch would not split over the devices)."""
    return int(examples) // int(batch_size) if whole else -(-int(examples) // int(batch_size))


LABEL_INPUT = "label"  # a class-conditional network's one-hot class input (see trainers.generative.sampling)


def main_input(model):
    """The model's input that is not a class label: its images (or a generator's noise)."""
    return next(tensor for tensor in model.inputs if tensor.name != LABEL_INPUT)


def model_image_shape(model) -> tuple:
    shape = tuple(main_input(model).shape[1:])
    if len(shape) != 3 or None in shape:
        raise DataError(f"the model's input is {shape}; image datasets need a fixed (height, width, channels) "
                        "input")
    return shape


def model_classes(model) -> int:
    return int(model.outputs[0].shape[-1])


def check_compatible(splits, model) -> None:
    """Refuse data the model cannot learn from, with the fix."""
    classes = model_classes(model)
    counts = sum(split.label_counts(classes) for split in (splits.train, splits.val, splits.test))
    top = int(np.flatnonzero(counts).max()) if counts.any() else 0
    if top >= classes:
        raise DataError(f"labels go up to {top} ({top + 1} classes) but the model outputs {classes}: "
                        f"set the spec's class count, e.g. --set classes={top + 1}")
    if len(splits.train) == 0:
        raise DataError("the training split is empty")
    channels = splits.channels
    wanted = model_image_shape(model)[-1]
    if channels not in (None, 1, 3) or wanted not in (1, 3):
        raise DataError(f"the data has {channels} channels and the model takes {wanted}; only 1 <-> 3 "
                        "conversions are automatic: set the spec's input channels")


# -- how images become model input -------------------------------------------------------------------
@dataclass(frozen=True)
class Preprocessing:
    """What every split, and `predict`, does to an image: resize (after a centre crop, if asked)
    to the model's input, convert channels, and normalise per channel last."""

    image_shape: tuple
    center_crop: float | None = None
    mean: tuple | None = None
    std: tuple | None = None
    mask_size: tuple | None = None  # segmentation: masks cut to the model's output size

    @classmethod
    def of(cls, image_shape, data_config: dict, mask_size=None) -> Preprocessing:
        normalize = data_config.get("normalize")
        if normalize == "imagenet":
            normalize = {"mean": IMAGENET_MEAN, "std": IMAGENET_STD}
        mean = std = None
        if normalize:
            channels = image_shape[-1]
            mean, std = tuple(normalize["mean"]), tuple(normalize["std"])
            if len(mean) != channels or len(std) != channels:
                raise DataError(f"data.normalize gives {len(mean)} means and {len(std)} standard deviations for a "
                                f"model with {channels} channel(s); give one of each per channel")
        return cls(tuple(image_shape), data_config.get("center_crop"), mean, std,
                   tuple(mask_size) if mask_size else None)

    @property
    def size(self) -> tuple:
        return tuple(self.image_shape[:2])


def to_model_input(images, image_shape):
    """Resize to the model's height and width and convert 1 <-> 3 channels (TensorFlow ops)."""
    import tensorflow as tf

    height, width, channels = image_shape
    images = tf.image.resize(images, (height, width)) if tuple(images.shape[1:3]) != (height, width) else images
    if images.shape[-1] == 1 and channels == 3:
        images = tf.image.grayscale_to_rgb(images)
    elif images.shape[-1] == 3 and channels == 1:
        images = tf.image.rgb_to_grayscale(images)
    return images


def prepare_images(images: np.ndarray, image_shape) -> np.ndarray:
    return np.asarray(to_model_input(images.astype("float32"), image_shape))


def _normalize(images, prep: Preprocessing):
    """`data.normalize` on a batch of model inputs: the images, or every input of a dict of them
    but a class-conditional model's one-hot `label`."""
    if prep.mean is None:
        return images
    if isinstance(images, dict):
        return {name: value if name == LABEL_INPUT else _normalize(value, prep) for name, value in images.items()}
    import tensorflow as tf

    return (images - tf.constant(prep.mean, images.dtype)) / tf.constant(prep.std, images.dtype)


def normalized(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """`data.normalize` on images already at the model's size (NumPy; `predict` and pictures)."""
    if prep.mean is None:
        return images
    return (images - np.asarray(prep.mean, "float32")) / np.asarray(prep.std, "float32")


def denormalized(images: np.ndarray, prep: Preprocessing) -> np.ndarray:
    """`normalized` undone: the pixels of model inputs, for pictures."""
    if prep.mean is None:
        return images
    return images * np.asarray(prep.std, "float32") + np.asarray(prep.mean, "float32")


def _decode(contents, channels: int):
    import tensorflow as tf

    image = tf.io.decode_image(contents, channels=channels, dtype=tf.float32, expand_animations=False)
    image.set_shape([None, None, channels])
    return image


def _center_crop(image, size, fraction: float):
    """Resize so the shorter side is size / fraction, then cut the central `size` window (the
    usual evaluation view of ImageNet models: 224 of 256 is fraction 0.875)."""
    import tensorflow as tf

    shape = tf.cast(tf.shape(image)[:2], tf.float32)
    scale = tf.reduce_max(tf.constant(size, tf.float32) / fraction / shape)
    resized = tf.cast(tf.math.ceil(shape * scale), tf.int32)
    image = tf.image.resize(image, resized)
    top, left = (resized[0] - size[0]) // 2, (resized[1] - size[1]) // 2
    return tf.image.crop_to_bounding_box(image, top, left, size[0], size[1])


def _element_image(element, prep: Preprocessing, encoded: bool, crop_window, augment, key, seed):
    """One image at the model's size: decoded (only the crop window of a JPEG, when there is one),
    cropped, augmented per image (`augment`: flips, before the resize, on fewer pixels), resized."""
    import tensorflow as tf

    contents, channels = element["image"], prep.image_shape[-1]
    element_seed = tf.stack([tf.constant(seed, tf.int64), tf.cast(key, tf.int64)])

    def augmented(image):
        for number, function in enumerate(augment):
            image = function(image, element_seed + tf.constant([1 + number, 0], tf.int64))
        return image

    if crop_window is not None and encoded:
        def jpeg():
            window = crop_window(tf.image.extract_jpeg_shape(contents)[:2], element_seed)
            image = tf.image.decode_and_crop_jpeg(contents, tf.stack(window), channels=channels)
            return tf.image.convert_image_dtype(image, tf.float32)

        def other():
            image = _decode(contents, channels)
            top, left, height, width = crop_window(tf.shape(image)[:2], element_seed)
            return tf.image.crop_to_bounding_box(image, top, left, height, width)

        image = tf.cond(tf.io.is_jpeg(contents), jpeg, other)
        image.set_shape([None, None, channels])
        return tf.image.resize(augmented(image), prep.size)
    image = _decode(contents, channels) if encoded else contents
    if crop_window is not None:
        top, left, height, width = crop_window(tf.shape(image)[:2], element_seed)
        return tf.image.resize(augmented(tf.image.crop_to_bounding_box(image, top, left, height, width)), prep.size)
    image = augmented(image)
    if prep.center_crop:
        return _center_crop(image, prep.size, prep.center_crop)
    return tf.image.resize(image, prep.size) if encoded else image


def fit_mask_tensor(mask, input_size, output_size):
    """`fit_masks` for one mask inside tf.data: nearest-neighbour to the model's input, then the
    centre at the output's size."""
    import tensorflow as tf

    shape = tf.shape(mask, out_type=tf.int64)
    rows = tf.range(input_size[0], dtype=tf.int64) * shape[0] // input_size[0]
    cols = tf.range(input_size[1], dtype=tf.int64) * shape[1] // input_size[1]
    mask = tf.gather(tf.gather(mask, rows, axis=0), cols, axis=1)
    top, left = (input_size[0] - output_size[0]) // 2, (input_size[1] - output_size[1]) // 2
    return mask[top:top + output_size[0], left:left + output_size[1]]


def fit_masks(masks: np.ndarray, input_size, output_size) -> np.ndarray:
    """Masks that line up with the model's output: resized like the images to the model's input
    (nearest neighbour, so classes never blend), then centre-cropped where unpadded convolutions
    made the output smaller than the input (the 2015 U-Net)."""
    if masks.shape[1:3] != tuple(input_size):
        rows = np.arange(input_size[0]) * masks.shape[1] // input_size[0]
        cols = np.arange(input_size[1]) * masks.shape[2] // input_size[1]
        masks = masks[:, rows][:, :, cols]
    height, width = output_size
    top, left = (masks.shape[1] - height) // 2, (masks.shape[2] - width) // 2
    if top < 0 or left < 0:
        raise DataError(f"the model's output ({height}x{width}) is larger than its input "
                        f"({masks.shape[1]}x{masks.shape[2]}); a segmentation output is at most the input's size")
    return masks[:, top:top + height, left:left + width]


# -- streams ---------------------------------------------------------------------------------------
@dataclass
class TrainStream:
    """Batches for `model.fit`. `steps_per_epoch` is set when `dataset` holds every remaining
    epoch back to back (the indexed order); `partial`, when a run resumes mid-epoch, holds the
    `partial_steps` batches left of that epoch, to be fitted first."""

    dataset: object
    steps_per_epoch: int | None = None
    partial: object = None
    partial_steps: int = 0


@dataclass
class StreamPlan:
    """What a trainer asks of the pipeline: how a batch becomes (inputs, targets) (`finish`:
    augmentation and formatting), and for training, the order and where to resume."""

    finish: Callable
    batch_size: int
    seed: int = 0
    crop_window: Callable | None = None
    cache: str | None = None
    per_image: tuple = ()  # stateless `f(image, seed)` augmentations, training only
    whole_batches: bool = False  # data parallel: every training batch splits evenly over the devices


def random_per_image(split, prep: Preprocessing, crop_window, resumable: bool, cache) -> bool:
    """Whether a training stream handles images one at a time, so per-image random augmentation
    costs nothing extra (and a cache would not freeze it)."""
    if cache:
        return False
    return split.encoded or crop_window is not None or resumable or prep.center_crop is not None


def _per_image(split, prep: Preprocessing, plan: StreamPlan, crop: bool):
    """The per-element stage as a map function over (key, element)."""
    augment = plan.per_image if crop else ()
    needs_work = (split.encoded or (crop and plan.crop_window is not None) or prep.center_crop is not None
                  or bool(augment))
    window = plan.crop_window if crop else None

    def element_map(key, element):
        result = dict(element)
        if needs_work:
            result["image"] = _element_image(element, prep, split.encoded, window, augment, key, plan.seed)
        if "mask" in element and prep.mask_size and split.encoded:
            result["mask"] = fit_mask_tensor(element["mask"], prep.size, prep.mask_size)
        if "instance_rles" in element:
            from .instance_masks import masks_at_size_tensor

            result["instance_masks"] = masks_at_size_tensor(result.pop("instance_rles"),
                                                            result.pop("instance_image_size"), prep.size)
        return result

    return as_written(element_map), needs_work


def _batch_map(prep: Preprocessing, plan: StreamPlan):
    def batch_map(batch):
        batch = dict(batch)
        batch["image"] = to_model_input(batch["image"], prep.image_shape)
        inputs, targets = plan.finish(batch)
        return (_normalize(inputs, prep), targets) if targets is not None else _normalize(inputs, prep)

    return as_written(batch_map)


def _cache(dataset, where: str | None):
    if not where:
        return dataset
    return dataset.cache() if where == "memory" else dataset.cache(str(where))


def eval_stream(split, prep: Preprocessing, plan: StreamPlan):
    """Batches of a split in its stored order (validation, test, prediction)."""
    import tensorflow as tf

    element_map, needs_work = _per_image(split, prep, plan, crop=False)
    elements = split.elements().enumerate()
    if needs_work:
        elements = elements.map(element_map, num_parallel_calls=tf.data.AUTOTUNE)
    else:
        elements = elements.map(as_written(lambda key, element: element))
    elements = _cache(elements, plan.cache)
    batches = elements.batch(plan.batch_size, drop_remainder=plan.whole_batches)
    batches = batches.map(_batch_map(prep, plan), num_parallel_calls=tf.data.AUTOTUNE)
    count = steps_per_epoch(len(split), plan.batch_size, plan.whole_batches)
    return _counted(batches, count).prefetch(tf.data.AUTOTUNE)


def _counted(batches, count: int):
    """Tell tf.data (and so Keras) how many batches a stream holds: shards do not know it, and
    Keras warns that data ran out when a stream of unknown length ends. Also lets tf.data fuse
    the per-element maps into one (each map costs a function call per image)."""
    import tensorflow as tf

    options = tf.data.Options()
    options.experimental_optimization.map_fusion = True
    options.experimental_optimization.map_parallelization = True
    return batches.apply(tf.data.experimental.assert_cardinality(count)).with_options(options)


def train_stream(split, prep: Preprocessing, plan: StreamPlan, *, epochs: int, first_epoch: int = 0,
                 skip_batches: int = 0, resumable: bool = False) -> TrainStream:
    """Training batches from `first_epoch` on (`skip_batches` of it already done)."""
    import tensorflow as tf

    element_map, needs_work = _per_image(split, prep, plan, crop=True)
    batch_map = _batch_map(prep, plan)
    indexed = not plan.cache and (split.encoded or needs_work or resumable)
    if not indexed:
        # tf.data's shuffle of the whole (small or cached) split, reshuffled every epoch.
        elements = split.elements()
        if needs_work:
            seeds = tf.data.Dataset.random(seed=plan.seed, rerandomize_each_iteration=True)
            elements = tf.data.Dataset.zip(seeds, elements)
            if plan.crop_window is None:  # decoding is the same every epoch: cache after it
                elements = _cache(elements.map(element_map, num_parallel_calls=tf.data.AUTOTUNE), plan.cache)
            else:
                elements = _cache(elements, plan.cache).map(element_map, num_parallel_calls=tf.data.AUTOTUNE)
        dataset = elements.shuffle(len(split), seed=plan.seed, reshuffle_each_iteration=True)
        dataset = dataset.batch(plan.batch_size, drop_remainder=plan.whole_batches)
        dataset = dataset.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE)
        return TrainStream(dataset.prefetch(tf.data.AUTOTUNE))

    count, steps = len(split), steps_per_epoch(len(split), plan.batch_size, plan.whole_batches)

    def epoch_batches(epoch, skip=0):
        handles, read = split.epoch_order(epoch, plan.seed, skip)
        first_key = tf.cast(epoch, tf.int64) * count

        def element(position, handle):  # reading and the per-image work in one function call
            return element_map(first_key + position, read(handle)) if needs_work else read(handle)

        elements = handles.enumerate(skip).map(as_written(element), num_parallel_calls=tf.data.AUTOTUNE)
        batches = elements.batch(plan.batch_size, drop_remainder=plan.whole_batches)
        return batches.map(batch_map, num_parallel_calls=tf.data.AUTOTUNE)

    partial, partial_steps, start = None, 0, first_epoch
    if skip_batches:
        skipped = min(skip_batches * plan.batch_size, count)
        partial = _counted(epoch_batches(tf.constant(first_epoch, tf.int64), skipped), steps - skip_batches)
        partial = partial.prefetch(tf.data.AUTOTUNE)
        partial_steps, start = steps - skip_batches, first_epoch + 1
    rest = tf.data.Dataset.range(start, max(start, epochs)).flat_map(as_written(epoch_batches))
    rest = _counted(rest, steps * max(0, epochs - start))
    return TrainStream(rest.prefetch(tf.data.AUTOTUNE), steps, partial, partial_steps)


def split_streams(splits, prep: Preprocessing, config: dict, make_finish: Callable, job=None, training=True):
    """(training stream, validation batches, test batches) as a `train:` section asks for them:
    its augmentation (per image where the stream handles images one at a time, else Keras layers
    on batches, given to `make_finish(layers) -> finish`), cache, step checkpoints, and where
    `job` resumes. Without `training` (evaluation) the training stream is None, and nothing is
    read from the training split."""
    seed, batch, cache = config["seed"], config["batch_size"], config["data"].get("cache")
    plain = StreamPlan(make_finish(()), batch, seed, cache=cache,
                       whole_batches=bool(job and job.placement and job.placement.group))
    train = _training_stream(splits.train, prep, config, make_finish, job) if training else None
    val = eval_stream(splits.val, prep, plain) if len(splits.val) else None
    test = eval_stream(splits.test, prep, plain) if len(splits.test) else None
    return train, val, test


def _training_stream(split, prep: Preprocessing, config: dict, make_finish: Callable, job) -> TrainStream:
    from .augmentation import crop_window_of, split_augmentations, with_training_statistics

    seed, cache = config["seed"], config["data"].get("cache")
    augment = with_training_statistics(config["augment"], lambda: pixel_statistics(split, prep))
    resumable, crop = bool(config.get("checkpoint_every_steps")), crop_window_of(augment)
    per_image, layers = split_augmentations(augment, prep.image_shape, seed,
                                            random_per_image(split, prep, crop, resumable, cache))
    plan = StreamPlan(make_finish(layers), config["batch_size"], seed, crop, cache, tuple(per_image),
                      whole_batches=bool(job and job.distributed))
    return train_stream(split, prep, plan, epochs=config["epochs"], first_epoch=job.initial_epoch if job else 0,
                        skip_batches=job.initial_step if job else 0, resumable=resumable)


def preview(split, prep: Preprocessing, count: int) -> dict:
    """The first `count` examples, prepared like the test data but not normalised, as arrays
    (pictures in the run folder)."""
    plan = StreamPlan(lambda batch: (batch, None), count)
    for batch in eval_stream(split, replace(prep, mean=None, std=None), plan).take(1):
        return {key: np.asarray(value) for key, value in batch.items()}
    return {"image": np.zeros((0, *prep.image_shape), "float32"), "label": np.zeros(0, "int32")}


def pixel_statistics(split, prep: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """(mean, covariance) of the channels of every pixel of a split at the model's size (not
    normalised), in one streamed pass: memory holds one batch."""
    plan = StreamPlan(lambda batch: (batch["image"], None), 256)
    count, total, products = 0, 0.0, 0.0
    for images in eval_stream(split, replace(prep, mean=None, std=None), plan).as_numpy_iterator():
        pixels = images.reshape(-1, images.shape[-1]).astype("float64")
        count, total, products = count + len(pixels), total + pixels.sum(0), products + pixels.T @ pixels
    if not count:
        raise DataError("the training split is empty: there are no pixels to take colour statistics from")
    mean = total / count
    return mean, products / count - np.outer(mean, mean)


def model_inputs(split, prep: Preprocessing, batch_size: int = 256):
    """A split's images as the model receives them (at its size, normalised), in batches, for
    statistics a model takes from its training data (`normalization: {adapt: true}`)."""
    return eval_stream(split, prep, StreamPlan(lambda batch: (batch["image"], None), batch_size))


def materialize(split, prep: Preprocessing) -> tuple[np.ndarray, np.ndarray]:
    """A whole split as (images at the model's size, not normalised; labels), for trainers that
    sample their batches themselves (metric learning's P x K batches, the adversarial loop)."""
    plan = StreamPlan(lambda batch: ((batch["image"], batch["label"]), None), 256)
    images, labels = [], []
    for batch_images, batch_labels in eval_stream(split, replace(prep, mean=None, std=None), plan).as_numpy_iterator():
        images.append(batch_images)
        labels.append(batch_labels)
    if not images:
        return np.zeros((0, *prep.image_shape), "float32"), np.zeros(0, "int64")
    return np.concatenate(images), np.concatenate(labels).astype("int64")


def image_files_at_model_size(paths: list, prep: Preprocessing) -> np.ndarray:
    """Image files prepared as the run's test images were (decoded by TensorFlow, centre-cropped
    if asked, resized), not yet normalised: the pixels pictures show."""
    from .image_files import problem
    from .sources import FileSplit

    for path in paths:
        reason = problem(path)
        if reason:
            raise DataError(f"{path}: {reason}")
    images, _ = materialize(FileSplit([str(path) for path in paths], np.zeros(len(paths), "int64")), prep)
    return images


def image_file_inputs(paths: list, prep: Preprocessing) -> np.ndarray:
    """Image files as the model's input: `image_files_at_model_size`, normalised."""
    return normalized(image_files_at_model_size(paths, prep), prep)
