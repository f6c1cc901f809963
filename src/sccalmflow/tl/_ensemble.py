"""Uncertainty of the mean response from an ensemble of models trained over seeds."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from scipy import stats

from ..data import check_anndata, dense, get_matrix, rows_of
from ..utils import check_int, check_number, check_seed
from ._de import de_genes


def mean_interval(
    means: np.ndarray,
    level: float = 0.9,
    *,
    cell_var: np.ndarray | None = None,
    n_observed: int | None = None,
    scale: float = 1.0,
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

    ``scale`` multiplies the models' half-width ``h_models``: the factor
    :func:`calibrate_interval` (or :func:`interval_scale`) measures on held-out conditions so
    that the interval also covers the error all models share.

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
    scale
        Factor on the models' half-width (``>= 0``; 1: the ensemble's spread as it is).

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
    if not np.isfinite(means).all():
        raise ValueError(
            f"`means` must be finite; it holds {int((~np.isfinite(means)).sum())} NaN or "
            "infinite value(s)."
        )
    check_number(
        "level", level, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True
    )
    check_number("scale", scale, minimum=0)
    mean, sd = means.mean(0), means.std(0, ddof=1)
    half = scale * _model_half(sd, means.shape[0], level)
    if n_observed is not None:
        check_int("n_observed", n_observed, minimum=1)
        if cell_var is None:
            raise ValueError(
                "`n_observed` needs `cell_var`, the per-model variance between generated "
                "cells (shape (n_models, n_genes))."
            )
        cell_var = np.asarray(cell_var, dtype=np.float64)
        if cell_var.shape != means.shape or not np.all(np.isfinite(cell_var) & (cell_var >= 0)):
            raise ValueError(
                f"`cell_var` must be finite, non-negative and of the shape of `means` "
                f"{means.shape}; "
                f"got shape {cell_var.shape}."
            )
        sampling = cell_var.mean(0) / n_observed
    elif cell_var is not None:
        raise ValueError(
            "`cell_var` is only used with `n_observed` (the number of cells the compared "
            "mean is measured on); pass both or neither."
        )
    if n_observed is not None:  # the two parts' half-widths add in quadrature
        half = np.sqrt(half**2 + (stats.norm.ppf(0.5 + level / 2) ** 2) * sampling)
    return {"mean": mean, "sd": sd, "lower": mean - half, "upper": mean + half}


def _model_half(sd: np.ndarray, k: int, level: float) -> np.ndarray:
    """``t_{k-1} · sd · sqrt(1 + 1/k)``: the half-width from the spread of ``k`` models."""
    return stats.t.ppf(0.5 + level / 2, df=k - 1) * sd * np.sqrt(1 + 1 / k)


def interval_scale(
    means: Sequence[np.ndarray],
    observed: Sequence[np.ndarray],
    level: float = 0.9,
    *,
    cell_var: Sequence[np.ndarray] | None = None,
    n_observed: Sequence[int] | None = None,
) -> float:
    """The factor on the models' half-width that makes ``level`` of known means fall inside.

    Split-conformal calibration of :func:`mean_interval`: for every gene of every
    calibration condition (one whose real mean is known and that the models did not train
    on), the smallest ``scale`` whose interval holds the observed mean is
    ``sqrt(max(r² - (z · se)², 0)) / h_models`` (``r`` the error of the ensemble's mean,
    ``z · se`` the observed mean's sampling half-width when ``n_observed`` is given, else 0,
    ``h_models`` the models' half-width); the returned factor is the
    ``ceil((n + 1) · level)``-th smallest of these ``n`` scores. Under exchangeability of the
    calibration genes with the genes you then predict, the scaled intervals hold at least
    ``level`` of them. The models' shared error is mostly per condition, so calibrate on
    several held-out conditions, not many genes of one.

    Parameters
    ----------
    means
        One ``(n_models, n_genes_i)`` array of per-model means per calibration condition.
    observed
        The real means, one ``(n_genes_i,)`` array per condition.
    level
        Coverage the scaled interval aims for.
    cell_var
        Per-model variance between generated cells, shaped like ``means``; with
        ``n_observed``.
    n_observed
        Real cells behind each observed mean (one int per condition).

    Returns
    -------
    The factor to pass as ``scale`` to :func:`mean_interval` or :func:`response_interval`
    (1: the ensemble's spread was right; larger: it was too narrow).
    """
    check_number(
        "level", level, minimum=0, maximum=1, exclusive_minimum=True, exclusive_maximum=True
    )
    means, observed = list(means), list(observed)
    if not means or len(means) != len(observed):
        raise ValueError(
            f"`means` and `observed` need one entry per calibration condition; got "
            f"{len(means)} and {len(observed)}."
        )
    if (cell_var is None) != (n_observed is None):
        raise ValueError("Pass `cell_var` and `n_observed` together, or neither.")
    scores = []
    for i, (m, obs) in enumerate(zip(means, observed, strict=True)):
        m, obs = np.asarray(m, dtype=np.float64), np.asarray(obs, dtype=np.float64)
        if m.ndim != 2 or m.shape[0] < 2 or obs.shape != m.shape[1:]:
            raise ValueError(
                f"Condition {i}: `means` must be (n_models >= 2, n_genes) and `observed` "
                f"(n_genes,); got {m.shape} and {obs.shape}."
            )
        if not (np.isfinite(m).all() and np.isfinite(obs).all()):
            raise ValueError(f"Condition {i}: `means` and `observed` must be finite.")
        sampling = np.zeros_like(obs)
        if n_observed is not None:
            res = mean_interval(m, level, cell_var=cell_var[i], n_observed=n_observed[i], scale=0.0)
            sampling = (res["upper"] - res["mean"]) ** 2
        excess = np.sqrt(np.clip((obs - m.mean(0)) ** 2 - sampling, 0, None))
        half = _model_half(m.std(0, ddof=1), m.shape[0], level)
        with np.errstate(divide="ignore", invalid="ignore"):
            scores.append(np.where(excess > 0, excess / half, 0.0))
    scores = np.sort(np.concatenate(scores))
    rank = int(np.ceil((scores.size + 1) * level))
    if rank > scores.size:
        raise ValueError(
            f"{scores.size} calibration genes are too few for level={level}: a conformal "
            f"quantile needs at least {int(np.ceil(level / (1 - level)))}."
        )
    factor = float(scores[rank - 1])
    if not np.isfinite(factor):
        raise ValueError(
            "The models agree exactly on genes whose real mean they miss: no factor on their "
            "spread covers them. Use more models or more generated cells per model."
        )
    return factor


def response_interval(
    models: Sequence,
    conditions: pd.DataFrame | Mapping[str, Sequence],
    n_cells: int = 500,
    level: float = 0.9,
    seed: int = 0,
    n_observed: int | None = None,
    scale: float = 1.0,
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
    scale
        Factor on the models' half-width; :func:`calibrate_interval` measures it on held-out
        conditions. 1 (default): training randomness only, usually too narrow.

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
    check_number("scale", scale, minimum=0)
    keys = models[0].condition_keys
    preds = [m.predict(conditions, n_cells=n_cells, seed=seed) for m in models]
    first = preds[0]
    labels = first.obs[keys].astype(str).drop_duplicates() if keys else pd.DataFrame(index=[0])
    genes = np.asarray(first.var_names)
    out = []
    for _, row in labels.iterrows():
        sel = rows_of(first.obs, keys, list(row[keys]))
        moments = [_mean_var(p.X[sel]) for p in preds]
        means = np.stack([m for m, _ in moments])
        cell_var = np.stack([v for _, v in moments]) if n_observed is not None else None
        res = mean_interval(means, level, cell_var=cell_var, n_observed=n_observed, scale=scale)
        frame = pd.DataFrame({"gene": genes, **res, "n_models": len(models)})
        for k in reversed(keys):
            frame.insert(0, k, row[k])
        out.append(frame)
    return pd.concat(out, ignore_index=True)


def calibrate_interval(
    models: Sequence,
    adata,
    conditions: pd.DataFrame | Mapping[str, Sequence],
    n_genes: int = 100,
    n_cells: int = 500,
    level: float = 0.9,
    seed: int = 0,
    layer: str | None = None,
) -> float:
    """Measure how much to widen an ensemble's intervals on conditions it did not train on.

    For each calibration condition (measured in ``adata``, held out of every model's
    training), the ensemble predicts ``n_cells`` cells per model; on the condition's top
    ``n_genes`` DE genes (real cells against the control cells of the same context,
    :func:`de_genes`) the real mean is compared with the interval for a mean of that many
    real cells, and :func:`interval_scale` returns the factor on the models' half-width that
    makes ``level`` of them fall inside. Pass it as ``scale`` to :func:`response_interval`.

    The usual design: hold a few measured combinations out (different contexts and
    perturbations, like the ones you want to predict), train the ensemble on the rest,
    calibrate on the held-out ones; the factor then carries over to the ensemble you train on
    everything. It measures how wrong the models were where the truth was known, so it is
    only as good as the likeness of those conditions to the ones you predict.

    Parameters
    ----------
    models
        The ensemble (:meth:`~sccalmflow.CaLMFlowModel.train_ensemble`), at least two
        trained models.
    adata
        Measured cells with the models' genes and condition keys, including the
        calibration conditions and the control cells of their contexts.
    conditions
        The calibration conditions, as for :meth:`~sccalmflow.CaLMFlowModel.predict`; none
        may be a combination the models trained on.
    n_genes
        Top DE genes per condition the coverage is measured on.
    n_cells
        Generated cells per condition and model.
    level
        Coverage the calibrated interval aims for.
    seed
        Seed of every model's prediction.
    layer
        Layer of ``adata`` holding the log-normalised expression the models predict
        (default ``X``).

    Returns
    -------
    The factor (``>= 0``) on the models' half-width.

    Examples
    --------
    ``adata`` lacks CD14 Mono IFN-beta cells (``held_out``); ``real`` has them:

    >>> models = scf.CaLMFlowModel.train_ensemble(
    ...     adata, n_models=2, train_kwargs={"max_epochs": 2}
    ... )
    >>> scale = scf.tl.calibrate_interval(models, real, held_out, n_cells=50)
    >>> scf.tl.response_interval(
    ...     models, {"cell_type": ["B"], "condition": ["IFN-beta"]}, scale=scale
    ... )
    """
    models = list(models)
    _check_ensemble(models)
    check_anndata(adata, "adata")
    check_int("n_genes", n_genes, minimum=1)
    check_int("n_cells", n_cells, minimum=2)
    check_seed("seed", seed)
    first = models[0]
    spec = first.conditions
    if not spec.control:
        raise ValueError(
            "calibrate_interval needs control values (setup_anndata(control=...)) to find "
            "each calibration condition's DE genes."
        )
    frame = spec.validate(conditions).drop_duplicates().reset_index(drop=True)
    seen = first.condition_support(frame)["seen"].to_numpy()
    if seen.any():
        raise ValueError(
            f"Calibration conditions must be held out of the models' training; these were "
            f"trained on: {frame[seen].to_dict('records')}. Train the ensemble without them "
            "(e.g. on adata[~held_out].copy()) and calibrate on them."
        )
    var_names = list(first.var_names)
    missing = pd.Index(var_names).difference(adata.var_names)
    if len(missing):
        raise ValueError(
            f"`adata` lacks {len(missing)} of the models' genes (e.g. {list(missing[:3])}); "
            "pass the measured cells with the genes the models were trained on."
        )
    keys = list(spec.keys)
    missing_keys = [k for k in keys if k not in adata.obs]
    if missing_keys:
        raise ValueError(f"`adata.obs` lacks the condition key(s) {missing_keys}.")
    real = adata[:, var_names]
    preds = [m.predict(frame, n_cells=n_cells, seed=seed) for m in models]
    means, observed, cell_var, n_observed = [], [], [], []
    for _, row in frame.astype(str).iterrows():
        is_cond = rows_of(adata.obs, keys, list(row[keys]))
        is_ctrl = rows_of(adata.obs, keys, [spec.control.get(k, row[k]) for k in keys])
        if len(is_cond) < 2 or len(is_ctrl) < 2:
            raise ValueError(
                f"Condition {row.to_dict()} has {len(is_cond)} measured cells and "
                f"{len(is_ctrl)} control cells of its context in `adata`; calibration "
                "needs at least two of each."
            )
        genes = de_genes(real[is_cond], real[is_ctrl], min(n_genes, len(var_names)), layer=layer)
        idx = pd.Index(var_names).get_indexer(genes)
        x = get_matrix(real[is_cond], layer=layer, name="adata")
        observed.append(_mean_var(x[:, idx])[0])
        n_observed.append(len(is_cond))
        moments = [_mean_var(p.X[rows_of(p.obs, keys, list(row[keys]))][:, idx]) for p in preds]
        means.append(np.stack([m for m, _ in moments]))
        cell_var.append(np.stack([v for _, v in moments]))
    return interval_scale(means, observed, level, cell_var=cell_var, n_observed=n_observed)


def _mean_var(x) -> tuple[np.ndarray, np.ndarray]:
    """Per-gene mean and variance (ddof=1) of a dense or sparse cells x genes matrix."""
    x = dense(x)
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
