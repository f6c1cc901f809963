"""The model's feature space: features of cells, and the scvi-tools getters built on it."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
from scvi import REGISTRY_KEYS

from ..data import (
    PCA_KEY,
    PCAFeatures,
    Scaling,
    check_expression,
    check_n_pca,
    get_matrix,
    in_memory,
    is_anndata,
    least_squares_decoder,
    matrix_location,
    name_folds,
    read_rows,
    stratified_rows,
    write_pca,
)
from ._registration import FEATURES_KEY, check_features


class FeaturesMixin:
    """Feature-space methods of :class:`~sccalmflow.CaLMFlowModel`."""

    @property
    def features_(self) -> PCAFeatures:
        """The feature space, read from the module's buffers (its only holder)."""
        state = {k: v.numpy() for k, v in self.module.feature_state().items()}
        return PCAFeatures.from_state_dict(state, self.pca_scaling)

    def _fit_features(self, n_pca: int, scaling: Scaling, seed: int, max_cells: int) -> PCAFeatures:
        """PCA of the registered layer (at most ``max_cells`` cells), or an ``.obsm`` decoder."""
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        if self.features_key is not None:
            Z = np.asarray(self.adata_manager.get_from_registry(FEATURES_KEY))
            return PCAFeatures.from_state_dict(least_squares_decoder(Z, X), scaling)
        check_n_pca(n_pca, *X.shape)
        rows = self._pca_rows(max_cells, seed)
        n_fit = X.shape[0] if rows is None else len(rows)
        if self.pca_folds and n_fit - -(-n_fit // self.pca_folds) < 2:
            raise ValueError(
                f"pca_folds={self.pca_folds} leaves too few of the {n_fit} cells to fit a PCA "
                "on without each fold: pass fewer folds or pca_folds=None."
            )
        return PCAFeatures(n_pca, scaling, random_state=seed).fit(
            X if rows is None else read_rows(X, rows)
        )

    def _pca_rows(self, max_cells: int, seed: int) -> np.ndarray | None:
        """The registered rows the PCA is fitted on (``None``: all of them)."""
        X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
        if X.shape[0] <= max_cells and in_memory(X):
            return None
        groups = self.conditions.labels(self._cell_conditions()) if self.condition_keys else None
        return stratified_rows(np.zeros(X.shape[0]) if groups is None else groups, max_cells, seed)

    def _cross_fit(self) -> dict[str, np.ndarray] | None:
        """The fold maps and the name hashes of the PCA's cells (``None``: no cross-fitting).

        Made on first use from the registered cells the PCA was fitted on, each in the fold
        ``hash(name) % pca_folds`` (:func:`~sccalmflow.data.name_folds`, seeded);
        saved with the model, so a loaded model recognises those cells in any data.
        """
        if not self.pca_folds or self.features_key is not None:
            return None
        if getattr(self, "cross_fit_", None) is None:
            X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
            rows = self._pca_rows(self.pca_max_cells, self.seed)
            names = self.adata_manager.adata.obs_names
            names = names if rows is None else names[rows]
            hashes, folds = name_folds(names, self.pca_folds, self.seed)
            features = self.features_
            X_fit = X if rows is None else read_rows(X, rows)
            mean = np.asarray(X_fit.mean(axis=0), dtype=np.float64).ravel()
            if not np.allclose(mean, features.mean_, rtol=1e-3, atol=1e-5):
                raise ValueError(
                    "The PCA this model was given (`features=`) was not fitted on its cells "
                    "(its gene means differ from theirs), so they cannot enter cross-fitted: "
                    "pass pca_folds=None to project them on that PCA as new cells, or leave "
                    "features=None to fit the PCA on these cells."
                )
            maps = features.cross_fit_maps(X_fit, folds)
            self.cross_fit_ = {"maps": maps, "hashes": np.unique(hashes)}
        return self.cross_fit_

    def _as_new_cells(self, names: pd.Index, X, Z: np.ndarray) -> np.ndarray:
        """``Z`` (features of ``X``) with the cells of the PCA's fit cross-fitted (in place).

        A cell is one of the fit when its name is (its hash is among the saved ones); it
        then gets its fold's map. Other cells keep their projection.
        """
        cross = self._cross_fit()
        if cross is None:
            return Z
        hashes, folds = name_folds(names, len(cross["maps"]), self.seed)
        folds = np.where(np.isin(hashes, cross["hashes"]), folds, -1)  # -1: not of the fit
        return self.features_.apply_fold_maps(X, cross["maps"], folds, Z)

    def _registered_features(self) -> np.ndarray:
        """Scaled features of the registered cells; the cells of the PCA's fit cross-fitted."""
        if "features" not in self._cache:
            if self.features_key is None:
                X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
                Z = self.features_.transform(X)
                Z = self._as_new_cells(self.adata_manager.adata.obs_names, X, Z)
            else:
                Z = np.asarray(self.adata_manager.get_from_registry(FEATURES_KEY), np.float32)
                Z = Z / self.features_.scale_
            self._cache["features"] = Z.astype(np.float32)
        return self._cache["features"]

    def get_pca(self, adata: ad.AnnData | None = None, layer: str | None = None) -> np.ndarray:
        """Cells in the model's PCA space (unscaled scores, like ``pred.obsm["X_calmflow_pca"]``).

        Returns an array; to compare real cells with predictions use :meth:`add_pca`, which
        also stores the projection's fingerprint.

        Parameters
        ----------
        adata
            Cells with the same genes (``None``: the registered data).
        layer
            Layer of ``adata`` with log-normalised expression (``None``: ``X``).

        Returns
        -------
        Array of shape ``(n_cells, n_pca)``.
        """
        if adata is None:
            return self.features_.pca_scores(self._registered_features())
        return self.features_.pca_scores(self._features_of(adata, layer, "adata"))

    def add_pca(
        self, adata: ad.AnnData, layer: str | None = None, key: str = PCA_KEY
    ) -> ad.AnnData:
        """Write the model's PCA coordinates of ``adata`` into it (in place), with a fingerprint.

        Sets ``adata.obsm[key]`` (:meth:`get_pca`) and ``adata.uns["calmflow_pca"] =
        {"fingerprint": ...}`` (``key`` without ``X_``), the same entries
        :meth:`predict` writes, so :func:`sccalmflow.metrics.evaluate` and
        :func:`sccalmflow.tl.embedding` can check that predictions and real cells live in
        one space. scanpy's ``obsm["X_pca"]`` (and the neighbours / UMAP built on it) is
        left untouched.

        Parameters
        ----------
        adata
            Cells with the model's genes (modified in place).
        layer
            Layer of ``adata`` with log-normalised expression (``None``: ``X``).
        key
            ``.obsm`` key to write.

        Returns
        -------
        ``adata`` itself.

        Examples
        --------
        >>> model.add_pca(real)
        >>> sccalmflow.metrics.evaluate(pred, real, space="pca")
        """
        write_pca(adata, self.get_pca(adata, layer), self.features_.fingerprint(), key)
        return adata

    def _features_of(self, adata: ad.AnnData, layer: str | None, where: str) -> np.ndarray:
        """Scaled features of cells that are not (necessarily) the registered ones."""
        if not is_anndata(adata):
            raise TypeError(
                f"`{where}` must be an AnnData with the model's genes, got {type(adata).__name__}."
            )
        features = self.features_
        if self.features_key is not None:
            check_features(adata, self.features_key)
            Z = np.asarray(get_matrix(adata, obsm=self.features_key, name=where), np.float32)
            if Z.shape[1] != features.n_components:
                raise ValueError(
                    f"{where}.obsm[{self.features_key!r}] has {Z.shape[1]} columns; the model "
                    f"was set up with {features.n_components}."
                )
            return Z / features.scale_
        if not adata.var_names.equals(self.var_names):
            raise ValueError(
                f"{where} must have the model's {len(self.var_names)} genes in the same order "
                f"(it has {adata.n_vars}): use `{where}[:, model.var_names]`."
            )
        X = get_matrix(adata, layer=layer, name=where)
        check_expression(X, where if layer is None else matrix_location(layer=layer, name=where))
        return self._as_new_cells(adata.obs_names, X, features.transform(X))

    def get_latent_representation(
        self, adata: ad.AnnData | None = None, layer: str | None = None
    ) -> np.ndarray:
        """The cells in the space the flow lives in (scvi-tools' name for :meth:`get_pca`).

        CaLMFlow has no per-cell latent variable: its paths live in the model's feature
        space (PCA of the registered layer, or the ``features_key`` space), and this returns
        the cells' coordinates there, unscaled, like ``pred.obsm["X_calmflow_pca"]``.

        Parameters
        ----------
        adata
            Cells with the model's genes (``None``: the registered data).
        layer
            Layer of ``adata`` with log-normalised expression (``None``: ``X``).

        Returns
        -------
        Array ``(n_cells, n_features)``.
        """
        return self.get_pca(adata, layer)

    def get_normalized_expression(
        self, adata: ad.AnnData | None = None, layer: str | None = None
    ) -> pd.DataFrame:
        """The cells' log-normalised expression as the model represents it.

        The cells are projected into the feature space and decoded back to genes (a
        rank-``n_features`` reconstruction, negative values set to 0), which is also how
        every generated cell is decoded: compare generated and real cells on this scale to
        separate what the flow gets wrong from what the feature space cannot represent.

        Parameters
        ----------
        adata
            Cells with the model's genes (``None``: the registered data).
        layer
            Layer of ``adata`` with log-normalised expression (``None``: ``X``).

        Returns
        -------
        DataFrame cells x genes (index: cell names, columns: the model's genes).
        """
        if adata is None:
            z, names = self._registered_features(), self.adata_manager.adata.obs_names
        else:
            z, names = self._features_of(adata, layer, "adata"), adata.obs_names
        X = self.features_.inverse_transform(z)
        return pd.DataFrame(X, index=pd.Index(names), columns=self.var_names)
