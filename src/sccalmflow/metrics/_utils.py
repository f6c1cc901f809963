"""Input handling shared by the metric families: arrays, AnnData, validation, subsampling."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import get_matrix, is_anndata
from ..utils import check_int

#: Anything a metric accepts as a set of cells: a cells x features array (dense or sparse),
#: a DataFrame, or an AnnData (with ``obsm``/``layer`` naming the matrix).
ArrayLike = Any


def as_matrix(
    data: ArrayLike,
    *,
    obsm: str | None = None,
    layer: str | None = None,
    name: str = "x",
    allow_1d: bool = False,
    keep_sparse: bool = False,
):
    """Return ``data`` as a finite, non-empty float64 ``cells x features`` array.

    The one way the metrics read a set of cells: an AnnData's matrix is read with
    :func:`~sccalmflow.data.get_matrix`, anything else is taken as the matrix itself.

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
    keep_sparse
        Return a sparse matrix as stored (checked for emptiness and finite values) instead
        of a dense float64 copy.
    """
    if is_anndata(data):
        mat = get_matrix(data, layer=layer, obsm=obsm, name=name)
    elif obsm is not None or layer is not None:
        raise TypeError(f"{name}: `obsm`/`layer` are only meaningful for AnnData input.")
    else:
        mat = data
    if isinstance(mat, pd.DataFrame):
        mat = mat.to_numpy()
    if not sp.issparse(mat):
        try:
            mat = np.asarray(mat)
        except (TypeError, ValueError) as err:  # e.g. ragged nested lists
            raise TypeError(_not_numeric(name, data, "an irregular sequence")) from err
    if mat.dtype.kind not in "biuf":
        raise TypeError(_not_numeric(name, data, f"dtype {mat.dtype}"))
    if sp.issparse(mat):
        if keep_sparse:
            if mat.shape[0] == 0 or mat.shape[1] == 0:
                raise ValueError(f"{name} is empty (shape {mat.shape}).")
            _check_finite(mat.data, name)
            return mat
        mat = mat.toarray()
    arr = np.asarray(mat, dtype=np.float64)
    if arr.ndim == 1 and allow_1d:
        pass
    elif arr.ndim != 2:
        raise ValueError(f"{name} must be a 2-D cells x features array, got shape {arr.shape}.")
    if arr.shape[0] == 0 or arr.size == 0:
        raise ValueError(f"{name} is empty (shape {arr.shape}).")
    _check_finite(arr, name)
    return arr


def _not_numeric(name: str, data: Any, what: str) -> str:
    return (
        f"`{name}` must be a numeric cells x features array (numpy array, scipy.sparse matrix, "
        f"DataFrame or AnnData), got {type(data).__name__} ({what})."
    )


def _check_finite(values: np.ndarray, name: str) -> None:
    if not np.isfinite(values).all():
        n_bad = int((~np.isfinite(values)).sum())
        raise ValueError(f"{name} contains {n_bad} NaN or infinite value(s).")


def check_pair(x: np.ndarray, y: np.ndarray, names: tuple[str, str] = ("x", "y")) -> None:
    """Raise if two cells x features arrays do not have the same number of features."""
    if x.shape[-1] != y.shape[-1]:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same number of features; got "
            f"{x.shape[-1]} and {y.shape[-1]} (shapes {x.shape} and {y.shape})."
        )


def check_n_max(name: str, n_max: Any) -> int | None:
    """``None`` (no limit) or a positive integer, as the argument ``name``."""
    return None if n_max is None else check_int(name, n_max, minimum=1)


def subsample(
    x: np.ndarray, n_max: int | None, rng: np.random.Generator, *, name: str = "n_max"
) -> tuple[np.ndarray, bool]:
    """At most ``n_max`` rows of ``x`` drawn without replacement (order kept).

    Returns the rows and whether subsampling happened. ``n_max=None`` keeps everything;
    otherwise it must be a positive integer (error messages call it ``name``).
    """
    n_max = check_n_max(name, n_max)
    if n_max is None or x.shape[0] <= n_max:
        return x, False
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
    if isinstance(genes, str):
        raise TypeError(
            f"`genes` must be a list of gene names, positions or a boolean mask, got the "
            f"string {genes!r}: pass [{genes!r}]."
        )
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
        missing = [str(g) for g in arr.astype(str)[pos < 0]]
        raise KeyError(f"{len(missing)} gene(s) not found, e.g. {missing[:5]}.")
    return pos
