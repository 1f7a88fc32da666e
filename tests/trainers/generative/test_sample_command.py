"""`sample`: new images from a generative run (the VAE's decoder on the prior, the GAN's
generator on noise), as a grid and as an array in the data's range."""

import shutil

import numpy as np
import pytest

from builder import load_spec
from builder.cli.main import main
from trainers import run_training
from trainers.generative.latent_mixture import load_latent_mixture
from trainers.generative.sampling import draw, sample_run
from trainers.run.loop import load_trained_model

from ...conftest import SPECS

# Its tests share module fixtures (trained runs): one worker of pytest-xdist takes them all.
pytestmark = pytest.mark.xdist_group("test_sample_command")


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    out = tmp_path_factory.mktemp("runs")
    made = {}
    for name in ("vae", "dcgan_digits"):
        small = load_spec(SPECS / f"{name}.yaml").test_overrides
        made[name], _ = run_training(SPECS / f"{name}.yaml", small, {"epochs": 1, "batch_size": 64}, out=out,
                                     verbose=0)
    made["lenet5"], _ = run_training(SPECS / "lenet5.yaml", None, {"epochs": 1}, out=out, verbose=0)
    return made


@pytest.mark.parametrize("name", ["vae", "dcgan_digits"])
def test_samples_are_images_in_the_data_range_and_seeded(runs, name, tmp_path, capsys):
    grid, array = tmp_path / "grid.png", tmp_path / "samples.npy"
    assert main(["sample", str(runs[name]), "-n", "12", "-o", str(grid), "--array", str(array), "--seed", "3"]) == 0
    images = np.load(array)
    size = 16 if name == "vae" else 32
    assert images.shape == (12, size, size, 1) and images.min() >= 0 and images.max() <= 1
    assert np.abs(images[0] - images[1]).max() > 0 and grid.stat().st_size > 1000  # one image per noise vector
    assert f"12 samples of shape ({size}, {size}, 1): {grid}" in capsys.readouterr().out
    np.testing.assert_array_equal(sample_run(runs[name], 12, seed=3), images)
    assert not np.array_equal(sample_run(runs[name], 12, seed=4), images)


def test_sample_refuses_a_class_for_an_unconditional_run_and_a_classifier_run(runs, capsys):
    assert main(["sample", str(runs["vae"]), "--class", "7"]) == 1
    assert "holds an unconditional model (its decoder takes noise alone): --class needs a class-conditional one" \
        in capsys.readouterr().err
    assert main(["sample", str(runs["lenet5"])]) == 1
    assert "sample draws images from a generative run (vae, adversarial)" in capsys.readouterr().err


def test_a_vae_samples_from_its_fitted_latent_mixture_or_from_the_prior(runs, tmp_path, capsys):
    """specs/vae.yaml trains with `sampling: {from: fitted_mixture}`: the run keeps the mixture,
    and `sample` decodes its codes unless `--from prior` asks for N(0, I)."""
    run = runs["vae"]
    mixture = load_latent_mixture(run)
    assert mixture.means.shape == (10, 2) and mixture.covariances.shape == (10, 2, 2)
    assert mixture.weights.sum() == pytest.approx(1.0)
    decoder = load_trained_model(run).get_layer("decoder")
    from_mixture = np.clip(draw(decoder, 6, noise=mixture.sample(6, seed=5)), 0, 1)
    from_prior = np.clip(draw(decoder, 6, seed=5), 0, 1)
    np.testing.assert_allclose(sample_run(run, 6, seed=5), from_mixture, atol=1e-6)
    array = tmp_path / "prior.npy"
    assert main(["sample", str(run), "-n", "6", "--seed", "5", "--from", "prior", "--array", str(array)]) == 0
    np.testing.assert_allclose(np.load(array), from_prior, atol=1e-6)
    assert np.abs(from_mixture - from_prior).max() > 1e-3


def test_sample_from_refuses_a_gan_run_and_a_vae_run_without_a_mixture(runs, tmp_path, capsys):
    assert main(["sample", str(runs["dcgan_digits"]), "--from", "prior"]) == 1
    assert "--from chooses where a VAE's codes come from" in capsys.readouterr().err
    bare = tmp_path / "vae_without_mixture"
    shutil.copytree(runs["vae"], bare)
    (bare / "latent_mixture.npz").unlink()
    assert main(["sample", str(bare), "--from", "fitted_mixture"]) == 1
    assert f"{bare} has no latent_mixture.npz" in capsys.readouterr().err
