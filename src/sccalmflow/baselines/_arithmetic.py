"""Baselines that move control cells by a fixed vector: Control, Additive, TrainMean."""

from __future__ import annotations

import numpy as np

from ..data import AdditiveShift, resample_pool
from ._base import BaselineMethod


class _ShiftBaseline(BaselineMethod):
    """Resampled control cells of the target context, plus a shift in PCA feature space.

    Everything happens in the scaled PCA features ``z`` of :attr:`pca`; the prediction is
    decoded with ``pca.inverse_transform`` (negatives clipped to 0). Because the PCA map is
    affine, a shift of ``z`` equals the gene-space shift projected onto the kept components.
    """

    def __init__(self) -> None:
        super().__init__()
        self._z: np.ndarray | None = None
        self._groups: dict[tuple[int, ...], np.ndarray] = {}
        self._means: dict[tuple[int, ...], np.ndarray] = {}
        self._contexts: list[tuple[int, ...]] = []

    def _fit_features(self, z: np.ndarray, codes: np.ndarray) -> None:
        self._z = z
        uniq, inverse = np.unique(codes, axis=0, return_inverse=True)
        inverse = inverse.ravel()
        self._groups = {
            tuple(int(c) for c in u): np.flatnonzero(inverse == g) for g, u in enumerate(uniq)
        }
        self._means = {g: z[idx].astype(np.float64).mean(axis=0) for g, idx in self._groups.items()}
        keys = self.condition_keys
        self._ctx_pos = [keys.index(k) for k in self.context_keys]
        self._pert_pos = [keys.index(k) for k in self.perturbation_keys]
        self._control_codes = tuple(
            self.categories[k].index(self.control[k]) for k in self.perturbation_keys
        )
        self._contexts = sorted({self._split(g)[0] for g in self._groups})
        self.training_summary = {
            "n_conditions": len(self._groups),
            "n_contexts": len(self._contexts),
        }

    # -------------------------------------------------------------- helpers
    def _split(self, row) -> tuple[tuple[int, ...], tuple[int, ...]]:
        """Full code tuple -> (context codes, perturbation codes)."""
        return tuple(int(row[i]) for i in self._ctx_pos), tuple(int(row[i]) for i in self._pert_pos)

    def _full(self, ctx: tuple[int, ...], pert: tuple[int, ...]) -> tuple[int, ...]:
        row = [0] * len(self.condition_keys)
        for i, c in zip(self._ctx_pos, ctx):
            row[i] = c
        for i, c in zip(self._pert_pos, pert):
            row[i] = c
        return tuple(row)

    def _single(self, j: int, code: int) -> tuple[int, ...]:
        """Perturbation codes with only perturbation key ``j`` away from control."""
        pert = list(self._control_codes)
        pert[j] = code
        return tuple(pert)

    def _context_text(self, ctx: tuple[int, ...]) -> str:
        return (
            str(self._describe(ctx, self.context_keys))
            if self.context_keys
            else "(no context keys)"
        )

    def _control_cells(self, ctx: tuple[int, ...]) -> np.ndarray:
        idx = self._groups.get(self._full(ctx, self._control_codes))
        if idx is None:
            raise ValueError(
                f"{type(self).__name__}: no control cells ({self.control}) in the training data "
                f"for context {self._context_text(ctx)}; this baseline starts from the control "
                "cells of the target context."
            )
        return idx

    def _shift(self, ctx: tuple[int, ...], pert: tuple[int, ...]) -> np.ndarray:
        raise NotImplementedError

    def _generate(self, codes: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
        rng = np.random.default_rng(seed)
        out = []
        for row, n in zip(codes, counts):
            ctx, pert = self._split(row)
            idx = self._control_cells(ctx)
            shift = self._shift(ctx, pert)
            chosen = resample_pool(idx, int(n), rng)
            out.append((self._z[chosen] + shift).astype(np.float32))
        return np.concatenate(out, axis=0)

    def shift(self, condition: dict[str, str]) -> np.ndarray:
        """The shift this baseline adds to the control features for one condition.

        Parameters
        ----------
        condition
            ``{key: value}`` for every condition key.

        Returns
        -------
        Shift of the scaled PCA features, shape ``(n_pca,)``; ``pca.pca_scores`` of it is
        the shift of ``obsm["X_calmflow_pca"]``.
        """
        self._check_fitted()
        frame = self.condition_spec.validate({k: [v] for k, v in condition.items()})
        codes = self.condition_spec.codes(frame)[0]
        ctx, pert = self._split(codes)
        self._control_cells(ctx)
        return self._shift(ctx, pert).astype(np.float32)


class Control(_ShiftBaseline):
    """No change: resampled control cells of the target context.

    For a requested condition, ``n_cells`` training cells with the same context (values of
    the non-perturbation condition keys) and every perturbation key at its control value
    are drawn, each once before any is drawn again (as the model draws its source cells);
    the requested perturbation is ignored. Features are
    decoded from the PCA space, so ``X`` is the PCA reconstruction of those cells.

    Raises a :class:`ValueError` in :meth:`predict` when the context has no control cells.

    Examples
    --------
    >>> m = Control().fit(adata, condition_keys=["cell_type", "condition"],
    ...                   control={"condition": "control"})
    >>> pred = m.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=200)
    """

    method_name = "Control"

    def _shift(self, ctx: tuple[int, ...], pert: tuple[int, ...]) -> np.ndarray:
        return np.zeros(self._z.shape[1])


class Additive(_ShiftBaseline):
    """scGen-style vector arithmetic in PCA feature space.

    Prediction for context ``c`` and perturbation ``p``: control cells of ``c`` (drawn with
    replacement) plus a shift ``delta``. With one perturbation key ``k``::

        delta(k = v) = mean over contexts c' != c of [mean z(c', k=v) - mean z(c', control)]

    where only contexts ``c'`` having both control cells and cells with ``k = v`` count,
    each with equal weight whatever its number of cells (context-balanced), and ``mean z``
    is the mean of the scaled PCA features of that training group. Cells of the target
    context itself never enter ``delta``, so a condition seen in training is predicted
    exactly as if it had been held out. Without context keys (only perturbation keys), the
    single context is used.

    With several perturbation keys, each key away from control contributes its own shift,
    estimated as above from cells where that key has the requested value and every other
    perturbation key is at control, and the shifts are summed:
    ``delta(p) = sum over keys k with p_k != control_k of delta(k = p_k)``. A key at its
    control value contributes nothing, so the all-control condition gives :class:`Control`.

    The arithmetic is done on the scaled PCA features ``z`` and decoded to genes; since
    the PCA map is affine this is gene-space arithmetic on log expression projected onto
    the kept components (then negatives are clipped to 0).

    Raises :class:`ValueError` when the target context has no control cells or no other
    context has both control cells and the requested perturbation.
    """

    method_name = "Additive"

    def _fit_features(self, z: np.ndarray, codes: np.ndarray) -> None:
        super()._fit_features(z, codes)
        self._additive = AdditiveShift.fit(
            self.condition_spec, self.condition_spec.from_codes(codes), z
        )

    def _shift(self, ctx: tuple[int, ...], pert: tuple[int, ...]) -> np.ndarray:
        values = self._describe(self._full(ctx, pert), self.condition_keys)
        context = tuple(values[k] for k in self.context_keys)
        shift, missing = self._additive.shift(
            context, tuple(values[k] for k in self.perturbation_keys)
        )
        if missing:
            key = missing[0]
            raise ValueError(
                f"Additive: no context other than {self._context_text(ctx)} has both control "
                f"cells and cells with {key}={values[key]!r} (other "
                "perturbation keys at control), so the shift cannot be estimated."
            )
        return shift


class TrainMean(_ShiftBaseline):
    """Control cells of the target context shifted by the unpaired training-mean difference.

    With one perturbation key ``k``::

        delta(k = v) = mean over contexts c' of mean z(c', k=v)
                       - mean over contexts c'' of mean z(c'', control)

    i.e. the mean of the per-condition training means of the requested perturbation minus
    the mean of the per-condition training means of control, each condition weighted
    equally, over *all* training contexts that have such cells (the target context included
    if present). Unlike :class:`Additive` it ignores context pairing: the perturbed and the
    control means may come from different sets of contexts, so a context with only
    control cells (or only perturbed cells) moves the shift; in the usual hold-out (the
    target context has control cells only) the target's control mean enters TrainMean's
    control term but not Additive's. The two coincide when the perturbed and the control
    means come from exactly the contexts that Additive pairs.

    Several perturbation keys are combined as in :class:`Additive` (sum of per-key shifts,
    each estimated with the other perturbation keys at control).

    Raises :class:`ValueError` when the target context has no control cells or the
    requested perturbation has no training cells.
    """

    method_name = "TrainMean"

    def _shift(self, ctx: tuple[int, ...], pert: tuple[int, ...]) -> np.ndarray:
        total = np.zeros(self._z.shape[1])
        control_pert = self._control_codes
        control_means = [
            self._means[self._full(c, control_pert)]
            for c in self._contexts
            if self._full(c, control_pert) in self._means
        ]
        for j, code in enumerate(pert):
            if code == control_pert[j]:
                continue
            single = self._single(j, code)
            pert_means = [
                self._means[self._full(c, single)]
                for c in self._contexts
                if self._full(c, single) in self._means
            ]
            if not pert_means:
                key = self.perturbation_keys[j]
                raise ValueError(
                    f"TrainMean: no training cells with {key}={self.categories[key][code]!r} "
                    "(other perturbation keys at control)."
                )
            total += np.mean(pert_means, axis=0) - np.mean(control_means, axis=0)
        return total
