"""Class-conditional generation (specs/cgan_digits.yaml) on the current backend (CI runs
TensorFlow and JAX): labels flow from the data into both networks of the adversarial trainer's
own steps, the grids show a class per row, and `sample --class` draws the class asked for."""

import keras
import numpy as np
import pytest

from builder import build_models, load_spec
from builder.cli.main import main
from builder.errors import SpecError
from builder.language.train_section import resolve_train
from trainers import run_training
from trainers.generative import adversarial
from trainers.generative.sampling import network_inputs, one_hot, sample_run
from trainers.run.loop import load_trained_model

from ...conftest import SPECS

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_conditional_generation")

SPEC = SPECS / "cgan_digits.yaml"
SMALL = load_spec(SPEC).test_overrides


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder, _ = run_training(SPEC, SMALL, {"epochs": 1, "batch_size": 64}, out=tmp_path_factory.mktemp("runs"),
                             verbose=0)
    return folder


def test_real_batches_pair_each_image_with_its_own_label():
    config = resolve_train({"trainer": "adversarial", "data": {"dataset": "digits"}, "batch_size": 64})
    dataset, images, labels = adversarial.real_batches(config, (32, 32, 1), classes=10)
    plain = adversarial.real_batches(config, (32, 32, 1))
    np.testing.assert_array_equal(plain[1], images)
    assert plain[2] is None and labels.shape == (len(images), 10) and set(labels.sum(axis=1)) == {1.0}
    # every shuffled batch keeps the pairs: each image's label is the one it had before shuffling
    by_image = {image.tobytes(): label for image, label in zip(images, labels)}
    batch_images, batch_labels = next(iter(dataset))
    for image, label in zip(np.asarray(batch_images), np.asarray(batch_labels)):
        np.testing.assert_array_equal(by_image[image.tobytes()], label)


@pytest.mark.parametrize("loss", ["non_saturating", "wgan_gp"])
def test_the_train_step_shows_the_discriminator_each_real_image_with_its_label(loss):
    models = build_models(SPEC, SMALL)
    generator, discriminator = adversarial.networks_of(models)
    settings = {**resolve_train({"trainer": "adversarial"})["adversarial"], "loss": loss}
    g_opt, d_opt = keras.optimizers.Adam(1e-3), keras.optimizers.Adam(1e-3)
    g_opt.build(generator.trainable_variables)
    d_opt.build(discriminator.trainable_variables)
    step = adversarial.make_step(generator, discriminator, g_opt, d_opt, settings, seed=0)
    rng = np.random.default_rng(0)
    images = rng.uniform(-1, 1, (16, 32, 32, 1)).astype("float32")
    labels = one_hot(rng.integers(0, 10, 16), 10)
    scores = discriminator(network_inputs(discriminator, images, labels), training=True)
    expected = adversarial.discriminator_view(loss, scores)  # D(x) before the step's update
    shuffled = discriminator(network_inputs(discriminator, images, labels[::-1]), training=True)
    assert abs(float(adversarial.discriminator_view(loss, shuffled)) - float(expected)) > 1e-4  # labels matter
    values = step((images, labels), 0)
    assert values["d_real"] == pytest.approx(float(expected), rel=1e-4, abs=1e-5)
    assert all(np.isfinite(value) for value in values.values())


def test_a_conditional_run_keeps_a_class_per_grid_row_and_samples_the_class_asked_for(run, tmp_path, capsys):
    generator = load_trained_model(run)
    assert [tensor.name for tensor in generator.inputs] == ["noise", "label"]
    grid = adversarial.grid_inputs(generator, seed=0)
    np.testing.assert_array_equal(grid[1].argmax(axis=1), np.repeat(np.arange(10), adversarial.GRID_COLUMNS))
    array = tmp_path / "sevens.npy"
    assert main(["sample", str(run), "--class", "7", "-n", "5", "--seed", "3", "--array", str(array)]) == 0
    noise = np.random.default_rng(3).standard_normal((5, 4)).astype("float32")
    asked = (np.asarray(generator.predict([noise, one_hot([7] * 5, 10)], verbose=0)) + 1.0) / 2.0
    np.testing.assert_allclose(np.load(array), np.clip(asked, 0.0, 1.0), atol=1e-6)
    other = (np.asarray(generator.predict([noise, one_hot([2] * 5, 10)], verbose=0)) + 1.0) / 2.0
    assert np.abs(np.load(array) - other).max() > 1e-4  # the class changes the image
    every = sample_run(run, 12, seed=3)  # no class: each class in turn
    first = (np.asarray(generator.predict([np.random.default_rng(3).standard_normal((12, 4)).astype("float32"),
                                          one_hot(np.arange(12) % 10, 10)], verbose=0)) + 1.0) / 2.0
    np.testing.assert_allclose(every, np.clip(first, 0.0, 1.0), atol=1e-6)
    capsys.readouterr()
    assert main(["sample", str(run), "--class", "10"]) == 1
    assert f"--class 10: {run}'s generator draws classes 0 to 9" in capsys.readouterr().err


def test_conditioning_must_be_given_to_both_networks_and_fit_the_data(tmp_path, write_spec):
    text = SPEC.read_text()
    plain_discriminator = text.replace("inputs: {image: [32, 32, $channels], label: [$classes]}",
                                       "input: [32, 32, $channels]").replace(
        """      - reshape: {target_shape: [1, 1, $classes]}
        from: label
      - upsampling: {size: 32}
        name: label_map                                             # the class at every pixel
      - concat: {}
        from: [image, label_map]
""", "")
    spec = write_spec(plain_discriminator.replace("include: [blocks/dcgan.yaml]",
                                                  f"include: [{SPECS / 'blocks' / 'dcgan.yaml'}]"))
    with pytest.raises(SpecError, match="gives the generator and the discriminator the same one-hot 'label' "
                                        "input; the generator takes 10 classes, the discriminator has none"):
        run_training(spec, {**SMALL}, {"epochs": 1}, out=tmp_path, verbose=0, check_expect=False)
    with pytest.raises(SpecError, match=r"the networks' 'label' input takes 10 classes; the data has 3 "
                                        r"\(circle, square, triangle\)"):
        run_training(SPEC, SMALL, {"epochs": 1, "data": {"dataset": "shapes", "count": 90}}, out=tmp_path,
                     verbose=0)


# -- the conditional VAE (specs/cvae.yaml) -----------------------------------------------------
CVAE = SPECS / "cvae.yaml"
CVAE_SMALL = load_spec(CVAE).test_overrides


@pytest.fixture(scope="module")
def cvae_run(tmp_path_factory):
    folder, metrics = run_training(CVAE, CVAE_SMALL, {"epochs": 2, "batch_size": 64},
                                   out=tmp_path_factory.mktemp("cvae"), verbose=0)
    return folder, metrics


def test_the_vae_streams_feed_each_image_with_its_own_class_and_normalize_only_the_image():
    from trainers.data.datasets import load_dataset
    from trainers.generative.vae import vae_datasets

    network = build_models(CVAE, CVAE_SMALL)["cvae"]
    config = resolve_train({"trainer": "vae", "data": {"dataset": "digits",
                                                     "normalize": {"mean": [0.5], "std": [0.25]}}})
    splits = load_dataset(config["data"])
    _, _, test = vae_datasets(network, splits, (16, 16, 1), config, training=False)
    inputs = next(iter(test))
    assert set(inputs) == {"image", "label"}
    labels = np.asarray(inputs["label"])
    np.testing.assert_array_equal(labels, one_hot(splits.test.labels[:len(labels)], 10))  # test order is kept
    images = np.asarray(inputs["image"])
    assert images.min() == pytest.approx(-2.0) and images.max() == pytest.approx(2.0)  # (0 - 0.5) / 0.25 ...


def test_the_conditional_vae_reconstructs_the_image_and_its_loss_is_the_papers(cvae_run):
    folder, metrics = cvae_run
    network = load_trained_model(folder)
    from trainers.data.datasets import load_dataset
    from trainers.data.pipeline import Preprocessing, materialize

    config = resolve_train({"trainer": "vae", "data": {"dataset": "digits"}})
    images, labels = materialize(load_dataset(config["data"]).test, Preprocessing.of((16, 16, 1), {}))
    reconstruction, mean, log_var = network.predict({"image": images, "label": one_hot(labels, 10)}, verbose=0)
    p = np.clip(np.asarray(reconstruction, "float64"), 1e-7, 1 - 1e-7)
    bce = -(images * np.log(p) + (1 - images) * np.log(1 - p)).reshape(len(images), -1).sum(axis=1)
    kl = -0.5 * (1 + log_var - mean ** 2 - np.exp(log_var)).sum(axis=1)
    assert metrics["test_reconstruction_loss"] == pytest.approx(bce.mean(), rel=1e-3)
    assert metrics["test_kl_loss"] == pytest.approx(kl.mean(), rel=1e-3, abs=1e-4)
    other = network.predict({"image": images[:8], "label": one_hot((labels[:8] + 1) % 10, 10)}, verbose=0)[0]
    assert np.abs(np.asarray(other) - np.asarray(reconstruction[:8])).max() > 1e-4  # the class reaches the decoder


def test_sample_draws_the_class_asked_for_from_the_conditional_decoder(cvae_run):
    folder, _ = cvae_run
    decoder = load_trained_model(folder).get_layer("decoder")
    noise = np.random.default_rng(5).standard_normal((6, 2)).astype("float32")
    asked = np.asarray(decoder.predict([noise, one_hot([4] * 6, 10)], verbose=0))
    np.testing.assert_allclose(sample_run(folder, 6, seed=5, class_index=4), np.clip(asked, 0, 1), atol=1e-6)


def test_a_vae_whose_decoder_ignores_the_label_is_refused(tmp_path, write_spec):
    text = CVAE.read_text().replace("include: [blocks/autoencoder.yaml]",
                                    f"include: [{SPECS / 'blocks' / 'autoencoder.yaml'}]")
    text = text.replace("""    inputs: {noise: [$latent], label: [$classes]}
    layers:
      - concat: {}
        from: [noise, label]
      - conv_decoder""", """    input: [$latent]
    layers:
      - conv_decoder""").replace('from: ["encoded[2]", label]', 'from: "encoded[2]"')
    with pytest.raises(SpecError, match="a class-conditional VAE gives the VAE and the decoder the same one-hot "
                                        "'label' input; the VAE takes 10 classes, the decoder has none"):
        run_training(write_spec(text), CVAE_SMALL, {"epochs": 1}, out=tmp_path, verbose=0, check_expect=False)
