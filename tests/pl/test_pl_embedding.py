"""pl.embedding_overlay draws what tl.embedding computed: panels, points, legends, colours."""

import matplotlib.pyplot as plt
import numpy as np
import pytest

import sccalmflow as scf

CONTROL = {"condition": "control"}


def _n(collection) -> int:
    return len(collection.get_offsets())


def _legend_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.get_legend().get_texts())


def test_embedding_overlay_pca_one_panel_per_condition(cells):
    pred, real = cells
    overlay = scf.tl.embedding(pred, real, basis="pca", control=CONTROL)
    axes = scf.pl.embedding_overlay(overlay, show=False)
    assert isinstance(axes, list) and len(axes) == 2
    assert [a.get_title() for a in axes] == ["CD14 Mono · IFN-beta", "B · IFN-beta"]
    for a, ct, n_pred in zip(axes, ["CD14 Mono", "B"], [30, 20], strict=True):
        n_real = ((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta")).sum()
        n_ctrl = ((real.obs.cell_type == ct) & (real.obs.condition == "control")).sum()
        control, real_c, gen = a.collections
        assert (_n(control), _n(real_c), _n(gen)) == (n_ctrl, n_real, n_pred)
        assert gen.get_label() == f"generated (n={n_pred})"
        assert f"real (n={n_real})" in _legend_text(a)
        assert (a.get_xlabel(), a.get_ylabel()) == ("PC1", "PC2")
    # the generated points are the first two PCs of pred's X_calmflow_pca
    np.testing.assert_allclose(
        axes[1].collections[2].get_offsets(), pred.obsm["X_calmflow_pca"][30:, :2]
    )


def test_embedding_overlay_single_axes(cells):
    """Drawing into one given Axes; the coordinates drawn are the overlay's, whatever the basis."""
    pred, real = cells
    p = pred[pred.obs.cell_type == "B"]
    rng = np.random.default_rng(0)
    panel = scf.tl.OverlayPanel(
        "B · IFN-beta", np.arange(20), np.flatnonzero(real.obs.cell_type == "B"), np.arange(0)
    )
    overlay = scf.tl.EmbeddingOverlay(
        pred=p,
        real=real,
        pred_coords=rng.normal(size=(p.n_obs, 2)),
        real_coords=rng.normal(size=(real.n_obs, 2)),
        panels=[panel],
        basis="umap",
        axis_labels=("UMAP1", "UMAP2"),
        condition_keys=["cell_type", "condition"],
        control={},
    )
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = scf.pl.embedding_overlay(overlay, ax=ax)
    assert out is ax and len(plt.get_fignums()) == n_figs  # drew into ax, no new figure
    assert ax.get_xlabel() == "UMAP1" and len(ax.collections) == 2  # no control requested
    assert _n(ax.collections[1]) == 20
    np.testing.assert_array_equal(ax.collections[1].get_offsets(), overlay.pred_coords)
    np.testing.assert_array_equal(ax.collections[0].get_offsets(), overlay.real_coords[panel.real])


def test_embedding_overlay_color_by_gene(cells):
    pred, real = cells
    overlay = scf.tl.embedding(pred, real, basis="pca", control=CONTROL)
    fig = scf.pl.embedding_overlay(overlay, color="ISG15", return_fig=True)
    assert isinstance(fig, plt.Figure)
    panels = [a for a in fig.axes if a.get_title()]
    assert len(panels) == 4  # real and generated for each of the 2 conditions
    assert panels[1].get_title() == "CD14 Mono · IFN-beta\ngenerated"
    gen = panels[1].collections[1]
    expected = np.sort(pred[:30, "ISG15"].X.ravel())
    np.testing.assert_allclose(np.asarray(gen.get_array()), expected, rtol=1e-6)
    assert any(a.get_ylabel() == "ISG15" for a in fig.axes)  # the colour bar


def test_embedding_overlay_color_by_category_and_shared_axes(cells):
    pred, real = cells
    overlay = scf.tl.embedding(pred, real, basis="pca", control=CONTROL)
    axes = scf.pl.embedding_overlay(overlay, color="cell_type", share_axes=True, show=False)
    assert len(axes) == 4
    assert len({a.get_xlim() for a in axes}) == 1  # one frame for every panel
    # the categories get one figure legend; each panel's legend names its cell sets
    assert axes[-1].figure.legends[0].get_title().get_text() == "cell_type"
    assert "control (n=" in _legend_text(axes[-1])


def test_embedding_overlay_control_in_legend_when_coloured(cells):
    """The grey control cells drawn behind coloured cells have a legend entry."""
    pred, real = cells
    overlay = scf.tl.embedding(pred, real, basis="pca", control=CONTROL)
    axes = scf.pl.embedding_overlay(overlay, color="ISG15", show=False)
    for a, p in zip(axes, [q for q in overlay.panels for _ in range(2)], strict=True):
        text = _legend_text(a)
        assert f"control (n={len(p.control)})" in text
        assert ("real (n=" in text) or ("generated (n=" in text)


def test_embedding_overlay_counts_distinct_generated_cells(cells):
    """Repeated generated cells (deterministic head, few sources): 'n=..., k distinct'."""
    import anndata as ad

    pred, real = cells
    b = pred[pred.obs.cell_type == "B"]
    rep = ad.concat([b[:5]] * 4, index_unique="-")  # 20 cells, 5 distinct
    rep.obsm["X_calmflow_pca"] = np.tile(b.obsm["X_calmflow_pca"][:5], (4, 1))
    rep.uns = dict(pred.uns)
    overlay = scf.tl.embedding(rep, real, basis="pca", control=CONTROL)
    assert overlay.panels[0].n_distinct_pred == 5
    ax = scf.pl.embedding_overlay(overlay, show=False)
    assert "generated (n=20, 5 distinct)" in _legend_text(ax)
    ax = scf.pl.embedding_overlay(scf.tl.embedding(b, real, basis="pca"), show=False)
    assert "generated (n=20)" in _legend_text(ax)  # all distinct: no count


def test_embedding_overlay_errors(cells):
    pred, real = cells
    overlay = scf.tl.embedding(pred, real, basis="pca")
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 panel"):
        scf.pl.embedding_overlay(overlay, ax=ax)
    with pytest.raises(KeyError, match="neither"):
        scf.pl.embedding_overlay(overlay, color="not_a_gene")
    # pl does not embed: given cells instead of tl's result, it says how to get one
    with pytest.raises(TypeError, match="tl.embedding"):
        scf.pl.embedding_overlay(pred)
