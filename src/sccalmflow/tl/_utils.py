"""Shared plumbing of the tools: checking inputs, conditions of cells, subsampling."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ..utils import check_int, check_sequence

#: Columns a model or baseline adds to predictions besides the condition keys.
PREDICTION_ONLY_COLUMNS = ("prompt", "source_cell")


def check_components(components: Any, n_dims: int) -> tuple[int, int]:
    """Two different 0-based principal components, both below ``n_dims``."""
    if isinstance(components, str | bytes) or not isinstance(components, Sequence | np.ndarray):
        raise TypeError(
            f"`components` must be two principal components (0-based), e.g. (0, 1); got "
            f"{components!r} ({type(components).__name__})."
        )
    items = check_sequence("components", components, what="principal components")
    if len(items) != 2:
        raise ValueError(f"`components` must be two principal components, got {len(items)}.")
    c0, c1 = (check_int(f"components[{i}]", c, minimum=0) for i, c in enumerate(items))
    if c0 == c1:
        raise ValueError(
            f"`components` must be two different principal components, got ({c0}, {c1})."
        )
    if max(c0, c1) >= n_dims:
        raise ValueError(
            f"`components` ({c0}, {c1}) exceed the {n_dims} principal components "
            f"(0 to {n_dims - 1})."
        )
    return c0, c1


def check_n_max(n_max: Any) -> int | None:
    """``None`` (all cells) or a positive number of cells."""
    return None if n_max is None else check_int("n_max", n_max, minimum=1)


def check_umap_kwargs(umap_kwargs: Any) -> dict[str, Any]:
    """Extra keywords of :class:`umap.UMAP`; not those the tool sets itself."""
    if umap_kwargs is None:
        return {}
    if not isinstance(umap_kwargs, Mapping):
        raise TypeError(
            f"`umap_kwargs` must be a dict of umap.UMAP keywords, e.g. {{'n_neighbors': 30}}; "
            f"got {type(umap_kwargs).__name__}."
        )
    taken = sorted({"n_components", "random_state"} & set(umap_kwargs))
    if taken:
        raise ValueError(
            f"`umap_kwargs` may not set {taken}: the embedding is 2-d and seeded by `seed`."
        )
    return dict(umap_kwargs)


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
