"""tl.temperature_sweep: a metric at several sampling temperatures; drawn by pl.temperature."""

import anndata as ad
import numpy as np
import pytest

import sccalmflow as scf
from sccalmflow import CaLMFlowModel
from sccalmflow.metrics import mean_expression_r2

CONDS = {"cell_type": ["B"], "condition": ["IFN-beta"]}


def test_temperature_sweep_table(trained):
    m, adata = trained
    sweep = scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(0, 1), n_cells=30)
    assert list(sweep.columns) == [
        "cell_type", "condition", "temperature", "metric", "space", "value",
    ]  # fmt: skip
    assert sweep["temperature"].tolist() == [0.0, 1.0]
    assert set(sweep["metric"]) == {"r2_pearson"} and set(sweep["space"]) == {"genes"}
    real = adata[((adata.obs.cell_type == "B") & (adata.obs.condition == "IFN-beta")).to_numpy()]
    expected = [
        mean_expression_r2(m.predict(CONDS, n_cells=30, seed=0, temperature=t), real)["r2_pearson"]
        for t in (0, 1)
    ]
    np.testing.assert_allclose(sweep["value"], expected, rtol=1e-6)


def test_temperature_sweep_feeds_pl(trained):
    """The old pl.temperature(model, ...) checks, on pl.temperature(tl.temperature_sweep(...))."""
    m, adata = trained
    sweep = scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(0, 1), n_cells=30)
    ax = scf.pl.temperature(sweep, show=False)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0, 1])
    real = adata[((adata.obs.cell_type == "B") & (adata.obs.condition == "IFN-beta")).to_numpy()]
    expected = [
        mean_expression_r2(m.predict(CONDS, n_cells=30, seed=0, temperature=t), real)["r2_pearson"]
        for t in (0, 1)
    ]
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    assert ax.get_xlabel() == "sampling temperature τ"
    assert ax.get_ylabel() == "r2_pearson (genes), higher is better"
    sweep = scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(0, 0.5), metric="mmd",
                                     n_cells=30)  # fmt: skip
    ax = scf.pl.temperature(sweep, show=False)
    assert ax.get_ylabel() == "mmd (pca), lower is better"
    assert np.all(np.asarray(ax.get_lines()[0].get_ydata()) >= 0)


def test_temperature_sweep_errors(trained):
    m, adata = trained
    with pytest.raises(ValueError, match="Unknown metric"):
        scf.tl.temperature_sweep(m, CONDS, adata, metric="accuracy")
    with pytest.raises(ValueError, match="empty"):
        scf.tl.temperature_sweep(m, CONDS, adata, temperatures=())
    with pytest.raises(ValueError, match=r"`temperatures\[0\]` must be at least 0"):
        scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(-1, 0))
    with pytest.raises(ValueError, match=r"`temperatures\[1\]` must be finite"):
        scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(0, float("nan")))
    with pytest.raises(TypeError, match="`temperatures` must be a sequence of numbers"):
        scf.tl.temperature_sweep(m, CONDS, adata, temperatures="01")
    with pytest.raises(ValueError, match="must not repeat a value"):
        scf.tl.temperature_sweep(m, CONDS, adata, temperatures=(0, 1, 1))
    no_type = ad.AnnData(X=adata.X[:5], obs=adata.obs[["condition"]].iloc[:5])
    with pytest.raises(KeyError, match="condition key"):
        scf.tl.temperature_sweep(m, CONDS, no_type)
    with pytest.raises(TypeError, match="AnnData"):
        scf.tl.temperature_sweep(m, CONDS, adata.X)


def test_temperature_sweep_refuses_deterministic_head(trained, tiny_config, monkeypatch):
    """The deterministic head ignores τ: a clear ValueError before generating anything."""
    m, adata = trained
    det = CaLMFlowModel(m.adata, **{**tiny_config, "head": "deterministic"})
    det.is_trained_ = True
    assert not any(det.module.samples_latent(t) for t in (0.0, 0.5, 1.0, 2.0))

    def no_predict(*args, **kwargs):
        raise AssertionError("predict called")

    monkeypatch.setattr(det, "predict", no_predict)
    with pytest.raises(ValueError, match="deterministic head ignores the temperature"):
        scf.tl.temperature_sweep(det, CONDS, adata, temperatures=(0, 1), n_cells=5)
