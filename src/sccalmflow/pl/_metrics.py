"""Methods x conditions from the tidy table of :func:`sccalmflow.metrics.evaluate`."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from ..utils import check_int
from ._docs import COMMON_PANELS, doc_params
from ._utils import (
    CATEGORICAL,
    CMAP,
    EVALUATE_COLUMNS,
    LOWER_IS_BETTER,
    check_figure_output,
    finish,
    make_axes,
    metric_label,
    style_axes,
    tilt_overlapping_xticklabels,
)


def _hue_colors(n: int) -> list:
    if n <= len(CATEGORICAL):
        return list(CATEGORICAL[:n])
    import matplotlib

    cmap = matplotlib.colormaps[CMAP]
    return [cmap(v) for v in np.linspace(0.0, 0.95, n)]


@doc_params(**COMMON_PANELS)
def metrics(
    df: pd.DataFrame,
    *,
    metric: str | Sequence[str] | None = None,
    x: str = "method",
    hue: str | Sequence[str] | None = None,
    space: str | Sequence[str] | None = None,
    kind: Literal["bar", "heatmap"] = "bar",
    ncols: int = 3,
    fmt: str = ".3g",
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Compare methods across conditions, one panel per metric (and space).

    Takes the tidy table of :func:`sccalmflow.metrics.evaluate`, typically the tables of
    several methods concatenated with a ``method`` column (each method's table
    ``.assign(method=name)``, then :func:`pandas.concat`, as in the example below).
    Rows with several values for the same ``x`` and ``hue`` (e.g. seeds) are averaged; the
    bar plot then also shows the single values as dots.

    Parameters
    ----------
    df : pandas.DataFrame
        Columns ``metric``, ``value``, ``x``, optionally ``space`` and the condition keys.
    metric : str or list of str, optional
        Metric(s) to show (``None``: every metric of ``df``).
    x : str
        Column along the x axis (bar plot) or the columns (heatmap), e.g. ``"method"``.
    hue : str or list of str, optional
        Column(s) giving the bars' colours (bar plot) or the heatmap's rows. Default: the
        condition keys, i.e. every column that is neither ``x`` nor one of
        :func:`~sccalmflow.metrics.evaluate`'s own columns.
    space : str or list of str, optional
        Keep only these spaces (``"pca"``, ``"umap10"``, ``"genes"``...); ``None``: one panel
        per space present.
    kind : {"bar", "heatmap"}
        Grouped bars or an annotated heatmap (brighter is better for every metric).
    ncols : int
        Panels per row.
    fmt : str
        Format of the values written in the heatmap cells.
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> table = pd.concat([evaluate(p, real, control=ctrl, condition_keys=keys).assign(method=m)
    ...                    for m, p in predictions.items()])
    >>> sccalmflow.pl.metrics(table, metric=["r2_pearson", "mmd"], space=["genes", "pca"])
    """
    _check_table(df, kind, x)
    check_figure_output(ax, show, save, return_fig)
    ncols = check_int("ncols", ncols, minimum=1)
    if not isinstance(fmt, str):
        raise TypeError(f"`fmt` must be a format specification string, e.g. '.3g'; got {fmt!r}.")
    try:
        format(0.5, fmt)
    except ValueError as err:
        raise ValueError(
            f"`fmt` must be a format specification for numbers, e.g. '.3g' or '.2f'; got {fmt!r}."
        ) from err
    hue_cols = _hue_columns(df, hue, x)
    data, panels = _select(df, metric, space)
    data = data.assign(
        _x=data[x].astype(str),
        _hue=(data[hue_cols].astype(str).agg(" · ".join, axis=1) if hue_cols else ""),
    )
    x_order = list(dict.fromkeys(data["_x"]))
    hue_order = list(dict.fromkeys(data["_hue"]))
    colors = dict(zip(hue_order, _hue_colors(len(hue_order)), strict=True))
    size = _panel_size(kind, x_order, hue_order)
    fig, axes = make_axes(len(panels), ax, ncols=ncols, panel_size=size)
    for a, (m, s) in zip(axes, panels, strict=True):
        sub = data[(data["metric"] == m) & (data["space"].astype(str) == s)]
        values = sub.groupby(["_hue", "_x"], sort=False)["value"]
        mean = values.mean().unstack("_x").reindex(index=hue_order, columns=x_order)
        if kind == "bar":
            _bars(a, mean, values, hue_order, x_order, colors, x)
        else:
            _heatmap(a, fig, mean, m, fmt)
        a.set_title(metric_label(m, s or None, sep="\n"), fontsize=10)
    if kind == "bar" and hue_cols and len(hue_order) > 1:
        from matplotlib.patches import Patch

        axes[-1].legend(
            handles=[Patch(facecolor=colors[h], edgecolor="0.25", label=h) for h in hue_order],
            title=" · ".join(hue_cols),
            loc="upper left",
            bbox_to_anchor=(1.02, 1.0),
            frameon=False,
            fontsize=8,
            title_fontsize=8,
        )
    if kind == "heatmap" and ax is None and len(axes) > 1:
        # same rows in every panel: label them in the first column only
        n_cols = max(1, min(int(ncols), len(axes)))
        for i, a in enumerate(axes):
            if i % n_cols:
                a.set_yticklabels([])
    tilt_overlapping_xticklabels(axes)
    return finish(fig, axes, name=f"metrics_{kind}", ax_given=ax is not None, show=show,
                  save=save, return_fig=return_fig)  # fmt: skip


def _check_table(df, kind: str, x: str) -> None:
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"df must be a pandas DataFrame, got {type(df).__name__}.")
    if kind not in ("bar", "heatmap"):
        raise ValueError(f"kind must be 'bar' or 'heatmap', not {kind!r}.")
    for col in ("metric", "value"):
        if col not in df.columns:
            raise KeyError(f"df lacks the column {col!r} (is it a table from metrics.evaluate?).")
    if x not in df.columns:
        hint = (
            " Add one, e.g. df.assign(method='CaLMFlow'), or concatenate several methods' tables."
            if x == "method"
            else ""
        )
        raise KeyError(f"df lacks the column x={x!r}.{hint}")


def _hue_columns(df: pd.DataFrame, hue, x: str) -> list[str]:
    """The hue columns: given, or every column that is not ``x`` nor evaluate's own."""
    if hue is None:
        return [c for c in df.columns if c not in EVALUATE_COLUMNS and c != x]
    hue_cols = [hue] if isinstance(hue, str) else list(hue)
    missing = [c for c in hue_cols if c not in df.columns]
    if missing:
        raise KeyError(f"df lacks the hue column(s) {missing}.")
    return hue_cols


def _select(df: pd.DataFrame, metric, space) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """The rows of the metrics and spaces asked for, and the (metric, space) panels."""
    data = df.copy()
    if "space" not in data.columns:
        data["space"] = ""
    available = list(dict.fromkeys(data["metric"].astype(str)))
    metrics_ = (
        available if metric is None else ([metric] if isinstance(metric, str) else list(metric))
    )
    unknown = [m for m in metrics_ if m not in available]
    if unknown:
        raise ValueError(f"Unknown metric(s) {unknown}; df has {available}.")
    data = data[data["metric"].astype(str).isin(metrics_)]
    if space is not None:
        spaces = [space] if isinstance(space, str) else list(space)
        data = data[data["space"].astype(str).isin(spaces)]
    panels = [
        (m, s)
        for m in metrics_
        for s in dict.fromkeys(data.loc[data["metric"] == m, "space"].astype(str))
    ]
    if not panels:
        raise ValueError(f"No rows left for metric={metric!r} and space={space!r}.")
    return data, panels


def _panel_size(kind: str, x_order: list[str], hue_order: list[str]) -> tuple[float, float]:
    longest = max(len(v) for v in x_order)
    if kind == "bar":
        per_group = max(0.3 * max(len(hue_order), 1), 0.09 * longest + 0.25)
        return (min(max(3.6, per_group * len(x_order) + 1.4), 10.0), 3.6)
    return (max(3.2, max(0.75, 0.08 * longest) * len(x_order) + 1.6),
            max(2.4, 0.42 * len(hue_order) + 1.4))  # fmt: skip


def _bars(a, mean, values, hue_order, x_order, colors, x) -> None:
    n_h = max(len(hue_order), 1)
    width = 0.8 / n_h
    raw = {k: np.asarray(v, dtype=float) for k, v in values}
    for j, h in enumerate(hue_order):
        pos = np.arange(len(x_order)) + (j - (n_h - 1) / 2) * width
        a.bar(pos, mean.loc[h].to_numpy(float), width=width * 0.92, color=colors[h],
              edgecolor="0.25", linewidth=0.4, label=h or None, zorder=2)  # fmt: skip
        for p, xv in zip(pos, x_order, strict=True):
            vals = raw.get((h, xv))
            if vals is not None and vals.size > 1:
                a.scatter(np.full(vals.size, p), vals, s=8, c="black", zorder=3, lw=0)
    a.set_xticks(np.arange(len(x_order)), x_order)
    a.set_xlabel(x)
    a.set_ylabel("value")
    a.axhline(0, color="0.3", lw=0.8, zorder=2)
    style_axes(a, grid="y")


def _heatmap(a, fig, mean: pd.DataFrame, metric: str, fmt: str) -> None:
    import matplotlib

    mat = mean.to_numpy(float)
    cmap = matplotlib.colormaps[CMAP + ("_r" if metric in LOWER_IS_BETTER else "")]
    im = a.imshow(mat, cmap=cmap, aspect="auto")
    finite = mat[np.isfinite(mat)]
    lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 1.0)
    for i in range(mat.shape[0]):
        for j in range(mat.shape[1]):
            v = mat[i, j]
            if not np.isfinite(v):
                continue
            rgba = cmap((v - lo) / (hi - lo) if hi > lo else 0.5)
            lum = 0.2126 * rgba[0] + 0.7152 * rgba[1] + 0.0722 * rgba[2]
            a.text(j, i, format(v, fmt), ha="center", va="center", fontsize=8,
                   color="black" if lum > 0.5 else "white")  # fmt: skip
    a.set_xticks(np.arange(mat.shape[1]), list(mean.columns))
    a.set_yticks(np.arange(mat.shape[0]), [str(i) or "all" for i in mean.index])
    a.tick_params(length=0)
    for s in a.spines.values():
        s.set_visible(False)
    fig.colorbar(im, ax=a, shrink=0.8, pad=0.02)
