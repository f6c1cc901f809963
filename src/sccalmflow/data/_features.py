"""Feature spaces: where the flow lives, and the linear way back to genes.

:class:`PCAFeatures` is fitted on the registered expression; :func:`least_squares_decoder`
gives the same layout for a space the user supplies in ``.obsm`` (``features_key``).
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import scipy.sparse as sp

from ._matrix import dense, in_memory, read_rows, row_blocks

Scaling = Literal["global", "component", "none"]


class PCAFeatures:
    """Principal components of log-expression, with the scaling used by the flow.

    The flow works on ``z = (X - mean) @ components.T / scale``. ``scale`` is

    - ``"global"`` (default): one number, the root mean variance of the kept components,
      so the features have average unit variance and Euclidean geometry is preserved
      (the leading components stay larger than the trailing ones);
    - ``"component"``: the standard deviation of each component (every feature has unit
      variance; small components are amplified);
    - ``"none"``: raw PCA scores.

    Parameters
    ----------
    n_components
        Number of principal components.
    scaling
        See above.
    random_state
        Seed of the ARPACK start vector (scanpy's ``pp.pca``), for reproducible components.
    """

    def __init__(self, n_components: int = 50, scaling: Scaling = "global", random_state: int = 0):
        if scaling not in ("global", "component", "none"):
            raise ValueError(f"scaling must be 'global', 'component' or 'none', not {scaling!r}.")
        self.n_components = int(n_components)
        self.scaling = scaling
        self.random_state = random_state
        self.mean_: np.ndarray | None = None
        self.components_: np.ndarray | None = None
        self.scale_: np.ndarray | None = None

    @property
    def is_fitted(self) -> bool:
        """Whether :meth:`fit` (or :meth:`from_state_dict`) has set the components."""
        return self.components_ is not None

    def fit(self, X: np.ndarray | sp.spmatrix) -> PCAFeatures:
        """Fit on a cells x genes matrix (dense or sparse) with scanpy's PCA."""
        import scanpy as sc

        n_obs, n_vars = X.shape
        n_comps = min(self.n_components, n_obs - 1, n_vars - 1)
        if n_comps < 1:
            raise ValueError(f"Cannot fit PCA on a matrix of shape {X.shape}.")
        X = X.astype(np.float32) if X.dtype != np.float32 else X
        _, components, _, variance = sc.pp.pca(
            X, n_comps=n_comps, return_info=True, random_state=self.random_state, zero_center=True
        )
        mean = np.asarray(X.mean(axis=0)).ravel()
        components = np.asarray(components, dtype=np.float32)
        # a deterministic sign convention: the largest loading of each component is positive
        signs = np.sign(components[np.arange(n_comps), np.abs(components).argmax(axis=1)])
        signs[signs == 0] = 1
        components = components * signs[:, None]
        variance = np.asarray(variance, dtype=np.float64)
        if self.scaling == "global":
            scale = np.full(n_comps, np.sqrt(variance.mean()))
        elif self.scaling == "component":
            scale = np.sqrt(variance)
        else:
            scale = np.ones(n_comps)
        scale[scale <= 0] = 1.0
        self.mean_ = mean.astype(np.float32)
        self.components_ = components
        self.scale_ = scale.astype(np.float32)
        self.n_components = n_comps
        return self

    def _check(self) -> None:
        if not self.is_fitted:
            raise RuntimeError("PCAFeatures is not fitted; call `fit` first.")

    def transform(self, X: np.ndarray | sp.spmatrix) -> np.ndarray:
        """Cells x genes -> cells x n_components (scaled).

        A matrix that is not in memory (backed ``.h5ad``) is read and projected in row
        blocks: only the ``n_cells x n_components`` result is held.
        """
        self._check()
        if not in_memory(X):
            blocks = [self.transform(block) for _, block in row_blocks(X)]
            return (
                np.concatenate(blocks) if blocks else np.zeros((0, self.n_components), np.float32)
            )
        if X.shape[1] != self.components_.shape[1]:
            raise ValueError(f"Expected {self.components_.shape[1]} genes, got {X.shape[1]}.")
        return (self.apply_map(X, self.components_.T) / self.scale_).astype(np.float32)

    def cross_fit_transform(
        self, X: np.ndarray | sp.spmatrix, n_folds: int = 5, seed: int = 0, names=None
    ) -> np.ndarray:
        """Cells the PCA was fitted on, projected as if they were new cells (cross-fitting).

        A PCA fitted on a few thousand cells bends its components towards the noise of
        those very cells, so they project with more variance than new cells of the same
        kind do (Kang: 1.26-1.32x in components 11-50, half of a type's cells in the fit
        against the other half left out of it). A flow trained on such coordinates
        generates cells that are too wide for cells the PCA has never seen, such as a
        held-out condition. Here the cells are split into ``n_folds`` folds and each fold
        is mapped by its :meth:`cross_fit_maps` map: every cell gets the spread a new
        cell would have (0.98-1.00x in the same check), and the space (components,
        decoding, :meth:`transform` of other cells) stays this one.

        Parameters
        ----------
        X
            The cells x genes matrix this PCA was fitted on (dense or sparse), or a subset
            of it.
        n_folds
            Number of folds (at least 2; every fold's complement must hold 2 cells).
        seed
            Seed of the fold assignment (the fold PCAs use this PCA's ``random_state``).
        names
            The cells' names: each goes to the fold :func:`name_folds` gives it, as in
            :class:`~sccalmflow.CaLMFlowModel`. ``None``: a seeded random assignment.

        Returns
        -------
        Scaled features ``(n_cells, n_components)``, like :meth:`transform`.
        """
        n_folds = int(n_folds)
        if n_folds < 2:
            raise ValueError(f"Cross-fitting needs at least 2 folds, got {n_folds}.")
        if names is None:
            folds = np.random.default_rng(seed).permutation(X.shape[0]) % n_folds
        else:
            folds = name_folds(names, n_folds, seed)[1]
        maps = self.cross_fit_maps(X, folds)
        Z = np.empty((X.shape[0], self.n_components), np.float32)
        return self.apply_fold_maps(X, maps, folds, Z)

    def cross_fit_maps(self, X: np.ndarray | sp.spmatrix, folds: np.ndarray) -> np.ndarray:
        """For each fold, the linear map that projects its cells as new cells.

        Fold ``k``'s map projects a cell onto the components of a PCA fitted (same
        settings) on the cells of the other folds, about this PCA's mean, and turns the
        coordinates by the rotation that best aligns those components with this PCA's
        (orthogonal Procrustes, so no length is lost); scaled like :meth:`transform`.
        Apply it with :meth:`apply_map`.

        Parameters
        ----------
        X
            The cells x genes matrix this PCA was fitted on (dense or sparse).
        folds
            The fold of each row of ``X``: integers ``0 ... n_folds - 1``.

        Returns
        -------
        Array ``(n_folds, n_genes, n_components)``.
        """
        self._check()
        folds = np.asarray(folds)
        n_folds = int(folds.max()) + 1 if folds.size else 0
        counts = np.bincount(folds, minlength=n_folds) if folds.size else np.zeros(0, int)
        if len(folds) != X.shape[0] or n_folds < 2 or (X.shape[0] - counts < 2).any():
            raise ValueError(
                f"Cross-fitting {X.shape[0]} cells in {n_folds} folds leaves too few cells to "
                "fit a PCA on: use at least 2 folds and more cells, or no cross-fitting."
            )
        components = self.components_.astype(np.float64)
        maps = np.zeros((n_folds, components.shape[1], self.n_components), np.float32)
        for k in range(n_folds):
            rest = PCAFeatures(self.n_components, "none", self.random_state)
            rest.fit(X[np.flatnonzero(folds != k)])
            n = rest.n_components
            rest_components = rest.components_.astype(np.float64)
            # the rotation R minimising |rest_components.T @ R - components.T|
            u, _, vt = np.linalg.svd(rest_components @ components[:n].T)
            maps[k, :, :n] = rest_components.T @ (u @ vt) / self.scale_[:n]
        return maps

    def apply_fold_maps(
        self, X, maps: np.ndarray, folds: np.ndarray, out: np.ndarray
    ) -> np.ndarray:
        """Each row of ``X`` in fold ``k >= 0`` mapped by ``maps[k]`` into ``out`` (in place).

        Rows of fold ``-1`` are left as they are. ``X`` may be dense, sparse or on disk (only
        each fold's rows are read). Returns ``out``.
        """
        for k, mapping in enumerate(maps):
            rows = np.flatnonzero(folds == k)
            if rows.size:
                out[rows] = self.apply_map(read_rows(X, rows), mapping)
        return out

    def apply_map(self, X: np.ndarray | sp.spmatrix, mapping: np.ndarray) -> np.ndarray:
        """``(X - mean) @ mapping`` for a cells x genes matrix (dense or sparse), as float32."""
        self._check()
        if sp.issparse(X):
            Z = np.asarray(X @ mapping) - self.mean_ @ mapping
        else:
            Z = (np.asarray(X, dtype=np.float32) - self.mean_) @ mapping
        return np.asarray(Z, dtype=np.float32)

    def inverse_transform(self, Z: np.ndarray, *, clip_negative: bool = True) -> np.ndarray:
        """Cells x n_components (scaled) -> cells x genes.

        Log-expression cannot be negative, so values below 0 are set to 0 unless
        ``clip_negative=False``.
        """
        self._check()
        X = (np.asarray(Z, dtype=np.float32) * self.scale_) @ self.components_
        X += self.mean_  # in place: the decoded matrix is the largest array of a prediction
        if clip_negative:
            np.maximum(X, 0, out=X)
        return X

    def pca_scores(self, Z: np.ndarray) -> np.ndarray:
        """Scaled features -> unscaled PCA scores (what scanpy calls ``X_pca``)."""
        self._check()
        return np.asarray(Z, dtype=np.float32) * self.scale_

    def fingerprint(self) -> str:
        """A short SHA-256 of the projection (mean, components, scale as float32 bytes).

        Two objects project cells into the same space exactly when their fingerprints
        match; predictions and ``model.add_pca`` store it in ``uns["calmflow_pca"]``.

        Returns
        -------
        16 hexadecimal characters.
        """
        self._check()
        digest = hashlib.sha256()
        for arr in (self.mean_, self.components_, self.scale_):
            a = np.ascontiguousarray(arr, dtype=np.float32)
            digest.update(str(a.shape).encode())
            digest.update(a.tobytes())
        return digest.hexdigest()[:16]

    def state_dict(self) -> dict[str, np.ndarray]:
        """``{"mean", "components", "scale"}`` arrays (what :meth:`from_state_dict` reads)."""
        self._check()
        return {"mean": self.mean_, "components": self.components_, "scale": self.scale_}

    @classmethod
    def from_state_dict(cls, state: dict[str, np.ndarray], scaling: Scaling) -> PCAFeatures:
        """A fitted instance from :meth:`state_dict`'s arrays."""
        obj = cls(n_components=state["components"].shape[0], scaling=scaling)
        obj.mean_ = np.asarray(state["mean"], dtype=np.float32)
        obj.components_ = np.asarray(state["components"], dtype=np.float32)
        obj.scale_ = np.asarray(state["scale"], dtype=np.float32)
        return obj


def least_squares_decoder(Z: np.ndarray, X) -> dict[str, np.ndarray]:
    """A linear map from given features to genes by least squares, in the PCAFeatures layout.

    For a flow that lives in a user-supplied space (``.obsm[features_key]``): predictions
    are mapped back to genes by ``X ~ (Z - mean_z) W + mean_x``.

    Parameters
    ----------
    Z
        Features ``(n_cells, D)``.
    X
        Expression ``(n_cells, G)``, dense or sparse.

    Returns
    -------
    ``{"mean", "components", "scale"}`` for :meth:`PCAFeatures.from_state_dict`:
    ``components`` is ``W`` (``D x G``), ``mean`` is ``mean_x - mean_z W`` and ``scale`` one
    number (the root mean variance of ``Z``) repeated.
    """
    X = dense(X, dtype=None)
    mean_x = X.mean(0)
    mean_z = Z.mean(0)
    scale = np.full(
        Z.shape[1], float(np.sqrt(((Z - mean_z) ** 2).sum(1).mean() / Z.shape[1])) or 1.0
    )
    W, *_ = np.linalg.lstsq(Z - mean_z, X - mean_x, rcond=None)
    # X ~ (Z - mean_z) W + mean_x = Z W + (mean_x - mean_z W)
    return {
        "mean": (mean_x - mean_z @ W).astype(np.float32),
        "components": W.astype(np.float32),
        "scale": scale.astype(np.float32),
    }


def check_n_pca(n_pca: int, n_obs: int, n_vars: int) -> None:
    """Refuse more components than the data allow (``min(n_cells, n_genes) - 1``)."""
    most = min(n_obs, n_vars) - 1
    if most < 1:
        raise ValueError(
            f"{n_obs} cell(s) x {n_vars} gene(s) are too few for PCA: at least 2 cells and 2 "
            "genes are needed."
        )
    if n_pca > most:
        raise ValueError(
            f"n_pca={n_pca} is more than the data allow ({n_obs} cells x {n_vars} genes give at "
            f"most {most} components); pass n_pca={most} or fewer."
        )


def name_folds(names, n_folds: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A seeded 64-bit hash of each cell name (BLAKE2b, as int64), and its fold.

    Cross-fitting puts a cell in fold ``hash % n_folds``, so a model knows a cell of its
    PCA's fit, and its fold, whenever the cell comes back, in any order or subset, after
    saving and loading too.

    Returns
    -------
    ``(hashes, folds)``, two arrays of ``len(names)``.
    """
    key = int(seed).to_bytes(8, "little", signed=True)
    out = np.empty(len(names), np.uint64)
    for i, name in enumerate(names):
        digest = hashlib.blake2b(str(name).encode(), digest_size=8, key=key).digest()
        out[i] = int.from_bytes(digest, "little")
    return out.view(np.int64), (out % np.uint64(n_folds)).astype(np.int64)
