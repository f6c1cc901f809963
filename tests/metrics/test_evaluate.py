"""Tests of evaluate: the tidy per-condition table."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from sccalmflow import metrics as scm


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
    a.obsm["X_calmflow_pca"] = project(a.X)
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
    pred.obsm["X_calmflow_pca"] = pred.obsm["X_calmflow_pca"] + rng.normal(
        0, 0.2, pred.obsm["X_calmflow_pca"].shape
    )
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
    del real.obsm["X_calmflow_pca"]
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


def test_evaluate_on_kang_ceiling_beats_control_baseline(kang_full):
    a = kang_full[kang_full.obs["cell_type"].isin(["B", "CD14 Mono"]).to_numpy()].copy()
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


def test_evaluate_warns_about_missing_controls_at_the_call():
    real, _ = _context_data()
    real = real[~((real.obs["cell_type"] == "T") & (real.obs["condition"] == "control"))].copy()
    pred = real[(real.obs["condition"] == "stim").to_numpy()].copy()
    with pytest.warns(UserWarning, match="No real control cells") as record:
        df = scm.evaluate(
            pred, real, control={"condition": "control"},
            condition_keys=["cell_type", "condition"], space=("pca",), metrics=("mean_expression",),
        )  # fmt: skip
    assert record[0].filename == __file__  # attributed to the caller of evaluate
    assert "pearson_delta" in set(df.loc[df["cell_type"] == "B", "metric"])
    assert "pearson_delta" not in set(df.loc[df["cell_type"] == "T", "metric"])


def test_evaluate_reads_layers_and_reports_missing_ones():
    real, _ = _context_data()
    real.layers["half"] = real.X * 0.5
    pred = real[(real.obs["condition"] == "stim").to_numpy()].copy()
    kw = dict(control={"condition": "control"}, condition_keys=["cell_type", "condition"])
    kw.update(space=("pca",), metrics=("mean_expression",))
    half = scm.evaluate(pred, real, layer="half", **kw)
    full = scm.evaluate(pred, real, **kw)
    assert (half["metric"] == full["metric"]).all()
    np.testing.assert_allclose(half["value"], full["value"], rtol=1e-6)  # scale-free metrics
    with pytest.raises(KeyError, match="layer 'nope' not found"):
        scm.evaluate(pred, real, layer="nope", **kw)


def test_evaluate_gaussian_w2_equals_the_function_per_condition():
    real, _ = _context_data(n=40)
    rng = np.random.default_rng(2)
    pred = real[real.obs["condition"] == "stim"].copy()
    pred.obsm["X_calmflow_pca"] = 1.3 * pred.obsm["X_calmflow_pca"] + rng.normal(
        0, 0.1, pred.obsm["X_calmflow_pca"].shape
    )
    df = scm.evaluate(
        pred, real, condition_keys=["cell_type", "condition"], space=("pca",),
        metrics=("w2_gaussian",),
    )  # fmt: skip
    assert set(df["metric"]) == {"w2_gaussian"} and len(df) == 2
    for ct in ("B", "T"):
        p = pred[pred.obs["cell_type"] == ct].obsm["X_calmflow_pca"]
        r = real[(real.obs["cell_type"] == ct) & (real.obs["condition"] == "stim")]
        got = df.loc[df["cell_type"] == ct, "value"].item()
        assert got == pytest.approx(scm.gaussian_w2(p, r.obsm["X_calmflow_pca"]), rel=1e-12)
        assert got > 0
