"""Expression of DE genes across control, real perturbed and predicted cells."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np

from .. import tl
from ..data import check_anndata, dense, get_matrix
from ..utils import check_int, check_number
from ._docs import COMMON, doc_params
from ._utils import (
    CMAP,
    SET_COLORS,
    check_figure_output,
    check_labels,
    finish,
    gene_list,
    gene_positions,
    make_axes,
    style_axes,
)

COLORS = (SET_COLORS["control"], SET_COLORS["real"], SET_COLORS["predicted"])


def _violins(a, data: list[np.ndarray], genes: list[str], labels, layer) -> None:
    """For each gene three violins side by side, with the median marked."""
    from matplotlib.patches import Patch

    n_genes = len(genes)
    width = 0.26
    for k, (mat, col, lab) in enumerate(zip(data, COLORS, labels, strict=True)):
        positions = np.arange(n_genes) + (k - 1) * (width + 0.02)
        parts = a.violinplot(
            [mat[:, j] for j in range(n_genes)],
            positions=positions,
            widths=width,
            showextrema=False,
            showmedians=True,
        )
        for body in parts["bodies"]:
            body.set_facecolor(col)
            body.set_edgecolor("0.25")
            body.set_linewidth(0.5)
            body.set_alpha(0.9)
            body.set_label(lab)
        parts["cmedians"].set_color("black")
        parts["cmedians"].set_linewidth(1.0)
    a.set_xticks(np.arange(n_genes), genes, rotation=45 if n_genes > 6 else 0,
                 ha="right" if n_genes > 6 else "center")  # fmt: skip
    a.set_xlim(-0.6, n_genes - 0.4)
    a.set_ylabel("expression" + (f" ({layer})" if layer else ""))
    style_axes(a, grid="y")
    handles = [Patch(facecolor=c, edgecolor="0.25", label=lab) for c, lab in
               zip(COLORS, labels, strict=True)]  # fmt: skip
    a.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.0, 1.0), frameon=False,
             fontsize=9)  # fmt: skip


def _dots(a, fig, data: list[np.ndarray], genes: list[str], labels, cutoff: float) -> None:
    """Dot plot: colour the mean, area the fraction of cells above ``cutoff``."""
    from matplotlib.ticker import MaxNLocator

    n_genes = len(genes)
    means = np.vstack([m.mean(axis=0) for m in data])
    frac = np.vstack([(m > cutoff).mean(axis=0) for m in data])
    xx, yy = np.meshgrid(np.arange(n_genes), np.arange(3))
    max_area = 220.0
    sc = a.scatter(xx.ravel(), yy.ravel(), s=np.maximum(frac.ravel(), 0.0) * max_area,
                   c=means.ravel(), cmap=CMAP, vmin=0, edgecolors="0.3", linewidths=0.4,
                   zorder=3)  # fmt: skip
    a.set_xticks(np.arange(n_genes), genes, rotation=90 if n_genes > 4 else 0)
    a.set_yticks(np.arange(3), list(labels))
    a.set_xlim(-0.6, n_genes - 0.4)
    a.set_ylim(2.6, -0.6)
    a.grid(color="0.92", lw=0.6)
    a.set_axisbelow(True)
    for side in ("top", "right"):
        a.spines[side].set_visible(False)
    for f in (0.25, 0.5, 1.0):
        a.scatter([], [], s=f * max_area, c="0.5", edgecolors="0.3", linewidths=0.4,
                  label=f"{int(f * 100)}%")  # fmt: skip
    a.legend(title="fraction\nexpressing", loc="upper left", bbox_to_anchor=(1.02, 1.05),
             frameon=False, fontsize=8, title_fontsize=8, labelspacing=0.6,
             borderaxespad=0)  # fmt: skip
    # colour bar under the size legend, both right of the dots
    w_in = a.get_position().width * fig.get_figwidth()
    cax = a.inset_axes([1.04, 0.04, min(0.3, 1.1 / max(w_in, 1e-3)), 0.06])
    fig.colorbar(sc, cax=cax, orientation="horizontal")
    cax.set_title("mean expression", fontsize=8, loc="left")
    cax.tick_params(labelsize=7)
    cax.xaxis.set_major_locator(MaxNLocator(3))


@doc_params(**COMMON)
def de_genes(
    pred,
    real,
    control,
    *,
    genes: Sequence[str] | int,
    kind: Literal["violin", "dot"] = "violin",
    labels: Sequence[str] = ("control", "real", "predicted"),
    layer: str | None = None,
    expression_cutoff: float = 0.0,
    de_method: str = "wilcoxon",
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Expression of selected genes in control, real perturbed and predicted cells.

    ``kind="violin"``: for each gene, three violins side by side (control grey, real blue,
    predicted orange) with the median marked. ``kind="dot"``: a dot plot with one row per
    cell set and one column per gene; the colour is the mean expression and the dot area
    the fraction of cells with expression above ``expression_cutoff``.

    Predicted cells are decoded from a PCA space, so they are rarely exactly 0: their
    fraction of expressing cells is usually higher than in real data, and the mean (colour)
    is the fairer comparison.

    Parameters
    ----------
    pred : anndata.AnnData
        Predicted cells of one condition.
    real : anndata.AnnData
        Real perturbed cells of that condition (same genes).
    control : anndata.AnnData
        Real control cells of the same context (same genes).
    genes : str, list of str or int
        A gene name or distinct gene names, or ``n`` for the top-``n`` DE genes of ``real``
        against ``control`` (:func:`sccalmflow.tl.de_genes`).
    kind : {"violin", "dot"}
        Violin plot or dot plot.
    labels : tuple of str
        Names of the three sets (control, real, predicted).
    layer : str, optional
        Expression layer instead of ``X``.
    expression_cutoff : float
        Expression above which a cell counts as expressing (dot plot).
    de_method : str
        Test used when ``genes`` is an integer.
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> sccalmflow.pl.de_genes(pred_mono, real_mono, ctrl_mono, genes=["ISG15", "IFIT3"])
    >>> sccalmflow.pl.de_genes(pred_mono, real_mono, ctrl_mono, genes=8, kind="dot")
    """
    check_figure_output(ax, show, save, return_fig)
    for name, a in (("pred", pred), ("real", real), ("control", control)):
        check_anndata(a, name)
    if kind not in ("violin", "dot"):
        raise ValueError(f"kind must be 'violin' or 'dot', not {kind!r}.")
    labels = check_labels(labels, 3, "control, real, predicted")
    expression_cutoff = check_number("expression_cutoff", expression_cutoff)
    if isinstance(genes, numbers.Number):  # a number of top DE genes (not a bool)
        n = check_int("genes", genes, minimum=1)
        genes = tl.de_genes(real, control, n, layer=layer, method=de_method)
    genes = gene_list(genes)
    data = []
    for name, a in zip(("control", "real", "pred"), (control, real, pred), strict=True):
        cols = gene_positions(a, genes, name)
        data.append(dense(get_matrix(a, layer=layer, name=name)[:, cols]))
    n_genes = len(genes)
    if kind == "violin":
        fig, (a,) = make_axes(1, ax, panel_size=(max(4.0, 0.9 * n_genes + 1.5), 3.6))
        _violins(a, data, genes, labels, layer)
    else:
        fig, (a,) = make_axes(1, ax, panel_size=(max(4.5, 0.55 * n_genes + 3.2), 3.0))
        _dots(a, fig, data, genes, labels, expression_cutoff)
    return finish(fig, [a], name=f"de_genes_{kind}", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip
