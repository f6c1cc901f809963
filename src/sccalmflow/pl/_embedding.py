"""Generated cells over real (and control) cells in a joint 2-d embedding."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ._utils import (
    CATEGORICAL,
    CMAP,
    SET_COLORS,
    check_anndata,
    check_control,
    dense,
    expression,
    finish,
    infer_condition_keys,
    make_axes,
    ordered_conditions,
    point_size,
    rows_of,
    subsample,
)


def _pca(adata, key: str, name: str) -> np.ndarray:
    if key not in adata.obsm:
        hint = (
            " For real cells, add the model's projection first: "
            "`real.obsm['X_pca'] = model.get_pca(real)`."
            if name == "real"
            else ""
        )
        raise KeyError(f"{name}.obsm[{key!r}] not found.{hint}")
    return dense(adata.obsm[key])


def _values(adata, color: str, layer: str | None, name: str) -> pd.Series:
    """Per-cell values of an obs column or a gene."""
    if color in adata.obs.columns:
        return adata.obs[color].reset_index(drop=True)
    if color in adata.var_names:
        col = adata.var_names.get_loc(color)
        return pd.Series(dense(expression(adata, layer, name)[:, [col]]).ravel())
    raise KeyError(f"color={color!r} is neither a column of {name}.obs nor a gene of {name}.")


def embedding_overlay(
    pred,
    real,
    *,
    basis: Literal["umap", "pca"] = "umap",
    color: str | None = None,
    control: Mapping[str, str] | None = None,
    condition_keys: Sequence[str] | str | None = None,
    pca_key: str = "X_pca",
    components: tuple[int, int] = (0, 1),
    n_max: int | None = 2000,
    seed: int = 0,
    layer: str | None = None,
    size: float | None = None,
    alpha: float = 0.7,
    ncols: int = 4,
    share_axes: bool = False,
    umap_kwargs: Mapping[str, Any] | None = None,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Generated cells over real cells in a joint embedding, one panel per condition.

    Each panel shows one condition of ``pred``: its generated cells (orange) over the real
    cells of the same condition (blue) and, with ``control``, the real control cells of
    the same context (light grey), e.g. the unstimulated cells of the same cell type.

    Parameters
    ----------
    pred : anndata.AnnData
        Generated cells (from :meth:`~sccalmflow.CaLMFlowModel.predict` or a baseline)
        with the condition columns in ``.obs`` and PCA coordinates in ``obsm[pca_key]``.
    real : anndata.AnnData
        Real cells with the same condition columns and ``obsm[pca_key]`` in the **same**
        PCA space (``real.obsm["X_pca"] = model.get_pca(real)``).
    basis : {"umap", "pca"}
        ``"umap"``: one 2-d UMAP fitted jointly on the PCA coordinates of every cell shown
        (:func:`sccalmflow.metrics.joint_umap`, seeded); ``"pca"``: two principal
        components (``components``).
    color : str, optional
        ``None``: colour by cell set (control / real / generated). A gene or an ``.obs``
        column of both objects: each condition gets two panels, real and generated, with the
        cells coloured by that value on one shared scale (control cells in grey behind).
    control : dict, optional
        Control values of some condition keys (``{"condition": "control"}``): draw the real
        control cells of each condition's context.
    condition_keys : str or list of str, optional
        ``.obs`` columns defining a condition. Default: the columns of ``pred.obs`` that are
        also in ``real.obs`` (except ``prompt`` and ``source_cell``).
    pca_key : str
        Key of the PCA coordinates in ``.obsm``.
    components : tuple of int
        Principal components shown with ``basis="pca"`` (0-based).
    n_max : int, optional
        At most this many cells per set and condition (random, ``seed``); ``None``: all.
    seed : int
        Seed of the subsampling and of UMAP.
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
    umap_kwargs : dict, optional
        Extra arguments of :func:`~sccalmflow.metrics.joint_umap` (``n_neighbors``,
        ``min_dist``...).
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        Axes to draw into, one per panel; default: a new figure.
    show : bool, optional
        Show the figure (``None``: when no ``ax`` is given, ``return_fig`` is False and the
        backend is interactive).
    save : bool or str or pathlib.Path, optional
        Save the figure: to this path (``.png`` added if no suffix), or with ``True`` to
        scanpy's ``settings.figdir`` as ``embedding_overlay.<format>``.
    return_fig : bool
        Return the :class:`~matplotlib.figure.Figure` instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes or list of Axes or matplotlib.figure.Figure
        One Axes (one panel), a list of Axes, or the Figure with ``return_fig=True``.

    Examples
    --------
    >>> real.obsm["X_pca"] = model.get_pca(real)
    >>> pred = model.predict({"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}, 500)
    >>> sccalmflow.pl.embedding_overlay(pred, real, control={"condition": "control"})
    """
    check_anndata(pred, "pred")
    check_anndata(real, "real")
    if basis not in ("umap", "pca"):
        raise ValueError(f"basis must be 'umap' or 'pca', not {basis!r}.")
    keys = infer_condition_keys(pred, real, condition_keys)
    control = check_control(control, keys)
    zp, zr = _pca(pred, pca_key, "pred"), _pca(real, pca_key, "real")
    if zp.shape[1] != zr.shape[1]:
        raise ValueError(
            f"pred and real have PCA coordinates of different widths ({zp.shape[1]} vs "
            f"{zr.shape[1]}): they must come from the same projection."
        )
    rng = np.random.default_rng(seed)
    conds = ordered_conditions(pred.obs, keys)
    panels = []
    for cond in conds:
        ip = subsample(rows_of(pred.obs, keys, cond), n_max, rng)
        ir = subsample(rows_of(real.obs, keys, cond), n_max, rng)
        ic = np.array([], dtype=int)
        is_ctrl = bool(control) and all(cond[keys.index(k)] == v for k, v in control.items())
        if control and not is_ctrl:
            ctrl = [control.get(k, v) for k, v in zip(keys, cond, strict=True)]
            ic = subsample(rows_of(real.obs, keys, ctrl), n_max, rng)
        title = " · ".join(cond) if cond else "all cells"
        panels.append((title, ip, ir, ic))

    # ---- 2-d coordinates of every cell shown
    used_p = np.unique(np.concatenate([p[1] for p in panels]))
    used_r = np.unique(np.concatenate([np.concatenate([p[2], p[3]]) for p in panels]))
    if basis == "pca":
        c0, c1 = (int(c) for c in components)
        if max(c0, c1) >= zp.shape[1]:
            raise ValueError(f"components {components} exceed the {zp.shape[1]} PCs.")
        ep, er = zp[:, [c0, c1]], zr[:, [c0, c1]]
        xlabel, ylabel = f"PC{c0 + 1}", f"PC{c1 + 1}"
    else:
        from ..metrics import joint_umap

        emb_r, emb_p = joint_umap(
            zr[used_r], zp[used_p], n_components=2, seed=seed, **dict(umap_kwargs or {})
        )
        ep = np.full((pred.n_obs, 2), np.nan)
        er = np.full((real.n_obs, 2), np.nan)
        ep[used_p], er[used_r] = emb_p, emb_r
        xlabel, ylabel = "UMAP1", "UMAP2"

    n_shown = max(len(p[1]) + len(p[2]) + len(p[3]) for p in panels)
    s = point_size(n_shown) if size is None else float(size)
    n_panels = len(panels) * (1 if color is None else 2)
    if color is not None:
        ncols = max(2, ncols - ncols % 2)
    fig, axes = make_axes(n_panels, ax, ncols=ncols, panel_size=(4.0, 4.0))

    if color is None:
        for a, (title, ip, ir, ic) in zip(axes, panels, strict=True):
            if control:
                a.scatter(*er[ic].T, s=s, c=SET_COLORS["control"], alpha=alpha, lw=0,
                          label=f"control (n={len(ic)})", rasterized=True)  # fmt: skip
            a.scatter(*er[ir].T, s=s, c=SET_COLORS["real"], alpha=alpha, lw=0,
                      label=f"real (n={len(ir)})", rasterized=True)  # fmt: skip
            a.scatter(*ep[ip].T, s=s, c=SET_COLORS["generated"], alpha=alpha, lw=0,
                      label=f"generated (n={len(ip)})", rasterized=True)  # fmt: skip
            a.set_title(title)
            a.legend(loc="best", fontsize=8, markerscale=max(1.0, 6 / np.sqrt(s)),
                     frameon=True, framealpha=0.85, handletextpad=0.2)  # fmt: skip
    else:
        _draw_colored(axes, panels, color, pred, real, ep, er, s, alpha, layer, fig)

    per_axes = [p for p in panels for _ in range(1 if color is None else 2)]
    for a, (_, ip, ir, ic) in zip(axes, per_axes, strict=True):
        if share_axes:
            ip = np.concatenate([p[1] for p in panels])
            ir = np.concatenate([np.concatenate([p[2], p[3]]) for p in panels])
        shown = np.vstack([ep[ip], er[np.concatenate([ir, ic])]])
        if shown.shape[0] == 0:
            continue
        lo, hi = np.nanmin(shown, axis=0), np.nanmax(shown, axis=0)
        margin = 0.05 * np.maximum(hi - lo, 1e-9)
        a.set_xlim(lo[0] - margin[0], hi[0] + margin[0])
        a.set_ylim(lo[1] - margin[1], hi[1] + margin[1])
    for a in axes:
        a.set_xlabel(xlabel)
        a.set_ylabel(ylabel)
        a.set_xticks([])
        a.set_yticks([])
    return finish(fig, axes, name="embedding_overlay", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip


def _draw_colored(axes, panels, color, pred, real, ep, er, s, alpha, layer, fig) -> None:
    vp = _values(pred, color, layer, "pred")
    vr = _values(real, color, layer, "real")
    categorical = not (pd.api.types.is_numeric_dtype(vp) and pd.api.types.is_numeric_dtype(vr))
    if categorical:
        cats = list(dict.fromkeys(list(vr.astype(str).unique()) + list(vp.astype(str).unique())))
        lut = {c: CATEGORICAL[i % len(CATEGORICAL)] for i, c in enumerate(cats)}
    else:
        both = np.concatenate([vp.to_numpy(float), vr.to_numpy(float)])
        vmin, vmax = float(np.nanmin(both)), float(np.nanmax(both))
    mappable = None
    for k, (title, ip, ir, ic) in enumerate(panels):
        for a, (which, idx, emb, vals) in zip(
            axes[2 * k : 2 * k + 2],
            (("real", ir, er, vr), ("generated", ip, ep, vp)),
            strict=True,
        ):
            if len(ic):
                a.scatter(*er[ic].T, s=s, c=SET_COLORS["control"], alpha=0.5, lw=0,
                          label=f"control (n={len(ic)})", rasterized=True)  # fmt: skip
            v = vals.iloc[idx]
            order = np.argsort(v.to_numpy(float)) if not categorical else np.arange(len(idx))
            if categorical:
                a.scatter(*emb[idx].T, s=s, c=[lut[str(x)] for x in v], alpha=alpha, lw=0,
                          label=f"{which} (n={len(idx)})", rasterized=True)  # fmt: skip
            else:
                mappable = a.scatter(
                    *emb[idx[order]].T, s=s, c=v.to_numpy(float)[order], cmap=CMAP,
                    vmin=vmin, vmax=vmax, alpha=alpha, lw=0,
                    label=f"{which} (n={len(idx)})", rasterized=True,
                )  # fmt: skip
            a.set_title(f"{title}\n{which}")
    if categorical:
        from matplotlib.lines import Line2D

        handles = [
            Line2D([], [], marker="o", ls="", color=lut[c], label=c, markersize=6) for c in cats
        ]
        axes[-1].legend(handles=handles, title=color, fontsize=8, loc="center left",
                        bbox_to_anchor=(1.02, 0.5), frameon=False)  # fmt: skip
    elif mappable is not None:
        fig.colorbar(mappable, ax=axes, shrink=0.7, pad=0.01, aspect=30, label=color)
