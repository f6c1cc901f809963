"""Metrics for generated and predicted cells, with the field's conventions made explicit.

Distribution distances (:func:`mmd`, :func:`adaptive_mmd`, :func:`wasserstein2`,
:func:`gaussian_w2`, :func:`energy_distance`), gene-space agreement (:func:`mean_expression_r2`,
:func:`top_de_genes`), cluster-based scores (:func:`leiden_kl`, :func:`inception_score`),
the paper's joint UMAP space (:func:`joint_umap`), cell-eval's discrimination score
(:func:`discrimination_score`), a one-call tidy evaluation (:func:`evaluate`) and an export
to cell-eval (:func:`to_cell_eval`).
"""

from ._cell_eval import CellEvalInputs, to_cell_eval
from ._cluster import (
    ClusterClassifier,
    LeidenKLResult,
    fit_cluster_classifier,
    inception_score,
    joint_umap,
    leiden_kl,
)
from ._correlation import mean_expression_r2, top_de_genes
from ._discrimination import discrimination_score
from ._distribution import (
    DEFAULT_GAMMAS,
    DEFAULT_MAX_EXACT,
    adaptive_mmd,
    energy_distance,
    gaussian_w2,
    mmd,
    wasserstein2,
)
from ._evaluate import DEFAULT_METRICS, DISTRIBUTION_METRICS, evaluate

__all__ = [
    "DEFAULT_GAMMAS",
    "DEFAULT_MAX_EXACT",
    "DEFAULT_METRICS",
    "DISTRIBUTION_METRICS",
    "CellEvalInputs",
    "ClusterClassifier",
    "LeidenKLResult",
    "adaptive_mmd",
    "discrimination_score",
    "energy_distance",
    "evaluate",
    "fit_cluster_classifier",
    "gaussian_w2",
    "inception_score",
    "joint_umap",
    "leiden_kl",
    "mean_expression_r2",
    "mmd",
    "to_cell_eval",
    "top_de_genes",
    "wasserstein2",
]
