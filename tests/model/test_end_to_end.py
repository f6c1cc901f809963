"""Slow end-to-end checks (run with ``pytest -m slow``; CI runs them)."""

import numpy as np
import pytest

import sccalmflow as scf
from sccalmflow import metrics
from sccalmflow.baselines import Additive, Control
from sccalmflow.datasets import kang2018_setup
from sccalmflow.demo import held_out_split

pytestmark = pytest.mark.slow

KEYS = kang2018_setup()


def test_default_model_beats_control_on_held_out_cell_type(tmp_path):
    """The default model, trained with CD14 Mono IFN-beta held out, predicts those cells'
    mean response on the top-100 DE genes better than the control and additive baselines and its cells
    are closer in distribution than the control cells; a save/load round trip keeps them."""
    adata = scf.datasets.kang2018()
    ct = "CD14 Mono"
    train, real, _, genes = held_out_split(adata, ct)
    scf.CaLMFlowModel.setup_anndata(train, **KEYS)
    model = scf.CaLMFlowModel(train)
    model.train(enable_progress_bar=False, accelerator="cpu")
    rec = model.history["reconstruction_loss_train"].iloc[:, 0].to_numpy()
    assert rec[-1] < 0.7 * rec[0]

    cond = {"cell_type": [ct], "condition": ["IFN-beta"]}
    pred = model.predict(cond, n_cells=500, seed=0)
    ctrl = Control().fit(train, **KEYS).predict(cond, n_cells=500, seed=0)
    add = Additive().fit(train, **KEYS).predict(cond, n_cells=500, seed=0)
    r2 = {
        name: metrics.mean_expression_r2(p, real, genes=genes)["r2_pearson"]
        for name, p in {"calmflow": pred, "control": ctrl, "additive": add}.items()
    }
    assert r2["calmflow"] > r2["control"] + 0.3, r2
    assert r2["calmflow"] > r2["additive"] + 0.05, r2  # it starts from Additive and improves on it
    real_pca = model.get_pca(real)
    e = {
        name: metrics.energy_distance(p.obsm["X_calmflow_pca"], real_pca)
        for name, p in {"calmflow": pred, "control": ctrl}.items()
    }
    assert e["calmflow"] < 0.5 * e["control"], e

    model.save(tmp_path / "m")
    loaded = scf.CaLMFlowModel.load(tmp_path / "m", adata=train)
    np.testing.assert_array_equal(loaded.predict(cond, n_cells=500, seed=0).X, pred.X)
