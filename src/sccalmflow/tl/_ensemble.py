"""Uncertainty of the mean response from an ensemble of models trained over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..utils import check_int, check_number, check_seed


def mean_interval(
    means: np.ndarray,
    level: float = 0.9,
    *,
    cell_var: np.ndarray | None = None,
    n_observed: int | None = None,
) -> dict[str, np.ndarray]:
    """Mean over models and a prediction interval for the mean response.

    The ``k`` models' means are treated as draws around the truth: the interval is
    ``mean ± t_{k-1} · sd · sqrt(1 + 1/k)`` (Student's t prediction interval for one more
    draw), which widens for small ensembles. It reflects how much training randomness moves
    the prediction, not a bias all models share.

    With ``n_observed`` the interval is for the mean you would *measure* on ``n_observed``
    cells rather than for the population mean: the sampling variance of that mean (the
    per-gene variance between generated cells, averaged over models, over ``n_observed``)
    is added: the half-width is ``sqrt(h_models² + (z · se)²)``, ``h_models`` the half-width
    above, ``se = sqrt(cell_var / n_observed)`` and ``z`` the normal quantile (the cells'
    variance is estimated from many generated cells), so it is never narrower than the
    interval for the population mean. Use it to compare with a real mean of that many
    cells (held-out cells, a new experiment).

    Parameters
    ----------
    means
        ``(k, n_genes)`` per-model mean expression, ``k >= 2``.
    level
        Coverage the interval aims for (0 < level < 1).
    cell_var
        ``(k, n_genes)`` per-model variance between generated cells; needed with
        ``n_observed``.
    n_observed
        Number of cells the compared mean is measured on; ``None``: the population mean.

    Returns
    -------
    ``{"mean", "sd", "lower", "upper"}``, each ``(n_genes,)``.
    """
    means = np.asarray(means, dtype=np.float64)
    if means.ndim != 2 or means.shape[0] < 2:
        raise ValueError(
            f"`means` must be (n_models >= 2, n_genes); got shape {means.shape}. An interval "
            "needs at least two models."
        )
    check_number(
        "level", level, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True
    )
    k = means.shape[0]
    mean, sd = means.mean(0), means.std(0, ddof=1)
    var = sd**2 * (1 + 1 / k)
    if n_observed is not None:
        check_int("n_observed", n_observed, minimum=1)
        if cell_var is None:
            raise ValueError(
                "`n_observed` needs `cell_var`, the per-model variance between generated "
                "cells (shape (n_models, n_genes))."
            )
        cell_var = np.asarray(cell_var, dtype=np.float64)
        if cell_var.shape != means.shape or not np.all(cell_var >= 0):
            raise ValueError(
                f"`cell_var` must be non-negative with the shape of `means` {means.shape}; "
                f"got shape {cell_var.shape}."
            )
        sampling = cell_var.mean(0) / n_observed
    elif cell_var is not None:
        raise ValueError(
            "`cell_var` is only used with `n_observed` (the number of cells the compared "
            "mean is measured on); pass both or neither."
        )
    half = stats.t.ppf(0.5 + level / 2, df=k - 1) * np.sqrt(var)
    if n_observed is not None:  # the two parts' half-widths add in quadrature
        half = np.sqrt(half**2 + (stats.norm.ppf(0.5 + level / 2) ** 2) * sampling)
    return {"mean": mean, "sd": sd, "lower": mean - half, "upper": mean + half}


def response_interval(
    models: Sequence,
    conditions: pd.DataFrame | Mapping[str, Sequence],
    n_cells: int = 500,
    level: float = 0.9,
    seed: int = 0,
    n_observed: int | None = None,
) -> pd.DataFrame:
    """Per-gene mean response of each condition with an interval over an ensemble.

    Each model predicts ``n_cells`` cells per condition (the same ``seed``); their mean
    expressions are combined by :func:`mean_interval`. Train the ensemble with
    :meth:`~sccalmflow.CaLMFlowModel.train_ensemble` (models that share one PCA).

    Parameters
    ----------
    models
        At least two trained models on the same genes and condition keys.
    conditions
        As for :meth:`~sccalmflow.CaLMFlowModel.predict`.
    n_cells
        Cells per condition and model.
    level
        Coverage the interval aims for.
    seed
        Seed of every model's prediction.
    n_observed
        If given, each interval is for the mean of ``n_observed`` measured cells (it adds
        that mean's sampling error, see :func:`mean_interval`): use the number of real cells
        you will compare with. ``None`` (default): the population mean.

    Returns
    -------
    A tidy frame: the condition keys, ``gene``, ``mean``, ``sd``, ``lower``, ``upper``
    (log-normalised expression) and ``n_models``.

    Examples
    --------
    >>> models = scf.CaLMFlowModel.train_ensemble(
    ...     adata, n_models=3, train_kwargs={"max_epochs": 20}
    ... )
    >>> scf.tl.response_interval(models, {"cell_type": ["B"], "condition": ["IFN-beta"]})
    """
    models = list(models)
    _check_ensemble(models)
    check_int("n_cells", n_cells, minimum=1)
    check_seed("seed", seed)
    if n_observed is not None:
        check_int("n_observed", n_observed, minimum=1)
    keys = models[0].condition_keys
    preds = [m.predict(conditions, n_cells=n_cells, seed=seed) for m in models]
    first = preds[0]
    labels = first.obs[keys].astype(str).drop_duplicates() if keys else pd.DataFrame(index=[0])
    genes = np.asarray(first.var_names)
    out = []
    for _, row in labels.iterrows():
        sel = np.ones(first.n_obs, dtype=bool)
        for k in keys:
            sel &= (first.obs[k].astype(str) == row[k]).to_numpy()
        moments = [_mean_var(p.X[sel]) for p in preds]
        means = np.stack([m for m, _ in moments])
        cell_var = np.stack([v for _, v in moments]) if n_observed is not None else None
        res = mean_interval(means, level, cell_var=cell_var, n_observed=n_observed)
        frame = pd.DataFrame({"gene": genes, **res, "n_models": len(models)})
        for k in reversed(keys):
            frame.insert(0, k, row[k])
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def _mean_var(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and variance (ddof=1) of a dense or sparse cells x genes matrix."""
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    x = x.astype(np.float64, copy=False)
    var = x.var(0, ddof=1) if x.shape[0] > 1 else np.zeros(x.shape[1])
    return x.mean(0), var


def _check_ensemble(models: list) -> None:
    if len(models) < 2:
        raise ValueError(
            f"An interval needs at least two models, got {len(models)}; train them with "
            "CaLMFlowModel.train_ensemble(adata, n_models=5)."
        )
    first = models[0]
    for i, m in enumerate(models):
        if not getattr(m, "is_trained_", False):
            raise ValueError(f"models[{i}] is not trained.")
        if list(m.var_names) != list(first.var_names) or m.condition_keys != first.condition_keys:
            raise ValueError(
                f"models[{i}] has other genes or condition keys than models[0]; an ensemble's "
                "models must be trained on the same data."
            )
