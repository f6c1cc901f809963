import numpy as np
import pytest
import scipy.sparse as sp

import sccalmflow as scf
from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()


def test_setup_registers_fields(kang_small):
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    assert "_scvi_uuid" in kang_small.uns
    assert kang_small.obsm["_scvi_extra_categorical_covs"].shape == (kang_small.n_obs, 2)
    model = CaLMFlowModel(kang_small, n_pca=5, width=16, n_layers=1, n_heads=2, ffn=32)
    model.view_anndata_setup()
    assert model.adata_manager.registry["setup_args"]["control"] == {"condition": "control"}


def test_missing_key(kang_small):
    with pytest.raises(KeyError, match="not found in .obs"):
        CaLMFlowModel.setup_anndata(kang_small, condition_keys=["celltype"])


def test_control_value_absent(kang_small):
    with pytest.raises(ValueError, match="does not occur"):
        CaLMFlowModel.setup_anndata(
            kang_small, condition_keys=["cell_type", "condition"], control={"condition": "ctrl"}
        )


def test_control_key_not_a_condition_key(kang_small):
    with pytest.raises(ValueError, match="not one of condition_keys"):
        CaLMFlowModel.setup_anndata(
            kang_small, condition_keys=["cell_type"], control={"condition": "control"}
        )


def test_nan_and_inf(kang_small):
    X = kang_small.X.toarray()
    X[0, 0] = np.nan
    X[1, 1] = np.inf
    kang_small.X = sp.csr_matrix(X)
    with pytest.raises(ValueError, match="1 NaN and 1 infinite"):
        CaLMFlowModel.setup_anndata(kang_small, **KEYS)


def test_counts_rejected(kang_small):
    with pytest.raises(ValueError, match="raw counts"):
        CaLMFlowModel.setup_anndata(kang_small, layer="counts", **KEYS)


def test_scaled_rejected(kang_small):
    kang_small.layers["scaled"] = kang_small.X.toarray() - 1.0
    with pytest.raises(ValueError, match="negative values"):
        CaLMFlowModel.setup_anndata(kang_small, layer="scaled", **KEYS)


def test_missing_layer(kang_small):
    with pytest.raises(KeyError, match="layer 'logcounts' not found"):
        CaLMFlowModel.setup_anndata(kang_small, layer="logcounts", **KEYS)


def test_missing_values_in_obs(kang_small):
    kang_small.obs["cell_type"] = kang_small.obs["cell_type"].cat.add_categories([]).astype(object)
    kang_small.obs.iloc[3, kang_small.obs.columns.get_loc("cell_type")] = np.nan
    with pytest.raises(ValueError, match="missing value"):
        CaLMFlowModel.setup_anndata(kang_small, **KEYS)


def test_bad_template(kang_small):
    with pytest.raises(ValueError, match="not condition keys"):
        CaLMFlowModel.setup_anndata(kang_small, prompt_template="A {tissue} cell:", **KEYS)


def test_source_control_needs_control(kang_small):
    CaLMFlowModel.setup_anndata(kang_small, condition_keys=["cell_type"])
    with pytest.raises(ValueError, match="source='control' needs control cells"):
        CaLMFlowModel(kang_small, source="control")


def test_setup_mudata(kang_small):
    mudata = pytest.importorskip("mudata")
    mdata = mudata.MuData({"rna": kang_small.copy()})
    mdata.obs["cell_type"] = kang_small.obs["cell_type"].to_numpy()
    mdata.obs["condition"] = kang_small.obs["condition"].to_numpy()
    CaLMFlowModel.setup_mudata(mdata, modalities={"rna_layer": "rna"}, **KEYS)
    model = CaLMFlowModel(mdata, n_pca=5, width=16, n_layers=1, n_heads=2, ffn=32)
    assert sorted(model.categories["condition"]) == ["IFN-beta", "control"]
    assert list(model.var_names) == list(kang_small.var_names)
    with pytest.raises(ValueError, match="modalities"):
        CaLMFlowModel.setup_mudata(mdata, **KEYS)


def test_bundled_dataset_is_fresh():
    a = scf.datasets.kang2018()
    a.obs["x"] = 1
    b = scf.datasets.kang2018()
    assert "x" not in b.obs
    assert a.shape == (3474, 2000)
    assert set(b.obs["condition"]) == {"control", "IFN-beta"}
