"""The generated flow: paths from the source to the generated cells over the time grid."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..utils import keep_torch_threads
from ._utils import (
    CMAP,
    finish,
    make_axes,
    ordered_conditions,
    point_size,
    rows_of,
    subsample,
)

BACKGROUND = "#D9D9D9"
TARGET = "#8C8C8C"


def trajectories(
    model,
    conditions: pd.DataFrame | Mapping[str, Sequence] | None,
    *,
    n_cells: int = 50,
    basis: Literal["pca", "umap"] = "pca",
    components: tuple[int, int] = (0, 1),
    real=None,
    layer: str | None = None,
    seed: int = 0,
    temperature: float | None = None,
    n_max: int | None = 3000,
    linewidth: float = 0.8,
    ncols: int = 3,
    umap_kwargs: Mapping[str, Any] | None = None,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Paths of generated cells from their source to the end of the flow, coloured by time.

    Generates ``n_cells`` cells per condition with
    :meth:`~sccalmflow.CaLMFlowModel.predict` (``return_trajectories=True``) and draws each
    path over the time grid as a line whose colour goes from dark (``t = 0``, the source:
    a control cell or noise) to bright (``t = 1``, the generated cell), over the real cells
    in light grey. Real cells of the requested condition, where the paths should end, are
    drawn in darker grey. One panel per condition.

    Parameters
    ----------
    model : sccalmflow.CaLMFlowModel
        A trained model.
    conditions : pandas.DataFrame or dict
        One row per condition, as in :meth:`~sccalmflow.CaLMFlowModel.predict`.
    n_cells : int
        Paths per condition.
    basis : {"pca", "umap"}
        ``"pca"``: two components of the model's PCA space (``components``); ``"umap"``: a
        2-d UMAP fitted on the real cells, into which the path states are projected with
        ``UMAP.transform`` (states between source and target are placed next to their
        nearest real cells, so read it qualitatively).
    components : tuple of int
        Principal components shown with ``basis="pca"`` (0-based).
    real : anndata.AnnData, optional
        Real cells for the background (projected with ``model.get_pca``); default: the
        model's registered cells.
    layer : str, optional
        Expression layer of ``real``.
    seed : int
        Seed of the generation (and of the subsampling and UMAP).
    temperature : float, optional
        Sampling temperature (default: the model's).
    n_max : int, optional
        At most this many background cells (``None``: all).
    linewidth : float
        Width of the path lines.
    ncols : int
        Panels per row.
    umap_kwargs : dict, optional
        Extra arguments of :class:`umap.UMAP` with ``basis="umap"``.
    ax : matplotlib.axes.Axes or sequence of Axes, optional
        Axes to draw into, one per condition (default: a new figure).
    show : bool, optional
        Show the figure (``None``: when no ``ax`` is given, ``return_fig`` is False and the
        backend is interactive).
    save : bool or str or pathlib.Path, optional
        Save the figure to this path, or with ``True`` to scanpy's ``settings.figdir``.
    return_fig : bool
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes or list of Axes or matplotlib.figure.Figure

    Examples
    --------
    >>> sccalmflow.pl.trajectories(model, {"cell_type": ["B"], "condition": ["IFN-beta"]})
    """
    import matplotlib
    from matplotlib.collections import LineCollection

    if basis not in ("pca", "umap"):
        raise ValueError(f"basis must be 'pca' or 'umap', not {basis!r}.")
    pred = model.predict(
        conditions,
        n_cells=n_cells,
        seed=seed,
        temperature=temperature,
        return_trajectories=True,
        decode=False,
    )
    paths = np.asarray(pred.obsm["X_trajectory"], dtype=np.float64)  # n x T x D
    grid = np.asarray(pred.uns["calmflow"]["time_grid"], dtype=np.float64)
    n, T, D = paths.shape
    if real is None:
        bg = np.asarray(model.get_pca(), dtype=np.float64)
        bg_obs = model.adata.obs
    else:
        bg = np.asarray(model.get_pca(real, layer=layer), dtype=np.float64)
        bg_obs = real.obs
    rng = np.random.default_rng(seed)
    keep = subsample(np.arange(bg.shape[0]), n_max, rng)

    if basis == "pca":
        c0, c1 = (int(c) for c in components)
        if max(c0, c1) >= D:
            raise ValueError(f"components {components} exceed the model's {D} PCs.")
        emb_bg = bg[:, [c0, c1]]
        emb_paths = paths[:, :, [c0, c1]]
        xlabel, ylabel = f"PC{c0 + 1}", f"PC{c1 + 1}"
    else:
        import warnings

        import umap

        kw = {"n_neighbors": 15, "min_dist": 0.1, **dict(umap_kwargs or {})}
        reducer = umap.UMAP(n_components=2, random_state=seed, **kw)
        with warnings.catch_warnings(), keep_torch_threads():
            warnings.simplefilter("ignore")
            emb_keep = reducer.fit_transform(bg[keep])
            emb_paths = reducer.transform(paths.reshape(n * T, D)).reshape(n, T, 2)
        emb_bg = np.full((bg.shape[0], 2), np.nan)
        emb_bg[keep] = emb_keep
        xlabel, ylabel = "UMAP1", "UMAP2"

    keys = list(model.condition_keys)
    conds = ordered_conditions(pred.obs, keys)
    fig, axes = make_axes(len(conds), ax, ncols=ncols, panel_size=(4.2, 4.0))
    cmap = matplotlib.colormaps[CMAP]
    norm = matplotlib.colors.Normalize(vmin=float(grid[0]), vmax=float(grid[-1]))
    s_bg = point_size(len(keep), 0.5)
    have_keys = all(k in bg_obs.columns for k in keys)
    for a, cond in zip(axes, conds, strict=True):
        rows = rows_of(pred.obs, keys, cond)
        a.scatter(*emb_bg[keep].T, s=s_bg, c=BACKGROUND, lw=0, rasterized=True,
                  label="real cells")  # fmt: skip
        if keys and have_keys:
            target = np.intersect1d(rows_of(bg_obs, keys, cond), keep)
            a.scatter(*emb_bg[target].T, s=s_bg, c=TARGET, lw=0, rasterized=True,
                      label=f"real cells, this condition (n={len(target)})" if len(target)
                      else "_none")  # fmt: skip
        p = emb_paths[rows]  # m x T x 2
        segments = np.stack([p[:, :-1], p[:, 1:]], axis=2).reshape(-1, 2, 2)
        t_mid = np.tile((grid[:-1] + grid[1:]) / 2, len(rows))
        lc = LineCollection(segments, cmap=cmap, norm=norm, linewidths=linewidth, alpha=0.85,
                            zorder=3, label="paths")  # fmt: skip
        lc.set_array(t_mid)
        a.add_collection(lc)
        a.scatter(*p[:, 0].T, s=10, color=cmap(norm(grid[0])), lw=0, zorder=4,
                  label="start (t = 0)")  # fmt: skip
        a.scatter(*p[:, -1].T, s=18, color=cmap(norm(grid[-1])), edgecolors="black",
                  linewidths=0.4, zorder=5, label="generated (t = 1)")  # fmt: skip
        a.set_title(" · ".join(cond) if cond else "generated cells")
        a.set_xlabel(xlabel)
        a.set_ylabel(ylabel)
        a.set_xticks([])
        a.set_yticks([])
        a.autoscale_view()
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.7, label="time t", pad=0.02)
    if ax is None:
        handles, labels = [], []
        for a in axes:  # one entry per kind of artist, across panels
            for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
                kind = lab.split(" (n=")[0]
                if kind not in [x.split(" (n=")[0] for x in labels]:
                    handles.append(h)
                    labels.append(kind)
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8,
                   frameon=False, markerscale=1.5)  # fmt: skip
    else:
        axes[0].legend(loc="best", fontsize=7, markerscale=1.5, framealpha=0.85)
    return finish(fig, axes, name="trajectories", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip
