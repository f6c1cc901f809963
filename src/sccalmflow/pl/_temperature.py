"""A metric of generated cells against real cells as the sampling temperature varies."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from ..data import condition_labels
from ._docs import COMMON, doc_params
from ._utils import (
    CATEGORICAL,
    check_figure_output,
    finish,
    make_axes,
    metric_label,
    style_axes,
)

#: Columns of :func:`sccalmflow.tl.temperature_sweep` besides the condition keys.
SWEEP_COLUMNS = ("temperature", "metric", "space", "value")
#: The column of :attr:`~sccalmflow.CaLMFlowModel.temperature_calibration` marking its choice.
CHOSEN = "chosen"
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")


def _check_sweep(sweep) -> tuple[str, str]:
    """The one metric and space of a sweep table."""
    if not isinstance(sweep, pd.DataFrame):
        raise TypeError(
            "pl.temperature draws the table of sccalmflow.tl.temperature_sweep: "
            "`sweep = scf.tl.temperature_sweep(model, conditions, real, metric=...)`, then "
            f"`scf.pl.temperature(sweep)`; got {type(sweep).__name__}."
        )
    missing = [c for c in SWEEP_COLUMNS if c not in sweep.columns]
    if missing:
        raise KeyError(f"sweep lacks the column(s) {missing} (is it from tl.temperature_sweep?).")
    if sweep.empty:
        raise ValueError("sweep has no rows.")
    pairs = sweep[["metric", "space"]].astype(str).drop_duplicates()
    if len(pairs) > 1:
        raise ValueError(
            f"sweep holds several metrics/spaces {pairs.to_records(index=False).tolist()}; "
            "select one, e.g. sweep[sweep.metric == 'mmd']."
        )
    return str(pairs["metric"].iloc[0]), str(pairs["space"].iloc[0])


@doc_params(**COMMON)
def temperature(
    sweep: pd.DataFrame,
    *,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """A metric of the generated cells as a function of the sampling temperature τ.

    Draws the table of :func:`sccalmflow.tl.temperature_sweep`: one line per condition,
    the metric against τ (τ = 0: the decoder mean; τ = 1: the full posterior). A table with
    a boolean ``chosen`` column (:attr:`~sccalmflow.CaLMFlowModel.temperature_calibration`,
    the return of :meth:`~sccalmflow.CaLMFlowModel.calibrate_temperature`) also gets a
    dashed line at the chosen τ.

    Parameters
    ----------
    sweep : pandas.DataFrame
        From :func:`sccalmflow.tl.temperature_sweep`: columns ``temperature``, ``metric``,
        ``space``, ``value`` (one metric in one space) and the condition keys; or a model's
        ``temperature_calibration`` (with ``chosen``).
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> sweep = sccalmflow.tl.temperature_sweep(model, held_out, real, metric="mmd")
    >>> sccalmflow.pl.temperature(sweep)
    """
    metric, space = _check_sweep(sweep)
    check_figure_output(ax, show, save, return_fig)
    keys = [c for c in sweep.columns if c not in (*SWEEP_COLUMNS, CHOSEN)]
    fig, (a,) = make_axes(1, ax, panel_size=(4.6, 3.4))
    labels = pd.Series(condition_labels(sweep, keys), index=sweep.index)
    order = list(dict.fromkeys(labels))
    for i, lab in enumerate(order):
        sub = sweep[labels == lab].sort_values("temperature")
        a.plot(sub["temperature"], sub["value"], marker=MARKERS[i % len(MARKERS)], lw=1.6,
               color=CATEGORICAL[i % len(CATEGORICAL)], label=lab or None)  # fmt: skip
    if CHOSEN in sweep.columns and sweep[CHOSEN].astype(bool).any():
        tau = float(sweep.loc[sweep[CHOSEN].astype(bool), "temperature"].iloc[0])
        a.axvline(tau, color="0.4", ls="--", lw=1, label=f"chosen τ = {tau:g}")
        order.append("chosen")  # the legend shows the line
    a.set_xlabel("sampling temperature τ")
    a.set_ylabel(metric_label(metric, space))
    a.set_xticks(np.unique(sweep["temperature"]))
    style_axes(a, grid="both")
    if len(order) > 1 or order[0]:
        a.legend(fontsize=8, frameon=False, loc="best")
    return finish(fig, [a], name="temperature", ax_given=ax is not None, show=show, save=save,
                  return_fig=return_fig)  # fmt: skip
