"""Input handling shared by the metric families: arrays, AnnData, validation, subsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Anything a metric accepts as a set of cells: a cells x features array (dense or sparse),
#: a DataFrame, or an AnnData (with ``obsm``/``layer`` naming the matrix).
ArrayLike = Any


def _is_anndata(obj: object) -> bool:
    try:
        import anndata as ad
    except ImportError:  # pragma: no cover
        return False
    return isinstance(obj, ad.AnnData)


def anndata_matrix(
    data: Any, *, obsm: str | None = None, layer: str | None = None, name: str = "x"
):
    """The matrix a metric reads: ``X``, ``layers[layer]`` or ``obsm[obsm]`` of an AnnData
    (possibly sparse), or ``data`` itself when it is not an AnnData."""
    if not _is_anndata(data):
        if obsm is not None or layer is not None:
            raise TypeError(f"{name}: `obsm`/`layer` are only meaningful for AnnData input.")
        return data
    if obsm is not None and layer is not None:
        raise ValueError("Pass at most one of `obsm` and `layer`.")
    if obsm is not None:
        if obsm not in data.obsm:
            raise KeyError(f"{name}: obsm key {obsm!r} not found; available: {list(data.obsm)}.")
        return data.obsm[obsm]
    if layer is not None:
        if layer not in data.layers:
            raise KeyError(f"{name}: layer {layer!r} not found; available: {list(data.layers)}.")
        return data.layers[layer]
    if data.X is None:
        raise ValueError(f"{name}: AnnData has no X.")
    return data.X


def as_matrix(
    data: ArrayLike,
    *,
    obsm: str | None = None,
    layer: str | None = None,
    name: str = "x",
    allow_1d: bool = False,
) -> np.ndarray:
    """Return ``data`` as a finite, non-empty float64 ``cells x features`` array.

    Parameters
    ----------
    data
        :class:`numpy.ndarray`, :mod:`scipy.sparse` matrix, :class:`pandas.DataFrame` or
        :class:`~anndata.AnnData`.
    obsm, layer
        For AnnData only: take ``data.obsm[obsm]`` or ``data.layers[layer]`` instead of ``X``.
    name
        Used in error messages.
    allow_1d
        Accept a 1-D vector (returned as is, e.g. a precomputed mean profile).
    """
    mat = anndata_matrix(data, obsm=obsm, layer=layer, name=name)
    if isinstance(mat, pd.DataFrame):
        mat = mat.to_numpy()
    if sp.issparse(mat):
        mat = mat.toarray()
    arr = np.asarray(mat, dtype=np.float64)
    if arr.ndim == 1 and allow_1d:
        pass
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D cells x features array, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    if not np.isfinite(arr).all():
        n_bad = int((~np.isfinite(arr)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s).")
    return arr


def check_pair(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise if two cells x features arrays do not have the same number of features."""
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of features; got "
            f"{x.shape[-1]} and {y.shape[-1]} (shapes {x.shape} and {y.shape})."
        )


def subsample(
    x: np.ndarray, n_max: int | None, rng: np.random.Generator
) -> tuple[np.ndarray, bool]:
    """At most ``n_max`` rows of ``x`` drawn without replacement (order kept).

    Returns the rows and whether subsampling happened. ``n_max=None`` keeps everything.
    """
    if n_max is None or x.shape[0] <= n_max:
        return x, False
    if n_max < 1:
        raise ValueError(f"n_max must be positive, got {n_max}.")
    idx = np.sort(rng.choice(x.shape[0], size=int(n_max), replace=False))
    return x[idx], True


def gene_index(
    genes: Sequence[str] | Sequence[int] | np.ndarray | None,
    var_names: Sequence[str] | None,
    n_genes: int,
) -> np.ndarray | slice:
    """Integer positions (or ``slice(None)``) for a gene selection by name, position or mask."""
    if genes is None:
        return slice(None)
    arr = np.asarray(genes)
    if arr.size == 0:
        raise ValueError("`genes` is empty.")
    if arr.dtype == bool:
        if arr.shape != (n_genes,):
            raise ValueError(f"A boolean `genes` mask must have length {n_genes}, got {arr.shape}.")
        return np.flatnonzero(arr)
    if np.issubdtype(arr.dtype, np.integer):
        if arr.min() < -n_genes or arr.max() >= n_genes:
            raise IndexError(f"Gene positions out of range for {n_genes} genes.")
        return arr.astype(np.intp)
    if var_names is None:
        raise ValueError(
            "Gene names were given but the gene names of the data are unknown; pass AnnData "
            "objects (or `var_names=`) or integer positions."
        )
    lookup = pd.Index(np.asarray(var_names, dtype=str))
    pos = lookup.get_indexer(arr.astype(str))
    if (pos < 0).any():
        missing = arr.astype(str)[pos < 0]
        raise KeyError(f"{len(missing)} gene(s) not found, e.g. {list(missing[:5])}.")
    return pos
