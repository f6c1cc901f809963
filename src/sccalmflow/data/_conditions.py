"""Conditions: which ``.obs`` keys make one, which values are control, and the cells' contexts.

:class:`ConditionSpec` is the one place that knows the condition keys, the control values and
the registered categories. The model, the baselines and the metrics ask it to validate
requested conditions, mark control cells, find a cell's context (the values of the keys that
are not perturbation keys, e.g. the cell type), group cells by condition and pool the control
cells of each context.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

#: How condition values are joined into one label (``"B · IFN-beta"``).
LABEL_SEPARATOR = " · "


def check_condition_keys(
    obs: pd.DataFrame,
    condition_keys: Sequence[str] | str | None,
    control: Mapping[str, str] | None,
    *,
    require_context: bool = True,
) -> tuple[list[str], dict[str, str] | None]:
    """Validate condition keys and control values against ``obs``.

    Keys must exist and have no missing values; control keys must be condition keys, their
    values must occur, and (with ``require_context``) at least one key must be left as
    context. Without a context key all cells share one context.

    Returns
    -------
    ``(keys, control)`` as a list of keys and a ``{key: value}`` dict of strings (or ``None``).
    """
    if isinstance(condition_keys, str):
        condition_keys = [condition_keys]
    if condition_keys is not None and not isinstance(condition_keys, Sequence | np.ndarray):
        raise TypeError(
            "`condition_keys` must be a list of .obs column names, got "
            f"{type(condition_keys).__name__}."
        )
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
    if require_context and len(control) == len(keys):
        raise ValueError(
            "Every condition key is a control key, so there is no context (e.g. cell type) to "
            "match control cells with; add a context key to condition_keys."
        )
    return keys, control


def observed_categories(column: pd.Series) -> list[str]:
    """Observed values of an ``.obs`` column as strings (categorical order if categorical)."""
    values = column.astype(str)
    observed = set(values.unique())
    if isinstance(column.dtype, pd.CategoricalDtype):
        return [str(c) for c in column.cat.categories if str(c) in observed]
    return sorted(observed)


def as_condition_frame(
    conditions: pd.DataFrame | Mapping[str, Sequence] | None,
    keys: Sequence[str],
    categories: Mapping[str, Sequence[str]],
    *,
    allow_unknown: bool = False,
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
    allow_unknown
        Accept values outside ``categories`` (they are appended to the column's categories);
        for models whose prompts read language.

    Returns
    -------
    A new DataFrame with columns ``keys`` (categorical), index ``0..n-1``. The input is not
    modified. Columns that are not keys are ignored with a warning (a missing key's error
    names them: they are often misspellings).
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
            "`conditions` must be a pandas DataFrame or a dict of lists, not "
            f"{type(conditions).__name__}."
        )
    if not keys:
        return pd.DataFrame(index=pd.RangeIndex(max(len(frame), 1)))
    missing = [k for k in keys if k not in frame.columns]
    extra = [str(c) for c in frame.columns if c not in keys]
    if missing:
        hint = f" Unexpected column(s) {extra}: misspelled?" if extra else ""
        raise KeyError(
            f"Conditions lack column(s) {missing}; the model was set up with "
            f"condition_keys={keys}.{hint}"
        )
    if extra:
        warnings.warn(
            f"Condition column(s) {extra} are not condition keys ({keys}) and are ignored.",
            UserWarning,
            stacklevel=4,
        )
    if len(frame) == 0:
        raise ValueError("`conditions` has no rows.")
    out = pd.DataFrame(index=pd.RangeIndex(len(frame)))
    for k in keys:
        col = frame[k].astype(str).to_numpy()
        allowed = [str(c) for c in categories[k]]
        unknown = sorted(set(col) - set(allowed))
        if unknown and not allow_unknown:
            raise ValueError(
                f"Unknown value(s) {unknown} for condition key {k!r}. Known values: {allowed}."
            )
        out[k] = pd.Categorical(col, categories=allowed + unknown)
    return out


def is_control(frame: pd.DataFrame, control: Mapping[str, str] | None) -> np.ndarray:
    """Rows of ``frame`` whose values equal every control value (all ``False`` without one)."""
    if not control:
        return np.zeros(len(frame), dtype=bool)
    mask = np.ones(len(frame), dtype=bool)
    for k, v in control.items():
        mask &= frame[k].astype(str).to_numpy() == str(v)
    return mask


def condition_labels(
    frame: pd.DataFrame, keys: Sequence[str], sep: str = LABEL_SEPARATOR
) -> np.ndarray:
    """One string per row: the values of ``keys`` joined by ``sep`` (``""`` without keys)."""
    if not keys:
        return np.full(len(frame), "", dtype=object)
    cols = [frame[k].astype(str).to_numpy().astype(object) for k in keys]
    out = cols[0]
    for c in cols[1:]:
        out = out + sep + c
    return out


def rows_of(frame: pd.DataFrame, keys: Sequence[str], values: Sequence[str]) -> np.ndarray:
    """Positions of the rows of ``frame`` whose ``keys`` equal ``values``."""
    mask = np.ones(len(frame), dtype=bool)
    for k, v in zip(keys, values, strict=True):
        mask &= frame[k].astype(str).to_numpy() == str(v)
    return np.flatnonzero(mask)


@dataclass(frozen=True)
class ConditionSpec:
    """The condition keys, their control values and categories, and what follows from them.

    Parameters
    ----------
    keys
        Condition keys (``.obs`` columns), in order; empty for an unconditional model.
    control
        ``{perturbation key: control value}`` or ``None``. The other keys are *context* keys.
    categories
        Allowed values of each key (strings).

    Examples
    --------
    >>> spec = ConditionSpec.from_obs(adata.obs, ["cell_type", "condition"],
    ...                               {"condition": "control"})
    >>> spec.context_keys
    ['cell_type']
    """

    keys: tuple[str, ...]
    control: Mapping[str, str] | None = None
    categories: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        object.__setattr__(self, "keys", tuple(self.keys))
        cats = {k: tuple(str(v) for v in self.categories[k]) for k in self.keys}
        object.__setattr__(self, "categories", cats)
        if self.control is not None:
            object.__setattr__(
                self, "control", {str(k): str(v) for k, v in self.control.items()} or None
            )

    @classmethod
    def from_obs(
        cls,
        obs: pd.DataFrame,
        condition_keys: Sequence[str] | str | None,
        control: Mapping[str, str] | None,
        *,
        require_context: bool = True,
    ) -> ConditionSpec:
        """Validate keys against ``obs`` (:func:`check_condition_keys`); observed categories."""
        keys, control = check_condition_keys(
            obs, condition_keys, control, require_context=require_context
        )
        return cls(tuple(keys), control, {k: observed_categories(obs[k]) for k in keys})

    # ------------------------------------------------------------------ keys
    @property
    def perturbation_keys(self) -> list[str]:
        """The keys named in ``control``, in key order."""
        return [k for k in self.keys if self.control and k in self.control]

    @property
    def context_keys(self) -> list[str]:
        """The keys that are not perturbation keys (e.g. cell type): a cell's context."""
        return [k for k in self.keys if not self.control or k not in self.control]

    # ------------------------------------------------------------------ frames
    def validate(
        self,
        conditions: pd.DataFrame | Mapping[str, Sequence] | None,
        *,
        allow_unknown: bool = False,
    ) -> pd.DataFrame:
        """Requested conditions as a validated frame (see :func:`as_condition_frame`)."""
        return as_condition_frame(
            conditions, self.keys, self.categories, allow_unknown=allow_unknown
        )

    def unknown_values(self, frame: pd.DataFrame) -> dict[str, list[str]]:
        """``{key: values}`` of ``frame`` that are not registered categories."""
        out = {}
        for k in self.keys:
            bad = sorted(set(frame[k].astype(str)) - set(self.categories[k]))
            if bad:
                out[k] = bad
        return out

    def from_codes(self, codes: np.ndarray) -> pd.DataFrame:
        """A frame of categorical columns from integer codes ``(n, n_keys)``."""
        codes = np.asarray(codes)
        frame = pd.DataFrame(index=pd.RangeIndex(len(codes)))
        for j, k in enumerate(self.keys):
            frame[k] = pd.Categorical.from_codes(
                codes[:, j].astype(int), categories=list(self.categories[k])
            )
        return frame

    def codes(self, frame: pd.DataFrame) -> np.ndarray:
        """Integer codes ``(n, n_keys)`` of the values of ``frame`` (-1 for unknown values)."""
        if not self.keys:
            return np.zeros((len(frame), 0), dtype=np.int64)
        return np.stack(
            [
                pd.Categorical(frame[k].astype(str), categories=list(self.categories[k])).codes
                for k in self.keys
            ],
            axis=1,
        ).astype(np.int64)

    def is_control(self, frame: pd.DataFrame) -> np.ndarray:
        """Rows of ``frame`` at every control value."""
        return is_control(frame, self.control)

    def contexts(self, frame: pd.DataFrame) -> list[tuple[str, ...]]:
        """The context (values of the context keys, as strings) of each row of ``frame``."""
        if not self.context_keys:
            # ``frame[[]].itertuples()`` yields nothing, not one empty tuple per row
            return [()] * len(frame)
        return list(frame[self.context_keys].astype(str).itertuples(index=False, name=None))

    def describe_context(self, context: tuple[str, ...]) -> dict[str, str]:
        """``{context key: value}`` of a context tuple."""
        return dict(zip(self.context_keys, context, strict=True))

    def labels(self, frame: pd.DataFrame, sep: str = LABEL_SEPARATOR) -> np.ndarray:
        """One label per row (:func:`condition_labels` of the keys)."""
        return condition_labels(frame, self.keys, sep)

    # ------------------------------------------------------------------ cells
    def groups(self, cells: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
        """An integer condition id per cell and the frame of distinct conditions (sorted)."""
        if not self.keys:
            return np.zeros(len(cells), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
        keys = list(self.keys)
        group_frame = cells[keys].drop_duplicates().sort_values(keys).reset_index(drop=True)
        lookup = {
            row: i
            for i, row in enumerate(group_frame.astype(str).itertuples(index=False, name=None))
        }
        groups = np.array(
            [lookup[r] for r in cells[keys].astype(str).itertuples(index=False, name=None)],
            dtype=np.int64,
        )
        return groups, group_frame

    def control_pools(self, cells: pd.DataFrame) -> dict[tuple[str, ...], np.ndarray]:
        """Positions of the control cells of each context."""
        ctrl = np.flatnonzero(self.is_control(cells))
        out: dict[tuple[str, ...], list[int]] = {}
        for pos, ctx in zip(ctrl, self.contexts(cells.iloc[ctrl]), strict=True):
            out.setdefault(ctx, []).append(pos)
        return {k: np.asarray(v) for k, v in out.items()}

    def source_pools(
        self, cells: pd.DataFrame, groups: np.ndarray, group_frame: pd.DataFrame
    ) -> list[np.ndarray]:
        """The control cells of each group's context (training with control sources).

        Warns about groups without control cells in their context (they cannot be trained
        on) and raises when no perturbed group is left.
        """
        by_ctx = self.control_pools(cells)
        pools = [by_ctx.get(ctx, np.array([], dtype=int)) for ctx in self.contexts(group_frame)]
        empty = [i for i, p in enumerate(pools) if len(p) == 0]
        if empty:
            dropped = int(np.isin(groups, empty).sum())
            message = (
                f"{dropped} cell(s) in {len(empty)} condition(s) have no control cells in their "
                "context and are not used for training from control cells (source='additive' or "
                "'control'): "
                f"{group_frame.iloc[empty].astype(str).to_dict('records')[:10]}"
                f"{' ...' if len(empty) > 10 else ''}.{self.control_hint(cells)}"
            )
            perturbed = ~self.is_control(group_frame)
            if not np.isin(np.flatnonzero(perturbed), empty, invert=True).any():
                raise ValueError(f"Nothing to train on: {message}")
            warnings.warn(message, UserWarning, stacklevel=4)
        return pools

    def control_hint(self, cells: pd.DataFrame) -> str:
        """Advice when context keys look like part of the perturbation (dose, time...)."""
        frame = cells.astype(str)
        ctrl = self.is_control(frame)
        hints = {}
        for key in self.context_keys:
            in_ctrl = set(frame.loc[ctrl, key])
            if len(in_ctrl) == 1 and set(frame.loc[~ctrl, key]) - in_ctrl:
                hints[key] = next(iter(in_ctrl))
        if not hints:
            return ""
        where = ", ".join(f"{k} = {v!r}" for k, v in hints.items())
        return (
            f" All control cells have {where}: if {'/'.join(hints)} is part of the perturbation "
            f"(a dose, a time point), add it to `control`, e.g. "
            f"setup_anndata(..., control={ ({**(self.control or {}), **hints})!r})."
        )
