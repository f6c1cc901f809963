"""A joint 2-d embedding of generated and real cells, per condition.

Drawn by :func:`sccalmflow.pl.embedding_overlay`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from ..data import PCA_KEY, check_anndata, check_same_pca, dense, get_matrix, rows_of
from ..metrics import joint_umap
from ..utils import check_seed
from ._utils import (
    check_components,
    check_control,
    check_n_max,
    check_umap_kwargs,
    infer_condition_keys,
    ordered_conditions,
    subsample,
)


@dataclass(frozen=True)
class OverlayPanel:
    """The cells of one condition shown in :func:`sccalmflow.pl.embedding_overlay`.

    Attributes
    ----------
    title
        The condition's values joined by ``" · "`` (``"all cells"`` without keys).
    pred
        Rows of ``pred`` (the generated cells of the condition, subsampled).
    real
        Rows of ``real`` with the same condition.
    control
        Rows of ``real``: the control cells of the condition's context (empty without
        ``control`` or for a control condition).
    n_distinct_pred
        Number of distinct cells among ``pred`` (distinct rows of their PCA coordinates):
        fewer than ``len(pred)`` when generated cells repeat (the deterministic head with
        more cells than source cells). ``None``: not counted.
    """

    title: str
    pred: np.ndarray
    real: np.ndarray
    control: np.ndarray
    n_distinct_pred: int | None = None


@dataclass(frozen=True)
class EmbeddingOverlay:
    """Generated and real cells in one 2-d embedding: the result of :func:`embedding`.

    Attributes
    ----------
    pred, real
        The AnnData objects given to :func:`embedding` (not copied, not modified).
    pred_coords, real_coords
        2-d coordinates of every cell of ``pred`` and ``real`` (float64, ``n_obs x 2``);
        with ``basis="umap"`` only the cells shown have coordinates, the others are NaN.
    panels
        One :class:`OverlayPanel` per condition of ``pred``, in order of appearance.
    basis
        ``"umap"`` or ``"pca"``.
    axis_labels
        ``("UMAP1", "UMAP2")`` or the principal components shown, e.g. ``("PC1", "PC2")``.
    condition_keys
        The ``.obs`` columns defining a condition.
    control
        The control values (``{}`` without control cells).
    """

    pred: Any
    real: Any
    pred_coords: np.ndarray
    real_coords: np.ndarray
    panels: list[OverlayPanel]
    basis: str
    axis_labels: tuple[str, str]
    condition_keys: list[str]
    control: dict[str, str]


def _pca(adata, key: str, name: str) -> np.ndarray:
    return dense(get_matrix(adata, obsm=key, name=name))


def n_distinct_rows(mat: np.ndarray) -> int:
    """Number of distinct rows of a 2-d array (repeated generated cells count once)."""
    mat = np.asarray(mat)
    if mat.shape[0] == 0:
        return 0
    return int(np.unique(np.ascontiguousarray(mat), axis=0).shape[0])


def _panels(pred, real, keys, control, n_max, seed, zp) -> list[OverlayPanel]:
    """The cells of each condition (subsampled in one seeded stream, in panel order)."""
    rng = np.random.default_rng(seed)
    panels = []
    for cond in ordered_conditions(pred.obs, keys):
        ip = subsample(rows_of(pred.obs, keys, cond), n_max, rng)
        ir = subsample(rows_of(real.obs, keys, cond), n_max, rng)
        ic = np.array([], dtype=int)
        is_ctrl = bool(control) and all(cond[keys.index(k)] == v for k, v in control.items())
        if control and not is_ctrl:
            ctrl = [control.get(k, v) for k, v in zip(keys, cond, strict=True)]
            ic = subsample(rows_of(real.obs, keys, ctrl), n_max, rng)
        title = " · ".join(cond) if cond else "all cells"
        panels.append(OverlayPanel(title, ip, ir, ic, n_distinct_rows(zp[ip])))
    return panels


def embedding(
    pred,
    real,
    *,
    basis: Literal["umap", "pca"] = "umap",
    control: Mapping[str, str] | None = None,
    condition_keys: Sequence[str] | str | None = None,
    pca_key: str = PCA_KEY,
    components: tuple[int, int] = (0, 1),
    n_max: int | None = 2000,
    seed: int = 0,
    umap_kwargs: Mapping[str, Any] | None = None,
) -> EmbeddingOverlay:
    """Generated and real cells of each condition in one 2-d embedding.

    For each condition of ``pred`` picks the cells to show (its generated cells, the real
    cells of the same condition and, with ``control``, the real control cells of the same
    context, e.g. the unstimulated cells of the same cell type), at most ``n_max`` of each,
    and places them in 2-d: a UMAP fitted jointly on the PCA coordinates of every cell
    picked (:func:`sccalmflow.metrics.joint_umap`, seeded), or two principal components.
    Draw the result with :func:`sccalmflow.pl.embedding_overlay`.

    Parameters
    ----------
    pred : anndata.AnnData
        Generated cells (from :meth:`~sccalmflow.CaLMFlowModel.predict` or a baseline)
        with the condition columns in ``.obs`` and PCA coordinates in ``obsm[pca_key]``.
    real : anndata.AnnData
        Real cells with the same condition columns and ``obsm[pca_key]`` in the **same**
        PCA space: ``model.add_pca(real)`` writes it (with the projection's fingerprint,
        leaving scanpy's ``X_pca`` alone). Different fingerprints on ``pred`` and ``real``
        are an error.
    basis : {"umap", "pca"}
        ``"umap"``: one 2-d UMAP fitted jointly on every cell picked; ``"pca"``: two
        principal components (``components``).
    control : dict, optional
        Control values of some condition keys (``{"condition": "control"}``): also pick the
        real control cells of each condition's context.
    condition_keys : str or list of str, optional
        ``.obs`` columns defining a condition. Default: the columns of ``pred.obs`` that are
        also in ``real.obs`` (except ``prompt`` and ``source_cell``).
    pca_key : str
        Key of the PCA coordinates in ``.obsm`` (default: the model's,
        ``"X_calmflow_pca"``).
    components : tuple of int
        Principal components with ``basis="pca"`` (0-based).
    n_max : int, optional
        At most this many cells per set and condition (random, ``seed``); ``None``: all.
    seed : int
        Seed of the subsampling and of UMAP.
    umap_kwargs : dict, optional
        Extra arguments of :func:`~sccalmflow.metrics.joint_umap` (``n_neighbors``,
        ``min_dist``...).

    Returns
    -------
    EmbeddingOverlay
        The cells of each panel and the 2-d coordinates of ``pred`` and ``real``.

    Examples
    --------
    >>> model.add_pca(real)
    >>> pred = model.predict({"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}, 500)
    >>> overlay = sccalmflow.tl.embedding(pred, real, control={"condition": "control"})
    >>> sccalmflow.pl.embedding_overlay(overlay)
    """
    check_anndata(pred, "pred")
    check_anndata(real, "real")
    if basis not in ("umap", "pca"):
        raise ValueError(f"basis must be 'umap' or 'pca', not {basis!r}.")
    n_max, seed = check_n_max(n_max), check_seed("seed", seed)
    umap_kwargs = check_umap_kwargs(umap_kwargs)
    keys = infer_condition_keys(pred, real, condition_keys)
    control = check_control(control, keys)
    check_same_pca(pred, real, pca_key)
    zp, zr = _pca(pred, pca_key, "pred"), _pca(real, pca_key, "real")
    if zp.shape[1] != zr.shape[1]:
        raise ValueError(
            f"pred and real have PCA coordinates of different widths ({zp.shape[1]} vs "
            f"{zr.shape[1]}): they must come from the same projection."
        )
    c0, c1 = check_components(components, zp.shape[1])
    panels = _panels(pred, real, keys, control, n_max, seed, zp)
    if basis == "pca":
        ep, er = zp[:, [c0, c1]], zr[:, [c0, c1]]
        labels = (f"PC{c0 + 1}", f"PC{c1 + 1}")
    else:
        used_p = np.unique(np.concatenate([p.pred for p in panels]))
        used_r = np.unique(np.concatenate([np.concatenate([p.real, p.control]) for p in panels]))
        emb_r, emb_p = joint_umap(zr[used_r], zp[used_p], n_components=2, seed=seed, **umap_kwargs)
        ep = np.full((pred.n_obs, 2), np.nan)
        er = np.full((real.n_obs, 2), np.nan)
        ep[used_p], er[used_r] = emb_p, emb_r
        labels = ("UMAP1", "UMAP2")
    return EmbeddingOverlay(pred, real, ep, er, panels, basis, labels, keys, control)
