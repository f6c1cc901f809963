"""scGen's regression plot: mean expression per gene, real vs predicted."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .. import tl
from ..data import check_anndata, get_matrix
from ..metrics import mean_expression_r2
from ..utils import check_int
from ._docs import COMMON, doc_params
from ._utils import (
    OKABE_ITO,
    check_figure_output,
    finish,
    gene_list,
    gene_positions,
    make_axes,
    spread_labels,
    style_axes,
)

HIGHLIGHT = OKABE_ITO[6]  # vermillion
OTHER = "#9A9A9A"


def _means(adata, layer: str | None, name: str) -> np.ndarray:
    mat = get_matrix(adata, layer=layer, name=name)
    return np.asarray(mat.mean(axis=0), dtype=np.float64).ravel()


def _r2_text(res: dict[str, float]) -> str:
    return f"R² Pearson = {res['r2_pearson']:.3f}, R² sklearn = {res['r2_sklearn']:.3f}"


@doc_params(**COMMON)
def mean_expression(
    pred,
    real,
    *,
    control=None,
    genes: Sequence[str] | None = None,
    n_de: int = 100,
    n_label: int = 10,
    layer: str | None = None,
    de_method: str = "wilcoxon",
    title: str | None = None,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Mean expression of each gene, real (x) against predicted (y) (scGen's regression plot).

    Every gene is a point; genes of interest (the top DE genes of the real perturbed cells
    against the control cells, "top-100 DE genes" in the legend, or ``genes``) are
    highlighted and the first ``n_label`` of them labelled, without overlapping labels. The legend gives both R² conventions of
    :func:`sccalmflow.metrics.mean_expression_r2` on all genes and on the highlighted
    genes: the squared Pearson correlation (``r2_pearson``, scGen's "R²") and
    :func:`sklearn.metrics.r2_score` with the real means as truth (``r2_sklearn``, CPA's
    and CellFlow's "R²"). The dashed line is the identity.

    Pass the cells of **one** condition (e.g. ``pred[pred.obs.cell_type == "B"]``).

    Parameters
    ----------
    pred : anndata.AnnData
        Predicted cells, log-normalised expression in ``X`` (or ``layer``).
    real : anndata.AnnData
        Real cells of the same condition with the same genes in the same order.
    control : anndata.AnnData, optional
        Real control cells of the same context; used to find the top DE genes when
        ``genes`` is not given (:func:`sccalmflow.tl.de_genes`, real vs control).
    genes : str or list of str, optional
        A gene or distinct genes to highlight (most important first); overrides the DE
        genes.
    n_de : int
        Number of top DE genes highlighted when computed from ``control``.
    n_label : int
        Number of highlighted genes labelled with their name (0: none).
    layer : str, optional
        Expression layer instead of ``X``.
    de_method : str
        Test of :func:`scanpy.tl.rank_genes_groups` for the DE genes.
    title : str, optional
        Axes title.
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> sccalmflow.pl.mean_expression(pred_mono, real_mono, control=ctrl_mono, n_label=10)
    """
    check_figure_output(ax, show, save, return_fig)
    check_anndata(pred, "pred")
    check_anndata(real, "real")
    n_de = check_int("n_de", n_de, minimum=1)
    n_label = check_int("n_label", n_label, minimum=0)
    if title is not None and not isinstance(title, str):
        raise TypeError(f"`title` must be a string, got {type(title).__name__}.")
    if pred.n_vars != real.n_vars or not np.array_equal(
        np.asarray(pred.var_names), np.asarray(real.var_names)
    ):
        raise ValueError("pred and real must have the same var_names in the same order.")
    mu_p, mu_r = _means(pred, layer, "pred"), _means(real, layer, "real")
    if genes is None and control is not None:
        check_anndata(control, "control")
        highlight = tl.de_genes(real, control, n_de, layer=layer, method=de_method)
    else:
        highlight = [] if genes is None else gene_list(genes)
    pos = gene_positions(real, highlight, "real") if highlight else np.array([], dtype=int)

    fig, (a,) = make_axes(1, ax, panel_size=(5.0, 5.0))
    res_all = mean_expression_r2(mu_p, mu_r)
    rest = np.setdiff1d(np.arange(mu_r.size), pos)
    a.scatter(mu_r[rest], mu_p[rest], s=9, c=OTHER, alpha=0.7, lw=0, rasterized=True,
              label=f"all genes (n={mu_r.size})\n{_r2_text(res_all)}")  # fmt: skip
    if pos.size:
        # the top DE genes (computed from control) or the genes given
        text = f"top-{pos.size} DE genes" if genes is None else f"highlighted genes (n={pos.size})"
        if pos.size >= 2:
            text += "\n" + _r2_text(mean_expression_r2(mu_p[pos], mu_r[pos]))
        a.scatter(mu_r[pos], mu_p[pos], s=16, c=HIGHLIGHT, lw=0.4, edgecolors="white",
                  zorder=3, label=text)  # fmt: skip
    lo = min(0.0, float(np.min(mu_r)), float(np.min(mu_p)))
    hi = max(float(np.max(mu_r)), float(np.max(mu_p)))
    pad = 0.04 * (hi - lo if hi > lo else 1.0)
    a.set_xlim(lo - pad, hi + pad)
    a.set_ylim(lo - pad, hi + pad)
    a.axline((lo, lo), slope=1, color="0.3", ls="--", lw=1, zorder=1, label="y = x")
    a.set_aspect("equal", adjustable="box")
    a.set_xlabel("mean expression, real cells")
    a.set_ylabel("mean expression, predicted cells")
    style_axes(a)
    if title:
        a.set_title(title)
    a.legend(loc="upper left", fontsize=8, frameon=True, framealpha=0.9, borderaxespad=0.3)
    k = min(n_label, pos.size)
    if k:
        a.scatter(mu_r[pos[:k]], mu_p[pos[:k]], s=22, facecolors="none", edgecolors="black",
                  linewidths=0.8, zorder=4, label="_labelled")  # fmt: skip
        spread_labels(a, mu_r[pos[:k]], mu_p[pos[:k]], highlight[:k], fontsize=8,
                      avoid=np.column_stack([mu_r[pos], mu_p[pos]]))  # fmt: skip
    return finish(fig, [a], name="mean_expression", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip
