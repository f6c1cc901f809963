"""Generated cells over real (and control) cells in a joint 2-d embedding."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import dense, get_matrix
from ..tl import EmbeddingOverlay
from ..utils import check_bool, check_int, check_number
from ._docs import COMMON_PANELS, doc_params
from ._utils import (
    CATEGORICAL,
    CMAP,
    SET_COLORS,
    check_figure_output,
    finish,
    make_axes,
    point_size,
)


def _values(adata, color: str, layer: str | None, name: str) -> pd.Series:
    """Per-cell values of an obs column or a gene."""
    if color in adata.obs.columns:
        return adata.obs[color].reset_index(drop=True)
    if color in adata.var_names:
        col = adata.var_names.get_loc(color)
        return pd.Series(dense(get_matrix(adata, layer=layer, name=name)[:, [col]]).ravel())
    raise KeyError(f"color={color!r} is neither a column of {name}.obs nor a gene of {name}.")


def _check_overlay(overlay) -> None:
    if not isinstance(overlay, EmbeddingOverlay):
        raise TypeError(
            "pl.embedding_overlay draws the result of sccalmflow.tl.embedding: "
            "`overlay = scf.tl.embedding(pred, real, control=...)`, then "
            f"`scf.pl.embedding_overlay(overlay)`; got {type(overlay).__name__}."
        )


def generated_label(n: int, n_distinct: int | None, name: str = "generated") -> str:
    """``"generated (n=500)"``, or ``"generated (n=500, 99 distinct)"`` when cells repeat."""
    if n_distinct is not None and n_distinct < n:
        return f"{name} (n={n}, {n_distinct} distinct)"
    return f"{name} (n={n})"


def _draw_sets(axes, ov: EmbeddingOverlay, s: float, alpha: float) -> None:
    """One panel per condition: control, real and generated cells in their set colours."""
    ep, er = ov.pred_coords, ov.real_coords
    for a, p in zip(axes, ov.panels, strict=True):
        if ov.control:
            a.scatter(*er[p.control].T, s=s, c=SET_COLORS["control"], alpha=alpha, lw=0,
                      label=f"control (n={len(p.control)})", rasterized=True)  # fmt: skip
        a.scatter(*er[p.real].T, s=s, c=SET_COLORS["real"], alpha=alpha, lw=0,
                  label=f"real (n={len(p.real)})", rasterized=True)  # fmt: skip
        a.scatter(*ep[p.pred].T, s=s, c=SET_COLORS["generated"], alpha=alpha, lw=0,
                  label=generated_label(len(p.pred), p.n_distinct_pred),
                  rasterized=True)  # fmt: skip
        a.set_title(p.title)
        a.legend(loc="best", fontsize=8, markerscale=max(1.0, 6 / np.sqrt(s)),
                 frameon=True, framealpha=0.85, handletextpad=0.2)  # fmt: skip


def _frame(axes, ov: EmbeddingOverlay, per_panel: int, share_axes: bool) -> None:
    """Axis limits around the cells of each panel (or of every panel), labels, no ticks."""
    ep, er = ov.pred_coords, ov.real_coords
    per_axes = [p for p in ov.panels for _ in range(per_panel)]
    for a, p in zip(axes, per_axes, strict=True):
        ip, ir = p.pred, p.real
        if share_axes:
            ip = np.concatenate([q.pred for q in ov.panels])
            ir = np.concatenate([np.concatenate([q.real, q.control]) for q in ov.panels])
        shown = np.vstack([ep[ip], er[np.concatenate([ir, p.control])]])
        if shown.shape[0] == 0:
            continue
        lo, hi = np.nanmin(shown, axis=0), np.nanmax(shown, axis=0)
        margin = 0.05 * np.maximum(hi - lo, 1e-9)
        a.set_xlim(lo[0] - margin[0], hi[0] + margin[0])
        a.set_ylim(lo[1] - margin[1], hi[1] + margin[1])
    for a in axes:
        a.set_xlabel(ov.axis_labels[0])
        a.set_ylabel(ov.axis_labels[1])
        a.set_xticks([])
        a.set_yticks([])


@doc_params(**COMMON_PANELS)
def embedding_overlay(
    overlay: EmbeddingOverlay,
    *,
    color: str | None = None,
    layer: str | None = None,
    size: float | None = None,
    alpha: float = 0.7,
    ncols: int = 4,
    share_axes: bool = False,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Generated cells over real cells in a joint embedding, one panel per condition.

    Draws what :func:`sccalmflow.tl.embedding` computed. Each panel shows one condition:
    its generated cells (orange) over the real cells of the same condition (blue) and, when
    ``tl.embedding`` was given ``control``, the real control cells of the same context
    (light grey), e.g. the unstimulated cells of the same cell type.

    Parameters
    ----------
    overlay : sccalmflow.tl.EmbeddingOverlay
        From :func:`sccalmflow.tl.embedding` (joint UMAP or two principal components).
    color : str, optional
        ``None``: colour by cell set (control / real / generated). A gene or an ``.obs``
        column of both objects: each condition gets two panels, real and generated, with the
        cells coloured by that value on one shared scale (control cells in grey behind).
    layer : str, optional
        Expression layer for a gene ``color`` (default ``X``).
    size : float, optional
        Marker area (default: from the number of cells shown).
    alpha : float
        Marker opacity.
    ncols : int
        Panels per row.
    share_axes : bool
        Same axis limits in every panel (default: each panel framed on its own cells).
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> model.add_pca(real)
    >>> pred = model.predict({"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}, 500)
    >>> overlay = sccalmflow.tl.embedding(pred, real, control={"condition": "control"})
    >>> sccalmflow.pl.embedding_overlay(overlay)
    >>> sccalmflow.pl.embedding_overlay(overlay, color="ISG15")
    """
    _check_overlay(overlay)
    check_figure_output(ax, show, save, return_fig)
    ncols, share_axes = check_int("ncols", ncols, minimum=1), check_bool("share_axes", share_axes)
    alpha = check_number("alpha", alpha, minimum=0, maximum=1)
    panels = overlay.panels
    n_shown = max(len(p.pred) + len(p.real) + len(p.control) for p in panels)
    if size is None:
        s = point_size(n_shown)
    else:
        s = check_number("size", size, minimum=0, exclusive_minimum=True)
    per_panel = 1 if color is None else 2
    if color is not None:
        ncols = max(2, ncols - ncols % 2)
    fig, axes = make_axes(len(panels) * per_panel, ax, ncols=ncols, panel_size=(4.0, 4.0))
    if color is None:
        _draw_sets(axes, overlay, s, alpha)
    else:
        _draw_colored(axes, overlay, color, s, alpha, layer, fig)
    _frame(axes, overlay, per_panel, share_axes)
    return finish(fig, axes, name="embedding_overlay", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip


def _draw_colored(axes, ov: EmbeddingOverlay, color, s, alpha, layer, fig) -> None:
    """Two panels per condition, real and generated, coloured by ``color``."""
    vp = _values(ov.pred, color, layer, "pred")
    vr = _values(ov.real, color, layer, "real")
    categorical = not (pd.api.types.is_numeric_dtype(vp) and pd.api.types.is_numeric_dtype(vr))
    if categorical:
        cats = list(dict.fromkeys(list(vr.astype(str).unique()) + list(vp.astype(str).unique())))
        lut = {c: CATEGORICAL[i % len(CATEGORICAL)] for i, c in enumerate(cats)}
    else:
        both = np.concatenate([vp.to_numpy(float), vr.to_numpy(float)])
        vmin, vmax = float(np.nanmin(both)), float(np.nanmax(both))
    ep, er = ov.pred_coords, ov.real_coords
    mappable = None
    for k, p in enumerate(ov.panels):
        for a, (which, idx, emb, vals) in zip(
            axes[2 * k : 2 * k + 2],
            (("real", p.real, er, vr), ("generated", p.pred, ep, vp)),
            strict=True,
        ):
            if len(p.control):
                a.scatter(*er[p.control].T, s=s, c=SET_COLORS["control"], alpha=0.5, lw=0,
                          label=f"control (n={len(p.control)})", rasterized=True)  # fmt: skip
            v = vals.iloc[idx]
            distinct = p.n_distinct_pred if which == "generated" else None
            label = generated_label(len(idx), distinct, which)
            if categorical:
                a.scatter(*emb[idx].T, s=s, c=[lut[str(x)] for x in v], alpha=alpha, lw=0,
                          label=label, rasterized=True)  # fmt: skip
            else:
                order = np.argsort(v.to_numpy(float))
                mappable = a.scatter(
                    *emb[idx[order]].T, s=s, c=v.to_numpy(float)[order], cmap=CMAP,
                    vmin=vmin, vmax=vmax, alpha=alpha, lw=0, label=label, rasterized=True,
                )  # fmt: skip
            a.set_title(f"{p.title}\n{which}")
            # the cell counts and the grey control cells get a legend entry
            a.legend(loc="best", fontsize=7, markerscale=max(1.0, 6 / np.sqrt(s)),
                     frameon=True, framealpha=0.85, handletextpad=0.2)  # fmt: skip
    if categorical:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], marker="o", ls="", color=lut[c], label=c, markersize=6) for c in cats
        ]
        fig.legend(handles=handles, title=color, fontsize=8, loc="outside right center",
                   frameon=False)  # fmt: skip
    elif mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.7, pad=0.01, aspect=30, label=color)
