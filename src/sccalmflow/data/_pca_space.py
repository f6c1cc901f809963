"""The model's PCA coordinates in an AnnData: one key, and a fingerprint of the projection.

Predictions (of :class:`~sccalmflow.CaLMFlowModel` and of the baselines) store their PCA
coordinates in ``obsm["X_calmflow_pca"]`` and the fingerprint of the projection in
``uns["calmflow_pca"]["fingerprint"]``; ``model.add_pca(real)`` writes the same for real
cells, next to (never over) scanpy's ``X_pca``. Code that compares two such objects calls
:func:`check_same_pca` first, so coordinates of two different projections are never
compared silently.
"""

from __future__ import annotations

from typing import Any

import numpy as np

PCA_KEY = "X_calmflow_pca"
"""``.obsm`` key of the model's PCA coordinates (scanpy's own PCA stays in ``X_pca``)."""

ADD_PCA_HINT = "model.add_pca(real)"


def pca_uns_key(key: str) -> str:
    """The ``.uns`` entry holding the fingerprint of ``obsm[key]`` (``key`` without ``X_``).

    Parameters
    ----------
    key
        ``.obsm`` key, e.g. ``"X_calmflow_pca"``.

    Returns
    -------
    ``"calmflow_pca"`` for ``"X_calmflow_pca"`` (scanpy's ``X_pca`` / ``uns["pca"]`` rule).
    """
    return key[2:] if key.startswith("X_") else key


def pca_fingerprint(adata: Any, key: str = PCA_KEY) -> str | None:
    """The fingerprint stored with ``adata.obsm[key]``, or ``None`` when there is none.

    Parameters
    ----------
    adata
        An :class:`~anndata.AnnData`.
    key
        ``.obsm`` key of the coordinates.

    Returns
    -------
    The fingerprint string, or ``None``.
    """
    entry = adata.uns.get(pca_uns_key(key))
    if isinstance(entry, dict) and entry.get("fingerprint") is not None:
        return str(entry["fingerprint"])
    return None


def write_pca(adata: Any, coords: np.ndarray, fingerprint: str, key: str = PCA_KEY) -> None:
    """Store PCA coordinates and their projection's fingerprint in ``adata`` (in place).

    Writes ``adata.obsm[key] = coords`` and ``adata.uns[key without "X_"] =
    {"fingerprint": fingerprint}``; nothing else (scanpy's ``X_pca`` is left alone).

    Parameters
    ----------
    adata
        The :class:`~anndata.AnnData` to write into.
    coords
        ``(n_obs, n_components)`` coordinates.
    fingerprint
        :meth:`~sccalmflow.data.PCAFeatures.fingerprint` of the projection.
    key
        ``.obsm`` key; not scanpy's ``"X_pca"`` (nor ``"pca"``), whose ``uns["pca"]`` the
        fingerprint would replace.
    """
    if not isinstance(key, str) or not key:
        raise TypeError(f"`key` must be a non-empty .obsm key (a string), got {key!r}.")
    if pca_uns_key(key) == "pca":
        raise ValueError(
            f"`key={key!r}` would overwrite scanpy's PCA (obsm['X_pca'] and uns['pca'], the "
            "basis of its neighbours and UMAP); use another key, e.g. the default "
            f"{PCA_KEY!r}."
        )
    coords = np.asarray(coords)
    if coords.ndim != 2 or coords.shape[0] != adata.n_obs:
        raise ValueError(
            f"PCA coordinates of shape {coords.shape} do not fit an AnnData with "
            f"{adata.n_obs} cells: pass one row per cell."
        )
    adata.obsm[key] = coords
    adata.uns[pca_uns_key(key)] = {"fingerprint": str(fingerprint)}


def check_same_pca(pred: Any, real: Any, key: str = PCA_KEY) -> None:
    """Refuse to compare ``pred.obsm[key]`` and ``real.obsm[key]`` from different projections.

    Parameters
    ----------
    pred, real
        :class:`~anndata.AnnData` objects (generated and real cells).
    key
        ``.obsm`` key of the PCA coordinates.

    Raises
    ------
    KeyError
        When ``real`` (or ``pred``) lacks ``obsm[key]``.
    ValueError
        When the two carry different fingerprints, or only one carries a fingerprint.
    """
    for name, a in (("pred", pred), ("real", real)):
        if key not in a.obsm:
            hint = (
                f" Add the model's projection of the real cells with `{ADD_PCA_HINT}` "
                f"(it writes obsm[{PCA_KEY!r}] and leaves scanpy's 'X_pca' alone)."
                if name == "real"
                else " Predictions of the model and of the baselines carry "
                f"obsm[{PCA_KEY!r}]; for real cells use `model.add_pca(cells)`."
            )
            raise KeyError(f"{name}.obsm[{key!r}] not found.{hint}")
    fp, fr = pca_fingerprint(pred, key), pca_fingerprint(real, key)
    if fp == fr:
        return
    if fp is None or fr is None:
        has, lacks = ("pred", "real") if fr is None else ("real", "pred")
        raise ValueError(
            f"{has}.obsm[{key!r}] comes from the projection with fingerprint "
            f"{fp or fr!r} but {lacks}.obsm[{key!r}] carries no fingerprint "
            f"(uns[{pca_uns_key(key)!r}]), so they may be two different PCA spaces. Project "
            f"the real cells with the model: `{ADD_PCA_HINT}`."
        )
    raise ValueError(
        f"pred.obsm[{key!r}] (PCA fingerprint {fp!r}) and real.obsm[{key!r}] (fingerprint "
        f"{fr!r}) come from different projections: comparing them would mix two spaces. "
        f"Project the real cells with the model that made pred: `{ADD_PCA_HINT}`."
    )
