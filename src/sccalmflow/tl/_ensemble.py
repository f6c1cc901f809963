"""Uncertainty of the mean response from an ensemble of models trained over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..utils import check_int, check_number, check_seed


def mean_interval(means: np.ndarray, level: float = 0.9) -> dict[str, np.ndarray]:
    """Mean over models and a prediction interval for the mean response.

    The ``k`` models' means are treated as draws around the truth: the interval is
    ``mean ± t_{k-1} · sd · sqrt(1 + 1/k)`` (Student's t prediction interval for one more
    draw), which widens for small ensembles. It reflects how much training randomness moves
    the prediction, not a bias all models share.

    Parameters
    ----------
    means
        ``(k, n_genes)`` per-model mean expression, ``k >= 2``.
    level
        Coverage the interval aims for (0 < level < 1).

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
    half = stats.t.ppf(0.5 + level / 2, df=k - 1) * sd * np.sqrt(1 + 1 / k)
    return {"mean": mean, "sd": sd, "lower": mean - half, "upper": mean + half}


def response_interval(
    models: Sequence,
    conditions: pd.DataFrame | Mapping[str, Sequence],
    n_cells: int = 500,
    level: float = 0.9,
    seed: int = 0,
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

    Returns
    -------
    A tidy frame: the condition keys, ``gene``, ``mean``, ``sd``, ``lower``, ``upper``
    (log-normalised expression) and ``n_models``.

    Examples
    --------
    >>> models = scf.CaLMFlowModel.train_ensemble(adata, n_models=5)
    >>> scf.tl.response_interval(models, {"cell_type": ["B"], "condition": ["IFN-beta"]})
    """
    models = list(models)
    _check_ensemble(models)
    check_int("n_cells", n_cells, minimum=1)
    check_seed("seed", seed)
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
        means = np.stack([np.asarray(p.X[sel].mean(0)).ravel() for p in preds])
        res = mean_interval(means, level)
        frame = pd.DataFrame({"gene": genes, **res, "n_models": len(models)})
        for k in reversed(keys):
            frame.insert(0, k, row[k])
        out.append(frame)
    return pd.concat(out, ignore_index=True)


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
