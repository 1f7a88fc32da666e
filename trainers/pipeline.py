"""From dataset arrays to tf.data pipelines shaped for the model (usable on every backend)."""

from __future__ import annotations

import numpy as np

from .errors import DataError


def first_output(outputs):
    """A model's first output (its main head; auxiliary heads and VAE statistics follow it)."""
    return outputs[0] if isinstance(outputs, (list, tuple)) else outputs


def steps_per_epoch(examples: int, batch_size: int) -> int:
    """Batches in one pass over `examples` (the last one may be partial)."""
    return -(-int(examples) // int(batch_size))


def read_image(path, channels: int) -> np.ndarray:
    """One image file as float32 in [0, 1] with `channels` (1 or 3) channels."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            array = np.asarray(image.convert("L" if channels == 1 else "RGB"), dtype="float32") / 255.0
    except FileNotFoundError:
        raise DataError(f"{path}: no such file") from None
    except (UnidentifiedImageError, OSError) as exc:
        raise DataError(f"{path}: not a readable image ({exc})") from None
    return array[..., None] if array.ndim == 2 else array


def model_image_shape(model) -> tuple:
    shape = tuple(model.inputs[0].shape[1:])
    if len(shape) != 3 or None in shape:
        raise DataError(f"the model's input is {shape}; image datasets need a fixed (height, width, channels) "
                        "input")
    return shape


def model_classes(model) -> int:
    return int(model.outputs[0].shape[-1])


def check_compatible(splits, model) -> None:
    """Refuse data the model cannot learn from, with the fix."""
    classes = model_classes(model)
    top = max(int(y.max()) for y in (splits.y_train, splits.y_val, splits.y_test) if len(y))
    if top >= classes:
        raise DataError(f"labels go up to {top} ({top + 1} classes) but the model outputs {classes}: "
                        f"set the spec's class count, e.g. --set classes={top + 1}")
    if len(splits.x_train) == 0:
        raise DataError("the training split is empty")
    channels = splits.x_train.shape[-1]
    wanted = model_image_shape(model)[-1]
    if channels not in (1, 3) or wanted not in (1, 3):
        raise DataError(f"the data has {channels} channels and the model takes {wanted}; only 1 <-> 3 "
                        "conversions are automatic: set the spec's input channels")


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


def make_dataset(x, y, image_shape, num_classes, batch_size, *, shuffle=False, augment=(), seed=0,
                 repeat_labels=1):
    """A batched tf.data.Dataset of (images, one-hot labels); augmentation on these batches only."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), y.astype("int32")))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    dataset = dataset.batch(batch_size)
    layers = list(augment)

    def prepare(images, labels):
        images = to_model_input(images, image_shape)
        for layer in layers:
            images = layer(images, training=True)
        one_hot = tf.one_hot(labels, num_classes)
        return images, (tuple([one_hot] * repeat_labels) if repeat_labels > 1 else one_hot)

    return dataset.map(prepare, num_parallel_calls=tf.data.AUTOTUNE).prefetch(tf.data.AUTOTUNE)


def prepare_images(images: np.ndarray, image_shape) -> np.ndarray:
    return np.asarray(to_model_input(images.astype("float32"), image_shape))


def make_image_dataset(x, image_shape, batch_size, *, shuffle=False, augment=(), seed=0, targets=True):
    """Batches of images alone, for trainers without labels: (images, images) when the model
    learns to reproduce its input with `compile`'s loss, images only otherwise. Augmentation, if
    any, changes input and target alike."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices(x.astype("float32"))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    layers = list(augment)

    def prepare(images):
        images = to_model_input(images, image_shape)
        for layer in layers:
            images = layer(images, training=True)
        return (images, images) if targets else images

    dataset = dataset.batch(batch_size).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)


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


def make_mask_dataset(x, masks, image_shape, batch_size, *, shuffle=False, flips=(), photometric=(), seed=0):
    """Batches of (images, per-pixel class masks). Flips move image and mask together; brightness,
    contrast and colour changes touch the image only."""
    import tensorflow as tf

    dataset = tf.data.Dataset.from_tensor_slices((x.astype("float32"), masks.astype("int32")))
    if shuffle:
        dataset = dataset.shuffle(len(x), seed=seed, reshuffle_each_iteration=True)
    flips, photometric = list(flips), list(photometric)

    def prepare(images, labels):
        images = to_model_input(images, image_shape)
        if flips:
            joined = tf.concat([images, tf.cast(labels[..., None], images.dtype)], axis=-1)
            for layer in flips:
                joined = layer(joined, training=True)
            images, labels = joined[..., :-1], tf.cast(tf.round(joined[..., -1]), tf.int32)
        for layer in photometric:
            images = layer(images, training=True)
        return images, labels

    dataset = dataset.batch(batch_size).map(prepare, num_parallel_calls=tf.data.AUTOTUNE)
    return dataset.prefetch(tf.data.AUTOTUNE)
