"""Reading a cells x features matrix from an AnnData, and checking expression values."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an :class:`~anndata.AnnData` (views included)."""
    import anndata as ad

    return isinstance(obj, ad.AnnData)


def check_anndata(obj: Any, name: str) -> None:
    """Raise unless ``obj`` is an AnnData (views included) with cells."""
    if not is_anndata(obj):
        raise TypeError(f"`{name}` must be an AnnData, got {type(obj).__name__}.")
    if obj.n_obs == 0:
        raise ValueError(f"`{name}` has no cells.")


def dense(mat: Any, dtype: Any = np.float64) -> np.ndarray:
    """A numpy array of a dense or sparse matrix (or DataFrame), as ``dtype`` (None: kept)."""
    if hasattr(mat, "toarray"):
        mat = mat.toarray()
    return np.asarray(mat) if dtype is None else np.asarray(mat, dtype=dtype)


def get_matrix(
    adata: Any, *, layer: str | None = None, obsm: str | None = None, name: str = "adata"
):
    """The matrix of ``adata`` to read: ``X``, ``layers[layer]`` or ``obsm[obsm]``.

    The one place where the package reads a matrix from an AnnData.

    Parameters
    ----------
    adata
        :class:`~anndata.AnnData`.
    layer
        Read ``adata.layers[layer]`` instead of ``X``.
    obsm
        Read ``adata.obsm[obsm]`` instead of ``X``.
    name
        How error messages call ``adata``.

    Returns
    -------
    The stored object as is (dense array, sparse matrix, or DataFrame for ``obsm``): no copy.
    """
    if not is_anndata(adata):
        raise TypeError(f"`{name}` must be an AnnData, got {type(adata).__name__}.")
    if obsm is not None and layer is not None:
        raise ValueError("Pass at most one of `obsm` and `layer`.")
    if obsm is not None:
        if obsm not in adata.obsm:
            raise KeyError(f"{name}: obsm key {obsm!r} not found; available: {list(adata.obsm)}.")
        return adata.obsm[obsm]
    if layer is not None:
        if layer not in adata.layers:
            raise KeyError(
                f"{name}: layer {layer!r} not found; available layers: {list(adata.layers)}."
            )
        return adata.layers[layer]
    if adata.X is None:
        raise ValueError(f"{name}: AnnData has no X.")
    return adata.X


def matrix_location(*, layer: str | None = None, obsm: str | None = None, name: str = "adata"):
    """How messages name the matrix :func:`get_matrix` reads, e.g. ``adata.layers['log']``."""
    if obsm is not None:
        return f"{name}.obsm[{obsm!r}]"
    if layer is not None:
        return f"{name}.layers[{layer!r}]"
    return f"{name}.X"


#: Rows read at once from a matrix that is not in memory (backed ``.h5ad``, zarr).
READ_BLOCK = 16_384


def in_memory(X) -> bool:
    """Whether ``X`` is an in-memory array or sparse matrix (not a backed/lazy dataset)."""
    return isinstance(X, np.ndarray) or sp.issparse(X)


def row_blocks(X, block: int = READ_BLOCK):
    """``(start, rows)`` over ``X``: the matrix itself if in memory, else row blocks.

    A backed ``.h5ad``'s or a lazily opened ``.zarr``'s ``X`` (or layer) is read ``block``
    rows at a time (:func:`~sccalmflow.data.read_backed`).
    """
    if in_memory(X):
        yield 0, X
        return
    n = X.shape[0]
    for start in range(0, n, block):
        yield start, X[start : min(start + block, n)]


def read_rows(X, rows: np.ndarray):
    """The rows ``rows`` (sorted positions) of ``X`` as an in-memory matrix."""
    rows = np.sort(np.asarray(rows))
    if in_memory(X):
        return X[rows]
    if not len(rows):
        return X[0:0]
    if hasattr(X, "oindex"):  # a zarr array: integer indexing is orthogonal indexing
        return X.oindex[rows]
    return X[rows]


def _values(X) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X)


def check_expression(X, where: str, *, log_scale: bool = True) -> None:
    """Check for finite, non-negative, log-scale expression (not raw counts, not z-scored).

    A matrix that is not in memory (backed ``.h5ad``) is read in row blocks.

    Parameters
    ----------
    X
        Cells x genes, dense or sparse, in memory or backed.
    where
        How error messages name ``X`` (e.g. ``"adata.X"``).
    log_scale
        ``False``: only finiteness is checked (the flow then lives in a given ``.obsm``
        space and ``X`` is only decoded to).
    """
    n_stored, n_nan, n_inf, size = 0, 0, 0, 0
    vmin, vmax, head, dtype = np.inf, -np.inf, None, None
    for _, block in row_blocks(X):
        vals = _values(block)
        dtype = vals.dtype
        if not np.issubdtype(dtype, np.number):
            raise TypeError(f"{where} must be numeric, got dtype {dtype}.")
        size += vals.size
        n_stored += block.nnz if sp.issparse(block) else int(np.count_nonzero(vals))
        finite = np.isfinite(vals)
        if not finite.all():
            nan = int(np.isnan(vals).sum())
            n_nan, n_inf = n_nan + nan, n_inf + int((~finite).sum()) - nan
            continue
        if vals.size:
            vmin, vmax = min(vmin, float(vals.min())), max(vmax, float(vals.max()))
        if head is None and vals.size:
            head = vals.ravel()[:100_000]
    if X.shape[0] * X.shape[1] == 0:
        raise ValueError(f"{where} is empty.")
    if size == 0:  # a sparse matrix that stores nothing
        raise ValueError(
            f"{where} is all zeros: there is no expression to learn from. Check that the "
            "matrix (or `layer=`) holds the normalised data."
        )
    if n_nan or n_inf:
        raise ValueError(
            f"{where} contains {n_nan} NaN and {n_inf} infinite value(s). Remove or impute them "
            "(e.g. `adata = adata[np.isfinite(adata.X.sum(1))]`) before setup."
        )
    if n_stored == 0 or vmin == vmax == 0:
        raise ValueError(
            f"{where} is all zeros: there is no expression to learn from. Check that the "
            "matrix (or `layer=`) holds the normalised data."
        )
    vals = head
    if not log_scale:
        return
    if np.issubdtype(dtype, np.integer) or np.issubdtype(dtype, np.bool_):
        raise ValueError(
            f"{where} has integer dtype {dtype}: it looks like raw counts, not "
            "log-normalised expression. Run `sc.pp.normalize_total(adata)` and `sc.pp.log1p(adata)` (keep "
            "counts in a layer), or pass `layer=` naming a log layer."
        )
    if vmin < 0:
        raise ValueError(
            f"{where} has negative values (min {vmin:.3g}): it looks scaled/z-scored. CaLMFlow "
            "expects log-normalised expression, e.g. `sc.pp.normalize_total(adata); "
            "sc.pp.log1p(adata)`, or pass `layer=` naming such a layer (or `.raw`'s values)."
        )
    is_integer = np.allclose(head, np.round(head))
    if vmax > 30 or (is_integer and vmax > 10):
        raise ValueError(
            f"{where} looks like raw counts (max {vmax:.3g}{', all integers' if is_integer else ''}). "
            "CaLMFlow expects log-normalised expression: run `sc.pp.normalize_total(adata)` and "
            "`sc.pp.log1p(adata)` (keep counts in a layer), or pass `layer=` naming a log layer."
        )
