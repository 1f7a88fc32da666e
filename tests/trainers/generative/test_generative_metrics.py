"""The generative quality measures move the right way: zero-ish for two samples of one
distribution, large for a shifted one or for a collapsed generator; against closed forms."""

import numpy as np

from trainers.generative.quality import frechet_distance, kernel_inception_distance, precision_recall


def gaussian(rng, count, mean=0.0, scale=1.0, dim=8):
    return rng.normal(mean, scale, (count, dim))


def test_frechet_distance_matches_the_closed_form_for_gaussians():
    rng = np.random.default_rng(0)
    real, same = gaussian(rng, 4000), gaussian(rng, 4000)
    shifted, wider = gaussian(rng, 4000, mean=1.0), gaussian(rng, 4000, scale=2.0)
    assert frechet_distance(real, same) < 0.05
    # |mu|^2 = 8 for a shift of 1 in 8 dims; Tr(I + 4I - 2 * 2I) = 8 for twice the spread
    assert abs(frechet_distance(real, shifted) - 8.0) < 0.3
    assert abs(frechet_distance(real, wider) - 8.0) < 0.4


def test_kid_is_unbiased_near_zero_and_grows_with_the_gap():
    rng = np.random.default_rng(1)
    real, same, shifted = gaussian(rng, 1000), gaussian(rng, 1000), gaussian(rng, 1000, mean=0.5)
    mean, error = kernel_inception_distance(real, same, subsets=50, subset_size=200)
    assert abs(mean) < 3 * error + 1e-3 and error > 0  # unbiased: zero within its error
    far, far_error = kernel_inception_distance(real, shifted, subsets=50, subset_size=200)
    assert far > 10 * far_error and far > mean + 0.05


def test_precision_and_recall_tell_quality_from_coverage():
    rng = np.random.default_rng(2)
    real = gaussian(rng, 800, dim=4)
    precision, recall = precision_recall(real, gaussian(rng, 800, dim=4))
    assert precision > 0.85 and recall > 0.85
    collapsed = np.repeat(real[:1], 800, axis=0)  # one real-looking image over and over
    precision, recall = precision_recall(real, collapsed)
    assert precision == 1.0 and recall < 0.05
    precision, recall = precision_recall(real, gaussian(rng, 800, mean=6.0, dim=4))  # off the manifold
    assert precision < 0.05 and recall < 0.05


def test_a_collapsed_generator_has_a_large_distance_and_no_warning(recwarn):
    rng = np.random.default_rng(3)
    real = gaussian(rng, 500)
    assert frechet_distance(real, np.repeat(real[:1], 500, axis=0)) > 7.0
    assert not [w for w in recwarn if "singular" in str(w.message).lower()]
