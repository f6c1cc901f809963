"""Known-answer tests of the distribution distances (MMD, energy distance, W2)."""

import anndata as ad
import numpy as np
import pytest
from sklearn.metrics import pairwise_distances

from sccalmflow import metrics as scm


def _ref_mmd(x, y, gammas, unbiased=False):
    vals = []
    for g in gammas:
        kxx = np.exp(-g * pairwise_distances(x, x, metric="sqeuclidean"))
        kyy = np.exp(-g * pairwise_distances(y, y, metric="sqeuclidean"))
        kxy = np.exp(-g * pairwise_distances(x, y, metric="sqeuclidean"))
        if unbiased:
            n, m = len(x), len(y)
            v = (kxx.sum() - n) / (n * (n - 1)) + (kyy.sum() - m) / (m * (m - 1)) - 2 * kxy.mean()
        else:
            v = kxx.mean() + kyy.mean() - 2 * kxy.mean()
        vals.append(v)
    return np.mean(vals)


# ------------------------------------------------------------------ distribution metrics


def test_identical_sets_give_zero(gauss):
    x = gauss(80, 6)
    assert scm.mmd(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.energy_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.energy_distance(x, x.copy(), squared=True) == pytest.approx(0.0, abs=1e-12)
    assert scm.wasserstein2(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.adaptive_mmd(x, x.copy()) == pytest.approx(0.0, abs=1e-12)


def test_mmd_matches_bruteforce(gauss):
    x, y = gauss(50, 4), gauss(35, 4, shift=0.4, seed=1)
    for unbiased in (False, True):
        ours = scm.mmd(x, y, unbiased=unbiased)
        ref = _ref_mmd(x, y, scm.DEFAULT_GAMMAS, unbiased=unbiased)
        assert ours == pytest.approx(ref, rel=1e-5, abs=1e-9)
    # custom bandwidths, incl. ones not related by powers of two
    g = (0.3, 0.6, 2.4, 0.07)
    assert scm.mmd(x, y, gammas=g) == pytest.approx(_ref_mmd(x, y, g), rel=1e-5)
    assert scm.mmd(x, y) == pytest.approx(scm.mmd(y, x), rel=1e-10)
    assert scm.mmd(x, y) > scm.mmd(x, gauss(35, 4, seed=2))


def test_energy_distance_conventions(gauss):
    x, y = gauss(40, 3), gauss(30, 3, shift=0.7, seed=1)
    n, m = len(x), len(y)
    for metric, squared in (("euclidean", False), ("sqeuclidean", True)):
        dxy = pairwise_distances(x, y, metric=metric)
        dxx = pairwise_distances(x, x, metric=metric)
        dyy = pairwise_distances(y, y, metric=metric)
        with_self = 2 * dxy.mean() - dxx.mean() - dyy.mean()  # pertpy / cell-eval / CellFlow code
        upper = 2 * dxy.mean() - dxx.sum() / (n * (n - 1)) - dyy.sum() / (m * (m - 1))  # i<j
        assert scm.energy_distance(x, y, squared=squared) == pytest.approx(with_self, rel=1e-10)
        assert scm.energy_distance(x, y, squared=squared, self_pairs=False) == pytest.approx(
            upper, rel=1e-10
        )


def test_squared_energy_distance_is_mean_shift_on_handmade_case():
    x = np.array([[0.0, 0.0], [2.0, 0.0], [1.0, 3.0]])  # mean (1, 1)
    y = np.array([[4.0, 1.0], [2.0, 3.0]])  # mean (3, 2)
    # with self-pairs: exactly 2 * |mean_x - mean_y|^2 = 2 * (4 + 1) = 10
    assert scm.energy_distance(x, y, squared=True) == 10.0
    d = lambda a, b: pairwise_distances(a, b, metric="sqeuclidean")  # noqa: E731
    assert 2 * d(x, y).mean() - d(x, x).mean() - d(y, y).mean() == pytest.approx(10.0)
    # without self-pairs: 2 * (|dmu|^2 - tr S_x / n - tr S_y / m)
    tr_sx, tr_sy = x.var(axis=0, ddof=1).sum(), y.var(axis=0, ddof=1).sum()
    expected = 2 * (5.0 - tr_sx / 3 - tr_sy / 2)
    assert scm.energy_distance(x, y, squared=True, self_pairs=False) == pytest.approx(expected)


def test_w2_translation_is_exact_and_matches_pot(gauss):
    import ot

    x = gauss(60, 5)
    mu = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert scm.wasserstein2(x, x + mu) == pytest.approx(np.linalg.norm(mu), rel=1e-9)
    y = gauss(45, 5, shift=0.3, seed=3)
    ref = np.sqrt(ot.emd2(np.full(60, 1 / 60), np.full(45, 1 / 45), ot.dist(x, y)))
    assert scm.wasserstein2(x, y) == pytest.approx(ref, rel=1e-9)
    # 1-D, equal sizes: sorted matching is optimal
    a, b = gauss(200, 1).ravel(), gauss(200, 1, shift=1.0, seed=4).ravel()
    exact_1d = np.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))
    assert scm.wasserstein2(a[:, None], b[:, None]) == pytest.approx(exact_1d, rel=1e-9)


def test_w2_two_gaussians_analytic(gauss):
    # W2(N(0, I), N(mu, I)) = |mu|. Samples are centred exactly (the mean term of W2^2 is then
    # exactly |mu|^2, since W2^2 = |mean difference|^2 + W2^2 of the centred sets); what is
    # left is the small finite-sample transport cost between two 2-D Gaussian samples.
    mu = np.array([3.0, 1.0])
    x, z = gauss(600, 2, seed=10), gauss(600, 2, seed=11)
    x, z = x - x.mean(axis=0), z - z.mean(axis=0)
    w2 = scm.wasserstein2(x, z + mu)
    assert w2 == pytest.approx(np.linalg.norm(mu), abs=0.03)
    assert w2**2 == pytest.approx(mu @ mu + scm.wasserstein2(x, z) ** 2, rel=1e-9)


def test_w2_subsampling_is_reported_and_seeded(gauss):
    x, y = gauss(300, 3), gauss(250, 3, shift=0.5, seed=1)
    v, info = scm.wasserstein2(x, y, max_exact=100, seed=7, return_info=True)
    assert info["subsampled"] and info["n_x_used"] == 100 and info["n_y_used"] == 100
    assert info["n_x"] == 300 and info["name"] == "w2" and info["seed"] == 7
    assert scm.wasserstein2(x, y, max_exact=100, seed=7) == v
    assert scm.wasserstein2(x, y, max_exact=100, seed=8) != v
    _, info = scm.wasserstein2(x, y, return_info=True)
    assert not info["subsampled"] and info["n_x_used"] == 300


def test_w2_sinkhorn_is_labelled_and_close(gauss):
    x, y = gauss(120, 3), gauss(100, 3, shift=1.0, seed=1)
    exact = scm.wasserstein2(x, y)
    v, info = scm.wasserstein2(x, y, exact=False, reg=0.01, return_info=True)
    assert info["method"] == "sinkhorn" and info["name"] == "w2_sinkhorn"
    assert exact - 1e-6 <= v <= exact * 1.05


def test_adaptive_mmd_symmetric_and_increasing(gauss):
    x = gauss(70, 4)
    near, far = gauss(60, 4, shift=0.2, seed=1), gauss(60, 4, shift=2.0, seed=1)
    assert scm.adaptive_mmd(x, near) == pytest.approx(scm.adaptive_mmd(near, x), rel=1e-10)
    assert scm.adaptive_mmd(x, far) > scm.adaptive_mmd(x, near) > 0


def test_distribution_metrics_accept_anndata_obsm(gauss):
    x, y = gauss(40, 4), gauss(30, 4, shift=1.0, seed=1)
    a = ad.AnnData(np.zeros((40, 2)), obsm={"X_pca": x})
    b = ad.AnnData(np.zeros((30, 2)), obsm={"X_pca": y})
    assert scm.mmd(a, b, obsm="X_pca") == pytest.approx(scm.mmd(x, y))
    assert scm.energy_distance(a, b, obsm="X_pca") == pytest.approx(scm.energy_distance(x, y))


def test_matrix_arguments_need_anndata(gauss):
    x = gauss(20, 3)
    with pytest.raises(TypeError, match="only meaningful for AnnData"):
        scm.mmd(x, x, obsm="X_pca")
    a = ad.AnnData(np.zeros((20, 2)), obsm={"X_pca": x})
    with pytest.raises(KeyError, match="obsm key 'X_umap' not found"):
        scm.mmd(a, a, obsm="X_umap")
    with pytest.raises(ValueError, match="at most one"):
        scm.mmd(a, a, obsm="X_pca", layer="counts")


@pytest.mark.parametrize(
    "fn", [scm.mmd, scm.adaptive_mmd, scm.wasserstein2, scm.gaussian_w2, scm.energy_distance]
)
def test_bad_inputs_raise(fn, gauss):
    x = gauss(20, 3)
    with pytest.raises(ValueError, match="same number of features"):
        fn(x, gauss(20, 4))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad, x)
    with pytest.raises(ValueError, match="empty"):
        fn(np.empty((0, 3)), x)
    with pytest.raises(ValueError, match="2-D"):
        fn(x[:, 0], x)


# ------------------------------------------------------------------ gaussian_w2


def test_gaussian_w2_one_dimension_is_closed_form(gauss):
    # 1-D Gaussians: W2^2 = (m_x - m_y)^2 + (s_x - s_y)^2 with the 1/n standard deviations
    a, b = gauss(200, 1), 3.0 * gauss(300, 1, seed=5) + 2.0
    expected = np.hypot(a.mean() - b.mean(), a.std() - b.std())
    assert scm.gaussian_w2(a, b) == pytest.approx(expected, rel=1e-9)
    # diagonal covariances add up per feature
    x, y = gauss(150, 3, seed=1), gauss(120, 3, seed=2) * np.array([1.0, 2.0, 0.5])
    x, y = x - x.mean(axis=0), y - y.mean(axis=0)
    # decorrelate exactly: scale whitened columns (the covariances are then diagonal)
    x = x @ np.linalg.inv(np.linalg.cholesky(np.cov(x, rowvar=False, bias=True)).T)
    y = y @ np.linalg.inv(np.linalg.cholesky(np.cov(y, rowvar=False, bias=True)).T)
    y = y * np.array([1.0, 2.0, 0.5]) + np.array([0.0, 1.0, 0.0])
    assert scm.gaussian_w2(x, y) == pytest.approx(np.sqrt(1.0 + 1.0 + 0.25), rel=1e-9)


def test_gaussian_w2_matches_pot_and_is_symmetric(gauss):
    import ot

    x, y = gauss(300, 6), gauss(250, 6, shift=0.5, seed=3) * 1.7
    ref = ot.gaussian.empirical_bures_wasserstein_distance(x, y, reg=0.0)
    assert scm.gaussian_w2(x, y) == pytest.approx(float(ref), rel=1e-8)
    assert scm.gaussian_w2(y, x) == pytest.approx(scm.gaussian_w2(x, y), rel=1e-8)
    assert scm.gaussian_w2(x, x + 2.0) == pytest.approx(2.0 * np.sqrt(6), rel=1e-9)


def test_gaussian_w2_identical_and_rank_deficient_sets(gauss):
    x = gauss(10, 50)  # fewer cells than features: singular covariances
    assert scm.gaussian_w2(x, x) == 0.0
    assert scm.gaussian_w2(x, x[::-1]) == pytest.approx(0.0, abs=1e-6)
    assert np.isfinite(scm.gaussian_w2(x, gauss(12, 50, seed=1)))
    with pytest.raises(ValueError, match="at least 2 cells per set"):
        scm.gaussian_w2(x[:1], x)


def test_gaussian_w2_does_not_reward_a_narrow_set_as_the_empirical_w2_does(gauss):
    # A set shrunk towards its mean (what interpolating between cells does) scores a lower
    # empirical W2 than a fresh sample of the reference distribution in 50-d; the Gaussian
    # W2 ranks the fresh sample first.
    ref = gauss(400, 50)
    fresh, narrow = gauss(400, 50, seed=1), 0.8 * gauss(400, 50, seed=2)
    assert scm.wasserstein2(narrow, ref) < scm.wasserstein2(fresh, ref)
    assert scm.gaussian_w2(fresh, ref) < scm.gaussian_w2(narrow, ref)
