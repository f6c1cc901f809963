"""The synthetic screen: its layout, its determinism, and where Additive is right or wrong."""

from __future__ import annotations

import numpy as np
import pytest

import sccalmflow as scf
from sccalmflow.baselines import Additive


def test_layout_counts_and_seed():
    a = scf.datasets.synthetic_perturbation(n_cells=190, n_genes=40, n_cell_types=3, seed=4)
    assert a.shape == (190, 40)
    assert list(a.obs.perturbation.cat.categories) == ["control", "pert0", "pert1"]
    assert a.obs.value_counts().min() >= 190 // 9
    counts = a.layers["counts"].toarray()
    assert counts.dtype == np.int32 and (counts >= 0).all()
    expected = np.log1p(counts / counts.sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(a.X.toarray(), expected, rtol=1e-5)
    again = scf.datasets.synthetic_perturbation(n_cells=190, n_genes=40, n_cell_types=3, seed=4)
    np.testing.assert_array_equal(a.layers["counts"].toarray(), again.layers["counts"].toarray())
    scf.CaLMFlowModel.setup_anndata(a, **scf.datasets.synthetic_setup())  # registers as is


def _additive_delta_corr(interaction: float) -> float:
    a = scf.datasets.synthetic_perturbation(n_cells=3000, interaction=interaction, seed=1)
    held = ((a.obs.cell_type == "type0") & (a.obs.perturbation == "pert0")).to_numpy()
    ctrl = ((a.obs.cell_type == "type0") & (a.obs.perturbation == "control")).to_numpy()
    method = Additive().fit(a[~held].copy(), n_pca=20, **scf.datasets.synthetic_setup())
    pred = method.predict({"cell_type": ["type0"], "perturbation": ["pert0"]}, n_cells=300)
    real, base = (np.asarray(a[m].X.mean(0)).ravel() for m in (held, ctrl))
    return float(np.corrcoef(real - base, np.asarray(pred.X.mean(0)).ravel() - base)[0, 1])


def test_additive_is_right_without_interaction_and_wrong_with_it():
    # type0 of seed 1 is barely responsive: with an interaction its response nearly vanishes
    assert _additive_delta_corr(0.0) > 0.8
    assert _additive_delta_corr(1.0) < 0.4


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"n_cells": 5, "n_cell_types": 2}, "fewer than the 6 conditions"),
        ({"interaction": -1}, "`interaction` must be at least 0"),
        ({"n_genes": 1}, "`n_genes` must be at least 2"),
    ],
)
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        scf.datasets.synthetic_perturbation(**kwargs)
