"""The synthetic screen: its layout, its determinism, and where Additive is right or wrong."""

from __future__ import annotations

import numpy as np
import pandas as pd
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


@pytest.mark.parametrize("suffix", [".h5ad", ".zarr"])
def test_written_to_disk_in_chunks(tmp_path, suffix):
    kwargs = dict(n_cells=600, n_genes=40, n_cell_types=2, seed=5)
    disk = scf.datasets.synthetic_perturbation(
        **kwargs, path=tmp_path / f"screen{suffix}", chunk_size=150
    )
    assert not scf.data.in_memory(disk.X)  # returned with X on disk
    memory = scf.datasets.synthetic_perturbation(**kwargs)
    pd.testing.assert_frame_equal(disk.obs, memory.obs)
    X, counts = disk.X[:], disk.layers["counts"][:]
    assert X.shape == (600, 40) and counts.dtype == np.int32
    expected = np.log1p(counts.toarray() / counts.toarray().sum(1, keepdims=True) * 1e4)
    np.testing.assert_allclose(X.toarray(), expected, rtol=1e-5)
    # other draws of the same screen: the same condition means, not the same cells
    assert not np.allclose(X.toarray(), memory.X.toarray())
    for (_, a), (_, b) in zip(
        pd.DataFrame(X.toarray()).groupby(disk.obs.perturbation.to_numpy()),
        pd.DataFrame(memory.X.toarray()).groupby(memory.obs.perturbation.to_numpy()),
        strict=True,
    ):
        assert np.corrcoef(a.mean(), b.mean())[0, 1] > 0.95
    again = scf.datasets.synthetic_perturbation(
        **kwargs, path=tmp_path / f"again{suffix}", chunk_size=150
    )
    np.testing.assert_array_equal(again.X[:].toarray(), X.toarray())  # seeded
    with pytest.raises(FileExistsError, match="exists"):
        scf.datasets.synthetic_perturbation(**kwargs, path=tmp_path / f"screen{suffix}")


def test_doses_scale_the_effect_and_register():
    a = scf.datasets.synthetic_perturbation(
        n_cells=1400, n_genes=100, n_cell_types=2, n_perturbations=1, doses=[0.1, 1.0], seed=2
    )
    pairs = a.obs.groupby(["perturbation", "dose"], observed=True).size()
    assert pairs.index.tolist() == [("control", "0"), ("pert0", "0.1"), ("pert0", "1")]
    assert pairs.min() >= 1400 // 6
    X = a.X.toarray()
    ctrl = X[(a.obs.dose == "0").to_numpy()].mean(0)
    low = np.linalg.norm(X[(a.obs.dose == "0.1").to_numpy()].mean(0) - ctrl)
    high = np.linalg.norm(X[(a.obs.dose == "1").to_numpy()].mean(0) - ctrl)
    assert high > 2 * low
    scf.CaLMFlowModel.setup_anndata(a, **scf.datasets.synthetic_setup(doses=True))
    assert a.uns["synthetic"]["doses"].tolist() == [0.1, 1.0]


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"doses": [0.0, 1.0]}, ValueError, r"`doses\[0\]` must be greater than 0"),
        ({"doses": "1"}, TypeError, "`doses` must be a sequence of numbers"),
        ({"doses": ["1", 2.0]}, TypeError, r"`doses\[0\]` must be a number"),
        ({"doses": []}, ValueError, "non-empty"),
        ({"doses": [1, 1.0]}, ValueError, "distinct"),
        ({"path": "screen.csv"}, ValueError, "must end in .h5ad or .zarr"),
        ({"library_size": 0}, ValueError, "library_size"),
    ],
)
def test_bad_disk_and_dose_arguments(kwargs, error, match):
    with pytest.raises(error, match=match):
        scf.datasets.synthetic_perturbation(n_cells=100, n_genes=10, **kwargs)
