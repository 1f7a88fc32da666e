"""How close generated images come to real ones, measured on the features of a classifier that
never saw generated images: the Fréchet distance, the kernel inception distance (KID: unbiased,
with its standard error over subsets), and precision and recall of the generated distribution
(Kynkäänniemi et al. 2019: the share of generated samples inside the real samples' k-nearest-
neighbour balls, and the reverse). SciPy and scikit-learn do the linear algebra and distances."""

from __future__ import annotations

import warnings

import numpy as np


def frechet_distance(real: np.ndarray, generated: np.ndarray) -> float:
    """||mu_r - mu_g||^2 + Tr(S_r + S_g - 2 (S_r S_g)^(1/2)) of two feature sets (rows)."""
    from scipy import linalg

    mean_real, mean_generated = real.mean(axis=0), generated.mean(axis=0)
    cov_real, cov_generated = np.cov(real, rowvar=False), np.cov(generated, rowvar=False)
    with warnings.catch_warnings():  # a collapsed generator's covariance is singular: the distance still holds
        warnings.simplefilter("ignore", linalg.LinAlgWarning)
        root = linalg.sqrtm(cov_real @ cov_generated)
    root = root.real  # the imaginary part is rounding noise of a product of two covariances
    return float(np.sum((mean_real - mean_generated) ** 2) + np.trace(cov_real + cov_generated - 2.0 * root))


def kernel_inception_distance(real: np.ndarray, generated: np.ndarray, subsets: int = 100,
                              subset_size: int = 500, seed: int = 0) -> tuple[float, float]:
    """(mean, standard error) over random subsets of the unbiased squared MMD with the cubic
    polynomial kernel (x.y / d + 1)^3 of Bińkowski et al. 2018."""
    from sklearn.metrics.pairwise import polynomial_kernel

    rng = np.random.default_rng(seed)
    size = min(subset_size, len(real), len(generated))
    values = []
    for _ in range(subsets):
        x = real[rng.choice(len(real), size, replace=False)]
        y = generated[rng.choice(len(generated), size, replace=False)]
        kernel = lambda a, b: polynomial_kernel(a, b, degree=3, gamma=1.0 / real.shape[1], coef0=1.0)  # noqa: E731
        kxx, kyy, kxy = kernel(x, x), kernel(y, y), kernel(x, y)
        within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (size * (size - 1))
        values.append(within - 2.0 * kxy.mean())
    values = np.array(values)
    return float(values.mean()), float(values.std(ddof=1) / np.sqrt(len(values)))


def precision_recall(real: np.ndarray, generated: np.ndarray, k: int = 3) -> tuple[float, float]:
    """(precision, recall): generated samples inside the real manifold (the union of balls reaching
    each real sample's k-th nearest real neighbour), and real samples inside the generated one."""
    from sklearn.metrics import pairwise_distances

    def covered(reference, queries):
        within = pairwise_distances(reference)
        radii = np.sort(within, axis=1)[:, k]  # column 0 is the sample itself
        return float((pairwise_distances(queries, reference) <= radii[None, :]).any(axis=1).mean())

    return covered(real, generated), covered(generated, real)
