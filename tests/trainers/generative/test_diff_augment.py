"""Differentiable augmentation (`adversarial.diff_augment`, Zhao et al. 2020) on the current
backend (CI runs TensorFlow and JAX): each policy against a NumPy reference, the gradient that
reaches the images, and the train step showing the discriminator augmented images."""

import keras
import numpy as np
import pytest

from builder import build_models, load_spec
from builder.language.train_section import resolve_train
from trainers.generative import adversarial
from trainers.generative.diff_augment import CUTOUT, PARAMETERS, TRANSLATION, augment

from ...conftest import SPECS

RNG = np.random.default_rng(0)
IMAGES = RNG.uniform(-1, 1, (6, 16, 12, 2)).astype("float32")
UNIFORM = RNG.uniform(size=(6, PARAMETERS)).astype("float32")
COLUMNS = {"color": slice(0, 3), "translation": slice(3, 5), "cutout": slice(5, 7)}


def _apply(policies, images=IMAGES, uniform=UNIFORM):
    return keras.ops.convert_to_numpy(augment(keras.ops.convert_to_tensor(images), policies,
                                              keras.ops.convert_to_tensor(uniform)))


def _gradient_of_sum(function, images):
    if keras.backend.backend() == "jax":
        import jax

        return np.asarray(jax.grad(lambda x: function(x).sum())(images))
    import tensorflow as tf

    images = tf.constant(images)
    with tf.GradientTape() as tape:
        tape.watch(images)
        total = tf.reduce_sum(function(images))
    return tape.gradient(total, images).numpy()


def _shifts(fraction, size):
    reach = int(size * TRANSLATION + 0.5)
    return np.floor(fraction * (2 * reach + 1)).astype(int) - reach


def _erased(fraction, size):
    side = int(size * CUTOUT + 0.5)
    start = np.floor(fraction * (size + 1 - side % 2)).astype(int) - side // 2
    return [(max(s, 0), min(s + side, size)) for s in start]


def test_translation_shifts_each_image_by_whole_pixels_and_fills_with_zeros():
    shifted = _apply(["translation"])
    rows, columns = _shifts(UNIFORM[:, 3], 16), _shifts(UNIFORM[:, 4], 12)
    assert len(set(rows)) > 1 and np.abs(rows).max() <= 2 and np.abs(columns).max() <= 2
    for image, out, dy, dx in zip(IMAGES, shifted, rows, columns):
        want = np.zeros_like(image)
        source = image[max(-dy, 0):16 - max(dy, 0), max(-dx, 0):12 - max(dx, 0)]
        want[max(dy, 0):max(dy, 0) + source.shape[0], max(dx, 0):max(dx, 0) + source.shape[1]] = source
        np.testing.assert_allclose(out, want, atol=1e-6)


def test_cutout_erases_one_square_per_image_half_the_side_wide():
    cut = _apply(["cutout"])
    for image, out, (top, bottom), (left, right) in zip(IMAGES, cut, _erased(UNIFORM[:, 5], 16),
                                                        _erased(UNIFORM[:, 6], 12)):
        want = image.copy()
        want[top:bottom, left:right] = 0.0
        np.testing.assert_allclose(out, want, atol=1e-6)


def test_color_scales_brightness_saturation_and_contrast_as_the_paper_does():
    u = UNIFORM[:, COLUMNS["color"]][:, :, None, None, None]
    want = IMAGES + (u[:, 0] - 0.5)
    mean = want.mean(axis=3, keepdims=True)
    want = (want - mean) * (u[:, 1] * 2) + mean
    mean = want.mean(axis=(1, 2, 3), keepdims=True)
    want = (want - mean) * (u[:, 2] + 0.5) + mean
    np.testing.assert_allclose(_apply(["color"]), want, rtol=1e-5, atol=1e-5)


def test_the_gradient_reaches_every_pixel_the_discriminator_still_sees():
    """d(sum of outputs)/d(input) is 1 where a pixel stays in view and 0 where it is shifted out
    or erased."""
    expected = {"translation": _kept_by_translation(), "cutout": _apply(["cutout"], np.ones_like(IMAGES))}
    uniform = keras.ops.convert_to_tensor(UNIFORM)
    for policy, in_view in expected.items():
        gradient = _gradient_of_sum(lambda x, p=policy: augment(x, [p], uniform), IMAGES)
        assert 0 < in_view.mean() < 1
        np.testing.assert_allclose(gradient, in_view, atol=1e-6)
    assert np.abs(_gradient_of_sum(lambda x: augment(x, ["color"], uniform), IMAGES)).sum() > 0


def _kept_by_translation():
    """1 at the input pixels a translation keeps in view."""
    kept = np.zeros_like(IMAGES)
    for index, (dy, dx) in enumerate(zip(_shifts(UNIFORM[:, 3], 16), _shifts(UNIFORM[:, 4], 12))):
        kept[index, max(-dy, 0):16 - max(dy, 0), max(-dx, 0):12 - max(dx, 0)] = 1.0
    return kept


@pytest.mark.parametrize("policies", [[], ["translation", "cutout"]])
def test_the_step_shows_the_discriminator_augmented_images_only_when_asked(policies):
    spec = SPECS / "dcgan_digits.yaml"
    generator, discriminator = adversarial.networks_of(build_models(spec, load_spec(spec).test_overrides))
    settings = {**resolve_train({"trainer": "adversarial"})["adversarial"], "diff_augment": policies}
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    step = adversarial.make_step(generator, discriminator, g_opt, d_opt, settings, seed=0)
    images = np.random.default_rng(1).uniform(-1, 1, (16, 32, 32, 1)).astype("float32")
    unaugmented = float(adversarial.discriminator_view("non_saturating", discriminator(images, training=True)))
    values = step(images, 0)
    if policies:
        assert abs(values["d_real"] - unaugmented) > 1e-4
    else:
        assert values["d_real"] == pytest.approx(unaugmented, rel=1e-4, abs=1e-5)
