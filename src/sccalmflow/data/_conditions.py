"""Turning user-given conditions (DataFrame or dict of lists) into a validated frame."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd


def as_condition_frame(
    conditions: pd.DataFrame | Mapping[str, Sequence] | None,
    keys: Sequence[str],
    categories: Mapping[str, Sequence[str]],
) -> pd.DataFrame:
    """Validate requested conditions against the registered categories.

    Parameters
    ----------
    conditions
        One row per requested condition: a :class:`~pandas.DataFrame` with one column per
        key, or a dict of equal-length lists (a scalar is taken as a list of one). ``None``
        is allowed only when ``keys`` is empty (unconditional model), giving one empty row.
    keys
        The registered condition keys, in order.
    categories
        Allowed values per key.

    Returns
    -------
    A new DataFrame with columns ``keys`` (strings), index ``0..n-1``. The input is not
    modified.
    """
    keys = list(keys)
    if conditions is None:
        if keys:
            raise ValueError(
                f"This model is conditioned on {keys}; pass `conditions` as a DataFrame or a "
                f"dict with one list per key, e.g. {{{keys[0]!r}: [...]}}."
            )
        return pd.DataFrame(index=pd.RangeIndex(1))
    if isinstance(conditions, pd.DataFrame):
        frame = conditions.copy()
    elif isinstance(conditions, Mapping):
        values = {
            k: (
                list(v)
                if isinstance(v, Sequence | np.ndarray | pd.Series) and not isinstance(v, str)
                else [v]
            )
            for k, v in conditions.items()
        }
        lengths = {k: len(v) for k, v in values.items()}
        if len(set(lengths.values())) > 1:
            raise ValueError(f"All condition lists must have the same length; got {lengths}.")
        frame = pd.DataFrame(values)
    else:
        raise TypeError(
            f"`conditions` must be a pandas DataFrame or a dict of lists, not {type(conditions).__name__}."
        )
    if not keys:
        return pd.DataFrame(index=pd.RangeIndex(max(len(frame), 1)))
    missing = [k for k in keys if k not in frame.columns]
    if missing:
        raise KeyError(
            f"Conditions lack column(s) {missing}; the model was set up with condition_keys={keys}."
        )
    if len(frame) == 0:
        raise ValueError("`conditions` has no rows.")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for k in keys:
        col = frame[k].astype(str).to_numpy()
        allowed = [str(c) for c in categories[k]]
        unknown = sorted(set(col) - set(allowed))
        if unknown:
            raise ValueError(
                f"Unknown value(s) {unknown} for condition key {k!r}. Known values: {allowed}."
            )
        out[k] = pd.Categorical(col, categories=allowed)
    return out
