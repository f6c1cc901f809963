"""Write an ``.h5ad`` file row block by row block: outputs larger than memory."""

from __future__ import annotations

from os import PathLike
from pathlib import Path

import numpy as np
import pandas as pd

#: Rows decoded and written at once by streaming writers.
ROW_BLOCK = 8192


def check_h5ad_path(path: str | PathLike, name: str = "out") -> Path:
    """A new ``.h5ad`` path in an existing folder (an existing file is never overwritten)."""
    if not isinstance(path, str | PathLike):
        raise TypeError(f"`{name}` must be a file path, got {type(path).__name__}.")
    path = Path(path)
    if path.suffix != ".h5ad":
        raise ValueError(f"`{name}` must end in .h5ad, got {str(path)!r}.")
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
        from anndata.io import write_elem

        try:
            write_elem(self._file, "obs", obs)
            write_elem(self._file, "var", var)
            write_elem(self._file, "uns", uns)
            for name in ("layers", "obsp", "varm", "varp"):
                write_elem(self._file, name, {})
        finally:
            self._file.close()

    def abort(self) -> None:
        """Close and delete the incomplete file."""
        self._file.close()
        self.path.unlink(missing_ok=True)
