"""Gene-space agreement of mean expression (R² conventions) and top-DE gene selection."""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
import scipy.sparse as sp

from ..data import get_matrix, is_anndata
from ..utils import check_bool, check_choice, check_int, keep_torch_threads
from ._utils import ArrayLike, as_matrix, gene_index

#: Tests of :func:`scanpy.tl.rank_genes_groups` that :func:`top_de_genes` accepts.
DE_METHODS = ("logreg", "t-test", "wilcoxon", "t-test_overestim_var")


def _mean_profile(
    data: ArrayLike, *, layer: str | None, name: str
) -> tuple[np.ndarray, np.ndarray | None]:
    """Per-gene mean of a cells x genes matrix (sparse-aware), or a given 1-D profile."""
    var_names = np.asarray(data.var_names, dtype=str) if is_anndata(data) else None
    mat = as_matrix(data, layer=layer, name=name, allow_1d=True, keep_sparse=True)
    if sp.issparse(mat):
        return np.asarray(mat.mean(axis=0), dtype=np.float64).ravel(), var_names
    return (mat if mat.ndim == 1 else mat.mean(axis=0)), var_names


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy.stats import pearsonr

    return float(pearsonr(a, b)[0])


def _spearman(a: np.ndarray, b: np.ndarray) -> float:
    if np.ptp(a) == 0 or np.ptp(b) == 0:
        return float("nan")
    from scipy.stats import spearmanr

    return float(spearmanr(a, b)[0])


def _agreement(pred: np.ndarray, true: np.ndarray, suffix: str = "") -> dict[str, float]:
    from sklearn.metrics import r2_score

    r = _pearson(pred, true)
    out = {
        f"r2_pearson{suffix}": r**2,
        f"r2_sklearn{suffix}": float(r2_score(true, pred)),
        f"pearson{suffix}": r,
    }
    if not suffix:
        out["spearman"] = _spearman(pred, true)
    return out


def mean_expression_r2(
    pred: ArrayLike,
    true: ArrayLike,
    *,
    genes: Sequence[str] | Sequence[int] | np.ndarray | None = None,
    control: ArrayLike | None = None,
    layer: str | None = None,
    var_names: Sequence[str] | None = None,
) -> dict[str, float]:
    r"""Agreement between predicted and real per-gene mean expression.

    With :math:`\hat\mu_g` and :math:`\mu_g` the mean expression of gene :math:`g` over the
    predicted and the real cells (and :math:`c_g` over the control cells):

    - ``r2_pearson`` :math:`= \operatorname{corr}(\hat\mu, \mu)^2`, the squared Pearson
      correlation (scGen's "R²"); invariant to any affine map of the prediction;
    - ``r2_sklearn`` :math:`= 1 - \sum_g(\mu_g - \hat\mu_g)^2 / \sum_g(\mu_g - \bar\mu)^2`,
      :func:`sklearn.metrics.r2_score` with the real means as ``y_true`` (CPA's and
      CellFlow's "R²"); penalises offsets and scale errors, can be negative;
    - ``pearson``, ``spearman``: Pearson / Spearman correlation of the means;
    - with ``control``: ``pearson_delta``, ``r2_pearson_delta``, ``r2_sklearn_delta``, the
      same on the effects :math:`\hat\mu - c` and :math:`\mu - c` (cell-eval's
      ``pearson_delta`` when the predicted and real control means coincide).

    A correlation with a constant vector is undefined and returned as NaN.

    Parameters
    ----------
    pred, true
        ``cells x genes`` matrices (dense, sparse, or AnnData using ``X``/``layer``) with the
        same genes in the same order, or 1-D per-gene mean profiles.
    genes
        Restrict to these genes: names (needs AnnData input or ``var_names``), integer
        positions, or a boolean mask. ``None``: all genes.
    control
        Control cells (``cells x genes`` or AnnData) or their 1-D mean profile.
    layer
        For AnnData input: the layer holding expression (default ``X``).
    var_names
        Gene names when the inputs are plain arrays.

    Returns
    -------
    dict[str, float]
        Keys ``r2_pearson``, ``r2_sklearn``, ``pearson``, ``spearman`` and, with
        ``control``, ``pearson_delta``, ``r2_pearson_delta``, ``r2_sklearn_delta``.
    """
    mu_pred, names_pred = _mean_profile(pred, layer=layer, name="pred")
    mu_true, names_true = _mean_profile(true, layer=layer, name="true")
    if mu_pred.shape != mu_true.shape:
        raise ValueError(
            f"pred and true must have the same genes; got {mu_pred.shape[0]} and "
            f"{mu_true.shape[0]} genes."
        )
    if (
        names_pred is not None
        and names_true is not None
        and not np.array_equal(names_pred, names_true)
    ):
        raise ValueError("pred and true have different var_names (or a different gene order).")
    names = (
        var_names
        if var_names is not None
        else (names_true if names_true is not None else names_pred)
    )
    n_all = mu_true.shape[0]
    if var_names is not None and len(var_names) != n_all:
        raise ValueError(
            f"`var_names` has {len(var_names)} names but the data have {n_all} genes: pass one "
            "name per column, in order."
        )
    idx = gene_index(genes, names, n_all)
    mu_pred, mu_true = mu_pred[idx], mu_true[idx]
    if mu_true.shape[0] < 2:
        raise ValueError("At least 2 genes are needed for a correlation.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        out = _agreement(mu_pred, mu_true)
        if control is not None:
            mu_ctrl, names_ctrl = _mean_profile(control, layer=layer, name="control")
            if (
                names_ctrl is not None
                and names is not None
                and not np.array_equal(names_ctrl, np.asarray(names, dtype=str))
            ):
                raise ValueError("control has different var_names than pred/true.")
            if mu_ctrl.shape[0] != n_all:
                raise ValueError(f"control has {mu_ctrl.shape[0]} genes, expected {n_all}.")
            mu_ctrl = mu_ctrl[idx]
            out.update(_agreement(mu_pred - mu_ctrl, mu_true - mu_ctrl, suffix="_delta"))
    return out


def top_de_genes(
    adata,
    *,
    groupby: str,
    group: str,
    reference: str,
    n: int = 100,
    method: str = "wilcoxon",
    rankby_abs: bool = False,
    layer: str | None = None,
) -> list[str]:
    """Top differentially expressed genes of ``group`` against ``reference``.

    Runs :func:`scanpy.tl.rank_genes_groups` on a copy holding only the cells of the two
    groups (the input is never modified) and returns the first ``n`` gene names in
    scanpy's order: by decreasing score (up-regulated genes first, as in scGen's top-100 DE
    genes), or by decreasing absolute score with ``rankby_abs=True`` (up- and
    down-regulated, as in CPA's per-covariate DE genes).

    Parameters
    ----------
    adata
        :class:`~anndata.AnnData` with log-normalised expression in ``X`` (or ``layer``).
    groupby
        Column of ``adata.obs`` holding the groups.
    group, reference
        The tested group and the reference group (e.g. a stimulated condition and control).
    n
        Number of genes (clipped to the number of genes).
    method
        Test passed to scanpy (``"wilcoxon"``, ``"t-test"``, ``"t-test_overestim_var"``,
        ``"logreg"``).
    rankby_abs
        Rank by absolute score.
    layer
        Expression layer to use instead of ``X``.

    Returns
    -------
    list[str]
        Gene names, most significant first.
    """
    import scanpy as sc

    if not is_anndata(adata):
        raise TypeError(
            f"`adata` must be an AnnData with the groups in .obs, got {type(adata).__name__}."
        )
    if groupby not in adata.obs:
        raise KeyError(f"{groupby!r} is not a column of adata.obs.")
    n = check_int("n", n, minimum=1)
    check_choice("method", method, DE_METHODS)
    rankby_abs = check_bool("rankby_abs", rankby_abs)
    labels = adata.obs[groupby].astype(str).to_numpy()
    group, reference = str(group), str(reference)
    for g in (group, reference):
        if not (labels == g).any():
            raise ValueError(f"No cells with {groupby} == {g!r}.")
    if group == reference:
        raise ValueError("`group` and `reference` must differ.")
    mask = (labels == group) | (labels == reference)
    sub = adata[mask].copy()
    if layer is not None:
        sub.X = get_matrix(sub, layer=layer)
    sub.obs = sub.obs[[]].assign(_de_group=labels[mask])
    sub.obs["_de_group"] = sub.obs["_de_group"].astype("category")
    n_genes = min(int(n), sub.n_vars)
    with warnings.catch_warnings(), keep_torch_threads():
        warnings.simplefilter("ignore")
        sc.tl.rank_genes_groups(
            sub,
            "_de_group",
            groups=[group],
            reference=reference,
            method=method,
            n_genes=n_genes,
            rankby_abs=rankby_abs,
            use_raw=False,
            key_added="_de",
        )
    return [str(g) for g in sub.uns["_de"]["names"][group][:n_genes]]
