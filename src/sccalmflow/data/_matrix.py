"""Reading a cells x features matrix from an AnnData, and checking expression values."""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse as sp


def is_anndata(obj: Any) -> bool:
    """Whether ``obj`` is an :class:`~anndata.AnnData` (views included)."""
    import anndata as ad

    return isinstance(obj, ad.AnnData)


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


def _values(X) -> np.ndarray:
    return X.data if sp.issparse(X) else np.asarray(X)


def check_expression(X, where: str, *, log_scale: bool = True) -> None:
    """Check for finite, non-negative, log-scale expression (not raw counts, not z-scored).

    Parameters
    ----------
    X
        Cells x genes, dense or sparse.
    where
        How error messages name ``X`` (e.g. ``"adata.X"``).
    log_scale
        ``False``: only finiteness is checked (the flow then lives in a given ``.obsm``
        space and ``X`` is only decoded to).
    """
    if sp.issparse(X) and X.shape[0] * X.shape[1] > 0 and X.nnz == 0:
        raise ValueError(
            f"{where} is all zeros: there is no expression to learn from. Check that the "
            "matrix (or `layer=`) holds the normalised data."
        )
    vals = _values(X)
    if vals.size == 0:
        raise ValueError(f"{where} is empty.")
    if not np.issubdtype(vals.dtype, np.number):
        raise TypeError(f"{where} must be numeric, got dtype {vals.dtype}.")
    finite = np.isfinite(vals)
    if not finite.all():
        n_nan = int(np.isnan(vals).sum())
        n_inf = int((~finite).sum()) - n_nan
        raise ValueError(
            f"{where} contains {n_nan} NaN and {n_inf} infinite value(s). Remove or impute them "
            "(e.g. `adata = adata[np.isfinite(adata.X.sum(1))]`) before setup."
        )
    vmin, vmax = float(vals.min()), float(vals.max())
    if vmin == vmax == 0:
        raise ValueError(
            f"{where} is all zeros: there is no expression to learn from. Check that the "
            "matrix (or `layer=`) holds the normalised data."
        )
    if not log_scale:
        return
    if np.issubdtype(vals.dtype, np.integer) or vals.dtype == bool:
        raise ValueError(
            f"{where} has integer dtype {vals.dtype}: it looks like raw counts, not "
            "log-normalised expression. Run `sc.pp.normalize_total(adata)` and `sc.pp.log1p(adata)` (keep "
            "counts in a layer), or pass `layer=` naming a log layer."
        )
    if vmin < 0:
        raise ValueError(
            f"{where} has negative values (min {vmin:.3g}): it looks scaled/z-scored. CaLMFlow "
            "expects log-normalised expression, e.g. `sc.pp.normalize_total(adata); "
            "sc.pp.log1p(adata)`, or pass `layer=` naming such a layer (or `.raw`'s values)."
        )
    head = vals[: min(vals.size, 100_000)]
    is_integer = np.allclose(head, np.round(head))
    if vmax > 30 or (is_integer and vmax > 10):
        raise ValueError(
            f"{where} looks like raw counts (max {vmax:.3g}{', all integers' if is_integer else ''}). "
            "CaLMFlow expects log-normalised expression: run `sc.pp.normalize_total(adata)` and "
            "`sc.pp.log1p(adata)` (keep counts in a layer), or pass `layer=` naming a log layer."
        )
