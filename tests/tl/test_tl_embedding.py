"""tl.embedding: which cells each panel shows, their 2-d coordinates, errors; feeds pl."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sccalmflow as scf

CONTROL = {"condition": "control"}
CONDS = {"cell_type": ["CD14 Mono", "B"], "condition": ["IFN-beta", "IFN-beta"]}


@pytest.fixture(scope="module")
def pred(trained):
    model, _ = trained
    return model.predict(CONDS, n_cells=40, seed=0)


def _rows(obs, ct, cond):
    return np.flatnonzero((obs.cell_type == ct).to_numpy() & (obs.condition == cond).to_numpy())


def test_embedding_pca_panels_and_coordinates(trained, pred):
    _, real = trained
    ov = scf.tl.embedding(pred, real, basis="pca", control=CONTROL, components=(1, 2))
    assert isinstance(ov, scf.tl.EmbeddingOverlay)
    assert ov.pred is pred and ov.real is real  # not copied
    assert [p.title for p in ov.panels] == ["CD14 Mono · IFN-beta", "B · IFN-beta"]
    assert ov.condition_keys == ["cell_type", "condition"]  # prompt, source_cell left out
    assert ov.control == CONTROL and ov.axis_labels == ("PC2", "PC3")
    np.testing.assert_allclose(ov.pred_coords, pred.obsm["X_calmflow_pca"][:, [1, 2]])
    np.testing.assert_allclose(ov.real_coords, real.obsm["X_calmflow_pca"][:, [1, 2]])
    for p, ct in zip(ov.panels, ["CD14 Mono", "B"], strict=True):
        np.testing.assert_array_equal(p.pred, _rows(pred.obs, ct, "IFN-beta"))
        np.testing.assert_array_equal(p.real, _rows(real.obs, ct, "IFN-beta"))
        np.testing.assert_array_equal(p.control, _rows(real.obs, ct, "control"))


def test_embedding_subsamples_with_the_seed(trained, pred):
    _, real = trained
    a = scf.tl.embedding(pred, real, basis="pca", control=CONTROL, n_max=5, seed=1)
    b = scf.tl.embedding(pred, real, basis="pca", control=CONTROL, n_max=5, seed=1)
    for p, q in zip(a.panels, b.panels, strict=True):
        assert len(p.pred) == len(p.control) == 5
        np.testing.assert_array_equal(p.pred, q.pred)
        assert set(p.pred) <= set(_rows(pred.obs, *p.title.split(" · ")))


def test_embedding_umap_fits_on_the_cells_shown(trained, pred):
    _, real = trained
    p = pred[pred.obs.cell_type == "B"]
    ov = scf.tl.embedding(p, real, basis="umap", n_max=15, umap_kwargs={"n_epochs": 50})
    assert ov.axis_labels == ("UMAP1", "UMAP2")
    (panel,) = ov.panels
    shown_r = np.zeros(real.n_obs, bool)
    shown_r[panel.real] = True
    assert np.isfinite(ov.real_coords[shown_r]).all()
    assert np.isnan(ov.real_coords[~shown_r]).all()  # only the cells shown are embedded
    assert np.isfinite(ov.pred_coords[panel.pred]).all() and len(panel.pred) == 15
    # the same joint UMAP as metrics.joint_umap on those cells, seeded
    emb_r, emb_p = scf.metrics.joint_umap(
        real.obsm["X_calmflow_pca"][panel.real], p.obsm["X_calmflow_pca"][panel.pred], n_components=2,
        seed=0, n_epochs=50,
    )  # fmt: skip
    np.testing.assert_allclose(ov.real_coords[panel.real], emb_r)
    np.testing.assert_allclose(ov.pred_coords[panel.pred], emb_p)
    # ... drawn as is by pl (old pl.embedding_overlay(..., basis="umap", ax=ax) checks)
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = scf.pl.embedding_overlay(ov, ax=ax)
    assert out is ax and len(plt.get_fignums()) == n_figs
    assert ax.get_xlabel() == "UMAP1" and len(ax.collections) == 2  # no control requested
    assert len(ax.collections[1].get_offsets()) == 15
    assert np.isfinite(ax.collections[1].get_offsets()).all()


def test_embedding_feeds_pl_overlay(trained, pred):
    _, real = trained
    ov = scf.tl.embedding(pred, real, basis="pca", control=CONTROL)
    axes = scf.pl.embedding_overlay(ov, show=False)
    for a, p in zip(axes, ov.panels, strict=True):
        control, real_c, gen = a.collections
        np.testing.assert_allclose(gen.get_offsets(), ov.pred_coords[p.pred])
        np.testing.assert_allclose(control.get_offsets(), ov.real_coords[p.control])
        assert a.get_title() == p.title


def test_embedding_errors(trained, pred):
    _, real = trained
    bare = real.copy()
    del bare.obsm["X_calmflow_pca"]
    with pytest.raises(KeyError, match="add_pca"):
        scf.tl.embedding(pred, bare, basis="pca")
    with pytest.raises(ValueError, match="basis"):
        scf.tl.embedding(pred, real, basis="tsne")
    with pytest.raises(KeyError, match="condition key"):
        scf.tl.embedding(pred, real, condition_keys=["dose"])
    with pytest.raises(ValueError, match="control key"):
        scf.tl.embedding(pred, real, control={"dose": "0"})
    with pytest.raises(ValueError, match="exceed"):
        scf.tl.embedding(pred, real, basis="pca", components=(0, 99))
    narrow = pred.copy()
    narrow.obsm["X_calmflow_pca"] = narrow.obsm["X_calmflow_pca"][:, :3]
    with pytest.raises(ValueError, match="same projection"):
        scf.tl.embedding(narrow, real)
    with pytest.raises(TypeError, match="AnnData"):
        scf.tl.embedding(pred.X, real)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"components": "01"}, TypeError, r"two principal components \(0-based\)"),
        ({"components": (0, 1, 2)}, ValueError, "two principal components, got 3"),
        ({"components": (-1, 0)}, ValueError, r"`components\[0\]` must be at least 0"),
        ({"components": (0, 1.0)}, TypeError, r"`components\[1\]` must be an integer"),
        ({"components": (1, 1)}, ValueError, "two different principal components"),
        ({"n_max": 0}, ValueError, "`n_max` must be at least 1"),
        ({"n_max": 10.5}, TypeError, "`n_max` must be an integer"),
        ({"seed": "0"}, TypeError, "`seed` must be an integer"),
        ({"umap_kwargs": [1]}, TypeError, "`umap_kwargs` must be a dict"),
        ({"umap_kwargs": {"n_components": 3}}, ValueError, r"may not set \['n_components'\]"),
    ],
)
def test_embedding_bad_arguments(trained, pred, kwargs, error, match):
    """Checked and named before anything is computed; nothing is cast."""
    _, real = trained
    with pytest.raises(error, match=match):
        scf.tl.embedding(pred, real, basis="pca", **kwargs)
