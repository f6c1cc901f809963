from __future__ import annotations

import numpy as np


def ot_permutation(x0: np.ndarray, x1: np.ndarray) -> np.ndarray:
    """Exact optimal-transport pairing of two equal-size samples (POT's ``ot.emd``).

    With uniform weights on ``n`` sources and ``n`` targets the optimal plan for the squared
    Euclidean cost is a permutation (Birkhoff); this returns it.

    Parameters
    ----------
    x0, x1
        Arrays of shape ``(n, D)``.

    Returns
    -------
    ``perm`` of shape ``(n,)`` such that ``x0[perm[j]]`` is the source paired with ``x1[j]``.
    """
    import ot

    if x0.shape != x1.shape:
        raise ValueError(f"OT pairing needs equal shapes, got {x0.shape} and {x1.shape}.")
    n = x0.shape[0]
    if n <= 1:
        return np.arange(n)
    a = np.full(n, 1.0 / n)
    cost = ot.dist(x0.astype(np.float64), x1.astype(np.float64), metric="sqeuclidean")
    plan = ot.emd(a, a, cost)
    # rows are sources, columns targets; each column has one non-zero entry
    return np.asarray(plan.argmax(axis=0)).ravel()
