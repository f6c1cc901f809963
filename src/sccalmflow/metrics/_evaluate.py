"""One call that scores predicted cells against real cells, per condition, in a tidy table."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ._cluster import joint_umap
from ._correlation import mean_expression_r2, top_de_genes
from ._discrimination import discrimination_score
from ._distribution import DEFAULT_MAX_EXACT, adaptive_mmd, energy_distance, mmd, wasserstein2
from ._utils import _is_anndata, gene_index

#: Metrics computed by default (see :func:`evaluate`).
DEFAULT_METRICS: tuple[str, ...] = ("mean_expression", "discrimination", "e_distance", "mmd", "w2")

GENE_METRICS = ("mean_expression", "discrimination")
DISTRIBUTION_METRICS = ("e_distance", "e_distance_sq", "mmd", "adaptive_mmd", "w2", "w2_sinkhorn")

_SEP = "\x1f"


def _expression(adata, layer: str | None):
    if layer is None:
        return adata.X
    if layer not in adata.layers:
        raise KeyError(f"layer {layer!r} not found; available: {list(adata.layers)}.")
    return adata.layers[layer]


def _rows_mean(mat, idx: np.ndarray) -> np.ndarray:
    sub = mat[idx]
    return np.asarray(sub.mean(axis=0), dtype=np.float64).ravel()


def _dense(mat, idx: np.ndarray, cols: np.ndarray | slice) -> np.ndarray:
    sub = mat[idx][:, cols]
    return sub.toarray() if sp.issparse(sub) else np.asarray(sub, dtype=np.float64)


def _condition_labels(adata, keys: Sequence[str]) -> np.ndarray:
    if not keys:
        return np.full(adata.n_obs, "", dtype=object)
    cols = [adata.obs[k].astype(str).to_numpy() for k in keys]
    out = cols[0].astype(object)
    for c in cols[1:]:
        out = out + _SEP + c.astype(object)
    return out


def _parse_space(space: str) -> tuple[str, int | None]:
    if space in ("pca", "genes"):
        return space, None
    m = re.fullmatch(r"umap(\d+)", space)
    if m:
        return "umap", int(m.group(1))
    raise ValueError(f"Unknown space {space!r}; use 'pca', 'genes' or 'umapK' (e.g. 'umap10').")


def _pca_coordinates(
    pred,
    real,
    *,
    pca_key: str,
    pca: Callable[[Any], np.ndarray] | Literal["joint"] | None,
    layer: str | None,
    seed: int,
    n_pcs_joint: int,
) -> tuple[np.ndarray, np.ndarray]:
    if pca == "joint":
        import scanpy as sc

        xp, xr = _expression(pred, layer), _expression(real, layer)
        stacked = (
            sp.vstack([sp.csr_matrix(xp), sp.csr_matrix(xr)]).tocsr()
            if (sp.issparse(xp) or sp.issparse(xr))
            else np.vstack([np.asarray(xp), np.asarray(xr)])
        )
        n_comps = min(int(n_pcs_joint), stacked.shape[0] - 1, stacked.shape[1] - 1)
        z = np.asarray(
            sc.pp.pca(stacked.astype(np.float32), n_comps=n_comps, random_state=seed),
            dtype=np.float64,
        )
        return z[: pred.n_obs], z[pred.n_obs :]
    if callable(pca):
        zp = pred.obsm[pca_key] if pca_key in pred.obsm else pca(_expression(pred, layer))
        zr = pca(_expression(real, layer))
    elif pca is None:
        missing = [name for name, a in (("pred", pred), ("real", real)) if pca_key not in a.obsm]
        if missing:
            raise KeyError(
                f"{' and '.join(missing)} lack(s) obsm[{pca_key!r}]. Pass `pca=` a callable "
                "mapping expression to the model's PCA space (e.g. the fitted PCAFeatures' "
                "`transform`), or pca='joint' to fit one PCA on pred and real together."
            )
        zp, zr = pred.obsm[pca_key], real.obsm[pca_key]
    else:
        raise TypeError("`pca` must be None, 'joint' or a callable.")
    zp = np.asarray(zp.toarray() if sp.issparse(zp) else zp, dtype=np.float64)
    zr = np.asarray(zr.toarray() if sp.issparse(zr) else zr, dtype=np.float64)
    if zp.ndim != 2 or zr.ndim != 2 or zp.shape[1] != zr.shape[1]:
        raise ValueError(
            f"PCA coordinates of pred and real differ in shape: {zp.shape} vs {zr.shape}."
        )
    if zp.shape[0] != pred.n_obs or zr.shape[0] != real.n_obs:
        raise ValueError("The PCA coordinates must have one row per cell.")
    for name, z in (("pred", zp), ("real", zr)):
        if not np.isfinite(z).all():
            raise ValueError(f"The PCA coordinates of {name} contain NaN or infinite values.")
    return zp, zr


def _lookup(table: Mapping[Any, Sequence[str]], cond: tuple[str, ...]) -> Sequence[str] | None:
    for key in (cond, cond[0] if len(cond) == 1 else None, _SEP.join(cond)):
        if key is not None and key in table:
            return table[key]
    return None


def evaluate(
    pred,
    real,
    *,
    control: Mapping[str, str] | None = None,
    condition_keys: Sequence[str] | str | None = None,
    space: Sequence[str] | str = ("pca", "umap10"),
    metrics: Sequence[str] = DEFAULT_METRICS,
    n_max: int | None = 5000,
    seed: int = 0,
    pca_key: str = "X_pca",
    pca: Callable[[Any], np.ndarray] | Literal["joint"] | None = None,
    genes: Sequence[str] | None = None,
    top_de: int | Mapping[Any, Sequence[str]] | None = None,
    layer: str | None = None,
    max_exact: int | None = DEFAULT_MAX_EXACT,
    n_pcs_joint: int = 50,
    umap_kwargs: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Score predicted cells against real cells, per condition, in a tidy table.

    **Conditions.** A condition is a combination of the values of ``condition_keys`` in
    ``.obs`` (e.g. ``("cell_type", "condition")``); ``None`` treats all cells as one
    condition (unconditional generation). Every condition present in ``pred`` is scored
    against the real cells with the same values, except control conditions (see
    ``control``), which are skipped. A condition of ``pred`` missing from ``real`` is an
    error.

    **Control.** ``control`` maps some condition keys to their control value, e.g.
    ``{"condition": "control"}``. The control cells of a condition are the *real* cells
    with the control values on those keys and the condition's values on the other keys
    (same cell type, ...). They are needed for the delta metrics, the discrimination score
    and ``top_de=int``.

    **Metrics** (``metrics``; the ``metric`` column):

    - ``"mean_expression"`` (space ``"genes"``, all cells, no subsampling):
      ``r2_pearson``, ``r2_sklearn``, ``pearson``, ``spearman`` of per-gene means
      (:func:`mean_expression_r2`) on all genes (or ``genes``) and, with ``top_de``, on the
      top DE genes (space ``"top{n}_de"``, or ``"top_de"`` for given lists); with a control
      also ``pearson_delta``, ``r2_pearson_delta``, ``r2_sklearn_delta``.
    - ``"discrimination"`` (space ``"genes"``, needs a control and >= 2 conditions):
      ``discrimination_l1`` (:func:`discrimination_score`) of the effects
      ``mean - control mean`` (the same real control mean for pred and real).
    - distribution metrics, in every space of ``space``, on at most ``n_max`` cells per set
      and condition: ``"e_distance"`` (:func:`energy_distance`, Euclidean, self-pairs),
      ``"e_distance_sq"`` (squared), ``"mmd"`` (:func:`mmd`, CellFlow's bandwidths),
      ``"adaptive_mmd"``, ``"w2"`` (:func:`wasserstein2`, exact, at most ``max_exact``
      cells per set) and ``"w2_sinkhorn"``.

    **Spaces** (``space``): ``"pca"`` — the shared PCA space (below); ``"umapK"`` (e.g.
    ``"umap10"``, the paper's space) — one UMAP with K components fitted jointly on the
    (subsampled) PCA coordinates of all scored pred and real cells (:func:`joint_umap`);
    ``"genes"`` — the expression matrix itself (dense; slow for many genes).

    **PCA coordinates.** ``pca=None``: both objects must hold ``obsm[pca_key]`` in the same
    space (the model writes its own PCA coordinates to ``pred.obsm["X_pca"]``; make sure the
    real ones come from the same projection, not from a separate ``sc.pp.pca``).
    ``pca=<callable>``: maps an expression matrix (``X`` or ``layer``) to that space, e.g.
    the fitted :class:`~sccalmflow.data.PCAFeatures`' ``transform``; it is always applied
    to ``real``, and to ``pred`` only when ``pred`` lacks ``obsm[pca_key]``.
    ``pca="joint"``: fit one PCA (``n_pcs_joint`` components, scanpy, seeded) on the
    expression of ``pred`` and ``real`` stacked — model-independent only up to its
    dependence on ``pred``.

    **Subsampling and seeds.** For each condition (in sorted order, index ``i``), pred and
    real cells are subsampled to ``n_max`` without replacement with
    ``numpy.random.default_rng([seed, i])``; W2 draws its own ``max_exact`` subsample with
    ``seed``; UMAP, PCA, DE and Leiden use ``seed``. Results are deterministic given the
    inputs and ``seed``.

    Parameters
    ----------
    pred, real
        :class:`~anndata.AnnData` with the condition keys in ``.obs``, log-normalised
        expression in ``X`` (or ``layer``) with identical ``var_names`` (needed for the gene
        metrics and ``pca='joint'``), and PCA coordinates (see above).
    control
        Control values of some condition keys.
    condition_keys
        Columns of ``.obs`` defining a condition.
    space
        Spaces for the distribution metrics.
    metrics
        Metric families/names (see above).
    n_max
        Cells per set and condition for the distribution metrics (``None``: all).
    seed
        Seed of all random steps.
    pca_key, pca, n_pcs_joint
        Where the PCA coordinates come from (see above).
    genes
        Gene subset for the ``"genes"`` space and the mean-expression metrics.
    top_de
        ``int`` n: top-n DE genes of each real condition against its control cells
        (:func:`top_de_genes`, Wilcoxon); or a mapping ``condition -> gene names`` (keys:
        tuples of the condition values, or plain strings for a single key).
    layer
        Expression layer instead of ``X``.
    max_exact
        Largest set size for the exact W2 solver.
    umap_kwargs
        Extra arguments for :func:`joint_umap`.

    Returns
    -------
    pandas.DataFrame
        One row per condition x metric x space with columns: the condition keys,
        ``metric``, ``space``, ``value``, ``n_pred``, ``n_real`` (cells of the condition),
        ``n_used_pred``, ``n_used_real`` (cells the value was computed on), ``subsampled``
        (bool), ``seed``, ``n_features`` (dimension of the space / number of genes).
    """
    if not (_is_anndata(pred) and _is_anndata(real)):
        raise TypeError("evaluate expects AnnData objects for `pred` and `real`.")
    keys = [condition_keys] if isinstance(condition_keys, str) else list(condition_keys or [])
    for name, a in (("pred", pred), ("real", real)):
        if a.n_obs == 0:
            raise ValueError(f"{name} has no cells.")
        missing = [k for k in keys if k not in a.obs]
        if missing:
            raise KeyError(f"{name}.obs lacks condition key(s) {missing}.")
    control = {str(k): str(v) for k, v in (control or {}).items()}
    if control and not set(control) <= set(keys):
        raise ValueError(f"control keys {sorted(control)} must be among condition_keys {keys}.")
    metrics = [metrics] if isinstance(metrics, str) else list(metrics)
    unknown = sorted(set(metrics) - set(GENE_METRICS) - set(DISTRIBUTION_METRICS))
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; choose from {GENE_METRICS + DISTRIBUTION_METRICS}."
        )
    spaces = [space] if isinstance(space, str) else list(space)
    parsed = [_parse_space(s) for s in spaces]
    dist_metrics = [m for m in metrics if m in DISTRIBUTION_METRICS]
    needs_genes = (
        any(m in GENE_METRICS for m in metrics)
        or (dist_metrics and any(kind == "genes" for kind, _ in parsed))
        or pca == "joint"
    )
    if needs_genes:
        if pred.n_vars != real.n_vars or not np.array_equal(
            np.asarray(pred.var_names), np.asarray(real.var_names)
        ):
            raise ValueError("pred and real must have the same var_names in the same order.")
    xp = _expression(pred, layer) if needs_genes else None
    xr = _expression(real, layer) if needs_genes else None
    gidx = gene_index(genes, np.asarray(real.var_names), real.n_vars)

    lab_p, lab_r = _condition_labels(pred, keys), _condition_labels(real, keys)
    pos = {k: i for i, k in enumerate(keys)}

    def is_control(cond: tuple[str, ...]) -> bool:
        return bool(control) and all(cond[pos[k]] == v for k, v in control.items())

    conds = sorted({tuple(s.split(_SEP)) if keys else () for s in set(lab_p)})
    conds = [c for c in conds if not is_control(c)]
    if not conds:
        raise ValueError("pred has no non-control condition to score.")
    idx_p = {c: np.flatnonzero(lab_p == _SEP.join(c)) for c in conds}
    idx_r = {c: np.flatnonzero(lab_r == _SEP.join(c)) for c in conds}
    absent = [c for c in conds if idx_r[c].size == 0]
    if absent:
        raise ValueError(f"Condition(s) {absent} of pred have no real cells.")
    idx_c: dict[tuple[str, ...], np.ndarray] = {}
    if control:
        for c in conds:
            ctrl = tuple(control.get(k, c[pos[k]]) for k in keys)
            idx_c[c] = np.flatnonzero(lab_r == _SEP.join(ctrl))
        lacking = [c for c in conds if idx_c[c].size == 0]
        if lacking:
            warnings.warn(
                f"No real control cells for {lacking}; their delta metrics are skipped.",
                UserWarning,
                stacklevel=2,
            )

    rows: list[dict[str, Any]] = []

    def add(c, metric, space_name, value, n_used_p, n_used_r, sub, n_feat):
        row = dict(zip(keys, c))
        row.update(
            metric=metric,
            space=space_name,
            value=float(value),
            n_pred=int(idx_p[c].size),
            n_real=int(idx_r[c].size),
            n_used_pred=int(n_used_p),
            n_used_real=int(n_used_r),
            subsampled=bool(sub),
            seed=seed,
            n_features=int(n_feat),
        )
        rows.append(row)

    # ---- gene space: mean expression ---------------------------------------------------
    if "mean_expression" in metrics:
        de_lists: dict[tuple[str, ...], Sequence[str]] = {}
        de_space = None
        if isinstance(top_de, int) and not isinstance(top_de, bool):
            if not control:
                raise ValueError("top_de=int needs `control` (DE is computed against it).")
            import anndata as ad

            de_space = f"top{top_de}_de"
            for c in conds:
                if idx_c[c].size == 0:
                    continue
                sel = np.concatenate([idx_r[c], idx_c[c]])
                sub_x = xr[sel]
                tmp = ad.AnnData(
                    X=sub_x if sp.issparse(sub_x) else np.asarray(sub_x),
                    obs=pd.DataFrame(
                        {"_g": ["target"] * idx_r[c].size + ["reference"] * idx_c[c].size},
                        index=[str(i) for i in range(sel.size)],
                    ),
                    var=pd.DataFrame(index=np.asarray(real.var_names, dtype=str)),
                )
                de_lists[c] = top_de_genes(
                    tmp, groupby="_g", group="target", reference="reference", n=top_de
                )
        elif isinstance(top_de, Mapping):
            de_space = "top_de"
            for c in conds:
                found = _lookup(top_de, c)
                if found is not None:
                    de_lists[c] = found
        elif top_de is not None:
            raise TypeError("top_de must be None, an int or a mapping condition -> genes.")
        names = np.asarray(real.var_names, dtype=str)
        for c in conds:
            mu_p, mu_r = _rows_mean(xp, idx_p[c]), _rows_mean(xr, idx_r[c])
            mu_c = _rows_mean(xr, idx_c[c]) if control and idx_c[c].size else None
            selections = [("genes", gidx)]
            if c in de_lists:
                selections.append((de_space, gene_index(list(de_lists[c]), names, names.size)))
            for space_name, sel in selections:
                n_feat = names.size if isinstance(sel, slice) else len(sel)
                res = mean_expression_r2(
                    mu_p[sel], mu_r[sel], control=None if mu_c is None else mu_c[sel]
                )
                for metric, value in res.items():
                    add(c, metric, space_name, value, idx_p[c].size, idx_r[c].size, False, n_feat)

    # ---- gene space: discrimination ------------------------------------------------------
    if "discrimination" in metrics and control:
        usable = [c for c in conds if idx_c[c].size]
        if len(usable) >= 2:
            eff_p, eff_r = [], []
            for c in usable:
                mu_c = _rows_mean(xr, idx_c[c])[gidx]
                eff_p.append(_rows_mean(xp, idx_p[c])[gidx] - mu_c)
                eff_r.append(_rows_mean(xr, idx_r[c])[gidx] - mu_c)
            scores = discrimination_score(np.vstack(eff_p), np.vstack(eff_r), metric="l1")
            n_feat = real.n_vars if isinstance(gidx, slice) else len(gidx)
            for c, s in zip(usable, scores):
                add(c, "discrimination_l1", "genes", s, idx_p[c].size, idx_r[c].size, False, n_feat)

    # ---- distribution metrics ---------------------------------------------------------------
    if dist_metrics and parsed:
        sub_p, sub_r, was_sub = {}, {}, {}
        for i, c in enumerate(conds):
            rng = np.random.default_rng([seed, i])
            sp_, sr_ = idx_p[c], idx_r[c]
            flag = False
            if n_max is not None and sp_.size > n_max:
                sp_, flag = np.sort(rng.choice(sp_, size=int(n_max), replace=False)), True
            if n_max is not None and sr_.size > n_max:
                sr_, flag = np.sort(rng.choice(sr_, size=int(n_max), replace=False)), True
            sub_p[c], sub_r[c], was_sub[c] = sp_, sr_, flag
        coords: dict[str, tuple[dict, dict]] = {}
        if any(kind in ("pca", "umap") for kind, _ in parsed):
            zp, zr = _pca_coordinates(
                pred,
                real,
                pca_key=pca_key,
                pca=pca,
                layer=layer,
                seed=seed,
                n_pcs_joint=n_pcs_joint,
            )
            coords["pca"] = ({c: zp[sub_p[c]] for c in conds}, {c: zr[sub_r[c]] for c in conds})
            for kind, k in parsed:
                if kind != "umap" or f"umap{k}" in coords:
                    continue
                emb_r, emb_p = joint_umap(
                    np.vstack([coords["pca"][1][c] for c in conds]),
                    np.vstack([coords["pca"][0][c] for c in conds]),
                    n_components=k,
                    seed=seed,
                    **dict(umap_kwargs or {}),
                )
                off_p = np.cumsum([0] + [sub_p[c].size for c in conds])
                off_r = np.cumsum([0] + [sub_r[c].size for c in conds])
                coords[f"umap{k}"] = (
                    {c: emb_p[off_p[i] : off_p[i + 1]] for i, c in enumerate(conds)},
                    {c: emb_r[off_r[i] : off_r[i + 1]] for i, c in enumerate(conds)},
                )
        if any(kind == "genes" for kind, _ in parsed):
            coords["genes"] = (
                {c: _dense(xp, sub_p[c], gidx) for c in conds},
                {c: _dense(xr, sub_r[c], gidx) for c in conds},
            )
        for space_name in spaces:
            by_p, by_r = coords[space_name]
            for c in conds:
                p, r = by_p[c], by_r[c]
                for metric in dist_metrics:
                    n_up, n_ur, flag = p.shape[0], r.shape[0], was_sub[c]
                    if metric == "e_distance":
                        value = energy_distance(p, r)
                    elif metric == "e_distance_sq":
                        value = energy_distance(p, r, squared=True)
                    elif metric == "mmd":
                        value = mmd(p, r)
                    elif metric == "adaptive_mmd":
                        value = adaptive_mmd(p, r)
                    else:
                        value, info = wasserstein2(
                            p,
                            r,
                            exact=metric == "w2",
                            max_exact=max_exact,
                            seed=seed,
                            return_info=True,
                        )
                        n_up, n_ur = info["n_x_used"], info["n_y_used"]
                        flag = flag or info["subsampled"]
                    add(c, metric, space_name, value, n_up, n_ur, flag, p.shape[1])

    columns = keys + [
        "metric", "space", "value", "n_pred", "n_real", "n_used_pred", "n_used_real",
        "subsampled", "seed", "n_features",
    ]  # fmt: skip
    return pd.DataFrame(rows, columns=columns)
