"""The encoder-decoder family: the reconstruction, segmentation and vae trainers on real data,
their pictures and run folders, resume, and taking a pretrained encoder into a classifier."""

import csv
import json

import keras
import numpy as np
import pytest
from PIL import Image

from builder import build_model, load_spec
from trainers import run_training
from trainers.data.pipeline import fit_masks
from trainers.errors import DataError

from ...conftest import BUILDER, SPECS, ZOO

GENERATIVE = [path for path in ZOO if (load_spec(path).train or {}).get("trainer") in
              ("reconstruction", "segmentation", "vae")]


def _history(folder):
    return list(csv.DictReader((folder / "history.csv").read_text().splitlines()))


def test_the_family_is_in_the_zoo():
    assert {p.stem for p in GENERATIVE} == {"autoencoder", "unet", "unet_padded", "fcn8s", "vae", "cvae"}


@pytest.mark.parametrize("path", GENERATIVE, ids=lambda p: p.stem)
def test_every_spec_trains_through_its_trainer(path, tmp_path):
    """One short epoch at the spec's small test size, on the data of its own train section."""
    spec = load_spec(path)
    changes = {"epochs": 1, "batch_size": 8}
    if spec.train["data"]["dataset"] == "shapes":
        changes["data.count"] = 40
    folder, metrics = run_training(path, spec.test_overrides, changes, out=tmp_path, verbose=0)
    assert np.isfinite(metrics["test_loss"])
    assert (folder / "model.keras").is_file() and (folder / "learning_curve.png").is_file()
    keras.backend.clear_session()


def test_autoencoder_learns_digits_and_draws_reconstructions(tmp_path):
    folder, metrics = run_training(SPECS / "autoencoder.yaml", {"size": 16, "width": 8, "latent": 8},
                                   {"epochs": 6}, out=tmp_path, verbose=0)
    history = _history(folder)
    assert float(history[-1]["loss"]) < 0.6 * float(history[0]["loss"])
    assert metrics["test_mse"] < 0.05 and (folder / "reconstructions.png").is_file()
    model = keras.saving.load_model(folder / "model.keras")
    assert [layer.name for layer in model.layers][1:] == ["encoder", "decoder"]


def test_reconstruction_trains_on_a_folder_without_classes(tmp_path):
    rng = np.random.default_rng(0)
    images = tmp_path / "faces"
    images.mkdir()
    for i in range(24):
        Image.fromarray((rng.uniform(0, 1, (20, 20)) * 255).astype("uint8"), "L").save(images / f"{i}.png")
    folder, metrics = run_training(SPECS / "autoencoder.yaml", {"size": 16, "width": 4, "latent": 3},
                                   {"epochs": 1, "data": {"dataset": "image_folder", "path": str(images)}},
                                   out=tmp_path / "runs", verbose=0)
    assert metrics["test_examples"] > 0 and (folder / "reconstructions.png").is_file()


def test_a_classifier_refuses_unlabelled_images(tmp_path):
    images = tmp_path / "plain"
    images.mkdir()
    for i in range(12):
        Image.fromarray(np.full((8, 8), i * 10, "uint8"), "L").save(images / f"{i}.png")
    with pytest.raises(DataError, match="no class labels.*reconstruction, vae"):
        run_training(SPECS / "lenet5.yaml", None, {"data": {"dataset": "image_folder", "path": str(images)}},
                     out=tmp_path / "runs", verbose=0)


def test_segmentation_learns_shapes_with_iou_and_overlay(tmp_path):
    folder, metrics = run_training(SPECS / "unet_padded.yaml", {"width": 8},
                                   {"epochs": 5, "data.count": 600}, out=tmp_path, verbose=0)
    history = _history(folder)
    assert {"mean_iou", "pixel_accuracy", "val_mean_iou"} <= set(history[0])
    assert float(history[-1]["loss"]) < 0.7 * float(history[0]["loss"])
    assert metrics["test_pixel_accuracy"] > 0.9 and metrics["test_mean_iou"] > 0.5  # background alone: ~0.8, 0.2
    assert json.loads((folder / "classes.json").read_text()) == ["background", "circle", "square", "triangle"]
    assert (folder / "segmentation.png").is_file()


def _write_mask_folder(root, count=24, size=16):
    (root / "images").mkdir(parents=True)
    (root / "masks").mkdir()
    rng = np.random.default_rng(1)
    for i in range(count):
        mask = np.zeros((size, size), "uint8")
        top, left = rng.integers(0, size // 2, 2)
        mask[top:top + size // 2, left:left + size // 2] = 1 + i % 2
        image = np.where(mask[..., None] > 0, 200, 30).astype("uint8").repeat(3, axis=-1)
        Image.fromarray(image, "RGB").save(root / "images" / f"case{i}.png")
        Image.fromarray(mask, "L").save(root / "masks" / f"case{i}.png")


def test_segmentation_on_a_folder_of_image_mask_pairs(tmp_path):
    _write_mask_folder(tmp_path / "data")
    folder, metrics = run_training(SPECS / "unet_padded.yaml", {"size": 16, "width": 4, "classes": 3},
                                   {"epochs": 2, "data": {"dataset": "mask_folder", "path": str(tmp_path / "data")}},
                                   out=tmp_path / "runs", verbose=0)
    assert 0 <= metrics["test_mean_iou"] <= 1
    assert json.loads((folder / "classes.json").read_text()) == ["background", "1", "2"]


def test_mask_folder_errors_name_the_mismatch(tmp_path):
    _write_mask_folder(tmp_path / "data", count=12)
    (tmp_path / "data" / "masks" / "case3.png").unlink()
    config = {"epochs": 1, "data": {"dataset": "mask_folder", "path": str(tmp_path / "data")}}
    with pytest.raises(DataError, match="1 image.*no mask of the same name.*case3.png"):
        run_training(SPECS / "unet_padded.yaml", {"size": 16, "width": 4, "classes": 3}, config,
                     out=tmp_path / "runs", verbose=0)
    _write_mask_folder(tmp_path / "other", count=12)
    config["data"]["path"] = str(tmp_path / "other")
    with pytest.raises(DataError, match="class values up to 2 but the model outputs 2 classes.*--set classes=3"):
        run_training(SPECS / "unet_padded.yaml", {"size": 16, "width": 4, "classes": 2}, config,
                     out=tmp_path / "runs", verbose=0)


def test_masks_follow_an_unpadded_output():
    masks = np.arange(2 * 8 * 8).reshape(2, 8, 8)
    np.testing.assert_array_equal(fit_masks(masks, (8, 8), (4, 4)), masks[:, 2:6, 2:6])  # the centre
    np.testing.assert_array_equal(fit_masks(masks, (16, 16), (16, 16))[:, ::2, ::2], masks)  # nearest, no blend


def test_vae_logs_both_terms_warms_up_and_draws(tmp_path):
    folder, metrics = run_training(SPECS / "vae.yaml", {"size": 16, "width": 8, "hidden": 32, "latent": 4},
                                   {"epochs": 4, "kl": {"weight": 1.0, "warmup_epochs": 2}}, out=tmp_path, verbose=0)
    history = _history(folder)
    assert [float(row["kl_weight"]) for row in history] == [0.5, 1.0, 1.0, 1.0]
    for row in history:  # the total is the reconstruction term plus the weighted KL term
        total = float(row["reconstruction_loss"]) + float(row["kl_weight"]) * float(row["kl_loss"])
        assert float(row["loss"]) == pytest.approx(total, rel=1e-3)
    assert float(history[-1]["reconstruction_loss"]) < float(history[0]["reconstruction_loss"])
    assert metrics["test_kl_loss"] > 0
    for picture in ("reconstructions.png", "samples.png", "interpolation.png"):
        assert (folder / picture).is_file(), picture
    network = keras.saving.load_model(folder / "model.keras")  # the plain network, not the wrapper
    assert [t.shape[-1] for t in network.outputs] == [1, 4, 4]


def test_predict_and_evaluate_know_the_trainer(tmp_path):
    import subprocess

    folder, metrics = run_training(SPECS / "autoencoder.yaml", {"size": 16, "width": 4, "latent": 3}, {"epochs": 1},
                                   out=tmp_path, verbose=0)
    image = tmp_path / "digit.png"
    Image.fromarray(np.zeros((8, 8), "uint8"), "L").save(image)
    result = subprocess.run([*BUILDER, "predict", str(folder), str(image)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 1 and "trained by the reconstruction trainer" in result.stderr
    result = subprocess.run([*BUILDER, "evaluate", str(folder)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0
    assert json.loads(result.stdout[result.stdout.index("{"):])["test_mse"] == pytest.approx(metrics["test_mse"],
                                                                                           rel=1e-4)


def test_vae_resumes_after_an_interruption(tmp_path):
    class Interrupt(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            if epoch == 1:
                raise KeyboardInterrupt

    params = {"size": 16, "width": 4, "hidden": 8, "latent": 2}
    with pytest.raises(KeyboardInterrupt):
        run_training(SPECS / "vae.yaml", params, {"epochs": 2, "kl.warmup_epochs": 2}, out=tmp_path, verbose=0,
                     extra_callbacks=[Interrupt()])
    folder = next((tmp_path / "vae").iterdir())
    assert len(_history(folder)) == 1
    # As a run recorded before the `sampling` setting existed: the resume takes its default.
    record = json.loads((folder / "run.json").read_text())
    del record["train"]["sampling"]
    (folder / "run.json").write_text(json.dumps(record))
    folder, metrics = run_training(resume=folder, verbose=0)
    assert [float(row["kl_weight"]) for row in _history(folder)] == [0.5, 1.0]
    assert np.isfinite(metrics["test_loss"])
    assert not (folder / "latent_mixture.npz").exists()  # the default samples from the prior


def test_pretrained_encoder_goes_into_a_classifier(tmp_path):
    small = {"size": 16, "width": 4, "latent": 6}
    pretrained, _ = run_training(SPECS / "autoencoder.yaml", small, {"epochs": 1}, out=tmp_path, verbose=0)
    trained = keras.saving.load_model(pretrained / "model.keras").get_layer("encoder").get_weights()
    init = {"init_from": {"path": str(pretrained), "layers": ["encoder"]}, "freeze": ["encoder"], "epochs": 3}
    folder, metrics = run_training(SPECS / "encoder_classifier.yaml", small, init, out=tmp_path, verbose=0)
    classifier = keras.saving.load_model(folder / "model.keras")
    for before, after in zip(trained, classifier.get_layer("encoder").get_weights()):
        np.testing.assert_array_equal(before, after)  # copied, then kept fixed by `freeze`
    history = _history(folder)
    assert float(history[-1]["loss"]) < float(history[0]["loss"])  # the head learns on the fixed encoder
    # Without freeze the encoder is fine-tuned: it starts from the pretrained weights and moves.
    del init["freeze"]
    init["epochs"] = 1
    folder, _ = run_training(SPECS / "encoder_classifier.yaml", small, init, out=tmp_path, verbose=0)
    tuned = keras.saving.load_model(folder / "model.keras").get_layer("encoder").get_weights()
    assert any(not np.array_equal(a, b) for a, b in zip(trained, tuned))


def test_init_from_names_what_does_not_fit(tmp_path):
    pretrained, _ = run_training(SPECS / "autoencoder.yaml", {"size": 16, "width": 4, "latent": 6}, {"epochs": 1},
                                 out=tmp_path, verbose=0)
    with pytest.raises(DataError, match="'encoder' has weights .* the same architecture"):
        run_training(SPECS / "encoder_classifier.yaml", {"size": 16, "width": 4, "latent": 5},
                     {"init_from": {"path": str(pretrained), "layers": ["encoder"]}}, out=tmp_path, verbose=0)
    with pytest.raises(DataError, match="no layer or sub-model named 'encodr'.*did you mean 'encoder'"):
        run_training(SPECS / "encoder_classifier.yaml", {"size": 16, "width": 4, "latent": 6},
                     {"init_from": {"path": str(pretrained), "layers": ["encodr"]}}, out=tmp_path, verbose=0)


def test_trainers_refuse_models_of_the_wrong_shape(tmp_path):
    from builder.errors import SpecError

    with pytest.raises(SpecError, match="reconstruction trainer needs a model whose .*output has its input's shape"):
        run_training(SPECS / "lenet5.yaml", None, {"trainer": "reconstruction"}, out=tmp_path, verbose=0)
    with pytest.raises(SpecError, match="vae trainer needs a main model with outputs"):
        run_training(SPECS / "autoencoder.yaml", {"size": 16, "width": 4}, {"trainer": "vae"}, out=tmp_path,
                     verbose=0)
    with pytest.raises(SpecError, match="segmentation trainer needs a model that outputs"):
        run_training(SPECS / "lenet5.yaml", None, {"trainer": "segmentation", "data.dataset": "shapes"},
                     out=tmp_path, verbose=0)
    assert build_model(load_spec(SPECS / "vae.yaml", {"size": 16, "width": 4})).name == "vae"


def test_each_trainer_has_its_own_default_reconstruction_loss():
    from builder.language.train_section import resolve_train
    from trainers.generative import vae

    network = build_model(load_spec(SPECS / "vae.yaml", {"size": 16, "width": 4, "hidden": 8, "latent": 2}))
    assert vae.wrap(network, resolve_train({"trainer": "vae"})).reconstruction_kind == "binary_crossentropy"
    assert vae.wrap(network, resolve_train({"trainer": "vae", "loss": "mse"})).reconstruction_kind == "mse"
    autoencoder = build_model(load_spec(SPECS / "autoencoder.yaml", {"size": 16, "width": 4, "latent": 3}))
    from trainers.generative.reconstruction import compile_model

    compile_model(autoencoder, resolve_train({"trainer": "reconstruction"}), steps_per_epoch=1)
    assert autoencoder.loss.name == "mse"


def test_the_calibrated_gaussian_is_the_likelihood_at_its_best_variance():
    """`gaussian_calibrated`: the Gaussian negative log-likelihood per value (scipy's) with the
    batch's mean squared error as the variance, which is the variance that maximises it."""
    from scipy.stats import norm

    from trainers.registries import RECONSTRUCTION_LOSSES

    rng = np.random.default_rng(0)
    target = rng.uniform(size=(4, 6, 6, 1)).astype("float32")
    output = np.clip(target + rng.normal(0, 0.1, target.shape), 0, 1).astype("float32")
    entry = RECONSTRUCTION_LOSSES.get("gaussian_calibrated")
    values = keras.ops.convert_to_numpy(entry.per_pixel(keras.ops.convert_to_tensor(target),
                                                        keras.ops.convert_to_tensor(output)))
    variance = np.mean((target - output) ** 2)
    nll = lambda v: -norm.logpdf(target, loc=output, scale=np.sqrt(v))  # noqa: E731
    np.testing.assert_allclose(values, nll(variance), rtol=1e-4, atol=1e-4)
    assert nll(variance).sum() < min(nll(0.8 * variance).sum(), nll(1.25 * variance).sum())
    per_image = keras.ops.convert_to_numpy(entry.make()(target, output))  # what the reconstruction trainer compiles
    np.testing.assert_allclose(per_image, nll(variance).reshape(4, -1).mean(axis=1), rtol=1e-4)
