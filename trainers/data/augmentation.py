"""Data augmentation declared in the spec, as Keras preprocessing layers (training batches only).

Each function is an entry of `trainers.registries.AUGMENTATIONS` (registered in `trainers.builtin`)."""

from __future__ import annotations

import numpy as np

BOX_FORMAT = "xyxy"  # the detection trainer's boxes, in pixels


def flip(keras, args, seed, shape, bounding_box_format=None):
    return [keras.layers.RandomFlip(args.get("mode", "horizontal"), seed=seed,
                                    bounding_box_format=bounding_box_format)]


def flip_with_boxes(keras, args, seed, shape):
    return flip(keras, args, seed, shape, BOX_FORMAT)


def flip_image(settings: dict, image, seed):
    """`flip` on one image, stateless."""
    import tensorflow as tf

    mode = settings.get("mode", "horizontal")
    if mode in ("horizontal", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_left_right(image, seed)
    if mode in ("vertical", "horizontal_and_vertical"):
        image = tf.image.stateless_random_flip_up_down(image, seed + tf.constant([0, 1], seed.dtype))
    return image


def crop(keras, args, seed, shape):
    # The seeds' random cropping: pad, then cut a random window of the original size.
    pad = args.get("padding", max(1, shape[0] // 8))
    return [keras.layers.ZeroPadding2D(pad), keras.layers.RandomCrop(shape[0], shape[1], seed=seed)]


def rotation(keras, args, seed, shape):
    return [keras.layers.RandomRotation(args.get("factor", 0.05), fill_mode="constant", seed=seed)]


def translation(keras, args, seed, shape, bounding_box_format=None):
    factor = args.get("factor", 0.1)
    return [keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=seed,
                                           bounding_box_format=bounding_box_format)]


def translation_with_boxes(keras, args, seed, shape):
    return translation(keras, args, seed, shape, BOX_FORMAT)


def zoom(keras, args, seed, shape, bounding_box_format=None):
    return [keras.layers.RandomZoom(args.get("factor", 0.1), fill_mode="constant", seed=seed,
                                    bounding_box_format=bounding_box_format)]


def zoom_with_boxes(keras, args, seed, shape):
    return zoom(keras, args, seed, shape, BOX_FORMAT)


def brightness(keras, args, seed, shape):
    return [keras.layers.RandomBrightness(args.get("factor", 0.2), value_range=(0, 1), seed=seed)]


def contrast(keras, args, seed, shape):
    return [keras.layers.RandomContrast(args.get("factor", 0.2), seed=seed)]


def color_shift(keras, args, seed, shape):
    # AlexNet-style colour shifting: random hue and saturation changes (RGB images only).
    if shape[-1] != 3:
        return []
    factor = args.get("factor", 0.1)
    return [keras.layers.RandomColorJitter(value_range=(0, 1), saturation_factor=factor, hue_factor=factor,
                                           seed=seed)]


def pca_color(keras, args, seed, shape):
    # AlexNet's "fancy PCA": RGB only, like its hue changes; a grey image has one component.
    return [PrincipalColourNoise(args, seed)] if shape[-1] == 3 else []


def pca_color_image(settings: dict, image, seed):
    """`pca_color` on one image, stateless."""
    import tensorflow as tf

    if image.shape[-1] != 3:
        return image
    alphas = tf.random.stateless_normal((3,), seed, stddev=settings.get("std", 0.1))
    return image + _colour_shift(settings, alphas[None, :])[0]


def _colour_shift(settings: dict, alphas):
    """Per image, the RGB offset sum_i alpha_i * lambda_i * p_i (p_i: the training pixels'
    principal components, lambda_i: their variances), shaped to add to (height, width, 3)."""
    import tensorflow as tf

    values = tf.constant(settings["eigenvalues"], tf.float32)
    vectors = tf.constant(settings["eigenvectors"], tf.float32)  # one component per column
    return tf.reshape(tf.linalg.matmul(alphas * values, vectors, transpose_b=True), (-1, 1, 1, 3))


class PrincipalColourNoise:
    """`pca_color` on training batches: a fresh alpha per image and component each batch, from
    a generator seeded by the run's seed (TensorFlow ops, so inside tf.data on every backend)."""

    def __init__(self, settings: dict, seed: int):
        import tensorflow as tf

        self.settings = settings
        self.generator = tf.random.Generator.from_seed(seed)

    def __call__(self, images, training=True):
        import tensorflow as tf

        if not training:
            return images
        alphas = self.generator.normal((tf.shape(images)[0], 3), stddev=self.settings.get("std", 0.1))
        return images + tf.cast(_colour_shift(self.settings, alphas), images.dtype)


def principal_components(mean_and_covariance) -> dict:
    """pca_color's settings from the training pixels' colour covariance: its eigenvalues and
    eigenvectors (columns), the largest first."""
    _, covariance = mean_and_covariance
    values, vectors = np.linalg.eigh(np.asarray(covariance, "float64"))
    order = np.argsort(values)[::-1]
    return {"eigenvalues": np.clip(values[order], 0, None).tolist(), "eigenvectors": vectors[:, order].tolist()}


def with_training_statistics(entries: list, pixel_statistics) -> list:
    """`augment:` entries with what the training images tell those that learn from them (the
    principal components of pca_color). `pixel_statistics()` streams the training split once
    for (mean, covariance) of its pixels' channels; it is called only when an entry needs it."""
    from ..registries import AUGMENTATIONS

    result, statistics = [], None
    for entry in entries:
        learns = AUGMENTATIONS.get(augmentation_name(entry)).learns_from_training_pixels
        if learns:
            statistics = statistics or pixel_statistics()
            entry = {augmentation_name(entry): {**settings_of(entry), **learns(statistics)}}
        result.append(entry)
    return result


def random_resized_crop_window(settings: dict, image_hw, seed):
    """A window of `scale` (of the image's area) and `ratio` (width / height) drawn by
    TensorFlow's `sample_distorted_bounding_box`, as the Inception and ResNet recipes do; the
    whole image when ten draws do not fit. Stateless: the seed fixes the window."""
    import tensorflow as tf

    scale = settings.get("scale") or (0.08, 1.0)
    ratio = settings.get("ratio") or (3 / 4, 4 / 3)
    whole = tf.constant([[[0.0, 0.0, 1.0, 1.0]]])
    begin, size, _ = tf.image.stateless_sample_distorted_bounding_box(
        tf.concat([tf.cast(image_hw, tf.int32), [1]], 0), whole, seed=seed, min_object_covered=0.0,
        aspect_ratio_range=tuple(ratio), area_range=tuple(scale), max_attempts=10,
        use_image_if_no_bounding_boxes=True)
    return begin[0], begin[1], size[0], size[1]


def crop_window_of(entries: list):
    """`window(image_hw, seed)` of the one `augment:` entry that crops per image, or None."""
    from ..errors import DataError
    from ..registries import AUGMENTATIONS

    croppers = [entry for entry in entries if AUGMENTATIONS.get(augmentation_name(entry)).crop_window]
    if len(croppers) > 1:
        raise DataError(f"augment: {', '.join(augmentation_name(e) for e in croppers)} each pick a window of the "
                        "image; keep one")
    if not croppers:
        return None
    entry = croppers[0]
    settings = settings_of(entry)
    window = AUGMENTATIONS.get(augmentation_name(entry)).crop_window
    return lambda image_hw, seed: window(settings, image_hw, seed)


def split_augmentations(entries: list, image_shape: tuple, seed: int, per_image: bool) -> tuple[list, list]:
    """(per-image functions `f(image, seed)`, Keras layers for batches) for `augment:` entries:
    with `per_image`, the entries that have a per-image form use it. The crop window is neither
    (see `crop_window_of`)."""
    from ..registries import AUGMENTATIONS

    functions, batch_entries = [], []
    for entry in entries:
        known = AUGMENTATIONS.get(augmentation_name(entry))
        if known.crop_window:
            continue
        if per_image and known.per_image:
            settings = settings_of(entry)
            functions.append(lambda image, element_seed, f=known.per_image, s=settings: f(s, image, element_seed))
        else:
            batch_entries.append(entry)
    return functions, augmentation_layers(batch_entries, image_shape, seed)


def augmentation_layers(entries: list, image_shape: tuple, seed: int) -> list:
    """Keras layers for `augment:` entries (`- flip` or `- rotation: {factor: 0.1}`)."""
    import keras

    from ..registries import AUGMENTATIONS

    result = []
    for i, entry in enumerate(entries):
        name = augmentation_name(entry)
        result += AUGMENTATIONS.get(name).layers(keras, settings_of(entry), seed + i, image_shape)
    return result


def settings_of(entry) -> dict:
    """The settings of an `augment:` entry ({} for a bare name)."""
    return {} if isinstance(entry, str) else dict(next(iter(entry.values())) or {})


def augmentation_name(entry) -> str:
    """The name of an `augment:` entry (`flip`, or `{rotation: {factor: 0.1}}`)."""
    return entry if isinstance(entry, str) else next(iter(entry))
