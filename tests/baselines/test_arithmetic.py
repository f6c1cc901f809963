"""Tests of the Control, Additive and TrainMean baselines (tiny data; seconds)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest

from sccalmflow.baselines import Additive, Control, TrainMean

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}


# ---------------------------------------------------------------- Control
def test_control_resamples_control_cells_of_context(toy, fit_baseline):
    adata, _ = toy
    method = fit_baseline(Control(), adata)
    pred = method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=400)
    mask = (adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "control")
    real = method.pca.pca_scores(method.pca.transform(adata.X[mask.to_numpy()]))
    # every generated cell is one of B's control cells...
    d = np.abs(pred.obsm["X_calmflow_pca"][:, None, :] - real[None, :, :]).max(-1).min(1)
    assert d.max() < 1e-4
    # ...and the control distribution is reproduced (means close)
    np.testing.assert_allclose(pred.obsm["X_calmflow_pca"].mean(0), real.mean(0), atol=0.15)
    np.testing.assert_allclose(pred.X.mean(0), adata.X[mask.to_numpy()].mean(0), atol=0.05)


def test_seed_reproducible(toy, fit_baseline):
    adata, _ = toy
    method = fit_baseline(Additive(), adata)
    conds = {"cell_type": ["C"], "condition": ["stim"]}
    a = method.predict(conds, n_cells=20, seed=3).X
    b = method.predict(conds, n_cells=20, seed=3).X
    c = method.predict(conds, n_cells=20, seed=4).X
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- Additive
def test_additive_recovers_constant_shift(toy, fit_baseline):
    adata, shift = toy
    additive = fit_baseline(Additive(), adata)
    control = fit_baseline(Control(), adata)
    conds = {"cell_type": ["C"], "condition": ["stim"]}
    pred = additive.predict(conds, n_cells=300, seed=0)
    base = control.predict(conds, n_cells=300, seed=0)
    # the same resampled control cells, each moved by exactly the shift
    np.testing.assert_allclose(pred.X - base.X, np.broadcast_to(shift, pred.shape), atol=1e-4)
    np.testing.assert_allclose(pred.X.mean(0), base.X.mean(0) + shift, atol=1e-4)
    # the shift in PCA space maps back to the gene-space shift
    pca = additive.pca
    delta = pca.pca_scores(additive.shift({"cell_type": "C", "condition": "stim"}))
    np.testing.assert_allclose(delta @ pca.components_, shift, atol=1e-4)
    # control requested -> no shift
    assert np.abs(additive.shift({"cell_type": "C", "condition": "control"})).max() == 0


def test_additive_is_context_balanced(make_toy, fit_baseline):
    """Per-context deltas are averaged with equal weight, whatever the cell counts."""
    adata, _ = make_toy(contexts=("A", "B", "C"), perturbed=("A", "B"))
    X = adata.X.copy()
    # make B's perturbation twice as strong as A's, and give A many more cells
    is_b_stim = ((adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "stim")).to_numpy()
    is_b_ctrl = ((adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "control")).to_numpy()
    X[is_b_stim] = X[is_b_ctrl] + 2 * (X[is_b_stim] - X[is_b_ctrl])
    a_rows = np.flatnonzero((adata.obs["cell_type"] == "A").to_numpy())
    adata = ad.concat(
        [ad.AnnData(X, obs=adata.obs, var=adata.var), adata[a_rows].copy()], index_unique="-"
    )
    method = fit_baseline(Additive(), adata)

    def gmean(ct, cond):
        m = ((adata.obs["cell_type"] == ct) & (adata.obs["condition"] == cond)).to_numpy()
        return adata.X[m].mean(0)

    expected = 0.5 * (
        (gmean("A", "stim") - gmean("A", "control")) + (gmean("B", "stim") - gmean("B", "control"))
    )
    delta = method.pca.pca_scores(method.shift({"cell_type": "C", "condition": "stim"}))
    np.testing.assert_allclose(delta @ method.pca.components_, expected, atol=1e-4)


def test_additive_several_perturbation_keys():
    """Two perturbation keys: the prediction adds the two single-key shifts."""
    rng = np.random.default_rng(0)
    n_genes, n = 12, 30
    basis = rng.normal(size=(3, n_genes)) / 3
    s_drug, s_time = np.array([1.0, 0, 0]) @ basis, np.array([0, 1.0, 0.5]) @ basis
    rows, obs = [], []
    for ctx, off in [("A", 0.0), ("B", 1.0), ("C", -1.0)]:
        ctrl = 8 + (off + rng.normal(size=(n, 3)) * 0.3) @ basis
        groups = {("none", "0h"): ctrl}
        if ctx != "C":
            groups[("drug", "0h")] = ctrl + s_drug
            groups[("none", "6h")] = ctrl + s_time
        for (drug, time_), x in groups.items():
            rows.append(x)
            obs += [(ctx, drug, time_)] * n
    obs = pd.DataFrame(obs, columns=["cell_type", "drug", "time"]).astype("category")
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(np.concatenate(rows).astype(np.float32), obs=obs)
    keys = ["cell_type", "drug", "time"]
    method = Additive().fit(
        adata, condition_keys=keys, control={"drug": "none", "time": "0h"}, n_pca=3
    )
    base = Control().fit(
        adata, condition_keys=keys, control={"drug": "none", "time": "0h"}, n_pca=3
    )
    cond = {"cell_type": ["C"], "drug": ["drug"], "time": ["6h"]}
    pred = method.predict(cond, n_cells=50)
    ref = base.predict(cond, n_cells=50)
    np.testing.assert_allclose(
        pred.X - ref.X, np.broadcast_to(s_drug + s_time, pred.shape), atol=1e-4
    )


# ---------------------------------------------------------------- TrainMean
def test_trainmean_differs_from_additive_when_unbalanced(make_toy, fit_baseline):
    # D has control cells only, far away: TrainMean's control term moves, Additive's does not
    adata, shift = make_toy(
        contexts=("A", "B", "C", "D"),
        perturbed=("A", "B"),
        only_control_offset={"D": np.array([0, 0, 0, 6.0])},
    )
    additive, trainmean = fit_baseline(Additive(), adata), fit_baseline(TrainMean(), adata)
    cond = {"cell_type": "C", "condition": "stim"}
    pca = additive.pca

    def gmean(ct, cond):
        m = ((adata.obs["cell_type"] == ct) & (adata.obs["condition"] == cond)).to_numpy()
        return adata.X[m].mean(0)

    expected_tm = np.mean([gmean(c, "stim") for c in "AB"], axis=0) - np.mean(
        [gmean(c, "control") for c in "ABCD"], axis=0
    )
    add_delta = pca.pca_scores(additive.shift(cond)) @ pca.components_
    tm_delta = pca.pca_scores(trainmean.shift(cond)) @ pca.components_
    np.testing.assert_allclose(add_delta, shift, atol=1e-4)
    np.testing.assert_allclose(tm_delta, expected_tm, atol=1e-4)
    assert np.abs(tm_delta - add_delta).max() > 0.5
    preds = [
        m.predict({k: [v] for k, v in cond.items()}, n_cells=50).X for m in (additive, trainmean)
    ]
    assert np.abs(preds[0].mean(0) - preds[1].mean(0)).max() > 0.5


@pytest.mark.parametrize("cls", [Control, Additive, TrainMean])
def test_context_without_controls(cls, make_toy, fit_baseline):
    adata, _ = make_toy(contexts=("A", "B", "C"), perturbed=("A", "B", "C"))
    keep = ~((adata.obs["cell_type"] == "C") & (adata.obs["condition"] == "control")).to_numpy()
    method = fit_baseline(cls(), adata[keep].copy())
    with pytest.raises(ValueError, match="no control cells"):
        method.predict({"cell_type": ["C"], "condition": ["stim"]})


def test_additive_without_other_context(make_toy, fit_baseline):
    adata, _ = make_toy(contexts=("A", "B"), perturbed=("A",))
    method = fit_baseline(Additive(), adata)
    with pytest.raises(ValueError, match="no context other than"):
        method.predict({"cell_type": ["A"], "condition": ["stim"]})
    assert method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=2).n_obs == 2


def test_kang_smoke(kang_full):
    adata = kang_full
    held_out = (adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "IFN-beta")
    train = adata[~held_out.to_numpy()].copy()
    method = Additive().fit(train, condition_keys=KEYS, control=CONTROL, n_pca=10)
    pred = method.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=50)
    assert pred.shape == (50, 2000)
    assert (pred.var_names == adata.var_names).all()
    assert (pred.X >= 0).all()
