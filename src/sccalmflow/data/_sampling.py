"""Drawing source cells from a pool."""

from __future__ import annotations

import numpy as np


def resample_pool(pool: np.ndarray, n: int, rng: np.random.Generator) -> np.ndarray:
    """Draw ``n`` elements of ``pool``, using every element once before any repeats.

    The draws are consecutive random permutations of ``pool`` cut to length ``n``: with
    ``n <= len(pool)`` no element repeats, and otherwise every element appears
    ``n // len(pool)`` or ``n // len(pool) + 1`` times. Compared with drawing with
    replacement this represents the pool (the control cells of a context) without the
    chance duplicates and gaps of a bootstrap.

    Parameters
    ----------
    pool
        1-d array to draw from (e.g. cell indices); must not be empty.
    n
        Number of draws, ``>= 0``.
    rng
        Random generator.

    Returns
    -------
    Array of length ``n`` with elements of ``pool``.
    """
    pool = np.asarray(pool)
    if pool.ndim != 1 or pool.size == 0:
        raise ValueError(f"pool must be a non-empty 1-d array, got shape {pool.shape}.")
    if n < 0:
        raise ValueError(f"n must be >= 0, got {n}.")
    n_pass = -(-int(n) // pool.size)
    if n_pass == 0:
        return pool[:0].copy()
    return np.concatenate([rng.permutation(pool) for _ in range(n_pass)])[:n]
