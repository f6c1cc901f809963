"""predict(out=...): the prediction written to an .h5ad as it is generated."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

REQUEST = {"cell_type": ["B", "NK"], "condition": ["IFN-beta", "control"]}


@pytest.fixture(scope="module")
def model(kang_small_shared, tiny_config):
    adata = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(adata, **kang2018_setup())
    model = CaLMFlowModel(adata, **tiny_config)
    model.train(max_epochs=1, batch_size=64, enable_progress_bar=False, accelerator="cpu")
    return model


def test_streamed_prediction_equals_the_in_memory_one(model, tmp_path):
    from sccalmflow.data import ROW_BLOCK

    n = ROW_BLOCK + 30  # two blocks per condition
    memory = model.predict(REQUEST, n_cells=n, seed=4, progress_bar=False)
    disk = model.predict(REQUEST, n_cells=n, seed=4, out=tmp_path / "pred.h5ad")
    assert disk.isbacked and disk.shape == memory.shape
    np.testing.assert_allclose(disk.X[:], memory.X, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(
        disk.obsm["X_calmflow_pca"], memory.obsm["X_calmflow_pca"], atol=1e-5
    )
    assert disk.obs.equals(memory.obs) and list(disk.var_names) == list(memory.var_names)
    assert disk.uns["calmflow_pca"]["fingerprint"] == memory.uns["calmflow_pca"]["fingerprint"]
    assert disk.uns["calmflow"]["seed"] == 4
    again = ad.read_h5ad(tmp_path / "pred.h5ad")  # a plain AnnData file
    np.testing.assert_allclose(again.X, memory.X, rtol=1e-6, atol=1e-6)
    features = model.predict(REQUEST, n_cells=5, decode=False, out=tmp_path / "z.h5ad")
    assert features.shape == (10, 0) and features.obsm["X_calmflow_pca"].shape == (10, 10)


def test_bad_output_paths_are_refused_and_nothing_is_left_behind(model, tmp_path):
    (tmp_path / "there.h5ad").write_text("")
    with pytest.raises(FileExistsError, match="exists: remove it or choose another"):
        model.predict(REQUEST, out=tmp_path / "there.h5ad")
    with pytest.raises(ValueError, match=r"must end in \.h5ad"):
        model.predict(REQUEST, out=tmp_path / "pred.zarr")
    with pytest.raises(FileNotFoundError, match="does not exist"):
        model.predict(REQUEST, out=tmp_path / "missing" / "pred.h5ad")
    with pytest.raises(TypeError, match="must be a file path"):
        model.predict(REQUEST, out=3)
    with pytest.raises(ValueError, match="cannot be combined with `out`"):
        model.predict(REQUEST, out=tmp_path / "t.h5ad", return_trajectories=True)
    with pytest.raises(ValueError, match=r"Unknown value"):
        model.predict({"cell_type": ["B"], "condition": ["IL-6"]}, out=tmp_path / "u.h5ad")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["there.h5ad"]


def test_too_large_requests_name_the_streaming_option(model):
    with pytest.raises(ValueError, match=r"pass out='prediction\.h5ad'"):
        model.predict(REQUEST, n_cells=5_000_000)
