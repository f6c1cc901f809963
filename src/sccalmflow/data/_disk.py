"""AnnData on disk: files written row block by row block, and opened with ``X`` left there.

- :class:`H5adRowWriter`: a dense ``.h5ad`` (streaming :meth:`~sccalmflow.CaLMFlowModel.predict`).
- :class:`SparseRowWriter`: a CSR ``.h5ad`` or ``.zarr`` (the synthetic screen on disk).
- :func:`read_backed`: an ``.h5ad`` or ``.zarr`` whose matrices stay on disk.
"""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd
import scipy.sparse as sp

#: Rows decoded and written at once by streaming writers.
ROW_BLOCK = 8192


#: Suffixes of the stores :func:`read_backed` opens and :class:`SparseRowWriter` writes.
STORE_SUFFIXES = (".h5ad", ".zarr")


def check_h5ad_path(path: str | PathLike, name: str = "out") -> Path:
    """A new ``.h5ad`` path in an existing folder (an existing file is never overwritten)."""
    return check_store_path(path, name, suffixes=(".h5ad",))


def check_store_path(
    path: str | PathLike, name: str = "path", suffixes: tuple[str, ...] = STORE_SUFFIXES
) -> Path:
    """A new ``.h5ad`` file or ``.zarr`` folder in an existing folder (never overwritten)."""
    if not isinstance(path, str | PathLike):
        raise TypeError(f"`{name}` must be a file path, got {type(path).__name__}.")
    path = Path(path)
    if path.suffix not in suffixes:
        raise ValueError(f"`{name}` must end in {' or '.join(suffixes)}, got {str(path)!r}.")
    if path.exists():
        raise FileExistsError(f"{path} exists: remove it or choose another `{name}` path.")
    if not path.parent.is_dir():
        raise FileNotFoundError(f"The folder of `{name}` ({path.parent}) does not exist.")
    return path


class H5adRowWriter:
    """An ``.h5ad`` whose dense ``X`` and ``obsm`` arrays are filled block by block.

    The file follows anndata's on-disk format (dense arrays with ``encoding-type="array"``),
    so ``anndata.read_h5ad(path, backed="r")`` opens it without reading ``X``. Call
    :meth:`write_rows` for consecutive row blocks, then :meth:`finish` with ``obs``, ``var``
    and ``uns``; until then the file is incomplete.

    Parameters
    ----------
    path
        The new file.
    n_obs, n_vars
        Shape of ``X``.
    obsm
        ``{key: n_columns}`` of the dense ``.obsm`` arrays to fill.
    """

    def __init__(self, path: str | PathLike, n_obs: int, n_vars: int, obsm: dict[str, int]):
        import h5py

        self.path = Path(path)
        self.n_obs = int(n_obs)
        self._file = h5py.File(self.path, "w")
        self._file.attrs["encoding-type"] = "anndata"
        self._file.attrs["encoding-version"] = "0.1.0"
        self._X = self._array("X", n_vars)
        group = self._file.create_group("obsm")
        group.attrs["encoding-type"] = "dict"
        group.attrs["encoding-version"] = "0.1.0"
        self._obsm = {k: self._array(f"obsm/{k}", d) for k, d in obsm.items()}

    def _array(self, name: str, n_cols: int):
        chunks = (max(1, min(self.n_obs, 1024)), max(1, n_cols)) if self.n_obs and n_cols else None
        ds = self._file.create_dataset(
            name, shape=(self.n_obs, n_cols), dtype="float32", chunks=chunks
        )
        ds.attrs["encoding-type"] = "array"
        ds.attrs["encoding-version"] = "0.2.0"
        return ds

    def write_rows(self, start: int, X: np.ndarray, obsm: dict[str, np.ndarray]) -> None:
        """Rows ``start : start + len(X)`` of ``X`` and of every ``obsm`` array."""
        stop = start + len(X)
        if X.shape[1]:
            self._X[start:stop] = np.asarray(X, dtype=np.float32)
        for key, values in obsm.items():
            self._obsm[key][start:stop] = np.asarray(values, dtype=np.float32)

    def finish(self, obs: pd.DataFrame, var: pd.DataFrame, uns: dict) -> None:
        """Write ``obs``, ``var`` and ``uns`` (and the empty groups) and close the file."""
        try:
            write_annotations(self._file, obs, var, uns, empty=("layers", "obsp", "varm", "varp"))
        finally:
            self._file.close()

    def abort(self) -> None:
        """Close and delete the incomplete file."""
        self._file.close()
        self.path.unlink(missing_ok=True)


def write_annotations(store, obs, var, uns, *, empty: tuple[str, ...], **kwargs) -> None:
    """Write ``obs``, ``var``, ``uns`` and the ``empty`` groups of an AnnData store."""
    from anndata.io import write_elem

    for key, value in {"obs": obs, "var": var, "uns": uns, **dict.fromkeys(empty, {})}.items():
        write_elem(store, key, value, **kwargs)


class SparseRowWriter:
    """A CSR ``.h5ad`` file or ``.zarr`` folder filled block of rows by block of rows.

    ``X`` (float32) and the named layers are CSR matrices that grow with every
    :meth:`write_rows` (anndata's ``sparse_dataset(...).append``), so memory holds one block.
    Use as a context manager: leaving it with an error deletes the incomplete store.

    Parameters
    ----------
    path
        The new store (:func:`check_store_path`).
    n_vars
        Columns of ``X`` and of every layer.
    layers
        ``{name: dtype}`` of the layers to write beside ``X``.
    """

    def __init__(self, path: str | PathLike, n_vars: int, layers: dict[str, str] | None = None):
        self.path = Path(path)
        self.n_vars = int(n_vars)
        self.layer_dtypes = dict(layers or {})
        if self.path.suffix == ".zarr":
            import zarr

            self._store = zarr.open_group(self.path, mode="w-")
            # unsharded chunks (anndata warns that its default will change)
            self._kwargs: dict = {"dataset_kwargs": {"shards": None}}
        else:
            import h5py

            self._store = h5py.File(self.path, "w-")
            self._kwargs = {}
        self._datasets: dict[str, object] = {}
        self.n_obs = 0
        from anndata.io import write_elem

        write_elem(self._store, "layers", {}, **self._kwargs)  # the group, with its encoding

    def __enter__(self) -> SparseRowWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is not None:
            self.abort()

    def _append(self, key: str, block) -> None:
        from anndata.io import sparse_dataset, write_elem

        if key not in self._datasets:
            write_elem(self._store, key, block, **self._kwargs)
            self._datasets[key] = sparse_dataset(self._store[key])
        else:
            self._datasets[key].append(block)

    def write_rows(self, X, layers: dict | None = None) -> None:
        """Append the rows ``X`` (dense or sparse) and the same rows of every layer."""
        layers = layers or {}
        if set(layers) != set(self.layer_dtypes):
            raise ValueError(
                f"Expected the layers {sorted(self.layer_dtypes)}, got {sorted(layers)}."
            )
        if X.shape[1] != self.n_vars:
            raise ValueError(f"Expected {self.n_vars} columns, got {X.shape[1]}.")
        self._append("X", sp.csr_matrix(X, dtype=np.float32))
        for name, values in layers.items():
            self._append(f"layers/{name}", sp.csr_matrix(values, dtype=self.layer_dtypes[name]))
        self.n_obs += X.shape[0]

    def finish(self, obs: pd.DataFrame, var: pd.DataFrame, uns: dict) -> None:
        """Write ``obs``, ``var``, ``uns`` and the empty groups, and close the store."""
        if len(obs) != self.n_obs or len(var) != self.n_vars:
            raise ValueError(
                f"obs/var have {len(obs)} x {len(var)} rows; the rows written are "
                f"{self.n_obs} x {self.n_vars}."
            )
        write_annotations(
            self._store, obs, var, uns, empty=("obsm", "obsp", "varm", "varp"), **self._kwargs
        )
        self._store.attrs["encoding-type"] = "anndata"
        self._store.attrs["encoding-version"] = "0.1.0"
        self._close()

    def _close(self) -> None:
        if hasattr(self._store, "close"):
            self._store.close()

    def abort(self) -> None:
        """Close and delete the incomplete store."""
        import shutil

        self._close()
        if self.path.is_dir():
            shutil.rmtree(self.path, ignore_errors=True)
        else:
            self.path.unlink(missing_ok=True)


def read_backed(path: str | PathLike):
    """Open an ``.h5ad`` file or ``.zarr`` folder with ``X`` and the layers left on disk.

    ``.h5ad``: ``anndata.read_h5ad(path, backed="r")``. ``.zarr``: ``obs``, ``var``,
    ``obsm`` and ``uns`` are read; ``X`` and every layer stay on disk as anndata's sparse
    datasets (sparse) or zarr arrays (dense), read a block of rows at a time by
    :func:`~sccalmflow.data.row_blocks` (needs no dask). Either can be registered with
    :meth:`~sccalmflow.CaLMFlowModel.setup_anndata` without loading the matrix.

    Parameters
    ----------
    path
        An existing ``.h5ad`` file or ``.zarr`` folder written by anndata.

    Returns
    -------
    :class:`~anndata.AnnData` whose ``X`` is not in memory.
    """
    import anndata as ad

    if not isinstance(path, str | PathLike):
        raise TypeError(f"`path` must be a file path, got {type(path).__name__}.")
    path = Path(path)
    if path.suffix not in STORE_SUFFIXES:
        raise ValueError(f"`path` must end in .h5ad or .zarr, got {str(path)!r}.")
    if not path.exists():
        raise FileNotFoundError(f"{path} does not exist.")
    if path.suffix == ".h5ad":
        return ad.read_h5ad(path, backed="r")
    import zarr
    from anndata.io import read_elem, sparse_dataset

    store = zarr.open_group(path, mode="r")

    def lazy(node):
        kind = node.attrs.get("encoding-type", "")
        if kind in ("csr_matrix", "csc_matrix"):
            return sparse_dataset(node)
        if kind == "array":
            return node
        raise ValueError(f"{path}: cannot keep a {kind!r} element on disk.")

    def read(key):
        return read_elem(store[key]) if key in store else None

    layers = {k: lazy(store[f"layers/{k}"]) for k in store["layers"]} if "layers" in store else {}
    return ad.AnnData(
        X=lazy(store["X"]) if "X" in store else None,
        obs=read("obs"),
        var=read("var"),
        obsm=read("obsm") or None,
        uns=read("uns") or None,
        layers=layers or None,
    )
