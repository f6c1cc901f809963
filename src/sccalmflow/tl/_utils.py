"""Shared plumbing of the tools: checking inputs, conditions of cells, subsampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..data import is_anndata

#: Columns a model or baseline adds to predictions besides the condition keys.
PREDICTION_ONLY_COLUMNS = ("prompt", "source_cell")


def check_anndata(obj: Any, name: str) -> None:
    """Raise unless ``obj`` is an AnnData with cells."""
    if not is_anndata(obj):
        raise TypeError(f"`{name}` must be an AnnData, got {type(obj).__name__}.")
    if obj.n_obs == 0:
        raise ValueError(f"`{name}` has no cells.")


def infer_condition_keys(pred, real, condition_keys: Sequence[str] | str | None) -> list[str]:
    """The condition keys: given, or the ``.obs`` columns of ``pred`` also in ``real``."""
    if isinstance(condition_keys, str):
        keys = [condition_keys]
    elif condition_keys is not None:
        keys = list(condition_keys)
    else:
        keys = [
            c
            for c in pred.obs.columns
            if c in real.obs.columns and c not in PREDICTION_ONLY_COLUMNS
        ]
    for name, a in (("pred", pred), ("real", real)):
        missing = [k for k in keys if k not in a.obs.columns]
        if missing:
            raise KeyError(
                f"{name}.obs lacks condition key(s) {missing} (columns: {list(a.obs.columns)})."
            )
    return keys


def check_control(control: Mapping[str, str] | None, keys: Sequence[str]) -> dict[str, str]:
    """``control`` as a dict of strings whose keys are condition keys."""
    control = {str(k): str(v) for k, v in (control or {}).items()}
    bad = [k for k in control if k not in keys]
    if bad:
        raise ValueError(f"control key(s) {bad} are not among the condition keys {list(keys)}.")
    return control


def ordered_conditions(obs: pd.DataFrame, keys: Sequence[str]) -> list[tuple[str, ...]]:
    """Distinct condition tuples of ``obs`` in order of first appearance."""
    if not keys:
        return [()]
    frame = obs[list(keys)].astype(str)
    return list(dict.fromkeys(frame.itertuples(index=False, name=None)))


def subsample(idx: np.ndarray, n_max: int | None, rng: np.random.Generator) -> np.ndarray:
    """At most ``n_max`` of ``idx`` (random, sorted); all of them if there are fewer."""
    if n_max is None or idx.size <= n_max:
        return idx
    return np.sort(rng.choice(idx, size=int(n_max), replace=False))


def dense(mat) -> np.ndarray:
    """A float64 array of a dense or sparse matrix (or DataFrame)."""
    if hasattr(mat, "toarray"):
        mat = mat.toarray()
    return np.asarray(mat, dtype=np.float64)


def progress(items: Sequence | int, progress_bar: bool | None, *, auto: bool, desc: str):
    """A tqdm bar over ``items`` (or of ``items`` steps, updated by hand).

    ``progress_bar=None`` shows it when ``auto`` is True; a given ``progress_bar`` must be
    True or False. The bar only counts: it draws no random number.
    """
    from ..utils import check_bool
    from ..utils import progress_bar as bar

    show = auto if progress_bar is None else check_bool("progress_bar", progress_bar)
    if isinstance(items, int):
        return bar(total=items, desc=desc, disable=not show)
    return bar(items, desc=desc, disable=not show)
