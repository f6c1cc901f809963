"""The sampling temperature τ chosen from the cells: :meth:`CaLMFlowModel.calibrate_temperature`."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd

from ..data import PCA_KEY, get_matrix, is_anndata
from ..metrics import energy_distance, gaussian_w2, mmd
from ..utils import check_bool, check_choice, check_int, check_numbers, check_seed
from ..utils import progress_bar as tqdm_bar

#: The temperatures :meth:`~sccalmflow.CaLMFlowModel.calibrate_temperature` tries by default.
CALIBRATION_TEMPERATURES = (0.25, 0.5, 0.75, 0.9, 1.0, 1.1, 1.25, 1.5)

#: Reference cells :meth:`~sccalmflow.CaLMFlowModel.train`'s calibration uses at most.
DEFAULT_MAX_CELLS = 2000

#: Fewest reference cells per condition wanted: with many conditions only the largest
#: ``max_cells // MIN_CELLS_PER_CONDITION`` of them are compared.
MIN_CELLS_PER_CONDITION = 20

#: Distances it can minimise (in the model's PCA space), by their name in ``evaluate``.
CALIBRATION_METRICS = {"mmd": mmd, "e_distance": energy_distance, "w2_gaussian": gaussian_w2}


def _best(temps: list[float], values: list[float]) -> float:
    """The temperature with the lowest value; a tie goes to the one closest to 1."""
    order = sorted(range(len(temps)), key=lambda i: (values[i], abs(temps[i] - 1.0)))
    return temps[order[0]]


class CalibrationMixin:
    """:meth:`calibrate_temperature` of :class:`~sccalmflow.CaLMFlowModel`."""

    def calibrate_temperature(
        self,
        adata: ad.AnnData | None = None,
        *,
        temperatures: Sequence[float] = CALIBRATION_TEMPERATURES,
        metric: Literal["mmd", "e_distance", "w2_gaussian"] = "mmd",
        max_cells: int = DEFAULT_MAX_CELLS,
        seed: int | None = None,
        layer: str | None = None,
        progress_bar: bool | None = None,
    ) -> pd.DataFrame:
        """Set the model's sampling temperature τ to the one whose cells are closest to real ones.

        For each τ in ``temperatures``, generates cells of every condition of the reference
        cells (same seed at every τ, so only τ differs) and measures ``metric`` between the
        generated and the real cells of each condition in the model's PCA space; the τ with
        the lowest mean over conditions becomes :attr:`temperature` (a tie goes to the τ
        closest to 1). :meth:`train` calls it at the end for a model built with
        ``temperature=None`` (the default) whose head samples, from noise or from cells,
        with the validation cells of the conditions it generates as reference (from cells
        the control cells are sources and are left out; the training cells when no such
        condition has 2 validation cells). MMD by default because it is lowest at the right
        spread: real cells against real cells, one half scaled about its mean, MMD and
        E-distance were lowest at the real spread on 4 of 4 Kang cell types while the
        empirical W2 kept falling down to the narrowest scale tried, 0.6
        (``benchmarks/results/metric_spread.md``). On held-out Kang cell types
        (``benchmarks/results/generator_notes.md``) the validation cells of the seen
        conditions chose 1.5 in 27 of 27 runs (the default flow head's cells there are
        narrower than the real ones at τ = 1), and on the held-out cells 1.5 had a lower
        E-distance than τ = 1 in 18 of them, a lower MMD in 17 and a higher R² in 21 (and a
        higher empirical W2 in all 27). The grid ends at 1.5 on purpose: on a grid up to 2
        the validation cells chose 1.75 or 2 in 5 of 9 runs, where the held-out cells were
        best at 1.25-1.5. Call it yourself with cells of the conditions you
        will generate, or check the choice with :func:`sccalmflow.tl.temperature_sweep`. A
        deterministic head ignores τ and is refused.

        Parameters
        ----------
        adata
            Real cells with the model's genes and condition columns (e.g. held-out cells).
            ``None``: the registered cells (cells the model trained on).
        temperatures
            Distinct temperatures τ >= 0 to try.
        metric
            ``"mmd"`` (default; RBF kernel, :func:`~sccalmflow.metrics.mmd`),
            ``"e_distance"`` or ``"w2_gaussian"`` (with fewer than a few hundred cells per
            condition it too prefers sets narrower than the real cells). Not the empirical
            W2: in many dimensions it prefers sets narrower than the real cells.
        max_cells
            At most this many reference cells (a seeded subsample, the same share of every
            condition); each condition gets as many generated cells as the largest reference
            set has, and at most ``max_cells`` are generated in all.
            Conditions with fewer than 2 reference cells are left out, and of many conditions
            only the ``max_cells // 20`` with the most reference cells are compared.
        seed
            Seed of the subsample, the generation and the metric (default: the model's seed
            + 1, so the cells differ from ``predict(seed=model.seed)``).
        layer
            Layer of ``adata`` with the log-normalised expression.
        progress_bar
            Show a bar over the temperatures (default: when there is more than one).

        Returns
        -------
        pandas.DataFrame
            One row per temperature: ``temperature``, ``metric``, ``space`` (``"pca"``),
            ``value`` (mean over the conditions), ``chosen`` (True for the τ now in
            :attr:`temperature`). The record is kept (``temperature_calibration_``, saved
            with the model; the table again: :attr:`temperature_calibration`); draw it with
            :func:`sccalmflow.pl.temperature`.
        """
        temps = list(check_numbers("temperatures", temperatures, minimum=0, distinct=True))
        check_choice("metric", metric, tuple(CALIBRATION_METRICS))
        check_int("max_cells", max_cells, minimum=2)
        seed = self.seed + 1 if seed is None else check_seed("seed", seed)
        show = len(temps) > 1 if progress_bar is None else check_bool("progress_bar", progress_bar)
        self.module.require_temperature("calibrate")
        if adata is None:
            cells, pca, where = self._cell_conditions(), self.get_pca(), "registered cells"
        else:
            if not is_anndata(adata):
                raise TypeError(f"adata must be an AnnData; got {type(adata).__name__}.")
            missing = [k for k in self.condition_keys if k not in adata.obs.columns]
            if missing:
                raise KeyError(f"adata.obs lacks the model's condition key(s) {missing}.")
            cells, where = adata.obs[list(self.condition_keys)], "adata"
            pca = self.get_pca(adata, layer=layer)
        rows = np.arange(len(cells))
        return self._calibrate(cells, pca, rows, temps, metric, max_cells, seed, where, show)

    @property
    def temperature_calibration(self) -> pd.DataFrame:
        """The table of the last calibration (as :meth:`calibrate_temperature` returned it).

        Columns ``temperature``, ``metric``, ``space`` (``"pca"``), ``value``, ``chosen``;
        draw it with :func:`sccalmflow.pl.temperature`. Raises when the model's τ was never
        calibrated (from cells, or a τ given by hand).
        """
        record = getattr(self, "temperature_calibration_", None)
        if record is None:
            raise RuntimeError(
                "This model's temperature was not calibrated (train() calibrates from noise "
                "with temperature=None); call model.calibrate_temperature(cells) first."
            )
        return calibration_table(record)

    def _calibrate(
        self,
        cells: pd.DataFrame,
        pca: np.ndarray,
        rows: np.ndarray,
        temps: list[float],
        metric: str,
        max_cells: int,
        seed: int,
        where: str,
        show: bool,
    ) -> pd.DataFrame:
        """Score ``temps`` against the cells ``rows`` of ``cells`` / ``pca``; keep the best."""
        rng = np.random.default_rng(seed)
        frame, members = self._reference_groups(cells.iloc[rows])
        # many small conditions: the largest ones, so each has enough cells to be compared
        n_keep = max(1, max_cells // MIN_CELLS_PER_CONDITION)
        if len(members) > n_keep:
            kept = sorted(np.argsort([-len(m) for m in members], kind="stable")[:n_keep])
            frame = frame.iloc[kept].reset_index(drop=True)
            members = [members[i] for i in kept]
        if sum(len(m) for m in members) > max_cells:  # a seeded subsample of the same share
            share = max_cells / sum(len(m) for m in members)
            members = [np.sort(rng.choice(m, max(2, int(share * len(m) + 1e-9)), replace=False))
                       for m in members]  # fmt: skip
        rows = rows[np.concatenate(members)]
        members = list(np.split(np.arange(len(rows)), np.cumsum([len(m) for m in members])[:-1]))
        # per condition as many cells as the largest reference set (no more than its share of
        # max_cells): more generated cells than reference ones add time, not precision
        n_gen = max(2, min(max_cells // len(frame), max(len(m) for m in members)))
        score = CALIBRATION_METRICS[metric]
        values = []
        labels = self.conditions.labels(frame)
        for t in tqdm_bar(temps, desc="calibrating τ", disable=not show):
            pred = self.predict(frame if self.condition_keys else None, n_cells=n_gen,
                                seed=seed, temperature=t, decode=False, progress_bar=False)  # fmt: skip
            gen = np.asarray(get_matrix(pred, obsm=PCA_KEY), dtype=np.float64)
            of = self.conditions.labels(pred.obs)
            per_condition = [
                score(gen[of == label], pca[rows[m]])
                for label, m in zip(labels, members, strict=True)
            ]
            values.append(float(np.mean(per_condition)))
        best = _best(temps, values)
        self.temperature = best
        self.temperature_calibration_: dict[str, Any] = {
            "metric": metric,
            "temperatures": temps,
            "values": values,
            "chosen": best,
            "reference": where,
            "n_reference_cells": int(sum(len(m) for m in members)),
            "n_conditions": len(members),
            "n_generated_per_condition": int(n_gen),
            "seed": int(seed),
        }
        return calibration_table(self.temperature_calibration_)

    def _calibrate_after_training(
        self, train_idx: np.ndarray, val_idx: np.ndarray, show: bool
    ) -> None:
        """:meth:`train`'s last step: choose τ on the validation (else training) cells.

        Only for a model built with ``temperature=None`` whose head samples, from noise or
        from cells (see :meth:`calibrate_temperature` for the measurements behind it). The
        reference is the validation cells when a condition to generate (from cells: not a
        control one) has 2 of them, else the training cells; when neither has, τ stays 1
        with a warning.
        """
        # the constructor's own argument (saved with the model): None asks for a calibration
        given = self.init_params_["non_kwargs"].get("temperature")
        if given is not None or not self.module.samples_latent(1.0):
            return
        cells = self._cell_conditions()
        for rows, where in ((val_idx, "validation cells"), (train_idx, "training cells")):
            rows = np.asarray(rows, dtype=np.int64)
            if self._reference_members(cells.iloc[rows])[1]:
                self._calibrate(
                    cells, self.get_pca(), rows, list(CALIBRATION_TEMPERATURES), "mmd",
                    DEFAULT_MAX_CELLS, self.seed + 1, where, show,
                )  # fmt: skip
                return
        warnings.warn(
            "No condition to generate has 2 or more validation or training cells to choose the "
            "sampling temperature with, so it stays 1. Call model.calibrate_temperature(cells) "
            "with cells of the conditions you will generate, or build the model with "
            "temperature=1.0 to keep 1 without this warning.",
            UserWarning,
            stacklevel=3,
        )

    def _reference_members(self, cells: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray]]:
        """The conditions to generate that have 2 or more of ``cells``, and their rows.

        Every condition from noise; from cells not the control ones (they are sources).
        Both empty when there is none.
        """
        groups, frame = self.conditions.groups(cells)
        if self.source == "noise":
            targets = np.ones(len(frame), dtype=bool)
        else:
            targets = ~np.asarray(self.conditions.is_control(frame), dtype=bool)
        keep = [g for g in range(len(frame)) if targets[g] and (groups == g).sum() >= 2]
        return frame.iloc[keep].reset_index(drop=True), [np.flatnonzero(groups == g) for g in keep]

    def _reference_groups(self, cells: pd.DataFrame) -> tuple[pd.DataFrame, list[np.ndarray]]:
        """:meth:`_reference_members`, refusing cells with no condition to compare with."""
        frame, members = self._reference_members(cells)
        if not members:
            raise ValueError(
                "No condition has 2 or more reference cells to compare with (control cells are "
                "sources, not targets): pass cells of the generated conditions, or more of them."
            )
        return frame, members


def calibration_table(record: dict[str, Any]) -> pd.DataFrame:
    """The table of a ``temperature_calibration_`` record (one row per temperature)."""
    temps = list(record["temperatures"])
    return pd.DataFrame(
        {
            "temperature": temps,
            "metric": record["metric"],
            "space": "pca",
            "value": list(record["values"]),
            "chosen": [t == record["chosen"] for t in temps],
        }
    )
