"""The model's PCA has its own key and a fingerprint: no silent comparison with scanpy's PCA."""

import numpy as np
import pytest
import scanpy as sc

import sccalmflow as scf
from sccalmflow import CaLMFlowModel
from sccalmflow.baselines import Additive
from sccalmflow.data import PCA_KEY
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
HELD = ("CD14 Mono", "IFN-beta")
COND = {"cell_type": [HELD[0]], "condition": [HELD[1]]}
EVAL = dict(condition_keys=["cell_type", "condition"], space="pca", metrics=("e_distance",))


def _split(adata):
    held = ((adata.obs.cell_type == HELD[0]) & (adata.obs.condition == HELD[1])).to_numpy()
    return adata[~held].copy(), adata[held].copy()


@pytest.fixture(scope="module")
def setup(kang_small_shared, tiny_config, quiet_train):
    """``(model, pred, real)``: a model trained without the held-out cells, its prediction
    of them, and the real held-out cells after a normal scanpy PCA (do not modify)."""
    train, real = _split(kang_small_shared.copy())
    CaLMFlowModel.setup_anndata(train, **KEYS)
    model = CaLMFlowModel(train, **tiny_config)
    quiet_train(model, max_epochs=1, batch_size=64)
    pred = model.predict(COND, n_cells=40, seed=0)
    sc.pp.pca(real, n_comps=tiny_config["n_pca"])
    return model, pred, real


def test_prediction_carries_key_and_fingerprint(setup):
    model, pred, _ = setup
    assert "X_pca" not in pred.obsm
    assert pred.obsm[PCA_KEY].shape == (40, model.features_.n_components)
    fp = model.features_.fingerprint()
    assert isinstance(fp, str) and len(fp) == 16
    assert pred.uns["calmflow_pca"] == {"fingerprint": fp}


def test_scanpy_pca_is_refused_not_compared(setup):
    _, pred, real = setup
    with pytest.raises(KeyError, match=r"add_pca\(real\)"):
        scf.metrics.evaluate(pred, real, **EVAL)
    # scanpy's own key: pred has no 'X_pca' to compare with it
    with pytest.raises(KeyError, match="pred lack"):
        scf.metrics.evaluate(pred, real, pca_key="X_pca", **EVAL)
    # the model's coordinates written by hand carry no fingerprint: refused too
    hand = real.copy()
    hand.obsm[PCA_KEY] = hand.obsm["X_pca"]
    with pytest.raises(ValueError, match=r"no fingerprint.*add_pca\(real\)"):
        scf.metrics.evaluate(pred, hand, **EVAL)


def test_add_pca_matches_get_pca_and_keeps_scanpy_pca(setup):
    model, pred, real = setup
    real = real.copy()
    scanpy_pca, scanpy_uns = real.obsm["X_pca"].copy(), dict(real.uns["pca"])
    assert model.add_pca(real) is real
    np.testing.assert_array_equal(real.obsm["X_pca"], scanpy_pca)
    assert real.uns["pca"].keys() == scanpy_uns.keys()
    np.testing.assert_array_equal(real.obsm[PCA_KEY], model.get_pca(real))
    assert real.uns["calmflow_pca"]["fingerprint"] == model.features_.fingerprint()
    value = scf.metrics.evaluate(pred, real, n_max=None, **EVAL)["value"].item()
    expected = scf.metrics.energy_distance(pred.obsm[PCA_KEY], model.get_pca(real))
    assert value == pytest.approx(expected, rel=1e-6)
    # an explicit key without fingerprints on either side is compared as told
    p, r = pred.copy(), real.copy()
    p.obsm["mine"], r.obsm["mine"] = pred.obsm[PCA_KEY], model.get_pca(real)
    mine = scf.metrics.evaluate(p, r, n_max=None, pca_key="mine", **EVAL)["value"].item()
    assert mine == pytest.approx(value, rel=1e-12)
    # a custom key keeps its own fingerprint entry
    model.add_pca(r, key="X_other")
    assert r.uns["other"]["fingerprint"] == model.features_.fingerprint()


def test_add_pca_refuses_scanpy_key_and_bad_input(setup):
    """key='X_pca' would replace scanpy's uns['pca'] (its variance ratios): refused."""
    model, _, real = setup
    r = real.copy()
    scanpy_uns = dict(r.uns["pca"])
    for key in ("X_pca", "pca"):
        with pytest.raises(ValueError, match="would overwrite scanpy's PCA"):
            model.add_pca(r, key=key)
    assert r.uns["pca"].keys() == scanpy_uns.keys() and PCA_KEY not in r.obsm
    with pytest.raises(TypeError, match="`key` must be a non-empty .obsm key"):
        model.add_pca(r, key=3)
    with pytest.raises(TypeError, match="`adata` must be an AnnData with the model's genes"):
        model.get_pca(r.X)


def test_other_model_fingerprint_differs_and_is_refused(setup, kang_small_shared, tiny):
    model, pred, real = setup
    _, held = _split(kang_small_shared.copy())
    other_data = kang_small_shared[kang_small_shared.obs.cell_type == "B"].copy()
    CaLMFlowModel.setup_anndata(other_data, **KEYS)
    other = CaLMFlowModel(other_data, **tiny)
    assert other.features_.fingerprint() != model.features_.fingerprint()
    other.add_pca(held)
    with pytest.raises(ValueError, match=r"different projections.*add_pca\(real\)") as err:
        scf.metrics.evaluate(pred, held, **EVAL)
    assert model.features_.fingerprint() in str(err.value)
    assert other.features_.fingerprint() in str(err.value)
    with pytest.raises(ValueError, match="different projections"):
        scf.tl.embedding(pred, held, basis="pca", condition_keys=["cell_type", "condition"])


def test_fingerprint_survives_save_and_load(setup, tmp_path):
    model, pred, _ = setup
    model.save(tmp_path / "m")
    loaded = CaLMFlowModel.load(tmp_path / "m", adata=model.adata)
    assert loaded.features_.fingerprint() == model.features_.fingerprint()
    again = loaded.predict(COND, n_cells=5, seed=0)
    assert again.uns["calmflow_pca"] == pred.uns["calmflow_pca"]


def test_baseline_add_pca(kang_small_shared):
    train, real = _split(kang_small_shared.copy())
    method = Additive().fit(train, n_pca=8, seed=0, **KEYS)
    pred = method.predict(COND, n_cells=20, seed=0)
    assert "X_pca" not in pred.obsm
    assert pred.uns["calmflow_pca"]["fingerprint"] == method.pca.fingerprint()
    method.add_pca(real)
    np.testing.assert_allclose(
        real.obsm[PCA_KEY], method.pca.pca_scores(method.pca.transform(real.X))
    )
    table = scf.metrics.evaluate(pred, real, **EVAL)
    assert np.isfinite(table["value"]).all()
    with pytest.raises(ValueError, match="genes"):
        method.add_pca(real[:, :10].copy())
