"""A metric of generated cells against real cells as the sampling temperature varies."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._utils import (
    CATEGORICAL,
    check_anndata,
    finish,
    make_axes,
    metric_label,
    style_axes,
)

MEAN_EXPRESSION = (
    "r2_pearson",
    "r2_sklearn",
    "pearson",
    "spearman",
    "pearson_delta",
    "r2_pearson_delta",
    "r2_sklearn_delta",
)
DISTRIBUTION = ("e_distance", "e_distance_sq", "mmd", "adaptive_mmd", "w2", "w2_sinkhorn")


def _family(metric: str) -> tuple[str, str | None]:
    if metric in MEAN_EXPRESSION:
        return "mean_expression", "genes"
    if metric == "discrimination_l1":
        return "discrimination", "genes"
    if metric in DISTRIBUTION:
        return metric, None
    raise ValueError(
        f"Unknown metric {metric!r}; choose from "
        f"{list(MEAN_EXPRESSION) + ['discrimination_l1'] + list(DISTRIBUTION)}."
    )


def temperature_scores(
    model,
    conditions,
    real,
    *,
    temperatures: Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    metric: str = "r2_pearson",
    space: str = "pca",
    n_cells: int = 200,
    seed: int = 0,
    layer: str | None = None,
) -> pd.DataFrame:
    """The values drawn by :func:`temperature`: one row per temperature x condition.

    Returns
    -------
    pandas.DataFrame
        Columns: the model's condition keys, ``temperature``, ``metric``, ``space``,
        ``value``.
    """
    import anndata as ad

    from ..metrics import evaluate

    check_anndata(real, "real")
    family, fixed_space = _family(metric)
    head = getattr(getattr(model, "module", None), "head", None)
    if head is not None and not getattr(head, "variational", True):
        warnings.warn(
            "The model's decoding head is deterministic (variational=False): the sampling "
            "temperature has no effect, every temperature gives the same cells.",
            UserWarning,
            stacklevel=3,
        )
    temps = [float(t) for t in temperatures]
    if not temps:
        raise ValueError("temperatures is empty.")
    if min(temps) < 0:
        raise ValueError("temperatures must be >= 0.")
    keys = list(model.condition_keys)
    missing = [k for k in keys if k not in real.obs.columns]
    if missing:
        raise KeyError(f"real.obs lacks the model's condition key(s) {missing}.")
    X = real.X if layer is None else real.layers[layer]
    # a light copy holding the model's PCA projection of the real cells
    ref = ad.AnnData(X=X, obs=real.obs[keys].copy(), var=pd.DataFrame(index=real.var_names))
    ref.obsm["X_pca"] = model.get_pca(real, layer=layer)
    rows = []
    for t in temps:
        pred = model.predict(conditions, n_cells=n_cells, seed=seed, temperature=t)
        table = evaluate(
            pred,
            ref,
            control=model.control or None,
            condition_keys=keys,
            metrics=[family],
            space=[space] if fixed_space is None else "pca",
            seed=seed,
        )
        sel = table[table["metric"] == metric]
        if fixed_space is None:
            sel = sel[sel["space"] == space]
        else:
            sel = sel[sel["space"] == fixed_space]
        if sel.empty:
            raise ValueError(
                f"metric {metric!r} could not be computed (e.g. delta metrics need real "
                "control cells, discrimination needs >= 2 conditions)."
            )
        rows.append(sel[keys + ["metric", "space", "value"]].assign(temperature=t))
    out = pd.concat(rows, ignore_index=True)
    return out[keys + ["temperature", "metric", "space", "value"]]


def temperature(
    model,
    conditions: pd.DataFrame | Mapping[str, Sequence] | None,
    real,
    *,
    temperatures: Sequence[float] = (0.0, 0.25, 0.5, 1.0),
    metric: str = "r2_pearson",
    space: str = "pca",
    n_cells: int = 200,
    seed: int = 0,
    layer: str | None = None,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """A metric of the generated cells as a function of the sampling temperature τ.

    For each τ in ``temperatures``, generates ``n_cells`` cells per condition with
    ``model.predict(conditions, n_cells, seed, temperature=τ)`` (same seed, so the sources
    are the same) and scores them against ``real`` with :func:`sccalmflow.metrics.evaluate`.
    τ = 0 is the deterministic decoder mean; τ = 1 samples the full posterior. One line
    per condition. The values are available from :func:`temperature_scores`. Only a model
    with the variational head (``CaLMFlowModel(..., variational=True)``) depends on τ; for
    a deterministic head a warning is issued.

    Parameters
    ----------
    model : sccalmflow.CaLMFlowModel
        A trained model.
    conditions : pandas.DataFrame or dict
        Conditions to generate (one row each), as in
        :meth:`~sccalmflow.CaLMFlowModel.predict`.
    real : anndata.AnnData
        Real cells with the model's condition columns and genes (projected with
        ``model.get_pca`` for the distribution metrics).
    temperatures : list of float
        Temperatures τ >= 0.
    metric : str
        A metric of :func:`~sccalmflow.metrics.evaluate`: ``"r2_pearson"``,
        ``"r2_sklearn"``, ``"pearson"``, ``"spearman"``, ``"pearson_delta"``,
        ``"r2_pearson_delta"``, ``"r2_sklearn_delta"`` (gene space),
        ``"discrimination_l1"`` (>= 2 conditions), or a distribution distance
        ``"e_distance"``, ``"e_distance_sq"``, ``"mmd"``, ``"adaptive_mmd"``, ``"w2"``,
        ``"w2_sinkhorn"`` (in ``space``).
    space : str
        Space of the distribution metrics (``"pca"``, ``"umap10"``, ``"genes"``).
    n_cells : int
        Cells per condition and temperature.
    seed : int
        Seed of the generation and the metric.
    layer : str, optional
        Expression layer of ``real``.
    ax : matplotlib.axes.Axes, optional
        Axes to draw into (default: a new figure).
    show : bool, optional
        Show the figure (``None``: when no ``ax`` is given, ``return_fig`` is False and the
        backend is interactive).
    save : bool or str or pathlib.Path, optional
        Save the figure to this path, or with ``True`` to scanpy's ``settings.figdir``.
    return_fig : bool
        Return the Figure instead of the Axes.

    Returns
    -------
    matplotlib.axes.Axes or matplotlib.figure.Figure

    Examples
    --------
    >>> sccalmflow.pl.temperature(model, held_out, real, metric="mmd")
    """
    scores = temperature_scores(
        model,
        conditions,
        real,
        temperatures=temperatures,
        metric=metric,
        space=space,
        n_cells=n_cells,
        seed=seed,
        layer=layer,
    )
    keys = list(model.condition_keys)
    fig, (a,) = make_axes(1, ax, panel_size=(4.6, 3.4))
    labels = (
        scores[keys].astype(str).agg(" · ".join, axis=1) if keys else pd.Series("", scores.index)
    )
    order = list(dict.fromkeys(labels))
    markers = ("o", "s", "^", "D", "v", "P", "X", "*")
    for i, lab in enumerate(order):
        sub = scores[labels == lab].sort_values("temperature")
        a.plot(sub["temperature"], sub["value"], marker=markers[i % len(markers)], lw=1.6,
               color=CATEGORICAL[i % len(CATEGORICAL)], label=lab or None)  # fmt: skip
    space_shown = scores["space"].iloc[0]
    a.set_xlabel("sampling temperature τ")
    a.set_ylabel(metric_label(metric, space_shown))
    a.set_xticks(np.unique(scores["temperature"]))
    style_axes(a, grid="both")
    if len(order) > 1 or order[0]:
        a.legend(fontsize=8, frameon=False, loc="best")
    return finish(fig, [a], name="temperature", ax_given=ax is not None, show=show, save=save,
                  return_fig=return_fig)  # fmt: skip
