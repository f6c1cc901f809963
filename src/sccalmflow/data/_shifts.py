"""The additive shift of a condition: what vector arithmetic in feature space predicts.

One helper for everything that starts from "control cells plus the shift": the
:class:`~sccalmflow.baselines.Additive` baseline and the model's ``source="additive"``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from ._conditions import ConditionSpec


class AdditiveShift:
    """Per-key perturbation shifts in feature space, estimated without the target context.

    For context ``c`` and one perturbation key ``k`` at value ``v``::

        delta(k = v | c) = mean over contexts c' != c of [mean z(c', k=v) - mean z(c', control)]

    over the contexts ``c'`` that have both groups (other perturbation keys at control),
    each with equal weight whatever its number of cells. With several perturbation keys away
    from control (a drug at a dose, a combination of two genes), the combination's own shift
    is used when other contexts have it; otherwise the per-key shifts are summed (a key at
    its control value adds nothing).
    Without context keys, the one context is used (its own cells).

    Parameters
    ----------
    spec
        The condition keys, control values and categories.
    conditions
        One row per fitted condition (strings, columns ``spec.keys``).
    means
        ``(n_conditions, D)`` mean features of each row of ``conditions``.
    """

    def __init__(self, spec: ConditionSpec, conditions: pd.DataFrame, means: np.ndarray):
        if not spec.control:
            raise ValueError("An additive shift needs control values (setup_anndata(control=...)).")
        self.spec = spec
        keys = list(spec.keys)
        self.conditions = conditions[keys].astype(str).reset_index(drop=True)
        self.means = np.asarray(means, dtype=np.float64)
        rows = self.conditions.itertuples(index=False, name=None)
        self._mean = dict(zip(rows, self.means, strict=True))
        self._ctx_pos = [keys.index(k) for k in spec.context_keys]
        self._pert_pos = [keys.index(k) for k in spec.perturbation_keys]
        codes = spec.codes(self.conditions)
        order = np.lexsort(codes[:, self._ctx_pos].T[::-1]) if self._ctx_pos else [0]
        contexts = [tuple(self.conditions.iloc[i, self._ctx_pos]) for i in order]
        self.contexts = list(dict.fromkeys(contexts))  # by category order, once each

    @classmethod
    def fit(cls, spec: ConditionSpec, cells: pd.DataFrame, features: np.ndarray) -> AdditiveShift:
        """Mean features of each condition of ``cells`` (``(n_cells, D)`` ``features``)."""
        groups, frame = spec.groups(cells)
        z = np.asarray(features)
        means = np.stack(
            [z[groups == g].astype(np.float64).mean(axis=0) for g in range(len(frame))]
        )
        return cls(spec, frame.astype(str), means)

    @property
    def n_features(self) -> int:
        """Dimension of the features."""
        return self.means.shape[1]

    def _full(self, ctx: tuple[str, ...], pert: tuple[str, ...]) -> tuple[str, ...]:
        row = [""] * len(self.spec.keys)
        for i, v in zip(self._ctx_pos, ctx, strict=True):
            row[i] = v
        for i, v in zip(self._pert_pos, pert, strict=True):
            row[i] = v
        return tuple(row)

    def shift(
        self, context: tuple[str, ...], perturbation: tuple[str, ...]
    ) -> tuple[np.ndarray, list[str]]:
        """The shift of one condition and the perturbation keys it could not estimate.

        Parameters
        ----------
        context
            Values of ``spec.context_keys``.
        perturbation
            Values of ``spec.perturbation_keys``.

        Returns
        -------
        ``(shift, missing)``: the ``(D,)`` shift (float64) and the perturbation keys away
        from control for which no other context has both groups; they add nothing.
        """
        control = tuple(self.spec.control[k] for k in self.spec.perturbation_keys)
        joint = self._deltas(context, tuple(perturbation), control)
        if joint and len(perturbation) > 1:  # the combination itself, measured elsewhere
            return np.mean(joint, axis=0), []
        total = np.zeros(self.n_features)
        missing = []
        for j, value in enumerate(perturbation):
            if value == control[j]:
                continue
            deltas = self._deltas(context, control[:j] + (value,) + control[j + 1 :], control)
            if deltas:
                total += np.mean(deltas, axis=0)
            else:
                missing.append(self.spec.perturbation_keys[j])
        return total, missing

    def _deltas(self, context, perturbation, control) -> list[np.ndarray]:
        """``mean(c', perturbation) - mean(c', control)`` over the other contexts with both."""
        return [
            self._mean[self._full(c, perturbation)] - self._mean[self._full(c, control)]
            for c in self.contexts
            if (c != tuple(context) or not self._ctx_pos)
            and self._full(c, perturbation) in self._mean
            and self._full(c, control) in self._mean
        ]

    def shifts(self, frame: pd.DataFrame) -> tuple[np.ndarray, list[list[str]]]:
        """The shift of every row of ``frame`` (``(n, D)`` float32) and each row's missing keys."""
        out = np.zeros((len(frame), self.n_features), dtype=np.float32)
        missing = []
        ctx = self.spec.contexts(frame)
        pert = frame[self.spec.perturbation_keys].astype(str).itertuples(index=False, name=None)
        for i, (c, p) in enumerate(zip(ctx, pert, strict=True)):
            out[i], miss = self.shift(c, p)
            missing.append(miss)
        return out, missing

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe description (:meth:`from_dict` rebuilds the object with ``spec``)."""
        return {
            "conditions": self.conditions.to_dict("list"),
            "means": self.means.tolist(),
        }

    @classmethod
    def from_dict(cls, spec: ConditionSpec, state: dict[str, Any]) -> AdditiveShift:
        """The object :meth:`to_dict` described."""
        conditions = pd.DataFrame({k: list(map(str, v)) for k, v in state["conditions"].items()})
        return cls(spec, conditions, np.asarray(state["means"], dtype=np.float64))

    def support(self, frame: pd.DataFrame) -> pd.DataFrame:
        """How well the fitted conditions cover each row of ``frame`` (an extrapolation flag).

        Parameters
        ----------
        frame
            Requested conditions (columns ``spec.keys``).

        Returns
        -------
        One row per row of ``frame``: ``seen`` (the combination was fitted),
        ``perturbation_contexts`` (other contexts fitted with the same perturbation values
        and with control cells), ``nearest_context`` (the one of those whose control mean is
        closest to the row's context's; ``""`` if none), ``context_distance`` (that distance
        over the median distance between two fitted contexts' control means: 0 = the same
        place, 1 = as far as two typical contexts; NaN without control cells of the row's
        context or without such a context) and ``extrapolation`` (not seen, and no other
        context has the perturbation or the nearest is farther than a typical pair).
        """
        control = tuple(self.spec.control[k] for k in self.spec.perturbation_keys)
        centres = {
            c: self._mean[self._full(c, control)]
            for c in self.contexts
            if self._full(c, control) in self._mean
        }
        typical = _median_distance(list(centres.values()))
        rows = []
        ctx = self.spec.contexts(frame)
        pert = frame[self.spec.perturbation_keys].astype(str).itertuples(index=False, name=None)
        for c, p in zip(ctx, pert, strict=True):
            others = [
                o
                for o in centres
                if (o != tuple(c) or not self._ctx_pos) and self._full(o, p) in self._mean
            ]
            dist = {
                o: float(np.linalg.norm(centres[o] - centres[tuple(c)]))
                for o in others
                if tuple(c) in centres
            }
            nearest = min(dist, key=dist.get) if dist else None
            rel = dist[nearest] / typical if nearest is not None and typical > 0 else np.nan
            seen = self._full(c, p) in self._mean
            far = not others or (np.isfinite(rel) and rel > 1.0)
            rows.append(
                {
                    "seen": seen,
                    "perturbation_contexts": len(others),
                    "nearest_context": "/".join(nearest) if nearest is not None else "",
                    "context_distance": rel,
                    "extrapolation": bool(not seen and far),
                }
            )
        return pd.DataFrame(rows, index=frame.index)


def _median_distance(points: list[np.ndarray]) -> float:
    """Median Euclidean distance between two of ``points`` (NaN for fewer than two)."""
    if len(points) < 2:
        return float("nan")
    P = np.stack(points)
    d = np.linalg.norm(P[:, None] - P[None], axis=-1)
    return float(np.median(d[np.triu_indices(len(P), 1)]))
