"""The adversarial trainer on the current backend (CI runs TensorFlow and JAX): losses, both
networks and optimizers checkpointed, resume, per-epoch monitoring and the failure warnings."""

import csv
import json

import keras
import numpy as np
import pytest

from builder import load_spec
from builder.errors import SpecError
from trainers import run_training
from trainers.generative import adversarial

from ...conftest import SPECS

SMALL = load_spec(SPECS / "dcgan_digits.yaml").test_overrides


def _history(folder):
    return list(csv.DictReader((folder / "history.csv").read_text().splitlines()))


def _logits(values):
    return keras.ops.convert_to_tensor(np.array(values, "float32"))


def test_losses_match_their_formulas():
    real, fake = _logits([2.0, -1.0]), _logits([0.5, -3.0])
    sigmoid = lambda x: 1 / (1 + np.exp(-np.array(x)))  # noqa: E731
    value = lambda t: float(keras.ops.convert_to_numpy(t))  # noqa: E731
    d_minimax = -np.mean(np.log(sigmoid([2.0, -1.0]))) - np.mean(np.log(1 - sigmoid([0.5, -3.0])))
    assert value(adversarial.discriminator_loss("minimax", real, fake)) == pytest.approx(d_minimax, rel=1e-5)
    smoothed = -np.mean(0.9 * np.log(sigmoid([2.0, -1.0])) + 0.1 * np.log(1 - sigmoid([2.0, -1.0])))
    assert value(adversarial.discriminator_loss("non_saturating", real, fake, 0.1)) == pytest.approx(
        smoothed - np.mean(np.log(1 - sigmoid([0.5, -3.0]))), rel=1e-5)
    assert value(adversarial.generator_loss("minimax", fake)) == pytest.approx(
        np.mean(np.log(1 - sigmoid([0.5, -3.0]))), rel=1e-5)
    assert value(adversarial.generator_loss("non_saturating", fake)) == pytest.approx(
        -np.mean(np.log(sigmoid([0.5, -3.0]))), rel=1e-5)
    assert value(adversarial.discriminator_loss("hinge", real, fake)) == pytest.approx((0 + 2) / 2 + (1.5 + 0) / 2)
    assert value(adversarial.discriminator_loss("wgan_gp", real, fake)) == pytest.approx(-1.25 - 0.5)
    assert value(adversarial.generator_loss("hinge", fake)) == pytest.approx(1.25)


@pytest.mark.parametrize("loss", ["minimax", "non_saturating", "hinge", "wgan_gp"])
def test_every_loss_trains_both_networks(loss, tmp_path):
    changes = {"epochs": 2, "batch_size": 64, "adversarial.loss": loss,
               "adversarial.n_critic": 2 if loss == "wgan_gp" else 1,
               "adversarial.label_smoothing": 0.1 if loss == "non_saturating" else 0.0}
    folder, metrics = run_training(SPECS / "dcgan_digits.yaml", SMALL, changes, out=tmp_path, verbose=0)
    history = _history(folder)
    assert len(history) == 2
    assert {"d_loss", "g_loss", "d_real", "d_fake", "g_grad_norm", "diversity"} <= set(history[0])
    assert all(np.isfinite(float(value)) for row in history for value in row.values())
    if adversarial.is_sigmoid(loss):
        assert all(0 <= float(row[key]) <= 1 for row in history for key in ("d_real", "d_fake"))
    for name in adversarial.NETWORKS:
        network = keras.saving.load_model(folder / f"{name}.keras")
        assert network.name == name
    assert sorted(p.name for p in (folder / "samples").iterdir()) == ["epoch_001.png", "epoch_002.png"]
    assert (folder / "samples.png").is_file() and (folder / "learning_curve.png").is_file()
    assert metrics["final_d_loss"] == pytest.approx(float(history[-1]["d_loss"]))
    keras.backend.clear_session()


def test_checkpoint_holds_both_networks_and_optimizers_and_resumes(tmp_path, monkeypatch):
    changes = {"epochs": 2, "batch_size": 64}
    calls = []
    original = adversarial.save_grid

    def interrupt_in_epoch_two(samples, path, title):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        original(samples, path, title)

    monkeypatch.setattr(adversarial, "save_grid", interrupt_in_epoch_two)
    with pytest.raises(KeyboardInterrupt):
        run_training(SPECS / "dcgan_digits.yaml", SMALL, changes, out=tmp_path, verbose=0)
    monkeypatch.setattr(adversarial, "save_grid", original)
    folder = next((tmp_path / "dcgan_digits").iterdir())
    # As a run recorded before `adversarial.diff_augment` existed: the resume takes its default.
    record = json.loads((folder / "run.json").read_text())
    del record["train"]["adversarial"]["diff_augment"]
    (folder / "run.json").write_text(json.dumps(record))
    steps = (1797 - 359) // 64  # training and validation images, in full batches
    with np.load(folder / "checkpoints" / "epoch_001.npz") as archive:
        assert int(archive["generator_optimizer_0000"]) == steps == int(archive["discriminator_optimizer_0000"])
        assert any(key.startswith("discriminator_0") for key in archive.files)
    folder, _ = run_training(resume=folder, verbose=0)
    assert [row["epoch"] for row in _history(folder)] == ["1", "2"]
    with np.load(folder / "checkpoints" / "epoch_002.npz") as archive:  # the optimizers carried on
        assert int(archive["generator_optimizer_0000"]) == 2 * steps
    assert not (folder / "checkpoints" / "epoch_001.npz").exists()


def test_averaged_weights_swap_in_the_optimizers_moving_average_and_back():
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(1)])
    optimizer = keras.optimizers.SGD(0.1, use_ema=True, ema_momentum=0.5)
    optimizer.build(model.trainable_variables)
    weights = lambda: [keras.ops.convert_to_numpy(v) for v in model.trainable_variables]  # noqa: E731
    steps = []
    for step in range(3):
        optimizer.apply([keras.ops.ones(v.shape) * (step + 1) for v in model.trainable_variables],
                        model.trainable_variables)
        steps.append(weights())
    average = steps[0]  # Keras's average starts at the first step's weights
    for later in steps[1:]:
        average = [0.5 * a + 0.5 * w for a, w in zip(average, later)]
    with adversarial.averaged_weights(model, optimizer):
        for got, want in zip(weights(), average):
            np.testing.assert_allclose(got, want, rtol=1e-6)
    for got, want in zip(weights(), steps[-1]):
        np.testing.assert_array_equal(got, want)  # training goes on from the weights themselves


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_the_saved_generator_is_the_moving_average_and_the_checkpoint_the_weights(tmp_path, momentum):
    optimizer = {"adam": {"learning_rate": 2e-4, "beta_1": 0.5, "use_ema": True, "ema_momentum": momentum}}
    folder, _ = run_training(SPECS / "dcgan_digits.yaml", SMALL, {"epochs": 1, "batch_size": 64,
                             "adversarial.generator_optimizer": optimizer}, out=tmp_path, verbose=0)
    saved = keras.saving.load_model(folder / "generator.keras").get_weights()
    with np.load(folder / "checkpoints" / "epoch_001.npz") as archive:
        raw = [archive[key] for key in sorted(k for k in archive.files if k.rsplit("_", 1)[0] == "generator")]
    same = [np.allclose(a, b, rtol=1e-6, atol=1e-7) for a, b in zip(saved, raw)]
    assert len(saved) == len(raw)
    assert all(same) if momentum == 0.0 else not all(same)  # momentum 0: the average is the last weights


def test_diversity_tells_collapse_from_variety():
    rng = np.random.default_rng(0)
    real = rng.uniform(-1, 1, (16, 8, 8, 1))
    assert adversarial.diversity(np.repeat(real[:1], 16, axis=0), real) == pytest.approx(0.0, abs=1e-6)
    assert adversarial.diversity(rng.uniform(-1, 1, (16, 8, 8, 1)), real) == pytest.approx(1.0, rel=0.1)


def _row(**values):
    return {"d_real": 0.7, "d_fake": 0.3, "g_grad_norm": 10.0, "diversity": 0.8, **values}


def test_failure_warnings():
    assert adversarial.failure_warnings([_row(diversity=0.05)], "non_saturating") == []  # a fresh generator
    collapsed = adversarial.failure_warnings([_row(), _row(diversity=0.05)], "non_saturating")
    assert len(collapsed) == 1 and collapsed[0].startswith("mode collapse")
    vanished = adversarial.failure_warnings([_row(), _row(d_fake=0.01, g_grad_norm=0.2)], "minimax")
    assert len(vanished) == 1 and "vanishing generator gradients" in vanished[0] and "non_saturating" in vanished[0]
    assert adversarial.failure_warnings([_row(), _row(d_fake=0.01, g_grad_norm=8.0)], "minimax") == []


def test_warnings_reach_the_run_folder(tmp_path, monkeypatch):
    """A run whose samples count as collapsed says so on stderr and in warnings.txt."""
    values = iter([0.9, 0.01])
    monkeypatch.setattr(adversarial, "diversity", lambda samples, reference: next(values))
    folder, _ = run_training(SPECS / "dcgan_digits.yaml", SMALL, {"epochs": 2, "batch_size": 64}, out=tmp_path,
                             verbose=0)
    text = (folder / "warnings.txt").read_text()
    assert text.startswith("epoch 2: mode collapse")


def test_the_spec_must_hold_both_networks(tmp_path, write_spec):
    spec = write_spec("""
        models:
          encoder: {input: [8], layers: [dense: {units: 2}]}
          decoder: {input: [2], layers: [dense: {units: 8}]}
        train: {trainer: adversarial}
    """)
    with pytest.raises(SpecError, match="needs models named generator and discriminator"):
        run_training(spec, None, None, out=tmp_path, verbose=0)


GAN_WITH_NORMALIZATION = """
params: {latent: 4}
models:
  generator:
    input: [$latent]
    layers:
      - dense: {units: 256, activation: tanh}
      - reshape: {target_shape: [16, 16, 1]}
  discriminator:
    input: [16, 16, 1]
    layers:
      - normalization: {adapt: true}
        name: standardize
      - flatten: {}
      - dense: {units: 1}
train:
  trainer: adversarial
  data: {dataset: digits, image_size: [16, 16]}
  epochs: 1
  batch_size: 64
"""


def test_the_discriminator_adapts_to_real_images_and_the_generator_refuses(tmp_path, write_spec):
    from trainers.run.loop import load_trained_model

    folder, _ = run_training(write_spec(GAN_WITH_NORMALIZATION), None, None, out=tmp_path / "runs", verbose=0)
    from builder.language.train_section import resolve_train

    config = resolve_train({"trainer": "adversarial", "data": {"dataset": "digits", "image_size": [16, 16]}})
    real = adversarial.real_batches(config, (16, 16, 1))[1]  # the images the run trained on, in [-1, 1]
    weights = {w.name: keras.ops.convert_to_numpy(w) for w in
               load_trained_model(folder / "discriminator.keras").get_layer("standardize").weights}
    assert weights["mean"].ravel() == pytest.approx([real.mean()], rel=1e-4)
    assert weights["variance"].ravel() == pytest.approx([real.var()], rel=1e-4)
    in_generator = GAN_WITH_NORMALIZATION.replace("      - dense: {units: 256, activation: tanh}",
                                                  "      - normalization: {adapt: true}\n"
                                                  "      - dense: {units: 256, activation: tanh}")
    with pytest.raises(Exception, match="`adapt: true` asks for statistics of the training data"):
        run_training(write_spec(in_generator, "generator.yaml"), None, None, out=tmp_path / "again", verbose=0)
