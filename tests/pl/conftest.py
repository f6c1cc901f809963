"""Fixtures of the pl tests: real cells with a PCA and jittered 'predicted' cells."""

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def cells(kang_small_shared):
    """``(pred, real)``: real cells (small Kang, ``obsm["X_calmflow_pca"]``) and 'predicted' cells,
    jittered real perturbed cells of two conditions (30 CD14 Mono, 20 B, so counts identify
    the sets) in the same PCA space. Do not modify."""
    real = kang_small_shared.copy()
    X = real.X.toarray()
    mean = X.mean(0)
    _, _, vt = np.linalg.svd(X - mean, full_matrices=False)
    comps = vt[:10]
    real.obsm["X_calmflow_pca"] = (X - mean) @ comps.T
    rng = np.random.default_rng(0)
    parts = []
    for ct, n in (("CD14 Mono", 30), ("B", 20)):
        idx = np.flatnonzero((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta"))
        pick = rng.choice(idx, n)
        Xp = np.clip(X[pick] + rng.normal(0, 0.2, (n, X.shape[1])), 0, None).astype(np.float32)
        obs = pd.DataFrame(
            {"cell_type": [ct] * n, "condition": ["IFN-beta"] * n},
            index=[f"{ct}{i}" for i in range(n)],
        )
        parts.append(ad.AnnData(Xp, obs=obs))
    pred = ad.concat(parts, index_unique=None)
    pred.obs_names = [f"gen{i}" for i in range(pred.n_obs)]
    pred.var_names = real.var_names
    pred.obs["prompt"] = "a prompt"  # as the model writes it: not a condition key
    pred.obsm["X_calmflow_pca"] = (pred.X - mean) @ comps.T
    return pred, real


@pytest.fixture
def one_condition(cells):
    """``(pred, real, control)`` of CD14 Mono: predicted, real IFN-beta and control cells."""
    pred, real = cells
    ct = "CD14 Mono"
    p = pred[(pred.obs.cell_type == ct).to_numpy()]
    r = real[((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta")).to_numpy()]
    c = real[((real.obs.cell_type == ct) & (real.obs.condition == "control")).to_numpy()]
    return p, r, c
