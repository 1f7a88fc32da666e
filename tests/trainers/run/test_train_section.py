"""Each trainer owns its `train:` settings: validate refuses what the chosen trainer would
ignore, at the spec line, naming the trainer, without importing a backend."""

import subprocess
import sys

import pytest

from builder import SpecError, load_spec
from builder.cli import main
from builder.language.train_section import resolve_train

from ...conftest import ROOT

GAN = """
models:
  generator:
    input: [8]
    layers: [dense: {units: 16}]
  discriminator:
    input: [16]
    layers: [dense: {units: 1}]
train:
  trainer: adversarial
  epochs: 1
  {extra}
"""


FIT_TRAINERS = "supervised, reconstruction, segmentation, vae and detection"
WEIGHT_TRAINERS = "supervised, reconstruction, segmentation, vae, metric and detection"  # those that start from weights


@pytest.mark.parametrize("extra, users", [("freeze: [dense1]", WEIGHT_TRAINERS),
                                          ("init_from: {path: runs/x, layers: [encoder]}", WEIGHT_TRAINERS),
                                          ("augment: [flip]", FIT_TRAINERS),
                                          ("early_stopping: {patience: 2}", FIT_TRAINERS)])
def test_the_adversarial_trainer_refuses_settings_it_would_drop(write_spec, capsys, extra, users):
    path = write_spec(GAN.replace("{extra}", extra))
    assert main(["validate", str(path)]) == 1
    key = extra.split(":")[0]
    message = capsys.readouterr().err.strip()
    assert message.startswith(f"{path}:11:3: train.{key}: the adversarial trainer does not use '{key}'; it is a "
                              f"setting of the {users} trainers")
    assert "(its settings: trainer, params, data, epochs, batch_size, seed, distribution, adversarial)" in message


def test_a_setting_of_another_trainer_is_named_as_such(write_spec):
    path = write_spec("input: [4]\nlayers: [dense: {units: 2}]\ntrain:\n  kl: {weight: 0.5}\n")
    with pytest.raises(SpecError) as caught:
        load_spec(path)
    assert str(caught.value).startswith(f"{path}:4:3: train.kl: the supervised trainer does not use 'kl'; "
                                        "it is a setting of the vae trainer")


def test_unknown_trainer_and_misspelt_values_have_located_hints(write_spec):
    path = write_spec("input: [4]\nlayers: [dense: {units: 2}]\ntrain:\n  trainer: supervized\n")
    with pytest.raises(SpecError, match=r":4:12: train.trainer: unknown trainer 'supervized'; did you mean "
                                        r"'supervised'\?"):
        load_spec(path)
    path = write_spec("input: [4]\nlayers: [dense: {units: 2}]\ntrain:\n  augment: [flipp]\n")
    with pytest.raises(SpecError, match=r":4:13: train.augment\[0\]: 'flipp' is not one of flip, crop.*; "
                                        r"did you mean 'flip'\?"):
        load_spec(path)


def test_each_trainer_has_its_own_defaults():
    assert resolve_train({"trainer": "reconstruction"})["loss"] == "mse"
    assert resolve_train({"trainer": "vae"})["loss"] == "binary_crossentropy"
    gan = resolve_train({"trainer": "adversarial", "adversarial": {"n_critic": 5}})
    assert gan["adversarial"]["n_critic"] == 5 and gan["adversarial"]["loss"] == "non_saturating"
    assert "performance" not in gan and "freeze" not in gan
    with pytest.raises(SpecError, match="the adversarial trainer has no setting 'freeze'"):
        resolve_train({"trainer": "adversarial"}, {"freeze": ["x"]})
    assert resolve_train(None, {"trainer": "vae", "kl.weight": 0.25})["kl"] == {"weight": 0.25, "warmup_epochs": 0}


def test_validate_checks_the_train_section_without_a_backend(write_spec):
    path = write_spec(GAN.replace("{extra}", "freeze: [x]"))
    code = ("import sys; from builder.cli import main; rc = main(['validate', sys.argv[1]]); "
            "print('LOADED', [m for m in ('keras', 'tensorflow', 'jax') if m in sys.modules]); sys.exit(rc)")
    result = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, cwd=ROOT,
                            timeout=120)
    assert result.returncode == 1 and "the adversarial trainer does not use 'freeze'" in result.stderr
    assert "LOADED []" in result.stdout
