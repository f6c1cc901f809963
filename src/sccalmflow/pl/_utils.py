"""Shared plumbing of the plotting functions: palette, panels, saving and showing."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..metrics import DISTRIBUTION_METRICS
from ..utils import check_bool, check_sequence

#: Okabe & Ito (2008) colour-blind-safe palette (black first, as in the original).
OKABE_ITO: tuple[str, ...] = (
    "#000000",  # black
    "#E69F00",  # orange
    "#56B4E9",  # sky blue
    "#009E73",  # bluish green
    "#F0E442",  # yellow
    "#0072B2",  # blue
    "#D55E00",  # vermillion
    "#CC79A7",  # reddish purple
)

#: Colours for categories (Okabe-Ito without black and the low-contrast yellow first).
CATEGORICAL: tuple[str, ...] = (
    "#0072B2",
    "#E69F00",
    "#009E73",
    "#CC79A7",
    "#56B4E9",
    "#D55E00",
    "#000000",
    "#F0E442",
)

#: Colours of the three cell sets shown by several functions.
SET_COLORS: dict[str, str] = {
    "control": "#BBBBBB",
    "real": "#0072B2",
    "predicted": "#E69F00",
    "generated": "#E69F00",
}

#: Continuous colour map (perceptually uniform, readable with colour-vision deficiencies).
CMAP = "viridis"

#: Columns of :func:`sccalmflow.metrics.evaluate` that are not condition keys.
EVALUATE_COLUMNS = (
    "metric",
    "space",
    "value",
    "n_pred",
    "n_real",
    "n_used_pred",
    "n_used_real",
    "subsampled",
    "seed",
    "n_features",
)

#: Metrics for which a lower value is better (all others: higher is better).
LOWER_IS_BETTER = frozenset({*DISTRIBUTION_METRICS, "leiden_kl"})

_NON_INTERACTIVE = {"agg", "pdf", "ps", "svg", "pgf", "cairo", "template"}


def metric_label(metric: str, space: str | None = None, sep: str = ", ") -> str:
    """``"mmd (pca), lower is better"``-style label."""
    arrow = "lower is better" if metric in LOWER_IS_BETTER else "higher is better"
    where = f" ({space})" if space else ""
    return f"{metric}{where}{sep}{arrow}"


def gene_positions(adata, genes: Sequence[str], name: str) -> np.ndarray:
    """Positions of ``genes`` in ``adata.var_names`` (KeyError naming the missing ones)."""
    names = pd.Index(adata.var_names)
    missing = [g for g in genes if g not in names]
    if missing:
        raise KeyError(f"Gene(s) {missing} not in {name}.var_names.")
    return names.get_indexer(list(genes))


def gene_list(genes: Any, name: str = "genes") -> list[str]:
    """Gene names as a list: one name, or a non-empty sequence of distinct names."""
    if isinstance(genes, str):
        return [genes]
    items = check_sequence(name, genes, what="gene names")
    bad = [g for g in items if not isinstance(g, str)]
    if bad:
        raise TypeError(f"`{name}` must be gene names (strings); got {bad[:5]}.")
    twice = sorted({g for g in items if items.count(g) > 1})
    if twice:
        raise ValueError(f"`{name}` names {twice} more than once.")
    return list(items)


def check_labels(labels: Any, n: int, what: str) -> list[str]:
    """``n`` names (strings) of the sets drawn, e.g. ``("control", "real", "predicted")``."""
    if isinstance(labels, str | bytes) or not isinstance(labels, Sequence):
        raise TypeError(f"`labels` must be a list of {n} names ({what}), got {labels!r}.")
    if len(labels) != n or not all(isinstance(x, str) for x in labels):
        raise ValueError(f"`labels` must be {n} names ({what}), got {list(labels)!r}.")
    return list(labels)


def check_figure_output(ax: Any, show: Any, save: Any, return_fig: Any) -> None:
    """The arguments every figure takes: ``ax``, ``show``, ``save``, ``return_fig``."""
    from matplotlib.axes import Axes

    if ax is not None:
        axes = list(np.ravel(ax)) if isinstance(ax, np.ndarray | Sequence) else [ax]
        if isinstance(ax, str | bytes) or not all(isinstance(a, Axes) for a in axes):
            raise TypeError(
                f"`ax` must be a matplotlib Axes (or a list of Axes, one per panel), got "
                f"{type(ax).__name__}."
            )
    if show is not None:
        check_bool("show", show)
    check_bool("return_fig", return_fig)
    if save is not None and not isinstance(save, bool | str | Path):
        raise TypeError(
            f"`save` must be True, False, a file name or a pathlib.Path, got {type(save).__name__}."
        )


def point_size(n: int, scale: float = 1.0) -> float:
    """Marker area that keeps dense scatter plots readable (60000 / n, within [2, 16])."""
    return float(np.clip(60000.0 / max(n, 1), 2.0, 16.0) * scale)


def make_axes(
    n_panels: int,
    ax,
    *,
    ncols: int = 4,
    panel_size: tuple[float, float] = (4.0, 4.0),
    sharex: bool = False,
    sharey: bool = False,
):
    """``(figure, list of Axes)``: new panels, or the given ``ax`` (one Axes or a sequence)."""
    import matplotlib.pyplot as plt

    if ax is not None:
        axes = (
            list(ax.ravel())
            if isinstance(ax, np.ndarray)
            else (list(ax) if isinstance(ax, Sequence) else [ax])
        )
        if len(axes) != n_panels:
            raise ValueError(
                f"This plot has {n_panels} panel(s) but {len(axes)} Axes were given in `ax`."
            )
        return axes[0].figure, axes
    ncols = min(ncols, n_panels)
    nrows = math.ceil(n_panels / ncols)
    fig, grid = plt.subplots(
        nrows,
        ncols,
        figsize=(panel_size[0] * ncols, panel_size[1] * nrows),
        squeeze=False,
        sharex=sharex,
        sharey=sharey,
        layout="constrained",
    )
    flat = list(grid.ravel())
    for extra in flat[n_panels:]:
        extra.remove()
    return fig, flat[:n_panels]


def _resolve_save_path(save: bool | str | Path, name: str) -> Path:
    if save is True:
        import scanpy as sc

        path = Path(sc.settings.figdir) / f"{name}.{sc.settings.file_format_figs}"
    else:
        path = Path(save)
        if not path.suffix:
            path = path.with_suffix(".png")
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def finish(
    fig,
    axes: list,
    *,
    name: str,
    ax_given: bool,
    show: bool | None,
    save: bool | str | Path | None,
    return_fig: bool,
):
    """Save and/or show the figure; return the Figure, one Axes or the list of Axes."""
    import matplotlib
    import matplotlib.pyplot as plt

    if save:
        fig.savefig(_resolve_save_path(save, name), dpi=150, bbox_inches="tight")
    if show is None:
        backend = str(matplotlib.get_backend()).lower()
        show = not ax_given and not return_fig and backend not in _NON_INTERACTIVE
    if show and not ax_given:
        plt.show()
    if return_fig:
        return fig
    return axes[0] if len(axes) == 1 else axes


def get_renderer(fig):
    """A renderer to measure text extents (Agg, inline and most GUI backends)."""
    canvas = fig.canvas
    if hasattr(canvas, "get_renderer"):
        return canvas.get_renderer()
    return fig._get_renderer()  # pragma: no cover - backends without get_renderer


_DIRECTIONS = ((1, 1), (1, 0), (1, -1), (-1, 1), (-1, 0), (-1, -1), (0, 1), (0, -1))


def _is_free(b, boxes: np.ndarray, frame) -> bool:
    """Is box ``b`` (x0, y0, x1, y1, pixels) inside ``frame`` and clear of ``boxes``?"""
    if b[0] < frame.x0 or b[1] < frame.y0 or b[2] > frame.x1 or b[3] > frame.y1:
        return False
    hit = (b[2] > boxes[:, 0]) & (b[0] < boxes[:, 2]) & (b[3] > boxes[:, 1])
    return not (hit & (b[1] < boxes[:, 3])).any()


def _crosses(pt, b, boxes: np.ndarray) -> bool:
    """Does the connector from ``pt`` to box ``b`` run through one of ``boxes``?"""
    if boxes.shape[0] == 0:
        return False
    end = np.clip(pt, b[:2], b[2:])
    s = np.linspace(0.15, 0.95, 12)[:, None]
    seg = pt + s * (end - pt)
    inside = (
        (seg[:, None, 0] > boxes[None, :, 0])
        & (seg[:, None, 0] < boxes[None, :, 2])
        & (seg[:, None, 1] > boxes[None, :, 1])
        & (seg[:, None, 1] < boxes[None, :, 3])
    )
    return bool(inside.any())


def _obstacles(ax, pts: np.ndarray, avoid, avoid_px: float, renderer) -> np.ndarray:
    """Pixel boxes no label may cover: ``avoid``, the labelled points and the legend."""
    obst = pts if avoid is None else ax.transData.transform(np.asarray(avoid, dtype=float))
    obst = np.vstack([obst, pts])  # the labelled points are always avoided
    taken = np.column_stack([obst - avoid_px, obst + avoid_px])  # boxes: x0, y0, x1, y1
    legend = ax.get_legend()
    if legend is not None:
        bb = legend.get_window_extent(renderer)
        taken = np.vstack([taken, [[bb.x0, bb.y0, bb.x1, bb.y1]]])
    return taken


def _place(pt, w: float, h: float, gaps, taken, others, frame, avoid_px: float):
    """The first free box of size ``w x h`` around ``pt``, and its distance from it.

    First a spot whose connector crosses no other label or point; failing that, any free
    spot (a connector may then cross), also farther away (up to twice the largest gap); last,
    right of the point (which may overlap: only when the axes are full).
    """
    far_gaps = [g for g in np.arange(gaps[-1] + 8.0, 2 * gaps[-1] + 1, 8.0)]
    for gap_list, check_cross in ((gaps, True), ([*gaps, *far_gaps], False)):
        for gap in gap_list:
            for dx, dy in _DIRECTIONS:
                x0 = pt[0] + gap * dx + (0.0 if dx > 0 else -w if dx < 0 else -w / 2)
                y0 = pt[1] + gap * dy * (0.6 if dx else 1.0)
                y0 += 0.0 if dy > 0 else -h if dy < 0 else -h / 2
                cand = (x0, y0, x0 + w, y0 + h)
                if _is_free(cand, taken, frame) and (
                    not check_cross
                    or gap <= avoid_px + 2.0
                    or not _crosses(pt, np.asarray(cand), others)
                ):
                    return cand, gap
    # no free spot: put it right of the point
    return (pt[0] + 3.0, pt[1] - h / 2, pt[0] + 3.0 + w, pt[1] + h / 2), 3.0


def spread_labels(
    ax,
    x: np.ndarray,
    y: np.ndarray,
    labels: Sequence[str],
    *,
    fontsize: float = 8.0,
    color: str = "black",
    avoid: np.ndarray | None = None,
    avoid_px: float = 3.5,
    max_offset_px: float = 150.0,
) -> list:
    """Label points without overlapping text, greedily.

    Labels are placed one after the other (first label first): each takes the first free
    spot among 8 directions around its point, at increasing distances, that overlaps no
    earlier label, no labelled point and no point of ``avoid`` (data coordinates,
    ``n x 2``; each point is a square of ``2 * avoid_px`` pixels), not the legend, and stays
    inside the axes. A label placed away from its point gets a thin connector line. Call this
    after the axis limits are final.

    Returns
    -------
    list of :class:`matplotlib.text.Annotation`
    """
    if len(labels) == 0:
        return []
    fig = ax.figure
    fig.draw_without_rendering()  # apply the layout first: positions are in pixels
    renderer = get_renderer(fig)
    pts = ax.transData.transform(np.column_stack([x, y]))
    taken = _obstacles(ax, pts, avoid, avoid_px, renderer)
    frame = ax.get_window_extent(renderer)
    gaps = [avoid_px + 1.5, *np.arange(avoid_px + 8.0, max_offset_px + 1, 8.0)]
    label_boxes = np.empty((0, 4))
    out = []
    inv = ax.transData.inverted()
    point_boxes = np.column_stack([pts - avoid_px, pts + avoid_px])
    for i, (lab, pt) in enumerate(zip(labels, pts, strict=True)):
        others = np.vstack([label_boxes, np.delete(point_boxes, i, axis=0)])
        t = ax.text(0, 0, str(lab), fontsize=fontsize)
        ext = t.get_window_extent(renderer)
        t.remove()
        best, best_gap = _place(
            pt, ext.width + 6.0, ext.height + 2.0, gaps, taken, others, frame, avoid_px
        )
        taken = np.vstack([taken, [best]])
        label_boxes = np.vstack([label_boxes, [best]])
        far = best_gap > avoid_px + 2.0
        ann = ax.annotate(
            str(lab),
            xy=tuple(inv.transform(pt)),
            xytext=tuple(inv.transform(((best[0] + best[2]) / 2, (best[1] + best[3]) / 2))),
            textcoords="data",
            fontsize=fontsize,
            color=color,
            ha="center",
            va="center",
            zorder=5,
            annotation_clip=False,
            arrowprops=(
                {"arrowstyle": "-", "color": "0.25", "lw": 0.8, "shrinkA": 0, "shrinkB": 3}
                if far
                else None
            ),
        )
        # the labels lie inside the axes: kept out of the layout, so that adding them does not
        # shrink the axes (constrained layout) and move the points from under the boxes
        # placed in pixels
        ann.set_in_layout(False)
        out.append(ann)
    return out


def tilt_overlapping_xticklabels(axes, rotation: float = 30.0) -> None:
    """Rotate the x tick labels of axes whose labels overlap (after layout)."""
    if not axes:
        return
    fig = axes[0].figure
    fig.draw_without_rendering()
    renderer = get_renderer(fig)
    for ax in axes:
        labels = [t for t in ax.get_xticklabels() if t.get_text()]
        boxes = [t.get_window_extent(renderer) for t in labels]
        if any(a.x1 + 2 > b.x0 for a, b in zip(boxes, boxes[1:])):
            for t in labels:
                t.set_rotation(rotation)
                t.set_ha("right")
                t.set_rotation_mode("anchor")


def style_axes(ax, *, grid: str | None = None) -> None:
    ax.spines[["top", "right"]].set_visible(False)
    if grid:
        ax.grid(axis=grid, color="0.9", linewidth=0.8)
        ax.set_axisbelow(True)
