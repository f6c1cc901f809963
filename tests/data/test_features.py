"""PCAFeatures.cross_fit_transform: cells of the fit projected with the spread of new cells."""

import numpy as np
import pytest
import scipy.sparse as sp

from sccalmflow.data import PCAFeatures


def _cells(n: int, seed: int) -> np.ndarray:
    """Five programs (strong) plus isotropic noise in 300 genes, so 20 components overfit."""
    rng = np.random.default_rng(seed)
    programs = np.random.default_rng(0).normal(size=(5, 300))
    return rng.normal(size=(n, 5)) * 3 @ programs / 10 + rng.normal(size=(n, 300)) + 5


def test_cross_fitted_cells_have_the_spread_of_new_cells():
    fit, new = _cells(400, 1), _cells(400, 2)
    pca = PCAFeatures(20, "none").fit(fit)
    plain, cross, fresh = pca.transform(fit), pca.cross_fit_transform(fit), pca.transform(new)
    tail = slice(5, 20)  # the noise components
    in_sample = plain[:, tail].var(0).sum() / fresh[:, tail].var(0).sum()
    cross_fit = cross[:, tail].var(0).sum() / fresh[:, tail].var(0).sum()
    assert in_sample > 2  # the fit's own cells are far wider than new ones
    assert 0.85 < cross_fit < 1.15
    # the programs (components 1-5) keep the spread of new cells, and the centre is kept
    head = cross[:, :5].var(0).sum() / fresh[:, :5].var(0).sum()
    assert 0.9 < head < 1.1
    np.testing.assert_allclose(cross.mean(0), plain.mean(0), atol=0.1)


def test_cross_fit_is_seeded_scaled_and_takes_sparse_input():
    X = _cells(120, 3)
    pca = PCAFeatures(10, "global").fit(X)
    a = pca.cross_fit_transform(X, n_folds=4, seed=1)
    assert a.shape == (120, 10) and a.dtype == np.float32
    np.testing.assert_array_equal(a, pca.cross_fit_transform(X, n_folds=4, seed=1))
    assert not np.allclose(a, pca.cross_fit_transform(X, n_folds=4, seed=2))
    np.testing.assert_allclose(a, pca.cross_fit_transform(sp.csr_matrix(X), 4, 1), atol=1e-4)
    # scaled like transform: the global scale divides the unscaled projection
    raw = PCAFeatures(10, "none").fit(X).cross_fit_transform(X, n_folds=4, seed=1)
    np.testing.assert_allclose(a * pca.scale_, raw, rtol=1e-3, atol=1e-3)


def test_cross_fit_refuses_too_few_cells_or_folds():
    X = _cells(6, 4)
    pca = PCAFeatures(3, "none").fit(X)
    with pytest.raises(ValueError, match="at least 2 folds"):
        pca.cross_fit_transform(X, n_folds=1)
    with pytest.raises(ValueError, match="too few cells"):
        pca.cross_fit_transform(X[:2], n_folds=2)
    with pytest.raises(RuntimeError, match="not fitted"):
        PCAFeatures(3).cross_fit_transform(X)


def test_name_folds_are_seeded_balanced_and_follow_the_name():
    from sccalmflow.data import name_folds

    names = [f"cell_{i}" for i in range(2000)]
    hashes, folds = name_folds(names, 5, seed=3)
    assert hashes.dtype == np.int64 and folds.dtype == np.int64 and set(folds) == set(range(5))
    assert np.bincount(folds).min() > 300  # about 400 each
    again_h, again_f = name_folds(names[::-1], 5, seed=3)  # the name decides, not the order
    np.testing.assert_array_equal(again_h, hashes[::-1])
    np.testing.assert_array_equal(again_f, folds[::-1])
    assert not np.array_equal(name_folds(names, 5, seed=4)[0], hashes)
    # cross-fitting by name puts each cell in its name's fold, whatever the order
    X = _cells(120, 5)
    pca = PCAFeatures(8, "none").fit(X)
    names = [f"c{i}" for i in range(120)]
    a = pca.cross_fit_transform(X, 4, seed=1, names=names)
    b = pca.cross_fit_transform(X[::-1], 4, seed=1, names=names[::-1])
    assert a.shape == (120, 8)
    np.testing.assert_allclose(b[::-1], a, atol=1e-3)
