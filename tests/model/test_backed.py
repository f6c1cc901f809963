"""Backed AnnData: registration, PCA and training without loading the matrix whole."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.data import in_memory, read_backed
from sccalmflow.datasets import kang2018_setup

REQUEST = {"cell_type": ["B", "NK"], "condition": ["IFN-beta", "IFN-beta"]}


def _trained(adata, tiny, **kwargs):
    CaLMFlowModel.setup_anndata(adata, **kang2018_setup())
    model = CaLMFlowModel(adata, **tiny, **kwargs)
    model.train(max_epochs=2, batch_size=64, enable_progress_bar=False, accelerator="cpu")
    return model


def test_backed_and_in_memory_registration_give_the_same_model(kang_small, tiny, tmp_path):
    kang_small.write_h5ad(tmp_path / "cells.h5ad")
    backed = ad.read_h5ad(tmp_path / "cells.h5ad", backed="r")
    assert backed.isbacked
    memory = _trained(kang_small, tiny)
    disk = _trained(backed, tiny)
    np.testing.assert_allclose(disk.features_.components_, memory.features_.components_, atol=1e-5)
    np.testing.assert_allclose(disk.get_pca(), memory.get_pca(), atol=1e-4)
    a = memory.predict(REQUEST, n_cells=20, seed=1)
    b = disk.predict(REQUEST, n_cells=20, seed=1)
    np.testing.assert_allclose(b.X, a.X, atol=1e-4)
    assert backed.isbacked  # nothing loaded the file into memory


def test_pca_on_a_stratified_subsample(kang_small, tiny):
    model = _trained(kang_small.copy(), tiny, pca_max_cells=200)
    full = _trained(kang_small.copy(), tiny)
    # fitted on 200 cells of every condition in proportion: close to, not equal to, all cells
    cos = np.abs(np.sum(model.features_.components_[:3] * full.features_.components_[:3], 1))
    assert (cos > 0.9).all() and not np.allclose(cos, 1.0, atol=1e-6)
    assert model.get_pca().shape == (kang_small.n_obs, tiny["n_pca"])


@pytest.mark.filterwarnings("ignore:Writing zarr v2")
@pytest.mark.parametrize("dense", [False, True])
def test_zarr_opened_lazily_gives_the_same_model(kang_small, tiny, tmp_path, dense):
    cells = kang_small.copy()
    if dense:
        cells.X = cells.X.toarray()
    cells.write_zarr(tmp_path / "cells.zarr")
    lazy = read_backed(tmp_path / "cells.zarr")
    assert not in_memory(lazy.X)
    memory = _trained(kang_small, tiny, pca_max_cells=300)
    disk = _trained(lazy, tiny, pca_max_cells=300)  # the subsample is read row by row
    np.testing.assert_allclose(disk.get_pca(), memory.get_pca(), atol=1e-4)
    a = memory.predict(REQUEST, n_cells=20, seed=1)
    b = disk.predict(REQUEST, n_cells=20, seed=1)
    np.testing.assert_allclose(b.X, a.X, atol=1e-4)
    assert not in_memory(lazy.X)


def test_read_backed_refuses_what_it_cannot_open(tmp_path):
    with pytest.raises(ValueError, match=".h5ad or .zarr"):
        read_backed(tmp_path / "cells.csv")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_backed(tmp_path / "cells.zarr")
