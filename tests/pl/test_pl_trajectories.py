"""pl.trajectories draws a tl.Trajectories: paths coloured by time over real cells."""

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.collections import LineCollection

import sccalmflow as scf

KEYS = ["cell_type", "condition"]
CONDS = [("B", "IFN-beta"), ("NK", "IFN-beta")]


@pytest.fixture
def result():
    """A hand-made result: 3 paths of 5 states per condition, 50 background cells (10 of
    them real B · IFN-beta cells, none of NK · IFN-beta)."""
    rng = np.random.default_rng(0)
    n, T = 3, 5
    obs = pd.DataFrame([c for c in CONDS for _ in range(n)], columns=KEYS)
    obs.index = [f"gen{i}" for i in range(len(obs))]
    bg_obs = pd.DataFrame(
        [("B", "IFN-beta")] * 10 + [("B", "control")] * 20 + [("NK", "control")] * 20,
        columns=KEYS,
    )
    return scf.tl.Trajectories(
        paths=rng.normal(size=(2 * n, T, 2)),
        time_grid=np.linspace(0, 1, T),
        prediction=ad.AnnData(obs=obs),
        conditions=CONDS,
        condition_keys=KEYS,
        background=rng.normal(size=(50, 2)),
        background_obs=bg_obs,
        basis="pca",
        axis_labels=("PC1", "PC2"),
    )


def test_trajectories_panels_paths_and_cells(result):
    axes = scf.pl.trajectories(result, show=False)
    assert [a.get_title() for a in axes] == ["B · IFN-beta", "NK · IFN-beta"]
    for k, a in enumerate(axes):
        (lines,) = [c for c in a.collections if isinstance(c, LineCollection)]
        segments = np.asarray(lines.get_segments())
        assert segments.shape == (3 * 4, 2, 2)
        p = result.paths[3 * k : 3 * k + 3]
        np.testing.assert_allclose(segments[:4, 0], p[0, :-1])  # first path, state by state
        np.testing.assert_allclose(segments[:4, 1], p[0, 1:])
        t = np.asarray(lines.get_array())  # segment colours: mid-points of the time grid
        np.testing.assert_allclose(t[:4], [0.125, 0.375, 0.625, 0.875])
        assert _n(a.collections[0]) == 50  # every background cell
        start = [c for c in a.collections if c.get_label() == "start (t = 0)"][0]
        end = [c for c in a.collections if c.get_label() == "generated (t = 1)"][0]
        np.testing.assert_allclose(start.get_offsets(), p[:, 0])
        np.testing.assert_allclose(end.get_offsets(), p[:, -1])
        assert (a.get_xlabel(), a.get_ylabel()) == ("PC1", "PC2")
    # real cells of the condition, darker: 10 B · IFN-beta cells, no NK · IFN-beta cell
    assert axes[0].collections[1].get_label() == "real cells, this condition (n=10)"
    np.testing.assert_allclose(axes[0].collections[1].get_offsets(), result.background[:10])
    assert _n(axes[1].collections[1]) == 0
    fig = axes[0].figure
    assert any(a.get_ylabel() == "time t" for a in fig.axes)  # the colour bar
    labels = [t.get_text() for t in fig.legends[0].get_texts()]
    assert labels == [
        "real cells",
        "real cells, this condition",
        "paths",
        "start (t = 0)",
        "generated (t = 1)",
    ]


def _n(collection) -> int:
    return len(collection.get_offsets())


def test_trajectories_into_given_axes(result):
    fig, axes = plt.subplots(1, 2)
    out = scf.pl.trajectories(result, ax=axes, linewidth=2.0)
    assert list(out) == list(axes) and not fig.legends
    assert axes[0].get_legend() is not None
    lines = [c for c in axes[0].collections if isinstance(c, LineCollection)][0]
    assert lines.get_linewidths()[0] == 2.0
    assert isinstance(scf.pl.trajectories(result, return_fig=True), plt.Figure)


def test_trajectories_errors(result):
    with pytest.raises(ValueError, match="2 panel"):
        _, ax = plt.subplots()
        scf.pl.trajectories(result, ax=ax)
    # pl does not generate: a model instead of tl's result says how to get one
    with pytest.raises(TypeError, match="tl.trajectories"):
        scf.pl.trajectories(object())
