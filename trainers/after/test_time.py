"""Test-time augmentation, the seeds' multi-crop: a classifier's probabilities averaged over
views of each image (mirror images; the four corners and the centre of a larger copy).

The views are cut by a Keras model wrapped around the trained one (`keras.ops`, so on every
backend), and the larger copy comes from the same input pipeline as the test images, resized
from the source image rather than upsampled from the model-sized one.
"""

from __future__ import annotations

from dataclasses import replace

import keras

from ..data.pipeline import Preprocessing, StreamPlan, eval_stream, first_output, image_file_inputs, model_image_shape
from ..errors import DataError
from ..registries import TEST_TIME_AUGMENTATIONS


def mirrored(images, image_hw) -> list:
    return [images, keras.ops.flip(images, axis=2)]


def corners_and_centre(images, image_hw) -> list:
    height, width = image_hw
    below, right = int(images.shape[1]) - height, int(images.shape[2]) - width
    origins = [(0, 0), (0, right), (below, 0), (below, right), (below // 2, right // 2)]
    return [images[:, top:top + height, left:left + width, :] for top, left in origins]


def corners_and_centre_mirrored(images, image_hw) -> list:
    crops = corners_and_centre(images, image_hw)
    return crops + [keras.ops.flip(crop, axis=2) for crop in crops]


def view_size(image_hw, mode: str | None) -> tuple:
    """The size images arrive at for `mode` (None: no test-time augmentation)."""
    enlarge = TEST_TIME_AUGMENTATIONS.get(mode).enlarge if mode else 1.0
    return tuple(int(round(side / enlarge)) for side in image_hw)


def view_count(mode: str | None, image_shape) -> int:
    if not mode:
        return 1
    images = keras.KerasTensor((1, *view_size(image_shape[:2], mode), image_shape[-1]))
    return len(TEST_TIME_AUGMENTATIONS.get(mode).views(images, tuple(image_shape[:2])))


def averaged_model(model, mode: str | None) -> keras.Model:
    """A model taking images at `view_size` and giving `model`'s main output averaged over the
    views of `mode` (None: the main output of the plain image, so both sides of a comparison
    are computed the same way)."""
    height, width, channels = model_image_shape(model)
    inputs = keras.Input((*view_size((height, width), mode), channels), name="images")
    views = TEST_TIME_AUGMENTATIONS.get(mode).views(inputs, (height, width)) if mode else [inputs]
    # One call per view rather than one call on the views stacked: memory stays at one batch's.
    predictions = [first_output(model(view)) for view in views]
    outputs = keras.layers.Average(name="average")(predictions) if len(predictions) > 1 else predictions[0]
    return keras.Model(inputs, outputs, name=f"{model.name}_{mode or 'plain'}")


def enlarged(prep: Preprocessing, mode: str | None) -> Preprocessing:
    """The test images' preprocessing at `view_size`. A run that centre-crops its test images
    keeps the aspect ratio: the larger copy is the centre square at the enlarged size."""
    if not mode or TEST_TIME_AUGMENTATIONS.get(mode).enlarge == 1.0:
        return prep
    size = view_size(prep.size, mode)
    return replace(prep, image_shape=(*size, prep.image_shape[-1]), center_crop=1.0 if prep.center_crop else None)


def evaluate_with_tta(model, config: dict, mode: str) -> dict:
    """The test metrics without and with `mode`, side by side: {"plain": {...}, mode: {...}}."""
    from ..supervised.classification import compile_model, label_finisher, prepare

    prepared = prepare(model, config)
    if not len(prepared.splits.test):
        raise DataError("the data has no test split to evaluate on")
    classes = int(model.outputs[0].shape[-1])
    plan = StreamPlan(label_finisher(classes, 1), config["batch_size"], config["seed"])
    result = {}
    for name in (None, mode):
        averaged = averaged_model(model, name)
        compile_model(averaged, config, steps_per_epoch=1)
        stream = eval_stream(prepared.splits.test, enlarged(prepared.preprocessing, name), plan)
        values = averaged.evaluate(stream, verbose=0, return_dict=True)
        result[name or "plain"] = {**{f"test_{key}": float(value) for key, value in values.items()},
                                   "views": view_count(name, prepared.image_shape),
                                   "test_examples": len(prepared.splits.test)}
    return result


def predict_with_tta(model, paths: list, data_config: dict, mode: str | None):
    """Probabilities for image files, averaged over the views of `mode`."""
    prep = Preprocessing.of(model_image_shape(model), data_config)
    return averaged_model(model, mode).predict(image_file_inputs(paths, enlarged(prep, mode)), verbose=0)
