"""What a new user trips over in the first hour: warnings, history dtypes, scvi-tools habits."""

import logging
import os
import warnings

import numpy as np
import pandas as pd
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
COND = {"cell_type": ["B"], "condition": ["IFN-beta"]}


@pytest.fixture(scope="module")
def trained(kang_small_shared, tiny_config, quiet_train):
    adata = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(adata, **KEYS)
    model = CaLMFlowModel(adata, **tiny_config)
    quiet_train(model, max_epochs=2, batch_size=64)
    return model


def test_train_and_predict_emit_no_warning(kang_small, tiny, caplog):
    """Warnings as errors through one train + predict; Lightning's INFO noise is silenced
    inside train only."""
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    model = CaLMFlowModel(kang_small, **tiny)
    with warnings.catch_warnings(), caplog.at_level(logging.INFO):
        warnings.simplefilter("error")
        model.train(max_epochs=1, batch_size=64, enable_progress_bar=False, accelerator="cpu")
        model.predict(COND, n_cells=5)
    noise = [r.getMessage() for r in caplog.records if "available" in r.getMessage()]
    assert not noise, noise
    assert not any("litlogger" in r.getMessage() for r in caplog.records)
    # the filters do not leak out of train
    with pytest.warns(FutureWarning, match="LeafSpec"):
        warnings.warn("`isinstance(treespec, LeafSpec)` is deprecated", FutureWarning, stacklevel=1)


def test_history_is_numeric(trained):
    h = trained.history["train_loss"]
    assert all(np.issubdtype(t, np.number) for t in h.dtypes)
    assert h.round(3).shape == h.shape


def test_scvi_getters(trained):
    z = trained.get_latent_representation()
    np.testing.assert_array_equal(z, trained.get_pca())
    expr = trained.get_normalized_expression()
    assert isinstance(expr, pd.DataFrame)
    assert expr.shape == (trained.adata.n_obs, trained.adata.n_vars)
    assert list(expr.columns) == list(trained.var_names)
    assert (expr.to_numpy() >= 0).all()
    # a rank-n reconstruction of the cells: close to, not equal to, the data
    X = trained.adata.X.toarray()
    err = np.abs(expr.to_numpy() - X).mean()
    assert 0 < err < np.abs(X - X.mean(0)).mean()
    sub = trained.adata[:7].copy()
    np.testing.assert_allclose(
        trained.get_normalized_expression(sub).to_numpy(), expr.to_numpy()[:7], atol=1e-5
    )


def test_train_size_is_the_scvi_spelling(kang_small, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    model = CaLMFlowModel(kang_small, **tiny)
    with pytest.raises(ValueError, match="not both"):
        quiet_train(model, max_epochs=1, train_size=0.8, validation_size=0.2)
    with pytest.raises(ValueError, match="train_size"):
        quiet_train(model, max_epochs=1, train_size=0)
    quiet_train(model, max_epochs=1, train_size=0.5, batch_size=64)
    n_val = model.history["validation_loss"]
    assert len(n_val) == 1


def test_misspelled_and_extra_condition_keys_are_named(trained):
    with pytest.raises(KeyError, match=r"lack column\(s\) \['cell_type'\].*\['celltype'\]"):
        trained.predict({"celltype": ["B"], "condition": ["IFN-beta"]}, n_cells=2)
    with pytest.warns(UserWarning, match=r"\['dose'\] are not condition keys"):
        pred = trained.predict({**COND, "dose": ["10"]}, n_cells=2)
    assert "dose" not in pred.obs


def test_thread_count_is_chosen_inside_calls_and_restored(trained, monkeypatch):
    import torch

    import sccalmflow as scf

    calls = []
    real_set = torch.set_num_threads

    def record(n):
        calls.append(n)
        real_set(n)

    user = 2 if torch.get_num_threads() != 2 else 3
    real_set(user)
    monkeypatch.setattr(torch, "set_num_threads", record)
    try:
        assert scf.settings.n_threads == 1
        trained.predict(COND, n_cells=3)
        assert calls == [1, user] and torch.get_num_threads() == user
        calls.clear()
        trained.predict(COND, n_cells=3, n_threads=2)
        assert calls[0] == 2 and torch.get_num_threads() == user
        calls.clear()
        monkeypatch.setattr(scf.settings, "_n_threads", None)
        trained.predict(COND, n_cells=3)
        assert calls == []
    finally:
        real_set(int(os.environ.get("SCCALMFLOW_TEST_THREADS", "2")))
    with pytest.raises(ValueError, match="n_threads"):
        trained.predict(COND, n_cells=3, n_threads=0)
    with pytest.raises(TypeError, match="n_threads"):
        scf.settings.n_threads = 1.5


def test_warnings_point_at_the_callers_line(kang_small, tiny):
    """Warnings from predict name the user's file, not torch's decorator or our internals."""
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    model = CaLMFlowModel(kang_small, **tiny)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=5)
    assert [w.filename for w in caught if "not trained" in str(w.message)] == [__file__]
