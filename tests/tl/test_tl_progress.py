"""Progress bars of the slow steps: shown when asked (or for big requests), numbers unchanged."""

import numpy as np
import pytest

import sccalmflow as scf

CONDS = {"cell_type": ["B", "CD14 Mono"], "condition": ["IFN-beta", "IFN-beta"]}


def test_predict_progress_bar_shown_hidden_same_cells(trained, capsys):
    m, _ = trained
    capsys.readouterr()
    quiet = m.predict(CONDS, n_cells=6, seed=3, temperature=1.0, progress_bar=False)
    assert "generating cells" not in capsys.readouterr().err
    shown = m.predict(CONDS, n_cells=6, seed=3, temperature=1.0, progress_bar=True)
    assert "generating cells" in capsys.readouterr().err
    one = {k: v[:1] for k, v in CONDS.items()}
    auto = m.predict(one, n_cells=6, seed=3, temperature=1.0)
    assert "generating cells" not in capsys.readouterr().err  # one batch, few cells: no bar
    np.testing.assert_array_equal(quiet.X, shown.X)
    np.testing.assert_array_equal(quiet.obsm["X_calmflow_pca"], shown.obsm["X_calmflow_pca"])
    np.testing.assert_array_equal(
        auto.X, m.predict(one, n_cells=6, seed=3, temperature=1.0, progress_bar=True).X
    )
    capsys.readouterr()
    # automatic: a few small conditions get no bar, more than 10,000 cells in all do
    m.predict(CONDS, n_cells=6, seed=3, temperature=1.0, batch_size=1)
    assert "generating cells" not in capsys.readouterr().err
    m.predict(CONDS, n_cells=5001, seed=3, decode=False)
    assert "generating cells" in capsys.readouterr().err
    with pytest.raises(TypeError, match="progress_bar"):
        m.predict(CONDS, n_cells=6, progress_bar="yes")


def test_temperature_sweep_progress_bar(trained, capsys):
    m, adata = trained
    conds = {k: v[:1] for k, v in CONDS.items()}
    capsys.readouterr()
    kw = {"temperatures": (0, 1), "n_cells": 20}
    quiet = scf.tl.temperature_sweep(m, conds, adata, progress_bar=False, **kw)
    assert "temperature sweep" not in capsys.readouterr().err
    shown = scf.tl.temperature_sweep(m, conds, adata, **kw)  # automatic: 2 temperatures
    err = capsys.readouterr().err
    assert "temperature sweep" in err and "generating cells" not in err  # one bar
    np.testing.assert_array_equal(quiet["value"], shown["value"])
    with pytest.raises(TypeError, match="progress_bar"):
        scf.tl.temperature_sweep(m, conds, adata, progress_bar=1, **kw)


def test_trajectories_umap_progress_bar(trained, capsys):
    m, adata = trained
    conds = {k: v[:1] for k, v in CONDS.items()}
    kw = {"n_cells": 4, "basis": "umap", "real": adata[:150], "umap_kwargs": {"n_epochs": 30}}
    capsys.readouterr()
    shown = scf.tl.trajectories(m, conds, **kw)  # automatic with basis="umap"
    assert "trajectories" in capsys.readouterr().err
    quiet = scf.tl.trajectories(m, conds, progress_bar=False, **kw)
    assert "trajectories" not in capsys.readouterr().err
    np.testing.assert_array_equal(shown.paths, quiet.paths)
    np.testing.assert_array_equal(shown.background, quiet.background)
    scf.tl.trajectories(m, conds, n_cells=4)  # PCA: fast, no bar by default
    assert "trajectories" not in capsys.readouterr().err
