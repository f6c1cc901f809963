"""Shared fit/predict plumbing of the baselines: conditions, PCA features, AnnData output."""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any, Self

import anndata as ad
import numpy as np
import pandas as pd

from ..data import (
    PCA_KEY,
    ConditionSpec,
    PCAFeatures,
    Scaling,
    check_expression,
    check_n_pca,
    get_matrix,
    is_anndata,
    matrix_location,
    write_pca,
)
from ..utils import check_bool, check_int, check_seed, torch_threads


def _baseline_spec(
    obs: pd.DataFrame, condition_keys: str | Sequence[str], control: Mapping[str, str]
) -> ConditionSpec:
    """The validated :class:`~sccalmflow.data.ConditionSpec` of a baseline.

    A baseline needs at least one condition key and a non-empty ``control``. Unlike the
    model, it also accepts conditions made of perturbation keys only (no context key): all
    cells then share one context.
    """
    keys = [condition_keys] if isinstance(condition_keys, str) else list(condition_keys or [])
    if not keys:
        raise ValueError("`condition_keys` must name at least one obs column.")
    if not isinstance(control, Mapping) or not control:
        raise ValueError(
            "`control` must be a non-empty dict mapping perturbation key(s) to their "
            "control value, e.g. {'condition': 'control'}."
        )
    return ConditionSpec.from_obs(obs, keys, control, require_context=False)


def _cell_counts(n_cells, n_rows: int) -> np.ndarray:
    """Cells per requested row: one positive integer for all rows, or one per row."""
    if isinstance(n_cells, str) or not isinstance(n_cells, Sequence | np.ndarray | pd.Series):
        return np.full(n_rows, check_int("n_cells", n_cells, minimum=1))
    counts = [check_int(f"n_cells[{i}]", c, minimum=1) for i, c in enumerate(n_cells)]
    if len(counts) != n_rows:
        raise ValueError(f"`n_cells` has {len(counts)} entries but there are {n_rows} conditions.")
    return np.asarray(counts, dtype=np.int64)


class BaselineMethod:
    """Base class of the baselines: a common ``fit`` / ``predict`` interface.

    ``fit`` registers the condition keys, fits :class:`~sccalmflow.data.PCAFeatures` on the
    training cells and hands the scaled features ``z`` (cells x ``n_pca``) to the subclass;
    ``predict`` validates the requested conditions, lets the subclass generate features and
    decodes them to gene space.

    Subclasses implement ``_fit_features(z, codes)`` and ``_generate(codes, n_cells, seed)``.

    Attributes
    ----------
    pca
        The :class:`~sccalmflow.data.PCAFeatures` fitted in :meth:`fit`.
    condition_spec
        The :class:`~sccalmflow.data.ConditionSpec` registered in :meth:`fit` (keys, control
        values, categories); the attributes below are read from it.
    condition_keys
        The condition keys, in the order given to :meth:`fit`.
    perturbation_keys
        The keys named in ``control`` (in ``condition_keys`` order).
    context_keys
        The other condition keys (e.g. ``cell_type``); their values are a cell's context.
    control
        ``{perturbation key: control value}``, in ``condition_keys`` order.
    categories
        Values seen in training for each condition key.
    var_names
        Gene names of the training data.
    training_summary
        ``{"seconds": float, "n_cells": int, ...}``; subclasses add their own entries.
    """

    #: name written to ``uns["baseline"]["method"]`` of predictions
    method_name: str = "baseline"

    def __init__(self) -> None:
        self.pca: PCAFeatures | None = None
        self.condition_spec: ConditionSpec | None = None
        self.var_names: pd.Index | None = None
        self.training_summary: dict[str, Any] = {}
        self._seed: int = 0

    # ----------------------------------------------------------- conditions
    @property
    def condition_keys(self) -> list[str]:
        """The condition keys, in the order given to :meth:`fit` (empty before it)."""
        return list(self.condition_spec.keys) if self.condition_spec else []

    @property
    def perturbation_keys(self) -> list[str]:
        """The keys named in ``control``, in ``condition_keys`` order."""
        return self.condition_spec.perturbation_keys if self.condition_spec else []

    @property
    def context_keys(self) -> list[str]:
        """The other condition keys; their values are a cell's context."""
        return self.condition_spec.context_keys if self.condition_spec else []

    @property
    def control(self) -> dict[str, str]:
        """``{perturbation key: control value}``, in ``condition_keys`` order."""
        if self.condition_spec is None:
            return {}
        return {k: self.condition_spec.control[k] for k in self.perturbation_keys}

    @property
    def categories(self) -> dict[str, list[str]]:
        """Values seen in training for each condition key."""
        if self.condition_spec is None:
            return {}
        return {k: list(v) for k, v in self.condition_spec.categories.items()}

    # ------------------------------------------------------------------ fit
    def fit(
        self,
        adata: ad.AnnData,
        *,
        condition_keys: str | Sequence[str],
        control: Mapping[str, str],
        layer: str | None = None,
        n_pca: int = 50,
        pca_scaling: Scaling = "global",
        seed: int = 0,
        log_normalised: bool = True,
        pca_folds: int | None = None,
    ) -> Self:
        """Fit the baseline on the cells of ``adata``.

        Parameters
        ----------
        adata
            Cells x genes, log-normalised expression in ``X`` (or in ``layers[layer]``).
            It is not modified.
        condition_keys
            ``obs`` columns that define a condition, e.g. ``["cell_type", "condition"]``.
        control
            Perturbation key(s) and their control value(s), e.g. ``{"condition": "control"}``.
            Every key must be one of ``condition_keys``; the remaining condition keys form
            the context of a cell (with none left, all cells share one context).
        layer
            Use ``adata.layers[layer]`` instead of ``adata.X``.
        n_pca
            Number of principal components of the feature space.
        pca_scaling
            ``"global"``, ``"component"`` or ``"none"``; see :class:`~sccalmflow.data.PCAFeatures`.
        seed
            Seed of the PCA solver and of any training randomness.
        log_normalised
            ``X`` (or the layer) holds log-normalised expression, checked as by the model
            (finite, not raw counts, not scaled). ``False``: any finite continuous data
            (e.g. synthetic points); only finiteness is checked.
        pca_folds
            ``None`` (default): the training cells enter as projected, as the published
            methods do. A number: cross-fitted in that many folds, each cell in the fold of
            its name (:meth:`~sccalmflow.data.PCAFeatures.cross_fit_transform`), with the
            spread new cells have, as :class:`~sccalmflow.CaLMFlowModel` does by default
            (the same folds for the same cells and seed).

        Returns
        -------
        The fitted method (``self``).
        """
        start = time.perf_counter()
        if not is_anndata(adata):
            raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
        spec = _baseline_spec(adata.obs, condition_keys, control)
        X = get_matrix(adata, layer=layer)
        check_expression(
            X, matrix_location(layer=layer), log_scale=check_bool("log_normalised", log_normalised)
        )
        check_n_pca(check_int("n_pca", n_pca, minimum=1), adata.n_obs, adata.n_vars)
        check_seed("seed", seed)
        if pca_folds is not None:
            check_int("pca_folds", pca_folds, minimum=2)
        if adata.n_obs < 2:
            raise ValueError("Need at least two cells to fit.")
        self.condition_spec = spec
        self.var_names = adata.var_names.copy()
        self._seed = int(seed)

        self.pca = PCAFeatures(n_pca, pca_scaling, random_state=seed).fit(X)
        z = (
            self.pca.transform(X)
            if pca_folds is None
            else self.pca.cross_fit_transform(X, pca_folds, seed, names=adata.obs_names)
        )
        codes = spec.codes(adata.obs)
        self.training_summary = {}
        with torch_threads(None):  # sccalmflow.settings.n_threads, as the model's train
            self._fit_features(z, codes)
        self.training_summary = {
            "seconds": time.perf_counter() - start,
            "n_cells": int(adata.n_obs),
            "n_pca": int(self.pca.n_components),
            **self.training_summary,
        }
        return self

    # -------------------------------------------------------------- predict
    def predict(
        self,
        conditions: pd.DataFrame | Mapping[str, Sequence],
        n_cells: int | Sequence[int] = 100,
        seed: int = 0,
    ) -> ad.AnnData:
        """Generate cells for each requested condition.

        Parameters
        ----------
        conditions
            One row per condition: a DataFrame with one column per condition key, or a dict
            of equal-length lists, e.g. ``{"cell_type": ["B"], "condition": ["IFN-beta"]}``.
            Values must have been seen in :meth:`fit`.
        n_cells
            Cells to generate per row (one number, or one per row).
        seed
            Seed of the sampling; the same seed gives the same cells.

        Returns
        -------
        :class:`~anndata.AnnData` with ``sum(n_cells)`` cells (rows in request order):

        - ``X``: decoded gene-space expression (dense float32, negatives clipped to 0),
          ``var_names`` as in training;
        - ``obsm["X_calmflow_pca"]``: unscaled PCA scores (``pca.pca_scores(z)``) of the
          generated features ``z``, with the projection's fingerprint in
          ``uns["calmflow_pca"]`` (compare with real cells after :meth:`add_pca`);
        - ``obs``: the condition key columns (categorical, categories as seen in training);
        - ``uns["baseline"]``: ``{"method": ..., "seed": ...}`` (subclasses may add entries).
        """
        self._check_fitted()
        frame = self.condition_spec.validate(conditions)
        n_rows = len(frame)
        counts = _cell_counts(n_cells, n_rows)
        seed = check_seed("seed", seed)
        codes = self.condition_spec.codes(frame)
        with torch_threads(None):
            z = self._generate(codes, counts, seed)
        X = self.pca.inverse_transform(z).astype(np.float32, copy=False)
        obs = frame.iloc[np.repeat(np.arange(n_rows), counts)].reset_index(drop=True)
        obs.index = [f"gen{i}" for i in range(len(obs))]  # as the main model names them
        pred = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=self.var_names.copy()))
        write_pca(pred, self.pca.pca_scores(z), self.pca.fingerprint())
        pred.uns["baseline"] = {"method": self.method_name, "seed": int(seed)}
        self._annotate(pred)
        return pred

    def add_pca(
        self, adata: ad.AnnData, layer: str | None = None, key: str = PCA_KEY
    ) -> ad.AnnData:
        """Write the method's PCA coordinates of ``adata`` into it (in place), with a fingerprint.

        Sets ``adata.obsm[key]`` (unscaled PCA scores of the fitted feature space) and
        ``adata.uns["calmflow_pca"] = {"fingerprint": ...}`` (``key`` without ``X_``), the
        entries :meth:`predict` writes; scanpy's ``obsm["X_pca"]`` is left untouched.

        Parameters
        ----------
        adata
            Cells with the genes the method was fitted on, in the same order (modified in
            place).
        layer
            Layer of ``adata`` with the expression (``None``: ``X``).
        key
            ``.obsm`` key to write.

        Returns
        -------
        ``adata`` itself.
        """
        self._check_fitted()
        if not is_anndata(adata):
            raise TypeError(f"`adata` must be an AnnData, got {type(adata).__name__}.")
        if not adata.var_names.equals(self.var_names):
            raise ValueError(
                f"adata must have the method's {len(self.var_names)} genes in the same order "
                f"(it has {adata.n_vars}): use `adata[:, method.var_names]`."
            )
        z = self.pca.transform(get_matrix(adata, layer=layer, name="adata"))
        write_pca(adata, self.pca.pca_scores(z), self.pca.fingerprint(), key)
        return adata

    # ---------------------------------------------------------------- hooks
    def _fit_features(self, z: np.ndarray, codes: np.ndarray) -> None:
        """Learn from scaled features and integer condition codes.

        ``z`` is cells x D; ``codes`` is cells x n_keys, columns in ``condition_keys`` order.
        """
        raise NotImplementedError

    def _generate(self, codes: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
        """Scaled features, ``counts[i]`` rows for request row ``codes[i]``, stacked in order."""
        raise NotImplementedError

    def _annotate(self, pred: ad.AnnData) -> None:
        """Add method-specific entries to a prediction."""

    # -------------------------------------------------------------- helpers
    def _check_fitted(self) -> None:
        if self.pca is None:
            raise RuntimeError(f"{type(self).__name__} is not fitted; call `fit` first.")

    def _describe(self, codes: Sequence[int], keys: Sequence[str]) -> dict[str, str]:
        """Readable ``{key: value}`` of integer codes of ``keys``."""
        return {k: self.categories[k][int(c)] for k, c in zip(keys, codes)}

    def __repr__(self) -> str:
        state = "fitted" if self.pca is not None else "not fitted"
        return f"{type(self).__name__}({state})"
