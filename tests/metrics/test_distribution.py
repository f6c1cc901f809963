"""Known-answer tests for sccalmflow.metrics (small simulated data; fast)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp
from sklearn.metrics import pairwise_distances

from sccalmflow import metrics as scm

# ----------------------------------------------------------------------------- helpers


def _gauss(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


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


def _perturb_data(
    seed=0, n_genes=30, n_cells=40, perts=("A", "B", "C"), shift=0.0, effect_noise=0.0
):
    """Log-normalised toy expression: control + perturbations with distinct effects."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(7).uniform(0.2, 2.0, n_genes)
    effects = {"ctrl": np.zeros(n_genes)}
    erng = np.random.default_rng(123)  # effects shared between real and pred
    for p in perts:
        effects[p] = erng.normal(0, 0.3, n_genes) + rng.normal(0, effect_noise, n_genes)
    xs, labels = [], []
    for p, eff in effects.items():
        lam = np.exp(np.log(base) + eff + shift * (p != "ctrl"))
        xs.append(np.log1p(rng.poisson(lam, size=(n_cells, n_genes)) * 1.7))
        labels += [p] * n_cells
    a = ad.AnnData(
        sp.csr_matrix(np.vstack(xs).astype(np.float32)),
        obs=pd.DataFrame({"pert": labels}, index=[f"c{i}" for i in range(len(labels))]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    return a


# ------------------------------------------------------------------ distribution metrics


def test_identical_sets_give_zero():
    x = _gauss(80, 6)
    assert scm.mmd(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.energy_distance(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.energy_distance(x, x.copy(), squared=True) == pytest.approx(0.0, abs=1e-12)
    assert scm.wasserstein2(x, x.copy()) == pytest.approx(0.0, abs=1e-12)
    assert scm.adaptive_mmd(x, x.copy()) == pytest.approx(0.0, abs=1e-12)


def test_mmd_matches_bruteforce():
    x, y = _gauss(50, 4), _gauss(35, 4, shift=0.4, seed=1)
    for unbiased in (False, True):
        ours = scm.mmd(x, y, unbiased=unbiased)
        ref = _ref_mmd(x, y, scm.DEFAULT_GAMMAS, unbiased=unbiased)
        assert ours == pytest.approx(ref, rel=1e-5, abs=1e-9)
    # custom bandwidths, incl. ones not related by powers of two
    g = (0.3, 0.6, 2.4, 0.07)
    assert scm.mmd(x, y, gammas=g) == pytest.approx(_ref_mmd(x, y, g), rel=1e-5)
    assert scm.mmd(x, y) == pytest.approx(scm.mmd(y, x), rel=1e-10)
    assert scm.mmd(x, y) > scm.mmd(x, _gauss(35, 4, seed=2))


def test_energy_distance_conventions():
    x, y = _gauss(40, 3), _gauss(30, 3, shift=0.7, seed=1)
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


def test_w2_translation_is_exact_and_matches_pot():
    import ot

    x = _gauss(60, 5)
    mu = np.array([1.0, -2.0, 0.5, 0.0, 3.0])
    assert scm.wasserstein2(x, x + mu) == pytest.approx(np.linalg.norm(mu), rel=1e-9)
    y = _gauss(45, 5, shift=0.3, seed=3)
    ref = np.sqrt(ot.emd2(np.full(60, 1 / 60), np.full(45, 1 / 45), ot.dist(x, y)))
    assert scm.wasserstein2(x, y) == pytest.approx(ref, rel=1e-9)
    # 1-D, equal sizes: sorted matching is optimal
    a, b = _gauss(200, 1).ravel(), _gauss(200, 1, shift=1.0, seed=4).ravel()
    exact_1d = np.sqrt(np.mean((np.sort(a) - np.sort(b)) ** 2))
    assert scm.wasserstein2(a[:, None], b[:, None]) == pytest.approx(exact_1d, rel=1e-9)


def test_w2_two_gaussians_analytic():
    # W2(N(0, I), N(mu, I)) = |mu|. Samples are centred exactly (the mean term of W2^2 is then
    # exactly |mu|^2, since W2^2 = |mean difference|^2 + W2^2 of the centred sets); what is
    # left is the small finite-sample transport cost between two 2-D Gaussian samples.
    mu = np.array([3.0, 1.0])
    x, z = _gauss(600, 2, seed=10), _gauss(600, 2, seed=11)
    x, z = x - x.mean(axis=0), z - z.mean(axis=0)
    w2 = scm.wasserstein2(x, z + mu)
    assert w2 == pytest.approx(np.linalg.norm(mu), abs=0.03)
    assert w2**2 == pytest.approx(mu @ mu + scm.wasserstein2(x, z) ** 2, rel=1e-9)


def test_w2_subsampling_is_reported_and_seeded():
    x, y = _gauss(300, 3), _gauss(250, 3, shift=0.5, seed=1)
    v, info = scm.wasserstein2(x, y, max_exact=100, seed=7, return_info=True)
    assert info["subsampled"] and info["n_x_used"] == 100 and info["n_y_used"] == 100
    assert info["n_x"] == 300 and info["name"] == "w2" and info["seed"] == 7
    assert scm.wasserstein2(x, y, max_exact=100, seed=7) == v
    assert scm.wasserstein2(x, y, max_exact=100, seed=8) != v
    _, info = scm.wasserstein2(x, y, return_info=True)
    assert not info["subsampled"] and info["n_x_used"] == 300


def test_w2_sinkhorn_is_labelled_and_close():
    x, y = _gauss(120, 3), _gauss(100, 3, shift=1.0, seed=1)
    exact = scm.wasserstein2(x, y)
    v, info = scm.wasserstein2(x, y, exact=False, reg=0.01, return_info=True)
    assert info["method"] == "sinkhorn" and info["name"] == "w2_sinkhorn"
    assert exact - 1e-6 <= v <= exact * 1.05


def test_adaptive_mmd_symmetric_and_increasing():
    x = _gauss(70, 4)
    near, far = _gauss(60, 4, shift=0.2, seed=1), _gauss(60, 4, shift=2.0, seed=1)
    assert scm.adaptive_mmd(x, near) == pytest.approx(scm.adaptive_mmd(near, x), rel=1e-10)
    assert scm.adaptive_mmd(x, far) > scm.adaptive_mmd(x, near) > 0


def test_distribution_metrics_accept_anndata_obsm():
    x, y = _gauss(40, 4), _gauss(30, 4, shift=1.0, seed=1)
    a = ad.AnnData(np.zeros((40, 2)), obsm={"X_pca": x})
    b = ad.AnnData(np.zeros((30, 2)), obsm={"X_pca": y})
    assert scm.mmd(a, b, obsm="X_pca") == pytest.approx(scm.mmd(x, y))
    assert scm.energy_distance(a, b, obsm="X_pca") == pytest.approx(scm.energy_distance(x, y))


@pytest.mark.parametrize("fn", [scm.mmd, scm.adaptive_mmd, scm.wasserstein2, scm.energy_distance])
def test_bad_inputs_raise(fn):
    x = _gauss(20, 3)
    with pytest.raises(ValueError, match="same number of features"):
        fn(x, _gauss(20, 4))
    bad = x.copy()
    bad[3, 1] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(bad, x)
    with pytest.raises(ValueError, match="empty"):
        fn(np.empty((0, 3)), x)
    with pytest.raises(ValueError, match="2-D"):
        fn(x[:, 0], x)


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


def test_mean_expression_r2_anndata_and_genes():
    a = _perturb_data()
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


def _de_data():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.3, size=(120, 50)).clip(0)
    x[:60, :5] += 2.0  # genes 0-4 up in "stim"
    return ad.AnnData(
        x.astype(np.float32),
        obs=pd.DataFrame(
            {"cond": ["stim"] * 60 + ["ctrl"] * 60}, index=[str(i) for i in range(120)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(50)]),
    )


def test_top_de_genes_finds_planted_genes_without_mutating():
    a = _de_data()
    before = a.copy()
    top = scm.top_de_genes(a, groupby="cond", group="stim", reference="ctrl", n=5)
    assert sorted(top) == [f"g{i}" for i in range(5)]
    assert "rank_genes_groups" not in a.uns and list(a.obs.columns) == ["cond"]
    np.testing.assert_array_equal(a.X, before.X)
    with pytest.raises(ValueError, match="No cells"):
        scm.top_de_genes(a, groupby="cond", group="stim", reference="missing")


def test_numba_calls_keep_torch_threads():
    """scanpy's Wilcoxon and umap-learn run numba code that resets torch's thread count."""
    import torch

    a = _de_data()
    before = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        scm.top_de_genes(a, groupby="cond", group="stim", reference="ctrl", n=5)
        assert torch.get_num_threads() == 1
        scm.joint_umap(_gauss(40, 6), _gauss(30, 6, seed=1), n_components=2, seed=0)
        assert torch.get_num_threads() == 1
        scm.leiden_kl(_gauss(40, 6), _gauss(30, 6, seed=1), seed=0)
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


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


# --------------------------------------------------------------------- cluster metrics


def _blobs(n_per, centers, seed):
    rng = np.random.default_rng(seed)
    return np.vstack([rng.normal(c, 0.3, size=(n, len(c))) for c, n in zip(centers, n_per)])


def test_leiden_kl_and_inception_score():
    centers = [(0, 0, 0, 0), (6, 0, 0, 0), (0, 6, 0, 0)]
    real = _blobs([80, 80, 80], centers, seed=0)
    same = _blobs([80, 80, 80], centers, seed=1)
    dropped = _blobs([120, 120, 0], centers, seed=2)
    res = scm.leiden_kl(real, same, resolution=0.3, seed=0)
    assert res.n_clusters >= 3 and res.accuracy > 0.95
    assert res.kl < 0.05
    res_drop = scm.leiden_kl(real, dropped, classifier=res.classifier)
    assert res_drop.kl > 0.3  # a missing mode is penalised in the real||generated direction
    assert 1.0 <= res.inception_score <= res.n_clusters
    assert scm.inception_score(None, same, classifier=res.classifier) == pytest.approx(
        res.inception_score
    )
    assert scm.leiden_kl(real, real, classifier=res.classifier).kl == pytest.approx(0.0)
    again = scm.leiden_kl(real, same, resolution=0.3, seed=0)
    assert again.kl == res.kl and again.accuracy == res.accuracy
    assert set(res.as_dict()) == {
        "leiden_kl",
        "classifier_accuracy",
        "n_clusters",
        "inception_score",
    }


def test_joint_umap_shapes_and_determinism():
    real, gen = _gauss(60, 8), _gauss(50, 8, shift=0.5, seed=1)
    er, eg = scm.joint_umap(real, gen, n_components=10, seed=0)
    assert er.shape == (60, 10) and eg.shape == (50, 10)
    er2, eg2 = scm.joint_umap(real, gen, n_components=10, seed=0)
    np.testing.assert_array_equal(er, er2)
    np.testing.assert_array_equal(eg, eg2)


# ----------------------------------------------------------------------------- evaluate


def _context_data(seed=0, n=30, n_genes=25, pred_shift=0.0):
    """Cells of 2 cell types x {control, stim}, with a shared linear 'PCA' projection."""
    rng = np.random.default_rng(seed)
    W = np.random.default_rng(99).normal(size=(n_genes, 6)) / 5
    rows, obs = [], []
    for ct_i, ct in enumerate(["B", "T"]):
        for cond in ["control", "stim"]:
            mean = 1 + 0.5 * ct_i + (0.8 if cond == "stim" else 0) * np.linspace(0, 1, n_genes)
            rows.append(np.abs(rng.normal(mean, 0.3, size=(n, n_genes))))
            obs += [(ct, cond)] * n
    x = np.vstack(rows)
    a = ad.AnnData(
        x.astype(np.float32),
        obs=pd.DataFrame(
            obs, columns=["cell_type", "condition"], index=[f"r{i}" for i in range(len(obs))]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    project = lambda m: np.asarray(m, dtype=np.float64) @ W  # noqa: E731
    a.obsm["X_pca"] = project(a.X)
    return a, project


def test_evaluate_perfect_prediction_and_table_layout():
    real, _ = _context_data()
    pred = real[real.obs["condition"] == "stim"].copy()
    keys = ["cell_type", "condition"]
    df = scm.evaluate(
        pred, real, control={"condition": "control"}, condition_keys=keys, space=("pca",),
        top_de=5, seed=0,
    )  # fmt: skip
    for col in keys + ["metric", "space", "value", "n_pred", "n_real", "seed", "subsampled"]:
        assert col in df.columns
    assert set(df["condition"]) == {"stim"} and set(df["cell_type"]) == {"B", "T"}
    assert set(df["space"]) == {"genes", "top5_de", "pca"}
    v = df.set_index(["cell_type", "metric", "space"])["value"]
    for ct in ("B", "T"):
        for m in ("r2_pearson", "r2_sklearn", "pearson_delta", "r2_sklearn_delta"):
            assert v[(ct, m, "genes")] == pytest.approx(1.0)
            assert v[(ct, m, "top5_de")] == pytest.approx(1.0)
        for m in ("e_distance", "mmd", "w2"):
            assert v[(ct, m, "pca")] == pytest.approx(0.0, abs=1e-9)
        assert v[(ct, "discrimination_l1", "genes")] == 1.0
    assert (df["n_pred"] == 30).all() and not df["subsampled"].any()
    # one row per condition x metric x space
    assert not df.duplicated(keys + ["metric", "space"]).any()


def test_evaluate_subsampling_determinism_and_umap():
    real, _ = _context_data(n=40)
    rng = np.random.default_rng(5)
    pred = real[real.obs["condition"] == "stim"].copy()
    pred.obsm["X_pca"] = pred.obsm["X_pca"] + rng.normal(0, 0.2, pred.obsm["X_pca"].shape)
    kw = dict(
        control={"condition": "control"}, condition_keys=["cell_type", "condition"],
        space=("pca", "umap10"), metrics=("e_distance", "mmd", "w2"), n_max=25, seed=3,
    )  # fmt: skip
    df1 = scm.evaluate(pred, real, **kw)
    df2 = scm.evaluate(pred, real, **kw)
    pd.testing.assert_frame_equal(df1, df2)
    assert df1["subsampled"].all() and (df1["n_used_pred"] == 25).all()
    assert set(df1["space"]) == {"pca", "umap10"}
    assert (df1.loc[df1.space == "umap10", "n_features"] == 10).all()
    df3 = scm.evaluate(pred, real, **{**kw, "seed": 4, "space": ("pca",)})
    assert not np.allclose(df3["value"], df1.loc[df1.space == "pca", "value"])


def test_evaluate_pca_sources_and_errors():
    real, project = _context_data()
    pred = real[real.obs["condition"] == "stim"].copy()
    del real.obsm["X_pca"]
    kw = dict(condition_keys=["cell_type", "condition"], space=("pca",), metrics=("e_distance",))
    with pytest.raises(KeyError, match="pca="):
        scm.evaluate(pred, real, **kw)
    df = scm.evaluate(pred, real, pca=project, **kw)
    assert np.allclose(df["value"], 0.0, atol=1e-9)
    df = scm.evaluate(pred, real, pca="joint", **kw)
    assert np.allclose(df["value"], 0.0, atol=1e-6)
    with pytest.raises(ValueError, match="Unknown metric"):
        scm.evaluate(pred, real, pca=project, condition_keys=["cell_type"], metrics=("bogus",))
    other = pred.copy()
    other.obs["cell_type"] = "NK"
    with pytest.raises(ValueError, match="no real cells"):
        scm.evaluate(other, real, pca=project, **kw)


def test_evaluate_on_kang_ceiling_beats_control_baseline():
    import sccalmflow as scf

    a = scf.datasets.kang2018()
    a = a[a.obs["cell_type"].isin(["B", "CD14 Mono"]).to_numpy()].copy()
    stim = np.flatnonzero((a.obs["condition"] == "IFN-beta").to_numpy())
    half = np.random.default_rng(0).permutation(stim)[: stim.size // 2]
    real = a[np.setdiff1d(np.arange(a.n_obs), half)].copy()
    split_half = a[half].copy()  # real stimulated cells held out from `real`: a ceiling
    baseline = a[(a.obs["condition"] == "control").to_numpy()].copy()  # "no effect" model
    baseline.obs["condition"] = "IFN-beta"
    kw = dict(
        control={"condition": "control"}, condition_keys=["cell_type", "condition"],
        space=("pca",), pca="joint", top_de=50, metrics=("mean_expression", "e_distance"),
    )  # fmt: skip
    good = scm.evaluate(split_half, real, **kw).set_index(["cell_type", "metric", "space"])
    base = scm.evaluate(baseline, real, **kw).set_index(["cell_type", "metric", "space"])
    for ct in ("B", "CD14 Mono"):
        assert good.loc[(ct, "r2_pearson", "top50_de"), "value"] > 0.9
        assert base.loc[(ct, "r2_pearson", "top50_de"), "value"] < 0.5
        assert (
            good.loc[(ct, "e_distance", "pca"), "value"]
            < base.loc[(ct, "e_distance", "pca"), "value"]
        )
        # predicting no effect: r2_score(delta, 0) = 1 - sum(d^2) / sum((d - mean d)^2) <= 0
        assert base.loc[(ct, "r2_sklearn_delta", "genes"), "value"] <= 0
        assert np.isnan(base.loc[(ct, "pearson_delta", "genes"), "value"])


# -------------------------------------------------------------------------- cell-eval


def test_to_cell_eval_runs_metrics_evaluator_and_agrees(tmp_path):
    from scipy.stats import pearsonr

    perts = ["A", "B", "C", "D", "E", "F"]
    real = _perturb_data(seed=0, perts=perts)
    # a mediocre model: noisy effects, so that not every discrimination score is 1
    pred = _perturb_data(seed=1, perts=perts, shift=0.1, effect_noise=1.0)
    pred = pred[pred.obs["pert"] != "ctrl"].copy()  # models predict perturbed cells only
    inputs = scm.to_cell_eval(pred, real, pert_col="pert", control_pert="ctrl", outdir=tmp_path)
    assert inputs.pred_path.exists() and inputs.real_path.exists()
    assert "cell-eval run" in inputs.command()
    back = ad.read_h5ad(inputs.pred_path)
    assert set(back.obs["pert"]) == {*perts, "ctrl"}  # real controls copied in
    res, agg = inputs.run(
        tmp_path / "out", profile="anndata", skip_de=True, skip_metrics=["clustering_agreement"]
    )
    res = res.set_index("perturbation")
    assert sorted(res.index) == perts

    x_real = real.X.toarray()
    x_pred = pred.X.toarray()
    lab_r, lab_p = real.obs["pert"].to_numpy(), pred.obs["pert"].to_numpy()
    ctrl = x_real[lab_r == "ctrl"]
    eff_p = np.vstack([x_pred[lab_p == p].mean(0) - ctrl.mean(0) for p in perts])
    eff_r = np.vstack([x_real[lab_r == p].mean(0) - ctrl.mean(0) for p in perts])
    for i, p in enumerate(perts):
        ours = scm.mean_expression_r2(x_pred[lab_p == p], x_real[lab_r == p], control=ctrl)
        assert ours["pearson_delta"] == pytest.approx(res.loc[p, "pearson_delta"], rel=1e-4)
        for metric in ("l1", "l2"):
            ds = scm.discrimination_score(eff_p, eff_r, metric=metric)[i]
            assert ds == pytest.approx(res.loc[p, f"discrimination_score_{metric}"])
    assert res["discrimination_score_l1"].min() < 1  # the comparison is not trivial
    # cell-eval's pearson_edistance: Pearson over perturbations of E-distance to control
    # (Euclidean, self-pairs included) = our default energy_distance
    e_real = [scm.energy_distance(x_real[lab_r == p], ctrl) for p in perts]
    e_pred = [scm.energy_distance(x_pred[lab_p == p], ctrl) for p in perts]
    assert pearsonr(e_real, e_pred)[0] == pytest.approx(res["pearson_edistance"].iloc[0], rel=1e-4)


def test_to_cell_eval_celltype_split_and_errors(tmp_path):
    real = _perturb_data(seed=0, perts=("A", "B"))
    real.obs["ct"] = np.where(np.arange(real.n_obs) % 2 == 0, "x", "y")
    pred = real[real.obs["pert"] == "A"].copy()
    inputs = scm.to_cell_eval(pred, real, pert_col="pert", control_pert="ctrl", celltype_col="ct")
    assert set(inputs.real.obs["pert"]) == {"A", "ctrl"}  # B was not predicted
    for ct in ("x", "y"):
        sub = inputs.pred.obs[inputs.pred.obs["ct"] == ct]
        assert set(sub["pert"]) == {"A", "ctrl"}
    bad = pred.copy()
    bad.X = bad.X * -1.0
    with pytest.raises(ValueError, match="negative"):
        scm.to_cell_eval(bad, real, pert_col="pert", control_pert="ctrl")
    other = pred.copy()
    other.obs["pert"] = "Z"
    with pytest.raises(ValueError, match="absent from real"):
        scm.to_cell_eval(other, real, pert_col="pert", control_pert="ctrl")
