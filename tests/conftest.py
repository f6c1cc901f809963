"""Shared fixtures: real Kang cells, a synthetic perturbation AnnData, a tiny model config.

Test files never import this module (``--import-mode=importlib``): everything shared is a
fixture.
"""

import os

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "2")
torch.set_num_threads(int(os.environ.get("SCCALMFLOW_TEST_THREADS", "2")))

# a tiny backbone so model tests run in seconds
_TINY = dict(
    width=16,
    n_layers=1,
    n_heads=2,
    ffn=32,
    head_hidden=32,
    tokenizer_hidden=32,
    latent_dim=8,
    n_pca=10,
    n_time_points=6,
)


@pytest.fixture
def tiny() -> dict:
    """Constructor keywords of a tiny CaLMFlowModel (a new dict per test)."""
    return dict(_TINY)


@pytest.fixture(scope="session")
def tiny_config() -> dict:
    """The same keywords for session/module-scoped fixtures (do not modify)."""
    return dict(_TINY)


def _quiet_train(model, **kwargs):
    kwargs.setdefault("enable_progress_bar", False)
    kwargs.setdefault("accelerator", "cpu")
    model.train(**kwargs)


@pytest.fixture(scope="session")
def quiet_train():
    """``quiet_train(model, **train_kwargs)``: train on CPU without a progress bar."""
    return _quiet_train


@pytest.fixture(scope="session")
def kang_full():
    """The bundled Kang data (do not modify; copy first)."""
    import sccalmflow as scf

    return scf.datasets.kang2018()


@pytest.fixture(scope="session")
def kang_setup() -> dict:
    """Registration keywords of the Kang data."""
    import sccalmflow as scf

    return scf.datasets.kang2018_setup()


def _small_kang(kang_full):
    keep = kang_full.obs["cell_type"].isin(["B", "CD14 Mono", "CD4 Naive T", "NK"]).to_numpy()
    genes = kang_full.var.sort_values("highly_variable_rank").index[:300]
    adata = kang_full[keep, genes].copy()
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.remove_unused_categories()
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(adata.n_obs, 600, replace=False))
    return adata[idx].copy()


@pytest.fixture(scope="session")
def kang_small_shared(kang_full):
    """Real Kang cells: 4 cell types, 300 most variable genes, 600 cells (do not modify)."""
    return _small_kang(kang_full)


@pytest.fixture
def kang_small(kang_small_shared):
    """A fresh copy of ``kang_small_shared`` per test."""
    return kang_small_shared.copy()


def make_synthetic(
    n_cells: int = 240,
    n_genes: int = 60,
    cell_types: tuple[str, ...] = ("A", "B", "C"),
    perturbations: tuple[str, ...] = ("control", "drug"),
    seed: int = 0,
) -> ad.AnnData:
    """A small synthetic perturbation screen (like scvi-tools' ``synthetic_iid``).

    Log-normalised Poisson counts whose rates depend on the cell type and on the
    perturbation (an additive effect on a block of genes). ``obs``: ``cell_type`` and
    ``condition`` (categorical); ``layers["counts"]`` holds the counts.
    """
    rng = np.random.default_rng(seed)
    ct = rng.choice(len(cell_types), n_cells)
    pert = rng.choice(len(perturbations), n_cells)
    base = rng.gamma(2.0, 1.0, (len(cell_types), n_genes))
    effect = np.zeros((len(perturbations), n_genes))
    for p in range(1, len(perturbations)):
        effect[p, (p * 7) % n_genes : (p * 7) % n_genes + 10] = 3.0
    counts = rng.poisson(base[ct] + effect[pert]).astype(np.float32)
    X = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e3).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.asarray(cell_types)[ct], categories=list(cell_types)),
            "condition": pd.Categorical(
                np.asarray(perturbations)[pert], categories=list(perturbations)
            ),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    return ad.AnnData(X=X, obs=obs, var=var, layers={"counts": counts})


@pytest.fixture
def synthetic() -> ad.AnnData:
    """A new small synthetic perturbation AnnData (240 cells x 60 genes, 3 types x 2)."""
    return make_synthetic()
