"""The generated flow in 2-d: paths from the sources to the generated cells.

Drawn by :func:`sccalmflow.pl.trajectories`.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np
import pandas as pd

from ..data import get_matrix
from ..utils import keep_torch_threads
from ._utils import (
    check_components,
    check_n_max,
    check_umap_kwargs,
    ordered_conditions,
    progress,
    subsample,
)


@dataclass(frozen=True)
class Trajectories:
    """Generated paths and real cells in one 2-d basis: the result of :func:`trajectories`.

    Attributes
    ----------
    paths
        ``n x T x 2``: every state of each generated path, in the 2-d basis.
    time_grid
        The ``T`` times of the states (``0`` = source ... ``1`` = generated cell).
    prediction
        The model's prediction (``return_trajectories=True``, ``decode=False``): ``.obs``
        gives each path's condition, ``obsm["X_trajectory"]`` the paths in PCA space.
    conditions
        The requested conditions (tuples of values of ``condition_keys``), in order.
    condition_keys
        The model's condition keys.
    background
        ``m x 2``: the real cells shown behind the paths (subsampled), in the 2-d basis.
    background_obs
        ``.obs`` of those real cells (same order).
    basis
        ``"pca"`` or ``"umap"``.
    axis_labels
        E.g. ``("PC1", "PC2")`` or ``("UMAP1", "UMAP2")``.
    """

    paths: np.ndarray
    time_grid: np.ndarray
    prediction: Any
    conditions: list[tuple[str, ...]]
    condition_keys: list[str]
    background: np.ndarray
    background_obs: pd.DataFrame
    basis: str
    axis_labels: tuple[str, str]


def _umap(bg: np.ndarray, paths: np.ndarray, seed: int, umap_kwargs, bar) -> tuple:
    """A 2-d UMAP fitted on ``bg``; ``paths`` (``n x T x D``) projected into it."""
    import umap

    n, T, D = paths.shape
    kw = {"n_neighbors": 15, "min_dist": 0.1, **umap_kwargs}
    reducer = umap.UMAP(n_components=2, random_state=seed, **kw)
    with warnings.catch_warnings(), keep_torch_threads():
        warnings.simplefilter("ignore")
        bar.set_postfix_str("fitting UMAP on the real cells")
        emb_bg = reducer.fit_transform(bg)
        bar.update(1)
        bar.set_postfix_str(f"projecting {n * T} path states")
        emb_paths = reducer.transform(paths.reshape(n * T, D)).reshape(n, T, 2)
        bar.update(1)
    return np.asarray(emb_bg, dtype=np.float64), np.asarray(emb_paths, dtype=np.float64)


def trajectories(
    model,
    conditions: pd.DataFrame | Mapping[str, Sequence] | None,
    *,
    n_cells: int = 50,
    basis: Literal["pca", "umap"] = "pca",
    components: tuple[int, int] = (0, 1),
    real=None,
    layer: str | None = None,
    seed: int = 0,
    temperature: float | None = None,
    n_max: int | None = 3000,
    umap_kwargs: Mapping[str, Any] | None = None,
    progress_bar: bool | None = None,
) -> Trajectories:
    """Generate cells with their paths and place paths and real cells in one 2-d basis.

    Generates ``n_cells`` cells per condition with
    :meth:`~sccalmflow.CaLMFlowModel.predict` (``return_trajectories=True``): each path
    runs over the time grid from its source (``t = 0``: a control cell or noise) to the
    generated cell (``t = 1``). Draw the result with :func:`sccalmflow.pl.trajectories`.

    Parameters
    ----------
    model : sccalmflow.CaLMFlowModel
        A trained model.
    conditions : pandas.DataFrame or dict
        One row per condition, as in :meth:`~sccalmflow.CaLMFlowModel.predict`.
    n_cells : int
        Paths per condition.
    basis : {"pca", "umap"}
        ``"pca"``: two components of the model's PCA space (``components``); ``"umap"``: a
        2-d UMAP fitted on the real cells, into which the path states are projected with
        ``UMAP.transform`` (states between source and target are placed next to their
        nearest real cells, so read it qualitatively).
    components : tuple of int
        Principal components with ``basis="pca"`` (0-based).
    real : anndata.AnnData, optional
        Real cells for the background (projected with ``model.get_pca``); default: the
        model's registered cells.
    layer : str, optional
        Expression layer of ``real``.
    seed : int
        Seed of the generation (and of the subsampling and UMAP).
    temperature : float, optional
        Sampling temperature (default: the model's).
    n_max : int, optional
        At most this many background cells (``None``: all).
    umap_kwargs : dict, optional
        Extra arguments of :class:`umap.UMAP` with ``basis="umap"``.
    progress_bar : bool, optional
        Show a progress bar over the steps (tqdm): generating the paths and, with
        ``basis="umap"``, fitting UMAP and projecting the path states. ``None`` (default):
        with ``basis="umap"`` (the slow one). The bar changes no number.

    Returns
    -------
    Trajectories
        The paths and the background cells in 2-d, with the prediction.

    Examples
    --------
    >>> paths = sccalmflow.tl.trajectories(model, {"cell_type": ["B"], "condition": ["IFN-beta"]})
    >>> sccalmflow.pl.trajectories(paths)
    """
    if basis not in ("pca", "umap"):
        raise ValueError(f"basis must be 'pca' or 'umap', not {basis!r}.")
    if not hasattr(model, "module") or not hasattr(model, "predict"):
        raise TypeError(
            f"`model` must be a trained CaLMFlowModel (its paths are drawn), got "
            f"{type(model).__name__}."
        )
    c0, c1 = check_components(components, model.module.n_features)
    n_max, umap_kwargs = check_n_max(n_max), check_umap_kwargs(umap_kwargs)
    steps = 3 if basis == "umap" else 1
    bar = progress(steps, progress_bar, auto=basis == "umap", desc="trajectories")
    bar.set_postfix_str("generating paths")
    pred = model.predict(
        conditions,
        n_cells=n_cells,
        seed=seed,
        temperature=temperature,
        return_trajectories=True,
        decode=False,
        # one bar at a time; progress_bar=False silences predict's too
        progress_bar=False if progress_bar is False or not bar.disable else None,
    )
    bar.update(1)
    paths = np.asarray(get_matrix(pred, obsm="X_trajectory"), dtype=np.float64)  # n x T x D
    grid = np.asarray(pred.uns["calmflow"]["time_grid"], dtype=np.float64)
    if real is None:
        bg, bg_obs = np.asarray(model.get_pca(), dtype=np.float64), model.adata.obs
    else:
        bg, bg_obs = np.asarray(model.get_pca(real, layer=layer), dtype=np.float64), real.obs
    keep = subsample(np.arange(bg.shape[0]), n_max, np.random.default_rng(seed))
    if basis == "pca":
        emb_bg, emb_paths = bg[keep][:, [c0, c1]], paths[:, :, [c0, c1]]
        labels = (f"PC{c0 + 1}", f"PC{c1 + 1}")
    else:
        emb_bg, emb_paths = _umap(bg[keep], paths, seed, umap_kwargs, bar)
        labels = ("UMAP1", "UMAP2")
    bar.close()
    keys = list(model.condition_keys)
    return Trajectories(
        paths=emb_paths,
        time_grid=grid,
        prediction=pred,
        conditions=ordered_conditions(pred.obs, keys),
        condition_keys=keys,
        background=emb_bg,
        background_obs=bg_obs.iloc[keep],
        basis=basis,
        axis_labels=labels,
    )
