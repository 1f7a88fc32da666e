"""Data augmentation declared in the spec, as Keras preprocessing layers (training batches only).

Each function is an entry of `trainers.registries.AUGMENTATIONS` (registered in `trainers.builtin`)."""

from __future__ import annotations


def flip(keras, args, seed, shape):
    return [keras.layers.RandomFlip(args.get("mode", "horizontal"), seed=seed)]


def crop(keras, args, seed, shape):
    # The seeds' random cropping: pad, then cut a random window of the original size.
    pad = args.get("padding", max(1, shape[0] // 8))
    return [keras.layers.ZeroPadding2D(pad), keras.layers.RandomCrop(shape[0], shape[1], seed=seed)]


def rotation(keras, args, seed, shape):
    return [keras.layers.RandomRotation(args.get("factor", 0.05), fill_mode="constant", seed=seed)]


def translation(keras, args, seed, shape):
    factor = args.get("factor", 0.1)
    return [keras.layers.RandomTranslation(factor, factor, fill_mode="constant", seed=seed)]


def zoom(keras, args, seed, shape):
    return [keras.layers.RandomZoom(args.get("factor", 0.1), fill_mode="constant", seed=seed)]


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


def augmentation_layers(entries: list, image_shape: tuple, seed: int) -> list:
    """Keras layers for `augment:` entries (`- flip` or `- rotation: {factor: 0.1}`)."""
    import keras

    from .registries import AUGMENTATIONS

    result = []
    for i, entry in enumerate(entries):
        name, args = augmentation_name(entry), ({} if isinstance(entry, str) else next(iter(entry.values())))
        result += AUGMENTATIONS.get(name).layers(keras, args or {}, seed + i, image_shape)
    return result


def augmentation_name(entry) -> str:
    """The name of an `augment:` entry (`flip`, or `{rotation: {factor: 0.1}}`)."""
    return entry if isinstance(entry, str) else next(iter(entry))
