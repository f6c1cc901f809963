"""Known-answer tests of the gene-space metrics: mean expression, top DE, discrimination."""

import numpy as np
import pandas as pd
import pytest

from sccalmflow import metrics as scm

# ------------------------------------------------------------------------- gene space


def test_mean_expression_r2_conventions():
    rng = np.random.default_rng(0)
    true = rng.gamma(2.0, 1.0, size=(50, 40))
    res = scm.mean_expression_r2(true.copy(), true)
    assert res["r2_pearson"] == pytest.approx(1.0)
    assert res["r2_sklearn"] == pytest.approx(1.0)
    assert res["spearman"] == pytest.approx(1.0)
    # a constant offset keeps the correlation but not sklearn's R^2
    res = scm.mean_expression_r2(true + 0.5, true)
    mu = true.mean(axis=0)
    expected = 1 - mu.size * 0.25 / ((mu - mu.mean()) ** 2).sum()
    assert res["r2_pearson"] == pytest.approx(1.0)
    assert res["r2_sklearn"] == pytest.approx(expected)
    assert res["r2_sklearn"] < 0.99
    # deltas against a control
    ctrl = rng.gamma(2.0, 1.0, size=(30, 40))
    res = scm.mean_expression_r2(true, true, control=ctrl)
    assert res["pearson_delta"] == pytest.approx(1.0)
    assert res["r2_sklearn_delta"] == pytest.approx(1.0)
    res = scm.mean_expression_r2(true + 3.0, true, control=ctrl)
    assert res["r2_sklearn_delta"] < 0 and res["r2_pearson_delta"] < 1


def test_mean_expression_r2_anndata_and_genes(perturb_data):
    a = perturb_data()
    b = a.copy()
    b.X = b.X * 1.1
    names = ["g1", "g5", "g7", "g9"]
    res = scm.mean_expression_r2(b, a, genes=names)
    mu_a = np.asarray(a[:, names].X.mean(axis=0)).ravel()
    mu_b = np.asarray(b[:, names].X.mean(axis=0)).ravel()
    from sklearn.metrics import r2_score

    assert res["r2_sklearn"] == pytest.approx(r2_score(mu_a, mu_b))
    assert res["r2_pearson"] == pytest.approx(1.0)
    with pytest.raises(KeyError):
        scm.mean_expression_r2(b, a, genes=["nope"])
    with pytest.raises(ValueError, match="same genes"):
        scm.mean_expression_r2(np.ones((3, 5)), np.ones((3, 6)))


def test_top_de_genes_finds_planted_genes_without_mutating(de_data):
    a = de_data()
    before = a.copy()
    top = scm.top_de_genes(a, groupby="cond", group="stim", reference="ctrl", n=5)
    assert sorted(top) == [f"g{i}" for i in range(5)]
    assert "rank_genes_groups" not in a.uns and list(a.obs.columns) == ["cond"]
    np.testing.assert_array_equal(a.X, before.X)
    with pytest.raises(ValueError, match="No cells"):
        scm.top_de_genes(a, groupby="cond", group="stim", reference="missing")


def test_discrimination_score():
    rng = np.random.default_rng(0)
    real = rng.normal(size=(5, 20))
    assert np.allclose(scm.discrimination_score(real.copy(), real), 1.0)
    # predicting perturbation i with the real effect of i+1: the own effect is never closest
    shifted = np.roll(real, -1, axis=0)
    s = scm.discrimination_score(shifted, real, labels=list("abcde"))
    assert isinstance(s, pd.Series) and list(s.index) == list("abcde")
    expected = []
    for i in range(5):
        d = np.abs(real - shifted[i]).sum(axis=1)
        expected.append(1 - (d < d[i]).sum() / 5)
    np.testing.assert_allclose(s.to_numpy(), expected)
    assert s.max() <= 0.8 + 1e-12 and s.min() >= 0.2 - 1e-12
    # ties: two identical real effects -> the true one shares rank 0 with its twin
    real2 = np.vstack([real[0], real[0], real[2]])
    assert scm.discrimination_score(real2, real2) == pytest.approx([1 - 0.5 / 3] * 2 + [1.0])
    assert scm.discrimination_score(real2, real2, ties="optimistic") == pytest.approx([1.0] * 3)
    with pytest.raises(ValueError, match="one row per perturbation"):
        scm.discrimination_score(real[:3], real)
