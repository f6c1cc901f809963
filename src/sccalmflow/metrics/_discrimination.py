"""Perturbation discrimination score (cell-eval's idea)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np
import pandas as pd

from ._utils import ArrayLike, as_matrix, check_pair

_METRICS = {
    "l1": "cityblock",
    "manhattan": "cityblock",
    "cityblock": "cityblock",
    "l2": "euclidean",
    "euclidean": "euclidean",
    "cosine": "cosine",
}


def discrimination_score(
    pred_effects: ArrayLike,
    real_effects: ArrayLike,
    *,
    metric: Literal["l1", "l2", "cosine"] = "l1",
    labels: Sequence[str] | None = None,
    ties: Literal["average", "optimistic", "pessimistic"] = "average",
) -> np.ndarray | pd.Series:
    r"""Can each predicted effect be told apart from the other perturbations' real effects?

    Row :math:`i` of both matrices is perturbation :math:`i` (an effect is typically the
    mean expression minus the control mean). For each :math:`i`, the :math:`N` real effects
    are ranked by their distance :math:`d_j = \rho(r_j, \hat r_i)` to the predicted effect
    :math:`\hat r_i`, and

    .. math::

        s_i = 1 - \frac{\mathrm{rank}_i}{N},\qquad
        \mathrm{rank}_i = \#\{j : d_j < d_i\} + \tfrac12\,\#\{j \ne i : d_j = d_i\}

    (0-based rank of the true perturbation; ties counted half, ``ties="average"``;
    ``"optimistic"`` drops the tie term, ``"pessimistic"`` counts it fully). The score is 1
    when the true perturbation's real effect is the closest, and :math:`1/N` when it is the
    farthest.

    **Against cell-eval** (``discrimination_score_l1``/``_l2``/``_cosine``, 0.8): the same
    distances (scikit-learn ``pairwise_distances`` there, :func:`scipy.spatial.distance.cdist`
    here) and the same normalisation ``1 - rank / N`` over the non-control perturbations,
    so without ties the values are identical. Differences: cell-eval breaks ties by the
    order of :func:`numpy.argsort` (arbitrary), and for expression data it drops the column
    of the perturbation's target gene when a gene has the perturbation's name (CRISPR
    screens); here all columns are used — drop such a column yourself if needed. cell-eval
    computes effects against the *predicted* control mean for predictions; pass effects
    computed however you intend.

    Parameters
    ----------
    pred_effects, real_effects
        ``perturbations x features`` arrays, rows aligned.
    metric
        ``"l1"`` (cell-eval's headline), ``"l2"`` or ``"cosine"``.
    labels
        Perturbation names; when given a :class:`pandas.Series` indexed by them is returned.
    ties
        Tie convention (see above).

    Returns
    -------
    numpy.ndarray or pandas.Series
        :math:`s_i` for every perturbation.
    """
    from scipy.spatial.distance import cdist

    if metric not in _METRICS:
        raise ValueError(f"metric must be one of {sorted(_METRICS)}, got {metric!r}.")
    if ties not in ("average", "optimistic", "pessimistic"):
        raise ValueError(f"Unknown ties convention {ties!r}.")
    pred = as_matrix(pred_effects, name="pred_effects")
    real = as_matrix(real_effects, name="real_effects")
    check_pair(pred, real, ("pred_effects", "real_effects"))
    if pred.shape[0] != real.shape[0]:
        raise ValueError(
            f"pred_effects and real_effects must have one row per perturbation each; got "
            f"{pred.shape[0]} and {real.shape[0]} rows."
        )
    n = real.shape[0]
    if labels is not None and len(labels) != n:
        raise ValueError(f"{len(labels)} labels for {n} perturbations.")
    # dist[i, j] = distance between prediction i and real effect j
    dist = cdist(pred, real, metric=_METRICS[metric])
    own = np.diag(dist)[:, None]
    closer = (dist < own).sum(axis=1)
    tied = (dist == own).sum(axis=1) - 1  # minus the perturbation itself
    weight = {"average": 0.5, "optimistic": 0.0, "pessimistic": 1.0}[ties]
    scores = 1.0 - (closer + weight * tied) / n
    if labels is not None:
        return pd.Series(scores, index=pd.Index([str(x) for x in labels], name="perturbation"))
    return scores
