"""The extension points of training, one `builder.Registry` each: datasets, optimizers,
learning-rate schedules, augmentations, reconstruction losses, classification metrics,
adversarial losses, test-time augmentations, export formats and explanation methods (trainers
themselves live in `builder.language.train_section.TRAINERS`, which `validate` reads).

Entries are plain data plus callables that import Keras only when they run, so the `train:`
schema is generated from these registries without loading a backend.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from builder import Registry


@dataclass(frozen=True)
class DatasetEntry:
    """`load(data_config) -> Splits`. `path` is "folder" or "file" when the dataset reads one
    (`data: {path: ...}`, `--data NAME:PATH`), else None."""

    load: Callable[[dict], Any]
    description: str
    path: str | None = None


@dataclass(frozen=True)
class OptionEntry:
    """A named choice with settings: `settings` maps each setting to its JSON Schema, and
    `make(**arguments)` builds the Keras object (its arguments depend on the extension point)."""

    make: Callable[..., Any]
    description: str
    settings: dict = field(default_factory=dict)


@dataclass(frozen=True)
class AugmentationEntry:
    """`layers(keras, settings, seed, image_shape) -> [keras layers]`, applied to batches.
    `moves_pixels` is "no" (photometric), "exactly" (a flip: labels per pixel move with the image)
    or "interpolating". An entry with `crop_window(settings, image_hw, seed) -> (top, left,
    height, width)` (TensorFlow ops) instead picks the part of each image to keep, before
    batching; a spec takes at most one of those. `per_image(settings, image, seed) -> image` is
    the same change made to one image with a stateless seed: the pipeline uses it where it
    handles images one at a time anyway (files, shards, crops), which is both faster than a
    batch-wide layer and exactly repeatable after a resume. An entry with
    `learns_from_training_pixels((mean, covariance)) -> settings` is given those settings too,
    from the training images' pixel statistics, computed once before training."""

    layers: Callable[..., list]
    description: str
    settings: dict = field(default_factory=dict)
    moves_pixels: str = "interpolating"
    crop_window: Callable[..., Any] | None = None
    per_image: Callable[..., Any] | None = None
    learns_from_training_pixels: Callable[..., dict] | None = None
    with_boxes: Callable[..., list] | None = None


@dataclass(frozen=True)
class AdversarialLossEntry:
    """The two players' losses on the discriminator's outputs; `sigmoid` when they are logits of
    a probability (history.csv then shows D(x) as a probability)."""

    discriminator: Callable[..., Any]
    generator: Callable[..., Any]
    description: str
    sigmoid: bool = False


@dataclass(frozen=True)
class LossEntry:
    """A reconstruction loss: `make()` gives the Keras loss for `compile`, `per_pixel(target,
    output)` the element-wise error (keras.ops) that the VAE sums per image."""

    make: Callable[[], Any]
    per_pixel: Callable[[Any, Any], Any]
    description: str


@dataclass(frozen=True)
class TestTimeEntry:
    """A test-time augmentation: `views(images, image_hw) -> [batches]` (keras.ops, so on every
    backend) cuts each image into the views whose predictions are averaged. `enlarge` is the
    fraction of the image the model's input covers: below 1, the images arrive that much larger
    than the model's input (crops); 1, at its size."""

    views: Callable[[Any, tuple], list]
    description: str
    enlarge: float = 1.0


@dataclass(frozen=True)
class ExportEntry:
    """A serving format: Keras's `model.export(path, format=keras_format)` writes it as
    `artifact` (a file, or a folder for SavedModel); `load(path) -> run(images) -> outputs`
    runs it in its own runtime."""

    keras_format: str
    artifact: str
    load: Callable[[str], Callable]
    description: str


@dataclass(frozen=True)
class ExplanationEntry:
    """A heatmap method (`explain --method`): `heatmaps(explainable, feature_maps, classes) ->
    (N, h, w) maps` over one layer's maps (`trainers.supervised.explanations.Explainable`)."""

    heatmaps: Callable[..., Any]
    description: str


DATASETS: Registry[DatasetEntry] = Registry("dataset")
OPTIMIZERS: Registry[OptionEntry] = Registry("optimizer")
SCHEDULES: Registry[OptionEntry] = Registry("schedule")
AUGMENTATIONS: Registry[AugmentationEntry] = Registry("augmentation")
RECONSTRUCTION_LOSSES: Registry[LossEntry] = Registry("reconstruction loss")
METRICS: Registry[OptionEntry] = Registry("metric")
ADVERSARIAL_LOSSES: Registry[AdversarialLossEntry] = Registry("adversarial loss")
TEST_TIME_AUGMENTATIONS: Registry[TestTimeEntry] = Registry("test-time augmentation")
EXPORT_FORMATS: Registry[ExportEntry] = Registry("export format")
EXPLANATION_METHODS: Registry[ExplanationEntry] = Registry("explanation method")
