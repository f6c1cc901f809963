"""Tests of the shared baseline interface (BaselineMethod): layout, PCA, errors."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sccalmflow.baselines import Additive, Control, TrainMean

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}


# ---------------------------------------------------------------- interface
@pytest.mark.parametrize("cls", [Control, Additive, TrainMean])
def test_prediction_layout(toy, cls, fit_baseline):
    adata, _ = toy
    method = fit_baseline(cls(), adata)
    conds = {"cell_type": ["C", "A"], "condition": ["stim", "control"]}
    pred = method.predict(conds, n_cells=[7, 5], seed=1)
    assert pred.shape == (12, adata.n_vars)
    assert pred.X.dtype == np.float32 and isinstance(pred.X, np.ndarray)
    assert list(pred.var_names) == list(adata.var_names)
    assert list(pred.obs.columns) == KEYS
    for k in KEYS:
        assert isinstance(pred.obs[k].dtype, pd.CategoricalDtype)
        assert list(pred.obs[k].cat.categories) == list(adata.obs[k].cat.categories)
    assert list(pred.obs["cell_type"]) == ["C"] * 7 + ["A"] * 5
    assert list(pred.obs["condition"]) == ["stim"] * 7 + ["control"] * 5
    assert pred.obsm["X_calmflow_pca"].shape == (12, method.pca.n_components)
    # X_pca is the unscaled PCA score of the generated features, and X decodes it
    z = pred.obsm["X_calmflow_pca"] / method.pca.scale_
    np.testing.assert_allclose(pred.X, method.pca.inverse_transform(z), atol=1e-4)
    assert pred.uns["baseline"]["method"] == cls.__name__
    assert method.training_summary["seconds"] > 0
    # a DataFrame works as well, n_cells as one number
    pred2 = method.predict(pd.DataFrame(conds), n_cells=3)
    assert pred2.n_obs == 6


def test_same_pca_space_as_pcafeatures(toy, fit_baseline):
    from sccalmflow.data import PCAFeatures

    adata, _ = toy
    method = fit_baseline(Control(), adata, pca_scaling="component")
    ref = PCAFeatures(4, "component").fit(adata.X)
    np.testing.assert_allclose(method.pca.components_, ref.components_, atol=1e-6)
    np.testing.assert_allclose(method.pca.scale_, ref.scale_, rtol=1e-6)


def test_layer_is_used(toy, fit_baseline):
    adata, _ = toy
    adata = adata.copy()
    adata.layers["double"] = adata.X * 2
    method = fit_baseline(Control(), adata, layer="double")
    np.testing.assert_allclose(method.pca.mean_, 2 * adata.X.mean(0), rtol=1e-5)


# ---------------------------------------------------------------- errors
def test_unknown_category(toy, fit_baseline):
    adata, _ = toy
    method = fit_baseline(Control(), adata)
    with pytest.raises(ValueError, match="Unknown value"):
        method.predict({"cell_type": ["Z"], "condition": ["stim"]})


def test_missing_key(toy, fit_baseline):
    adata, _ = toy
    method = fit_baseline(Additive(), adata)
    with pytest.raises(KeyError, match="condition_keys"):
        method.predict({"cell_type": ["A"]})
    with pytest.raises(KeyError, match="not found in .obs"):
        Control().fit(adata, condition_keys=["cell_type", "dose"], control=CONTROL)
    with pytest.raises(ValueError, match="not one of condition_keys"):
        Control().fit(adata, condition_keys=["cell_type"], control=CONTROL)
    with pytest.raises(ValueError, match="does not occur"):
        Control().fit(adata, condition_keys=KEYS, control={"condition": "ctrl"})
    with pytest.raises(ValueError, match="non-empty"):
        Control().fit(adata, condition_keys=KEYS, control={})


def test_not_fitted():
    with pytest.raises(RuntimeError, match="not fitted"):
        Additive().predict({"cell_type": ["A"], "condition": ["stim"]})


@pytest.mark.parametrize("name", ["Control", "Additive", "TrainMean", "CFM"])
def test_input_not_mutated(name, make_toy, fit_baseline, tiny_cfm):
    make = {"Control": Control, "Additive": Additive, "TrainMean": TrainMean}.get(
        name, lambda: tiny_cfm(n_steps=3)
    )
    adata, _ = make_toy()
    adata.obs["condition"] = adata.obs["condition"].astype(str)  # non-categorical column
    before = adata.copy()
    method = fit_baseline(make(), adata)
    method.predict({"cell_type": ["C"], "condition": ["stim"]}, n_cells=3)
    np.testing.assert_array_equal(adata.X, before.X)
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    pd.testing.assert_frame_equal(adata.var, before.var)
    assert list(adata.obsm) == list(before.obsm) and list(adata.uns) == list(before.uns)
    assert list(adata.layers) == list(before.layers)


def test_only_perturbation_keys(toy):
    """Without a context key every cell shares one context (the model refuses this)."""
    adata, _ = toy
    method = Additive().fit(adata, condition_keys="condition", control=CONTROL, n_pca=4)
    assert method.condition_keys == ["condition"] and method.context_keys == []
    assert method.perturbation_keys == ["condition"] and method.control == CONTROL
    assert method.categories == {"condition": ["control", "stim"]}
    assert method.predict({"condition": ["stim"]}, n_cells=4).n_obs == 4
    with pytest.raises(ValueError, match="does not occur"):
        Control().fit(adata, condition_keys="condition", control={"condition": "ctrl"})
    with pytest.raises(ValueError, match="at least one"):
        Control().fit(adata, condition_keys=[], control=CONTROL)


def test_attributes_follow_the_condition_spec(toy, fit_baseline):
    adata, _ = toy
    method = Control()
    assert method.condition_keys == [] and method.control == {} and method.categories == {}
    fit_baseline(method, adata)
    spec = method.condition_spec
    assert spec.keys == tuple(KEYS) and method.condition_keys == KEYS
    assert method.perturbation_keys == ["condition"] and method.context_keys == ["cell_type"]
    assert method.control == CONTROL
    assert method.categories == {k: list(adata.obs[k].cat.categories) for k in KEYS}


def test_additive_can_cross_fit_like_the_model(kang_small):
    """``pca_folds``: the training cells enter with the spread of new cells, as the model's."""
    from sccalmflow.data import PCA_KEY
    from sccalmflow.datasets import kang2018_setup

    KANG = kang2018_setup()
    COND = {"cell_type": ["B"], "condition": ["IFN-beta"]}
    plain = Additive().fit(kang_small, n_pca=30, seed=0, **KANG)
    cross = Additive().fit(kang_small, n_pca=30, seed=0, pca_folds=5, **KANG)
    a = plain.predict(COND, n_cells=200, seed=0).obsm[PCA_KEY]
    b = cross.predict(COND, n_cells=200, seed=0).obsm[PCA_KEY]
    assert b[:, 5:].var(0).sum() < 0.8 * a[:, 5:].var(0).sum()
    np.testing.assert_allclose(a.mean(0)[:3], b.mean(0)[:3], atol=0.3 * np.abs(a).mean())
    with pytest.raises(ValueError, match="at least 2"):
        Additive().fit(kang_small, n_pca=10, pca_folds=1, **KANG)
