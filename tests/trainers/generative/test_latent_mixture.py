"""The Gaussian mixture a VAE samples its codes from (`sampling: {from: fitted_mixture}`):
fitted to draws from q(z | x), sampled as stored, and bounded in memory."""

import numpy as np
import pytest

from trainers.generative import latent_mixture
from trainers.generative.latent_mixture import LatentMixture, fit_latent_mixture


def test_the_mixture_is_fitted_to_draws_from_the_posterior_not_to_its_means():
    rng = np.random.default_rng(0)
    batches = []
    for _ in range(20):  # 70% of codes near (3, 0), 30% near (-3, 0), each with posterior variance 0.25
        centre = np.where(rng.uniform(size=(100, 1)) < 0.7, 3.0, -3.0) * np.array([[1.0, 0.0]])
        batches.append((centre, np.full((100, 2), np.log(0.25))))
    fitted = fit_latent_mixture(lambda batch: batch, iter(batches), components=2, seed=0)
    order = np.argsort(fitted.means[:, 0])
    np.testing.assert_allclose(fitted.weights[order], [0.3, 0.7], atol=0.05)
    np.testing.assert_allclose(fitted.means[order], [[-3.0, 0.0], [3.0, 0.0]], atol=0.1)
    for covariance in fitted.covariances:
        np.testing.assert_allclose(covariance, 0.25 * np.eye(2), atol=0.04)


def test_sampling_draws_each_component_by_its_weight_and_covariance():
    mixture = LatentMixture(weights=np.array([0.25, 0.75]), means=np.array([[-5.0, 0.0], [5.0, 1.0]]),
                            covariances=np.array([[[1.0, 0.0], [0.0, 1.0]], [[2.0, 0.8], [0.8, 0.5]]]))
    codes = mixture.sample(40_000, seed=1)
    assert codes.dtype == np.float32 and codes.shape == (40_000, 2)
    right = codes[codes[:, 0] > 0]
    assert len(right) / len(codes) == pytest.approx(0.75, abs=0.01)
    np.testing.assert_allclose(right.mean(axis=0), [5.0, 1.0], atol=0.03)
    np.testing.assert_allclose(np.cov(right.T), [[2.0, 0.8], [0.8, 0.5]], atol=0.05)
    np.testing.assert_array_equal(mixture.sample(5, seed=3), mixture.sample(5, seed=3))


def test_the_fit_keeps_a_bounded_uniform_sample_of_the_whole_stream(monkeypatch):
    """A split stored class by class: the first half's codes near -3, the second half's near +3.
    The kept draws are bounded and come from both halves in proportion."""
    monkeypatch.setattr(latent_mixture, "MOST_DRAWS", 2_000)
    rng = np.random.default_rng(0)
    batches = [(np.full((100, 1), -3.0 if index < 30 else 3.0) + rng.normal(0, 0.1, (100, 1)), np.zeros((100, 1)))
               for index in range(60)]  # 24,000 draws in all, twelve times what is kept
    fitted = fit_latent_mixture(lambda batch: batch, iter(batches), components=2, seed=0)
    order = np.argsort(fitted.means[:, 0])
    np.testing.assert_allclose(fitted.means[order, 0], [-3.0, 3.0], atol=0.1)
    np.testing.assert_allclose(fitted.weights[order], [0.5, 0.5], atol=0.05)
