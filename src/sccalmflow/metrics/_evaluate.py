"""One call that scores predicted cells against real cells, per condition, in a tidy table.

:func:`evaluate` checks its inputs, finds the scored conditions and their cells
(:class:`_Conditions`), then fills one :class:`_Table` family by family: mean expression,
discrimination, and the distribution metrics in each space.
"""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import (
    PCA_KEY,
    check_same_pca,
    condition_labels,
    dense,
    get_matrix,
    is_anndata,
    is_control,
)
from ..utils import check_int, check_seed
from ._cluster import joint_umap
from ._correlation import mean_expression_r2, top_de_genes
from ._discrimination import discrimination_score
from ._distribution import (
    DEFAULT_MAX_EXACT,
    adaptive_mmd,
    energy_distance,
    gaussian_w2,
    mmd,
    wasserstein2,
)
from ._utils import check_n_max, gene_index

#: Metrics computed by default (see :func:`evaluate`).
DEFAULT_METRICS: tuple[str, ...] = ("mean_expression", "discrimination", "e_distance", "mmd", "w2")

GENE_METRICS = ("mean_expression", "discrimination")
#: Distribution distances, computed in every space asked for (see :func:`evaluate`).
DISTRIBUTION_METRICS: tuple[str, ...] = (
    "e_distance",
    "e_distance_sq",
    "mmd",
    "adaptive_mmd",
    "w2",
    "w2_sinkhorn",
    "w2_gaussian",
)

#: Joins the values of a condition into one label (also accepted in ``top_de`` keys).
_SEP = "\x1f"

_COLUMNS = [
    "metric", "space", "value", "n_pred", "n_real", "n_used_pred", "n_used_real",
    "subsampled", "seed", "n_features",
]  # fmt: skip

Condition = tuple[str, ...]


# ---------------------------------------------------------------------------- inputs
def _check_keys(
    pred, real, condition_keys: Sequence[str] | str | None, control: Mapping[str, str] | None
) -> tuple[list[str], dict[str, str]]:
    """Condition keys as a list and control values as strings, checked against both objects."""
    keys = [condition_keys] if isinstance(condition_keys, str) else list(condition_keys or [])
    for name, a in (("pred", pred), ("real", real)):
        if a.n_obs == 0:
            raise ValueError(f"{name} has no cells.")
        missing = [k for k in keys if k not in a.obs]
        if missing:
            raise KeyError(f"{name}.obs lacks condition key(s) {missing}.")
    if control is not None and not isinstance(control, Mapping):
        raise TypeError(
            "`control` must be a dict {key: control value}, e.g. {'condition': 'control'}, "
            f"got {type(control).__name__}."
        )
    control = {str(k): str(v) for k, v in (control or {}).items()}
    if control and not set(control) <= set(keys):
        raise ValueError(f"control keys {sorted(control)} must be among condition_keys {keys}.")
    return keys, control


def _check_metrics(
    metrics: Sequence[str] | str, space: Sequence[str] | str
) -> tuple[list[str], list[str], list[tuple[str, int | None]]]:
    """Metric names, space names and parsed spaces (``(kind, n_components)``)."""
    metrics = _names("metrics", metrics, "['mmd', 'w2']")
    if not metrics:
        raise ValueError(f"`metrics` is empty; choose from {GENE_METRICS + DISTRIBUTION_METRICS}.")
    unknown = sorted(set(metrics) - set(GENE_METRICS) - set(DISTRIBUTION_METRICS))
    if unknown:
        raise ValueError(
            f"Unknown metric(s) {unknown}; choose from {GENE_METRICS + DISTRIBUTION_METRICS}."
        )
    spaces = _names("space", space, "['pca', 'umap10']")
    distances = [m for m in metrics if m in DISTRIBUTION_METRICS]
    if distances and not spaces:
        raise ValueError(
            f"`space` is empty but the distribution metrics {distances} need one: pass e.g. "
            "space='pca', or leave them out of `metrics`."
        )
    return metrics, spaces, [_parse_space(s) for s in spaces]


def _names(name: str, value: Any, example: str) -> list[str]:
    """A name or a collection of names as a list (``None``, numbers and dicts refused)."""
    if isinstance(value, str):
        return [value]
    if not isinstance(value, Iterable) or isinstance(value, Mapping | bytes):
        raise TypeError(
            f"`{name}` must be a name or a list of names, e.g. {example}, got "
            f"{type(value).__name__}."
        )
    return list(value)


def _check_options(args: dict[str, Any]) -> dict[str, Any]:
    """The numeric options of :func:`evaluate`, checked (``top_de`` as an int or mapping)."""
    checked = dict(
        n_max=check_n_max("n_max", args["n_max"]),
        seed=check_seed("seed", args["seed"]),
        max_exact=check_n_max("max_exact", args["max_exact"]),
        n_pcs_joint=check_int("n_pcs_joint", args["n_pcs_joint"], minimum=1),
        top_de=args["top_de"],
    )
    if checked["top_de"] is not None and not isinstance(checked["top_de"], Mapping):
        checked["top_de"] = check_int("top_de", checked["top_de"], minimum=1)
    return checked


def _parse_space(space: str) -> tuple[str, int | None]:
    if space in ("pca", "genes"):
        return space, None
    m = re.fullmatch(r"umap(\d+)", space)
    if m:
        return "umap", int(m.group(1))
    raise ValueError(f"Unknown space {space!r}; use 'pca', 'genes' or 'umapK' (e.g. 'umap10').")


def _check_var_names(pred, real) -> None:
    if pred.n_vars != real.n_vars or not np.array_equal(
        np.asarray(pred.var_names), np.asarray(real.var_names)
    ):
        raise ValueError("pred and real must have the same var_names in the same order.")


# ------------------------------------------------------------------------ conditions
@dataclass
class _Conditions:
    """The scored conditions of ``pred`` (sorted, controls left out) and their cells.

    ``pred``, ``real`` and ``ctrl`` map a condition to row positions: its predicted cells,
    its real cells and (with a control) the real control cells of its context.
    """

    keys: list[str]
    control: dict[str, str]
    conds: list[Condition]
    pred: dict[Condition, np.ndarray]
    real: dict[Condition, np.ndarray]
    ctrl: dict[Condition, np.ndarray] = field(default_factory=dict)


def _conditions(pred, real, keys: list[str], control: dict[str, str]) -> _Conditions:
    lab_p = condition_labels(pred.obs, keys, sep=_SEP)
    lab_r = condition_labels(real.obs, keys, sep=_SEP)
    conds = sorted({tuple(s.split(_SEP)) if keys else () for s in set(lab_p)})
    frame = pd.DataFrame(conds, columns=keys) if keys else pd.DataFrame(index=range(len(conds)))
    conds = [c for c, ctrl in zip(conds, is_control(frame, control)) if not ctrl]
    if not conds:
        raise ValueError("pred has no non-control condition to score.")
    out = _Conditions(
        keys,
        control,
        conds,
        {c: np.flatnonzero(lab_p == _SEP.join(c)) for c in conds},
        {c: np.flatnonzero(lab_r == _SEP.join(c)) for c in conds},
    )
    absent = [c for c in conds if out.real[c].size == 0]
    if absent:
        raise ValueError(f"Condition(s) {absent} of pred have no real cells.")
    if control:
        context = [i for i, k in enumerate(keys) if k not in control]
        is_ctrl = is_control(real.obs, control)
        ctx_r = condition_labels(real.obs, [keys[i] for i in context], sep=_SEP)
        for c in conds:
            same_context = ctx_r == _SEP.join(c[i] for i in context)
            out.ctrl[c] = np.flatnonzero(is_ctrl & same_context)
        lacking = [c for c in conds if out.ctrl[c].size == 0]
        if lacking:
            warnings.warn(
                f"No real control cells for {lacking}; their delta metrics are skipped.",
                UserWarning,
                stacklevel=3,
            )
    return out


class _Table:
    """The rows of :func:`evaluate`'s table, one per condition x metric x space."""

    def __init__(self, conditions: _Conditions, seed: int):
        self.conditions = conditions
        self.seed = seed
        self.rows: list[dict[str, Any]] = []

    def add(self, c, metric, space_name, value, n_used_p, n_used_r, sub, n_feat) -> None:
        """One row: condition ``c``, ``metric`` in ``space_name``, and how it was computed."""
        row = dict(zip(self.conditions.keys, c))
        row.update(
            metric=metric,
            space=space_name,
            value=float(value),
            n_pred=int(self.conditions.pred[c].size),
            n_real=int(self.conditions.real[c].size),
            n_used_pred=int(n_used_p),
            n_used_real=int(n_used_r),
            subsampled=bool(sub),
            seed=self.seed,
            n_features=int(n_feat),
        )
        self.rows.append(row)

    def frame(self) -> pd.DataFrame:
        """The table as a DataFrame (condition key columns first)."""
        return pd.DataFrame(self.rows, columns=self.conditions.keys + _COLUMNS)


# ----------------------------------------------------------------------- gene space
def _rows_mean(mat, idx: np.ndarray) -> np.ndarray:
    sub = mat[idx]
    return np.asarray(sub.mean(axis=0), dtype=np.float64).ravel()


def _dense(mat, idx: np.ndarray, cols: np.ndarray | slice) -> np.ndarray:
    return dense(mat[idx][:, cols])


def _lookup(table: Mapping[Any, Sequence[str]], cond: Condition) -> Sequence[str] | None:
    for key in (cond, cond[0] if len(cond) == 1 else None, _SEP.join(cond)):
        if key is not None and key in table:
            return table[key]
    return None


def _top_de(xr, target: np.ndarray, reference: np.ndarray, names: np.ndarray, n: int):
    """Top ``n`` DE genes of the real cells ``target`` against ``reference`` (Wilcoxon)."""
    import anndata as ad

    sel = np.concatenate([target, reference])
    sub_x = xr[sel]
    tmp = ad.AnnData(
        X=sub_x if sp.issparse(sub_x) else np.asarray(sub_x),
        obs=pd.DataFrame(
            {"_g": ["target"] * target.size + ["reference"] * reference.size},
            index=[str(i) for i in range(sel.size)],
        ),
        var=pd.DataFrame(index=names),
    )
    return top_de_genes(tmp, groupby="_g", group="target", reference="reference", n=n)


def _de_lists(
    top_de: int | Mapping[Any, Sequence[str]] | None, conditions: _Conditions, xr, names
) -> tuple[str | None, dict[Condition, Sequence[str]]]:
    """The space name of the top-DE genes and the genes of each condition that has them."""
    if isinstance(top_de, int) and not isinstance(top_de, bool):
        if not conditions.control:
            raise ValueError("top_de=int needs `control` (DE is computed against it).")
        return f"top{top_de}_de", {
            c: _top_de(xr, conditions.real[c], conditions.ctrl[c], names, top_de)
            for c in conditions.conds
            if conditions.ctrl[c].size
        }
    if isinstance(top_de, Mapping):
        found = {c: _lookup(top_de, c) for c in conditions.conds}
        return "top_de", {c: genes for c, genes in found.items() if genes is not None}
    if top_de is not None:
        raise TypeError("top_de must be None, an int or a mapping condition -> genes.")
    return None, {}


def _score_mean_expression(table: _Table, xp, xr, gidx, names, top_de) -> None:
    """Rows of :func:`mean_expression_r2` on all genes (or ``genes``) and the top-DE genes."""
    conditions = table.conditions
    de_space, de_lists = _de_lists(top_de, conditions, xr, names)
    for c in conditions.conds:
        idx_p, idx_r = conditions.pred[c], conditions.real[c]
        mu_p, mu_r = _rows_mean(xp, idx_p), _rows_mean(xr, idx_r)
        idx_c = conditions.ctrl.get(c)
        mu_c = _rows_mean(xr, idx_c) if idx_c is not None and idx_c.size else None
        selections = [("genes", gidx)]
        if c in de_lists:
            selections.append((de_space, gene_index(list(de_lists[c]), names, names.size)))
        for space_name, sel in selections:
            n_feat = names.size if isinstance(sel, slice) else len(sel)
            res = mean_expression_r2(
                mu_p[sel], mu_r[sel], control=None if mu_c is None else mu_c[sel]
            )
            for metric, value in res.items():
                table.add(c, metric, space_name, value, idx_p.size, idx_r.size, False, n_feat)


def _score_discrimination(table: _Table, xp, xr, gidx, n_vars: int) -> None:
    """Rows of :func:`discrimination_score` of the effects (needs >= 2 conditions)."""
    conditions = table.conditions
    usable = [c for c in conditions.conds if conditions.ctrl[c].size]
    if len(usable) < 2:
        return
    eff_p, eff_r = [], []
    for c in usable:
        mu_c = _rows_mean(xr, conditions.ctrl[c])[gidx]
        eff_p.append(_rows_mean(xp, conditions.pred[c])[gidx] - mu_c)
        eff_r.append(_rows_mean(xr, conditions.real[c])[gidx] - mu_c)
    scores = discrimination_score(np.vstack(eff_p), np.vstack(eff_r), metric="l1")
    n_feat = n_vars if isinstance(gidx, slice) else len(gidx)
    for c, s in zip(usable, scores):
        n_p, n_r = conditions.pred[c].size, conditions.real[c].size
        table.add(c, "discrimination_l1", "genes", s, n_p, n_r, False, n_feat)


# --------------------------------------------------------------------------- spaces
def _joint_pca(pred, real, *, layer: str | None, seed: int, n_pcs: int):
    """One PCA (scanpy, seeded) of the expression of ``pred`` and ``real`` stacked."""
    import scanpy as sc

    xp = get_matrix(pred, layer=layer, name="pred")
    xr = get_matrix(real, layer=layer, name="real")
    stacked = (
        sp.vstack([sp.csr_matrix(xp), sp.csr_matrix(xr)]).tocsr()
        if (sp.issparse(xp) or sp.issparse(xr))
        else np.vstack([np.asarray(xp), np.asarray(xr)])
    )
    n_comps = min(int(n_pcs), stacked.shape[0] - 1, stacked.shape[1] - 1)
    z = np.asarray(
        sc.pp.pca(stacked.astype(np.float32), n_comps=n_comps, random_state=seed),
        dtype=np.float64,
    )
    return z[: pred.n_obs], z[pred.n_obs :]


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
    """PCA coordinates of ``pred`` and ``real`` (see ``pca`` in :func:`evaluate`)."""
    if pca == "joint":
        return _joint_pca(pred, real, layer=layer, seed=seed, n_pcs=n_pcs_joint)
    if callable(pca):
        zp = (
            get_matrix(pred, obsm=pca_key, name="pred")
            if pca_key in pred.obsm
            else pca(get_matrix(pred, layer=layer, name="pred"))
        )
        zr = pca(get_matrix(real, layer=layer, name="real"))
    elif pca is None:
        missing = [name for name, a in (("pred", pred), ("real", real)) if pca_key not in a.obsm]
        if missing:
            raise KeyError(
                f"{' and '.join(missing)} lack(s) obsm[{pca_key!r}]. Add the model's "
                "projection of the real cells with `model.add_pca(real)` (predictions carry "
                "it already), pass `pca=` a callable mapping expression to the model's PCA "
                "space, or pca='joint' to fit one PCA on pred and real together."
            )
        check_same_pca(pred, real, pca_key)
        zp = get_matrix(pred, obsm=pca_key, name="pred")
        zr = get_matrix(real, obsm=pca_key, name="real")
    else:
        raise TypeError("`pca` must be None, 'joint' or a callable.")
    zp, zr = dense(zp), dense(zr)
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


def _subsample(
    conditions: _Conditions, n_max: int | None, seed: int
) -> tuple[dict[Condition, np.ndarray], dict[Condition, np.ndarray], dict[Condition, bool]]:
    """At most ``n_max`` pred and real rows per condition (``default_rng([seed, i])``)."""
    sub_p, sub_r, was_sub = {}, {}, {}
    for i, c in enumerate(conditions.conds):
        rng = np.random.default_rng([seed, i])
        sp_, sr_ = conditions.pred[c], conditions.real[c]
        flag = False
        if n_max is not None and sp_.size > n_max:
            sp_, flag = np.sort(rng.choice(sp_, size=int(n_max), replace=False)), True
        if n_max is not None and sr_.size > n_max:
            sr_, flag = np.sort(rng.choice(sr_, size=int(n_max), replace=False)), True
        sub_p[c], sub_r[c], was_sub[c] = sp_, sr_, flag
    return sub_p, sub_r, was_sub


def _umap_coordinates(pca_coords, conds, sub_p, sub_r, k: int, seed: int, umap_kwargs):
    """Per-condition coordinates in one UMAP (K components) of all scored pred/real cells."""
    emb_r, emb_p = joint_umap(
        np.vstack([pca_coords[1][c] for c in conds]),
        np.vstack([pca_coords[0][c] for c in conds]),
        n_components=k,
        seed=seed,
        **dict(umap_kwargs or {}),
    )
    off_p = np.cumsum([0] + [sub_p[c].size for c in conds])
    off_r = np.cumsum([0] + [sub_r[c].size for c in conds])
    return (
        {c: emb_p[off_p[i] : off_p[i + 1]] for i, c in enumerate(conds)},
        {c: emb_r[off_r[i] : off_r[i + 1]] for i, c in enumerate(conds)},
    )


def _coordinates(pred, real, conds, sub_p, sub_r, parsed, options: dict) -> dict[str, tuple]:
    """``{space name: (pred coordinates, real coordinates)}``, each a dict by condition.

    ``options``: ``pca_key``, ``pca``, ``layer``, ``seed``, ``n_pcs_joint``,
    ``umap_kwargs``, and for the ``"genes"`` space ``xp``, ``xr`` and ``gidx``.
    """
    coords: dict[str, tuple[dict, dict]] = {}
    if any(kind in ("pca", "umap") for kind, _ in parsed):
        zp, zr = _pca_coordinates(
            pred,
            real,
            pca_key=options["pca_key"],
            pca=options["pca"],
            layer=options["layer"],
            seed=options["seed"],
            n_pcs_joint=options["n_pcs_joint"],
        )
        coords["pca"] = ({c: zp[sub_p[c]] for c in conds}, {c: zr[sub_r[c]] for c in conds})
        for kind, k in parsed:
            if kind != "umap" or f"umap{k}" in coords:
                continue
            coords[f"umap{k}"] = _umap_coordinates(
                coords["pca"], conds, sub_p, sub_r, k, options["seed"], options["umap_kwargs"]
            )
    if any(kind == "genes" for kind, _ in parsed):
        xp, xr, gidx = options["xp"], options["xr"], options["gidx"]
        coords["genes"] = (
            {c: _dense(xp, sub_p[c], gidx) for c in conds},
            {c: _dense(xr, sub_r[c], gidx) for c in conds},
        )
    return coords


def _distance(metric: str, p: np.ndarray, r: np.ndarray, *, max_exact, seed: int):
    """``(value, n_used_pred, n_used_real, subsampled)`` of one distribution metric."""
    if metric == "e_distance":
        return energy_distance(p, r), p.shape[0], r.shape[0], False
    if metric == "e_distance_sq":
        return energy_distance(p, r, squared=True), p.shape[0], r.shape[0], False
    if metric == "mmd":
        return mmd(p, r), p.shape[0], r.shape[0], False
    if metric == "adaptive_mmd":
        return adaptive_mmd(p, r), p.shape[0], r.shape[0], False
    if metric == "w2_gaussian":
        return gaussian_w2(p, r), p.shape[0], r.shape[0], False
    value, info = wasserstein2(
        p, r, exact=metric == "w2", max_exact=max_exact, seed=seed, return_info=True
    )
    return value, info["n_x_used"], info["n_y_used"], info["subsampled"]


def _score_distributions(table, coords, spaces, dist_metrics, was_sub, max_exact) -> None:
    """Rows of the distribution metrics in every space, per condition."""
    for space_name in spaces:
        by_p, by_r = coords[space_name]
        for c in table.conditions.conds:
            p, r = by_p[c], by_r[c]
            for metric in dist_metrics:
                value, n_up, n_ur, flag = _distance(
                    metric, p, r, max_exact=max_exact, seed=table.seed
                )
                table.add(c, metric, space_name, value, n_up, n_ur, was_sub[c] or flag, p.shape[1])


# ------------------------------------------------------------------------- evaluate
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
    pca_key: str = PCA_KEY,
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
      cells per set), ``"w2_sinkhorn"`` and ``"w2_gaussian"`` (:func:`gaussian_w2`, W2
      between Gaussians fitted to the two sets; not biased towards narrow sets as the
      empirical W2 is).

    **Spaces** (``space``): ``"pca"`` — the shared PCA space (below); ``"umapK"`` (e.g.
    ``"umap10"``, the paper's space) — one UMAP with K components fitted jointly on the
    (subsampled) PCA coordinates of all scored pred and real cells (:func:`joint_umap`);
    ``"genes"`` — the expression matrix itself (dense; slow for many genes).

    **PCA coordinates.** ``pca=None``: both objects must hold ``obsm[pca_key]`` in the same
    space. Predictions (of the model and the baselines) carry the model's coordinates in
    ``obsm["X_calmflow_pca"]`` (the default ``pca_key``) with a fingerprint of the
    projection in ``uns["calmflow_pca"]``; add them to the real cells with
    ``model.add_pca(real)`` (scanpy's ``X_pca`` is left alone). When the fingerprints differ
    (another model, or real cells projected by another one), or only one object carries
    one, this refuses to compare; with a ``pca_key`` of your own and no fingerprints on
    either side, the coordinates are compared as given.
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
    if not (is_anndata(pred) and is_anndata(real)):
        raise TypeError("evaluate expects AnnData objects for `pred` and `real`.")
    options = _check_options(locals())
    n_max, seed, max_exact = options["n_max"], options["seed"], options["max_exact"]
    n_pcs_joint, top_de = options["n_pcs_joint"], options["top_de"]
    keys, control = _check_keys(pred, real, condition_keys, control)
    metrics, spaces, parsed = _check_metrics(metrics, space)
    dist_metrics = [m for m in metrics if m in DISTRIBUTION_METRICS]
    needs_genes = (
        any(m in GENE_METRICS for m in metrics)
        or (dist_metrics and any(kind == "genes" for kind, _ in parsed))
        or pca == "joint"
    )
    if needs_genes:
        _check_var_names(pred, real)
    xp = get_matrix(pred, layer=layer, name="pred") if needs_genes else None
    xr = get_matrix(real, layer=layer, name="real") if needs_genes else None
    gidx = gene_index(genes, np.asarray(real.var_names), real.n_vars)
    table = _Table(_conditions(pred, real, keys, control), seed)
    if "mean_expression" in metrics:
        names = np.asarray(real.var_names, dtype=str)
        _score_mean_expression(table, xp, xr, gidx, names, top_de)
    if "discrimination" in metrics and control:
        _score_discrimination(table, xp, xr, gidx, real.n_vars)
    if dist_metrics and parsed:
        conds = table.conditions.conds
        sub_p, sub_r, was_sub = _subsample(table.conditions, n_max, seed)
        options = dict(
            pca_key=pca_key, pca=pca, layer=layer, seed=seed, n_pcs_joint=n_pcs_joint,
            umap_kwargs=umap_kwargs, xp=xp, xr=xr, gidx=gidx,
        )  # fmt: skip
        coords = _coordinates(pred, real, conds, sub_p, sub_r, parsed, options)
        _score_distributions(table, coords, spaces, dist_metrics, was_sub, max_exact)
    return table.frame()
