"""The generated flow: paths from the source to the generated cells over the time grid."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from ..data import rows_of
from ..tl import Trajectories
from ..utils import check_int, check_number
from ._docs import COMMON_PANELS, doc_params
from ._utils import CMAP, check_figure_output, finish, make_axes, point_size

BACKGROUND = "#D9D9D9"
TARGET = "#8C8C8C"


def _draw_panel(a, result: Trajectories, cond, cmap, norm, s_bg: float, linewidth: float):
    """Real cells in grey, this condition's real cells darker, the paths coloured by time."""
    from matplotlib.collections import LineCollection

    keys, grid, bg = result.condition_keys, result.time_grid, result.background
    rows = rows_of(result.prediction.obs, keys, cond)
    a.scatter(*bg.T, s=s_bg, c=BACKGROUND, lw=0, rasterized=True, label="real cells")
    if keys and all(k in result.background_obs.columns for k in keys):
        target = rows_of(result.background_obs, keys, cond)
        a.scatter(*bg[target].T, s=s_bg, c=TARGET, lw=0, rasterized=True,
                  label=f"real cells, this condition (n={len(target)})" if len(target)
                  else "_none")  # fmt: skip
    p = result.paths[rows]  # m x T x 2
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
    a.set_xlabel(result.axis_labels[0])
    a.set_ylabel(result.axis_labels[1])
    a.set_xticks([])
    a.set_yticks([])
    a.autoscale_view()


def _figure_legend(fig, axes) -> None:
    """One entry per kind of artist, across panels, under the figure."""
    handles, labels = [], []
    for a in axes:
        for h, lab in zip(*a.get_legend_handles_labels(), strict=True):
            kind = lab.split(" (n=")[0]
            if kind not in [x.split(" (n=")[0] for x in labels]:
                handles.append(h)
                labels.append(kind)
    fig.legend(handles, labels, loc="outside lower center", ncols=len(labels), fontsize=8,
               frameon=False, markerscale=1.5)  # fmt: skip


@doc_params(**COMMON_PANELS)
def trajectories(
    result: Trajectories,
    *,
    linewidth: float = 0.8,
    ncols: int = 3,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Paths of generated cells from their source to the end of the flow, coloured by time.

    Draws what :func:`sccalmflow.tl.trajectories` computed: each path over the time grid as
    a line whose colour goes from dark (``t = 0``, the source: a control cell or noise) to
    bright (``t = 1``, the generated cell), over the real cells in light grey. Real cells of
    the requested condition, where the paths should end, are drawn in darker grey. One
    panel per condition.

    Parameters
    ----------
    result : sccalmflow.tl.Trajectories
        From :func:`sccalmflow.tl.trajectories`.
    linewidth : float
        Width of the path lines.
    ncols : int
        Panels per row.
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> paths = sccalmflow.tl.trajectories(model, {"cell_type": ["B"], "condition": ["IFN-beta"]})
    >>> sccalmflow.pl.trajectories(paths)
    """
    import matplotlib

    if not isinstance(result, Trajectories):
        raise TypeError(
            "pl.trajectories draws the result of sccalmflow.tl.trajectories: "
            "`paths = scf.tl.trajectories(model, conditions, ...)`, then "
            f"`scf.pl.trajectories(paths)`; got {type(result).__name__}."
        )
    check_figure_output(ax, show, save, return_fig)
    ncols = check_int("ncols", ncols, minimum=1)
    linewidth = check_number("linewidth", linewidth, minimum=0, exclusive_minimum=True)
    grid = result.time_grid
    fig, axes = make_axes(len(result.conditions), ax, ncols=ncols, panel_size=(4.2, 4.0))
    cmap = matplotlib.colormaps[CMAP]
    norm = matplotlib.colors.Normalize(vmin=float(grid[0]), vmax=float(grid[-1]))
    s_bg = point_size(len(result.background), 0.5)
    for a, cond in zip(axes, result.conditions, strict=True):
        _draw_panel(a, result, cond, cmap, norm, s_bg, linewidth)
    sm = matplotlib.cm.ScalarMappable(norm=norm, cmap=cmap)
    fig.colorbar(sm, ax=axes, shrink=0.7, label="time t", pad=0.02)
    if ax is None:
        _figure_legend(fig, axes)
    else:
        axes[0].legend(loc="best", fontsize=7, markerscale=1.5, framealpha=0.85)
    return finish(fig, axes, name="trajectories", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip
