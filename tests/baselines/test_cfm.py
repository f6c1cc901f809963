"""Tests of the CFM baseline (a tiny network on four Gaussian blobs; seconds)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from sccalmflow.baselines import CFM

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}


# ---------------------------------------------------------------- CFM
def _cfm_toy() -> ad.AnnData:
    """Four well-separated Gaussian blobs in a 2-D subspace of 6 genes."""
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T
    centers = {("A", "control"): (-3, 0), ("A", "stim"): (3, 0)}
    centers |= {("B", "control"): (0, -3), ("B", "stim"): (0, 3)}
    X, obs = [], []
    for (ct, cond), c in centers.items():
        X.append(5 + (np.array(c) + 0.3 * rng.normal(size=(60, 2))) @ basis)
        obs += [(ct, cond)] * 60
    obs = pd.DataFrame(obs, columns=KEYS).astype("category")
    obs.index = obs.index.astype(str)
    return ad.AnnData(np.concatenate(X).astype(np.float32), obs=obs)


@pytest.fixture(scope="module")
def cfm_toy(tiny_cfm):
    adata = _cfm_toy()
    method = tiny_cfm().fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2, seed=0)
    return adata, method


def test_cfm_trains_and_generates(cfm_toy):
    adata, method = cfm_toy
    summary = method.training_summary
    assert summary["final_loss"] < 0.7 * summary["initial_loss"]
    assert len(method.loss_history) == 150
    conds = {"cell_type": ["A", "B"], "condition": ["stim", "control"]}
    pred = method.predict(conds, n_cells=100, seed=0)
    assert pred.shape == (200, adata.n_vars)
    assert pred.X.dtype == np.float32
    assert list(pred.var_names) == list(adata.var_names)
    assert pred.uns["cfm"]["nfe"] > 0 and method.nfe_ == pred.uns["cfm"]["nfe"]
    # generated means land nearer their own condition's blob than any other
    real = {
        key: method.pca.pca_scores(method.pca.transform(adata.X[idx]))
        for key, idx in adata.obs.groupby(KEYS, observed=True).indices.items()
    }
    for rows, key in [(slice(0, 100), ("A", "stim")), (slice(100, 200), ("B", "control"))]:
        gen_mean = pred.obsm["X_calmflow_pca"][rows].mean(0)
        dists = {k: np.linalg.norm(gen_mean - v.mean(0)) for k, v in real.items()}
        assert min(dists, key=dists.get) == key


def test_cfm_deterministic(cfm_toy, tiny_cfm):
    adata, method = cfm_toy
    conds = {"cell_type": ["A"], "condition": ["stim"]}
    a = method.predict(conds, n_cells=30, seed=5).X
    b = method.predict(conds, n_cells=30, seed=5).X
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, method.predict(conds, n_cells=30, seed=6).X)
    again = tiny_cfm().fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2, seed=0)
    np.testing.assert_array_equal(again.loss_history, method.loss_history)
    np.testing.assert_array_equal(again.predict(conds, n_cells=30, seed=5).X, a)


@pytest.mark.parametrize("variant", ["icfm", "sbcfm"])
def test_cfm_variants_run(variant, tiny_cfm):
    adata = _cfm_toy()
    method = tiny_cfm(variant, n_steps=5)
    method.fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2)
    pred = method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=10)
    assert pred.shape == (10, adata.n_vars) and np.isfinite(pred.X).all()
    assert pred.uns["cfm"]["variant"] == variant and pred.uns["cfm"]["nfe"] > 0


def test_cfm_ot_pairs_within_condition():
    from torchcfm.optimal_transport import OTPlanSampler

    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(40, 3, generator=gen), torch.randn(40, 3, generator=gen)
    labels = np.repeat([0, 1, 2, 3], 10)
    i, j = CFM._pair_within(OTPlanSampler("exact"), x0, x1, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(labels[i], labels[j])


def test_cfm_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        CFM("ddpm")
    with pytest.raises(ValueError, match="activation"):
        CFM(activation="relu")


def test_cfm_trains_and_generates_with_the_package_threads(tiny_cfm, monkeypatch):
    """``sccalmflow.settings.n_threads`` (1) during fit and predict; the caller's restored."""
    from sccalmflow.utils import keep_torch_threads

    seen = []
    fit, generate = CFM._fit_features, CFM._generate

    def fit_spy(self, z, codes):
        seen.append(("fit", torch.get_num_threads()))
        return fit(self, z, codes)

    def generate_spy(self, codes, counts, seed):
        seen.append(("predict", torch.get_num_threads()))
        return generate(self, codes, counts, seed)

    monkeypatch.setattr(CFM, "_fit_features", fit_spy)
    monkeypatch.setattr(CFM, "_generate", generate_spy)
    with keep_torch_threads():
        torch.set_num_threads(2)
        method = tiny_cfm().fit(_cfm_toy(), condition_keys=KEYS, control=CONTROL, n_pca=2)
        method.predict({"cell_type": ["A"], "condition": ["stim"]}, n_cells=5)
        assert torch.get_num_threads() == 2
    assert seen == [("fit", 1), ("predict", 1)]
