"""pl.mean_expression: points, both R² conventions, labels, ax / save / return_fig, errors."""

import matplotlib.pyplot as plt
import numpy as np
import pytest
from matplotlib.text import Text

import sccalmflow as scf
from sccalmflow.metrics import mean_expression_r2


def _n(collection) -> int:
    return len(collection.get_offsets())


def _legend_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.get_legend().get_texts())


def test_mean_expression_points_legend_and_labels(one_condition):
    p, r, _ = one_condition
    genes = list(r.var_names[[5, 1, 9, 30, 2, 7]])
    ax = scf.pl.mean_expression(p, r, genes=genes, n_label=4, show=False)
    others, highlighted, outlined = ax.collections[:3]
    assert (_n(others), _n(highlighted), _n(outlined)) == (r.n_vars - 6, 6, 4)
    mu_r = np.asarray(r.X.mean(0)).ravel()
    mu_p = np.asarray(p.X.mean(0)).ravel()
    pos = r.var_names.get_indexer(genes)
    np.testing.assert_allclose(highlighted.get_offsets(), np.column_stack([mu_r, mu_p])[pos])
    assert ax.get_xlabel() == "mean expression, real cells"
    assert ax.get_ylabel() == "mean expression, predicted cells"
    # both R² conventions, on all genes and on the highlighted genes
    text = _legend_text(ax)
    for res in (mean_expression_r2(p, r), mean_expression_r2(p, r, genes=genes)):
        assert f"R² Pearson = {res['r2_pearson']:.3f}" in text
        assert f"R² sklearn = {res['r2_sklearn']:.3f}" in text
    assert "y = x" in text
    # the first n_label genes are labelled, and no two labels overlap
    labels = [t for t in ax.texts if t.get_text() in genes]
    assert sorted(t.get_text() for t in labels) == sorted(genes[:4])
    renderer = ax.figure.canvas.get_renderer()
    for t in labels:
        t.update_positions(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # text only, no connector
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_mean_expression_de_genes_ax_save_return_fig(one_condition, tmp_path):
    p, r, c = one_condition
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = scf.pl.mean_expression(p, r, control=c, n_de=15, n_label=3, ax=ax,
                                 save=tmp_path / "reg")  # fmt: skip
    assert out is ax and len(plt.get_fignums()) == n_figs
    assert (tmp_path / "reg.png").stat().st_size > 0  # suffix added
    assert _n(ax.collections[1]) == 15 and "top-15 DE genes" in _legend_text(ax)
    # the highlighted genes are tl.de_genes' top 15
    top = scf.tl.de_genes(r, c, 15)
    mu_r = np.asarray(r.X.mean(0)).ravel()
    np.testing.assert_allclose(
        ax.collections[1].get_offsets()[:, 0], mu_r[r.var_names.get_indexer(top)]
    )
    assert isinstance(scf.pl.mean_expression(p, r, return_fig=True), plt.Figure)


def test_mean_expression_errors(one_condition):
    p, r, _ = one_condition
    with pytest.raises(ValueError, match="var_names"):
        scf.pl.mean_expression(p[:, :50], r)
    with pytest.raises(KeyError, match="not in real.var_names"):
        scf.pl.mean_expression(p, r, genes=["NOT_A_GENE"])
    with pytest.raises(TypeError, match="AnnData"):
        scf.pl.mean_expression(p.X, r)
    with pytest.raises(ValueError, match="n_label"):
        scf.pl.mean_expression(p, r, n_label=-1)


def test_mean_expression_labels_do_not_overlap(one_condition):
    """Many labels on crowded points (a prediction halfway to control): no two label boxes
    overlap in the saved figure (tight bbox, another dpi), none falls back onto another."""
    import io

    import anndata as ad

    _, r, c = one_condition
    half = r.n_obs // 2  # half real, half control cells: means between the two
    mixed = ad.concat([r[half:], c[:half]], index_unique="-")
    fig = scf.pl.mean_expression(mixed, r, control=c, n_de=60, n_label=25, return_fig=True)
    fig.savefig(io.BytesIO(), format="png", dpi=150, bbox_inches="tight")
    fig.canvas.draw()
    ax = fig.axes[0]
    assert "top-60 DE genes" in _legend_text(ax)
    renderer = fig.canvas.get_renderer()
    boxes = [Text.get_window_extent(t, renderer) for t in ax.texts]  # text only, no connector
    assert len(boxes) == 25
    frame = ax.get_window_extent(renderer)
    for i, a in enumerate(boxes):
        assert frame.x0 - 1 <= a.x0 and a.x1 <= frame.x1 + 1  # inside the axes
        for b in boxes[i + 1 :]:
            assert not a.overlaps(b), "two gene labels overlap"
