"""tl.trajectories: predicted paths and real cells in 2-d; drawn by pl.trajectories."""

import numpy as np
import pytest
from matplotlib.collections import LineCollection

import sccalmflow as scf

HELD = ("CD14 Mono", "IFN-beta")
CONDS = {"cell_type": [HELD[0], "B"], "condition": [HELD[1], HELD[1]]}


def _n(collection) -> int:
    return len(collection.get_offsets())


@pytest.fixture(scope="module")
def paths(trained):
    model, real = trained
    return scf.tl.trajectories(model, CONDS, n_cells=7, real=real)


def test_trajectories_result(trained, paths, tiny_config):
    model, real = trained
    T = tiny_config["n_time_points"]
    assert isinstance(paths, scf.tl.Trajectories)
    assert paths.paths.shape == (2 * 7, T, 2) and paths.time_grid.shape == (T,)
    assert paths.conditions == [HELD, ("B", HELD[1])]
    assert paths.condition_keys == ["cell_type", "condition"]
    assert paths.axis_labels == ("PC1", "PC2") and paths.basis == "pca"
    # the paths are the first two PCs of the predicted states; they end at the cells
    pred = model.predict(CONDS, n_cells=7, seed=0, return_trajectories=True)
    np.testing.assert_allclose(paths.paths, pred.obsm["X_trajectory"][:, :, :2], atol=1e-5)
    np.testing.assert_allclose(paths.paths[:, -1], pred.obsm["X_calmflow_pca"][:, :2], atol=1e-4)
    # every real cell is in the background (600 < n_max), in the model's PCA space
    assert len(paths.background) == real.n_obs
    np.testing.assert_allclose(paths.background, model.get_pca(real)[:, :2], rtol=1e-6)
    assert paths.background_obs.index.equals(real.obs_names)


def test_trajectories_feed_pl(trained, paths, tiny_config):
    """The old pl.trajectories(model, ...) checks, on pl.trajectories(tl.trajectories(...))."""
    model, adata = trained
    axes = scf.pl.trajectories(paths, show=False)
    assert len(axes) == 2 and axes[0].get_title() == "CD14 Mono · IFN-beta"
    T = tiny_config["n_time_points"]
    for a in axes:
        lines = [c for c in a.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1 and len(lines[0].get_segments()) == 7 * (T - 1)
        # segment colours run over the time grid
        t = np.asarray(lines[0].get_array())
        assert t.min() > 0 and t.max() < 1
        background = a.collections[0]
        assert _n(background) == adata.n_obs
        assert (a.get_xlabel(), a.get_ylabel()) == ("PC1", "PC2")
    # the end points are the generated cells
    pred = model.predict(CONDS, n_cells=7, seed=0, return_trajectories=True)
    gen = [c for c in axes[1].collections if c.get_label() == "generated (t = 1)"][0]
    np.testing.assert_allclose(gen.get_offsets(), pred.obsm["X_calmflow_pca"][7:, :2], atol=1e-4)
    target = axes[0].collections[1]  # real held-out cells, passed in `real`
    held = (adata.obs.cell_type == HELD[0]) & (adata.obs.condition == HELD[1])
    assert _n(target) == held.sum()


def test_trajectories_subsample_components_registered_cells(trained):
    model, _ = trained
    res = scf.tl.trajectories(model, {"cell_type": ["B"], "condition": ["IFN-beta"]},
                              n_cells=3, components=(2, 0), n_max=50)  # fmt: skip
    assert res.axis_labels == ("PC3", "PC1")
    assert len(res.background) == len(res.background_obs) == 50  # registered cells, subsampled
    assert set(res.background_obs.index) <= set(model.adata.obs_names)
    np.testing.assert_allclose(
        res.background, model.get_pca()[model.adata.obs_names.get_indexer(
            res.background_obs.index)][:, [2, 0]], rtol=1e-6,
    )  # fmt: skip


def test_trajectories_umap(trained):
    model, real = trained
    res = scf.tl.trajectories(model, {"cell_type": ["B"], "condition": ["IFN-beta"]},
                              n_cells=4, basis="umap", real=real, n_max=120,
                              umap_kwargs={"n_epochs": 30})  # fmt: skip
    assert res.axis_labels == ("UMAP1", "UMAP2") and res.basis == "umap"
    assert res.paths.shape[0] == 4 and res.paths.shape[2] == 2
    assert res.background.shape == (120, 2) and np.isfinite(res.background).all()
    assert np.isfinite(res.paths).all()
    assert len(scf.pl.trajectories(res, return_fig=True).axes) == 2  # panel + colour bar


def test_trajectories_errors(trained):
    model, _ = trained
    conds = {"cell_type": ["B"], "condition": ["IFN-beta"]}
    with pytest.raises(ValueError, match="basis"):
        scf.tl.trajectories(model, conds, basis="tsne")
    with pytest.raises(ValueError, match="exceed"):
        scf.tl.trajectories(model, conds, n_cells=2, components=(0, 99))
    with pytest.raises(ValueError, match="two different principal components"):
        scf.tl.trajectories(model, conds, n_cells=2, components=(1, 1))
    with pytest.raises(TypeError, match="`n_max` must be an integer"):
        scf.tl.trajectories(model, conds, n_cells=2, n_max="5")
    with pytest.raises(ValueError, match="may not set"):
        scf.tl.trajectories(model, conds, basis="umap", umap_kwargs={"random_state": 1})
    with pytest.raises(TypeError, match="must be a trained CaLMFlowModel"):
        scf.tl.trajectories(object(), conds)
