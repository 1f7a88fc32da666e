"""Data augmentation declared in the spec, as Keras preprocessing layers (training batches only)."""

from __future__ import annotations


def _flip(keras, args, seed, shape):
    return [keras.layers.RandomFlip(args.get("mode", "horizontal"), seed=seed)]


def _crop(keras, args, seed, shape):
    # The seeds' random cropping: pad, then cut a random window of the original size.
    pad = args.get("padding", max(1, shape[0] // 8))
    return [keras.layers.ZeroPadding2D(pad), keras.layers.RandomCrop(shape[0], shape[1], seed=seed)]


def _rotation(keras, args, seed, shape):
    return [keras.layers.RandomRotation(args.get("factor", 0.05), fill_mode="constant", seed=seed)]


def _translation(keras, args, seed, shape):
    factor = args.get("factor", 0.1)
    return [keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=seed)]


def _zoom(keras, args, seed, shape):
    return [keras.layers.RandomZoom(args.get("factor", 0.1), fill_mode="constant", seed=seed)]


def _brightness(keras, args, seed, shape):
    return [keras.layers.RandomBrightness(args.get("factor", 0.2), value_range=(0, 1), seed=seed)]


def _contrast(keras, args, seed, shape):
    return [keras.layers.RandomContrast(args.get("factor", 0.2), seed=seed)]


def _color_shift(keras, args, seed, shape):
    # AlexNet-style colour shifting: random hue and saturation changes (RGB images only).
    if shape[-1] != 3:
        return []
    factor = args.get("factor", 0.1)
    return [keras.layers.RandomColorJitter(value_range=(0, 1), saturation_factor=factor, hue_factor=factor,
                                           seed=seed)]


AUGMENTATIONS = {
    "flip": _flip, "crop": _crop, "rotation": _rotation, "translation": _translation, "zoom": _zoom,
    "brightness": _brightness, "contrast": _contrast, "color_shift": _color_shift,
}


def augmentation_layers(entries: list, image_shape: tuple, seed: int) -> list:
    """Keras layers for `augment:` entries (`- flip` or `- rotation: {factor: 0.1}`)."""
    import keras

    result = []
    for i, entry in enumerate(entries):
        name, args = (entry, {}) if isinstance(entry, str) else next(iter(entry.items()))
        result += AUGMENTATIONS[name](keras, args or {}, seed + i, image_shape)
    return result
