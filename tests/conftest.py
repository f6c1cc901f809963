import os

import numpy as np
import pytest
import torch

os.environ.setdefault("OMP_NUM_THREADS", "2")
torch.set_num_threads(int(os.environ.get("SCCALMFLOW_TEST_THREADS", "2")))

# a tiny backbone so model tests run in seconds
TINY = dict(
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


@pytest.fixture(scope="session")
def kang_full():
    import sccalmflow as scf

    return scf.datasets.kang2018()


def small_kang(kang_full):
    """Real Kang cells: 4 cell types, 300 most variable genes, 600 cells (a new object)."""
    keep = kang_full.obs["cell_type"].isin(["B", "CD14 Mono", "CD4 Naive T", "NK"]).to_numpy()
    genes = kang_full.var.sort_values("highly_variable_rank").index[:300]
    ad = kang_full[keep, genes].copy()
    ad.obs["cell_type"] = ad.obs["cell_type"].cat.remove_unused_categories()
    rng = np.random.default_rng(0)
    idx = np.sort(rng.choice(ad.n_obs, 600, replace=False))
    return ad[idx].copy()


@pytest.fixture
def kang_small(kang_full):
    """A fresh copy of :func:`small_kang` per test."""
    return small_kang(kang_full)


def quiet_train(model, **kwargs):
    kwargs.setdefault("enable_progress_bar", False)
    kwargs.setdefault("accelerator", "cpu")
    model.train(**kwargs)
