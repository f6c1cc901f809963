"""Checks of what users register, with errors that name the problem and the fix."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import scipy.sparse as sp


def _values(X) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X)


def check_expression(X, where: str, *, log_scale: bool = True) -> None:
    """Finite, non-negative, log-scale expression (not raw counts, not z-scored).

    With ``log_scale=False`` only finiteness is checked (the flow then lives in a given
    ``.obsm`` space and ``X`` is only decoded to).
    """
    vals = _values(X)
    if vals.size == 0:
        raise ValueError(f"{where} is empty.")
    if not np.issubdtype(vals.dtype, np.number):
        raise TypeError(f"{where} must be numeric, got dtype {vals.dtype}.")
    finite = np.isfinite(vals)
    if not finite.all():
        n_nan = int(np.isnan(vals).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{where} contains {n_nan} NaN and {n_inf} infinite value(s). Remove or impute them "
            "(e.g. `adata = adata[np.isfinite(adata.X.sum(1))]`) before setup."
        )
    if not log_scale:
        return
    vmin, vmax = float(vals.min()), float(vals.max())
    if vmin < 0:
        raise ValueError(
            f"{where} has negative values (min {vmin:.3g}): it looks scaled/z-scored. CaLMFlow "
            "expects log-normalised expression, e.g. `sc.pp.normalize_total(adata); "
            "sc.pp.log1p(adata)`, or pass `layer=` naming such a layer (or `.raw`'s values)."
        )
    is_integer = np.allclose(
        vals[: min(vals.size, 100_000)], np.round(vals[: min(vals.size, 100_000)])
    )
    if vmax > 30 or (is_integer and vmax > 10):
        raise ValueError(
            f"{where} looks like raw counts (max {vmax:.3g}{', all integers' if is_integer else ''}). "
            "CaLMFlow expects log-normalised expression: run `sc.pp.normalize_total(adata)` and "
            "`sc.pp.log1p(adata)` (keep counts in a layer), or pass `layer=` naming a log layer."
        )


def check_condition_keys(
    obs: pd.DataFrame, condition_keys: Sequence[str] | None, control: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str] | None]:
    """Keys exist, have no missing values, and the control values occur."""
    if isinstance(condition_keys, str):
        condition_keys = [condition_keys]
    keys = list(condition_keys or [])
    if len(set(keys)) != len(keys):
        raise ValueError(f"condition_keys has duplicates: {keys}.")
    missing = [k for k in keys if k not in obs.columns]
    if missing:
        raise KeyError(
            f"condition_keys {missing} not found in .obs. Available columns: {list(obs.columns)}."
        )
    for k in keys:
        if obs[k].isna().any():
            raise ValueError(
                f".obs[{k!r}] has {int(obs[k].isna().sum())} missing value(s); fill or drop them."
            )
    if control is None:
        return keys, None
    if not isinstance(control, Mapping) or not control:
        raise TypeError(
            "`control` must be a dict {key: control value}, e.g. {'condition': 'control'}."
        )
    control = {str(k): str(v) for k, v in control.items()}
    for k, v in control.items():
        if k not in keys:
            raise ValueError(f"control key {k!r} is not one of condition_keys {keys}.")
        present = set(obs[k].astype(str))
        if v not in present:
            raise ValueError(
                f"control value {v!r} does not occur in .obs[{k!r}]; values are {sorted(present)}."
            )
    if len(control) == len(keys):
        raise ValueError(
            "Every condition key is a control key, so there is no context (e.g. cell type) to "
            "match control cells with; add a context key to condition_keys."
        )
    return keys, control
