"""Fixtures of the baseline tests: rank-4 toy data, fitting shortcuts, one torch thread."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}
SHIFT_LATENT = np.array([1.5, -0.5, 0.8, 0.3])


def _toy(
    contexts=("A", "B", "C"),
    perturbed=("A", "B"),
    n_per_group=40,
    n_genes=20,
    only_control_offset: dict | None = None,
    seed=0,
) -> tuple[ad.AnnData, np.ndarray]:
    """Rank-4 log-expression-like data (so 4 PCs reconstruct it exactly), all values > 0.

    Each context has control cells around its own mean; in the contexts ``perturbed``, the
    perturbed cells are exactly the control cells plus a constant gene-space ``shift``.
    Returns the AnnData and the gene-space shift.
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, n_genes)) / 4
    shift = SHIFT_LATENT @ basis
    X, cell_type, condition = [], [], []
    for i, ctx in enumerate(contexts):
        offset = np.zeros(4)
        offset[i % 4] = 2.0 * (i + 1)
        if only_control_offset and ctx in only_control_offset:
            offset = offset + only_control_offset[ctx]
        latent = offset + rng.normal(size=(n_per_group, 4)) * 0.5
        ctrl = 10.0 + latent @ basis
        X.append(ctrl)
        cell_type += [ctx] * n_per_group
        condition += ["control"] * n_per_group
        if ctx in perturbed:
            X.append(ctrl + shift)
            cell_type += [ctx] * n_per_group
            condition += ["stim"] * n_per_group
    X = np.concatenate(X).astype(np.float32)
    assert X.min() > 0
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(cell_type),
            "condition": pd.Categorical(condition, categories=["control", "stim"]),
        },
        index=[f"cell{i}" for i in range(len(X))],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    return ad.AnnData(X=X, obs=obs, var=var), shift.astype(np.float32)


def _fit(method, adata, **kw):
    return method.fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=4, **kw)


def _tiny_cfm(variant="otcfm", n_steps=150, **kw):
    from sccalmflow.baselines import CFM

    return CFM(variant, width=32, depth=2, n_steps=n_steps, batch_size=64, lr=3e-3, **kw)


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Baseline tests run on one torch thread (CFM training is then reproducible)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="session")
def make_toy():
    """``make_toy(contexts=..., perturbed=..., ...) -> (adata, gene-space shift)``.

    Rank-4 data: each context's control cells around its own mean; in the ``perturbed``
    contexts, the perturbed cells are exactly the control cells plus a constant shift.
    """
    return _toy


@pytest.fixture(scope="module")
def toy():
    """``make_toy()`` with the defaults: contexts A, B, C; A and B perturbed (do not modify)."""
    return _toy()


@pytest.fixture(scope="session")
def fit_baseline():
    """``fit_baseline(method, adata, **kw)``: fit with cell_type x condition keys, 4 PCs."""
    return _fit


@pytest.fixture(scope="session")
def tiny_cfm():
    """``tiny_cfm(variant="otcfm", n_steps=150, **kw)``: a small, fast CFM baseline."""
    return _tiny_cfm
