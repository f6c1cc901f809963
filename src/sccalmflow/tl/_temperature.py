"""A metric of generated cells against real cells as the sampling temperature varies.

Drawn by :func:`sccalmflow.pl.temperature`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pandas as pd

from ..data import check_anndata, get_matrix, write_pca
from ..metrics import DISTRIBUTION_METRICS, evaluate
from ..utils import check_numbers
from ._utils import progress

#: Metrics of :func:`~sccalmflow.metrics.evaluate`'s ``mean_expression`` family (genes).
MEAN_EXPRESSION = (
    "r2_pearson",
    "r2_sklearn",
    "pearson",
    "spearman",
    "pearson_delta",
    "r2_pearson_delta",
    "r2_sklearn_delta",
)

#: Columns of :func:`temperature_sweep` besides the condition keys.
SWEEP_COLUMNS = ("temperature", "metric", "space", "value")


def _family(metric: str) -> tuple[str, str | None]:
    """``evaluate``'s metric family of ``metric`` and the space it is fixed to (or None)."""
    if metric in MEAN_EXPRESSION:
        return "mean_expression", "genes"
    if metric == "discrimination_l1":
        return "discrimination", "genes"
    if metric in DISTRIBUTION_METRICS:
        return metric, None
    raise ValueError(
        f"Unknown metric {metric!r}; choose from "
        f"{list(MEAN_EXPRESSION) + ['discrimination_l1'] + list(DISTRIBUTION_METRICS)}."
    )


def _check(model, real, temperatures: Sequence[float]) -> list[float]:
    """Validate the inputs; refuse a model whose cells do not depend on the temperature."""
    check_anndata(real, "real")
    module = getattr(model, "module", None)
    if module is not None:  # the deterministic head gives flat lines
        module.require_temperature("sweep")
    temps = list(check_numbers("temperatures", temperatures, minimum=0, distinct=True))
    missing = [k for k in model.condition_keys if k not in real.obs.columns]
    if missing:
        raise KeyError(f"real.obs lacks the model's condition key(s) {missing}.")
    return temps


def temperature_sweep(
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
    progress_bar: bool | None = None,
) -> pd.DataFrame:
    """Score generated cells against real cells at several sampling temperatures τ.

    For each τ in ``temperatures``, generates ``n_cells`` cells per condition with
    ``model.predict(conditions, n_cells, seed, temperature=τ)`` (same seed, so the sources
    are the same) and scores them against ``real`` with :func:`sccalmflow.metrics.evaluate`.
    τ scales the variance of the head's noise: τ = 0 draws no noise; τ = 1 samples the
    learned distribution. Only a sampling head (``CaLMFlowModel(..., head="flow")``,
    ``"cvae"`` or ``"variational"``) depends on τ: a deterministic head is refused with a
    ValueError before anything is generated (it would give the same cells, flat lines, at
    every τ). Draw the result
    with :func:`sccalmflow.pl.temperature`. To set the model's τ to the best one of a
    distribution metric in one call, use
    :meth:`~sccalmflow.CaLMFlowModel.calibrate_temperature`.

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
        Distinct temperatures τ >= 0.
    metric : str
        A metric of :func:`~sccalmflow.metrics.evaluate`: ``"r2_pearson"``,
        ``"r2_sklearn"``, ``"pearson"``, ``"spearman"``, ``"pearson_delta"``,
        ``"r2_pearson_delta"``, ``"r2_sklearn_delta"`` (gene space),
        ``"discrimination_l1"`` (>= 2 conditions), or a distribution distance
        ``"e_distance"``, ``"e_distance_sq"``, ``"mmd"``, ``"adaptive_mmd"``, ``"w2"``,
        ``"w2_sinkhorn"``, ``"w2_gaussian"`` (in ``space``).
    space : str
        Space of the distribution metrics (``"pca"``, ``"umap10"``, ``"genes"``).
    n_cells : int
        Cells per condition and temperature.
    seed : int
        Seed of the generation and the metric.
    layer : str, optional
        Expression layer of ``real``.
    progress_bar : bool, optional
        Show a progress bar over the temperatures (tqdm). ``None`` (default): when there
        is more than one temperature. The bar changes no number.

    Returns
    -------
    pandas.DataFrame
        One row per temperature x condition. Columns: the model's condition keys,
        ``temperature``, ``metric``, ``space``, ``value``.

    Examples
    --------
    >>> sweep = sccalmflow.tl.temperature_sweep(model, held_out, real, metric="mmd")
    >>> sccalmflow.pl.temperature(sweep)
    """
    import anndata as ad

    family, fixed_space = _family(metric)
    temps = _check(model, real, temperatures)
    keys = list(model.condition_keys)
    X = get_matrix(real, layer=layer, name="real")
    # a light copy holding the model's PCA projection of the real cells
    ref = ad.AnnData(X=X, obs=real.obs[keys].copy(), var=pd.DataFrame(index=real.var_names))
    write_pca(ref, model.get_pca(real, layer=layer), model.features_.fingerprint())
    rows = []
    bar = progress(temps, progress_bar, auto=len(temps) > 1, desc="temperature sweep")
    for t in bar:
        bar.set_postfix_str(f"τ={t:g}")
        pred = model.predict(conditions, n_cells=n_cells, seed=seed, temperature=t,
                             progress_bar=False)  # fmt: skip
        table = evaluate(
            pred,
            ref,
            control=model.control or None,
            condition_keys=keys,
            metrics=[family],
            space=[space] if fixed_space is None else "pca",
            seed=seed,
        )
        sel = table[(table["metric"] == metric) & (table["space"] == (fixed_space or space))]
        if sel.empty:
            raise ValueError(
                f"metric {metric!r} could not be computed (e.g. delta metrics need real "
                "control cells, discrimination needs >= 2 conditions)."
            )
        rows.append(sel[keys + ["metric", "space", "value"]].assign(temperature=t))
    bar.close()
    out = pd.concat(rows, ignore_index=True)
    return out[keys + list(SWEEP_COLUMNS)]
