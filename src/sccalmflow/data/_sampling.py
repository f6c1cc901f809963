"""Drawing source cells from a pool."""

from __future__ import annotations

from typing import Any

import numpy as np

from ..utils import check_int, check_number, check_seed


def _check_rng(rng: Any) -> np.random.Generator:
    if not isinstance(rng, np.random.Generator):
        raise TypeError(
            f"`rng` must be a numpy random Generator, e.g. np.random.default_rng(0); got "
            f"{type(rng).__name__}."
        )
    return rng


def _check_draws(z: Any, positions: Any) -> tuple[np.ndarray, np.ndarray]:
    """Pool states ``(n_pool, d)`` of real numbers and integer rows of it, one per draw."""
    z = np.asarray(z)
    if z.ndim != 2 or z.shape[0] == 0 or not np.issubdtype(z.dtype, np.floating):
        raise ValueError(
            f"`z` must be a non-empty 2-d float array (pool x features), got shape {z.shape} "
            f"and dtype {z.dtype}."
        )
    positions = np.asarray(positions)
    if positions.ndim != 1 or not (
        positions.size == 0 or np.issubdtype(positions.dtype, np.integer)
    ):
        raise TypeError(
            f"`positions` must be a 1-d array of integer rows of `z`, got shape "
            f"{positions.shape} and dtype {positions.dtype}."
        )
    if positions.size and (positions.min() < 0 or positions.max() >= len(z)):
        raise ValueError(
            f"`positions` must be rows of `z`, from 0 to {len(z) - 1}; got values from "
            f"{positions.min()} to {positions.max()}."
        )
    return z, positions


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
    n = check_int("n", n, minimum=0)
    rng = _check_rng(rng)
    n_pass = -(-n // pool.size)
    if n_pass == 0:
        return pool[:0].copy()
    return np.concatenate([rng.permutation(pool) for _ in range(n_pass)])[:n]


def interpolate_repeats(
    z: np.ndarray, positions: np.ndarray, rng: np.random.Generator, n_neighbors: int = 5
) -> np.ndarray:
    """Source states for draws of a pool, with repeated draws moved between neighbours.

    The first ``len(z)`` draws (one pass over the pool, see :func:`resample_pool`) are the
    pool's own rows; every later draw of row ``i`` becomes a random point on the segment from
    ``z[i]`` to one of its ``n_neighbors`` nearest rows in the pool (SMOTE-style
    interpolation), so oversampling a small pool gives new, nearby states instead of copies.

    Parameters
    ----------
    z
        Pool states, ``(n_pool, d)``.
    positions
        Row of ``z`` for each draw, e.g. ``resample_pool(np.arange(n_pool), n, rng)``.
    rng
        Random generator (neighbour choice and position on the segment).
    n_neighbors
        Neighbours to interpolate towards.

    Returns
    -------
    Array ``(len(positions), d)``.
    """
    from sklearn.neighbors import NearestNeighbors

    z, positions = _check_draws(z, positions)
    rng = _check_rng(rng)
    k = min(check_int("n_neighbors", n_neighbors, minimum=1), len(z) - 1)
    out = z[positions].copy()
    later = np.arange(len(positions)) >= len(z)
    if not later.any() or k < 1:
        return out
    _, nbr = NearestNeighbors(n_neighbors=k + 1).fit(z).kneighbors(z)
    anchor = positions[later]
    partner = nbr[anchor, rng.integers(1, k + 1, size=anchor.size)]
    u = rng.random((anchor.size, 1)).astype(z.dtype)
    out[later] = z[anchor] + u * (z[partner] - z[anchor])
    return out


def smooth_repeats(
    z: np.ndarray, positions: np.ndarray, rng: np.random.Generator, bandwidth: float = 1.0
) -> np.ndarray:
    """Source states for draws of a pool, with repeated draws drawn from a smoothed pool.

    The first ``len(z)`` draws (one pass over the pool, see :func:`resample_pool`) are the
    pool's own rows; every later draw of row ``i`` is the shrunk smoothed bootstrap
    (Silverman 1986, §6.4.1): ``m + (z[i] - m + h · e) / sqrt(1 + h²)``, with ``m`` the pool's
    mean, ``h`` the bandwidth and ``e`` a Gaussian draw with the pool's covariance. The
    later draws keep the pool's mean and covariance in expectation (repeating keeps them too,
    interpolating between neighbours shrinks the covariance), and each is a new state:
    oversampling a small pool gives distinct cells with the pool's spread. ``h`` moves the
    draws from copies of the pool (0) towards a Gaussian with its mean and covariance.

    Parameters
    ----------
    z
        Pool states, ``(n_pool, d)``.
    positions
        Row of ``z`` for each draw, e.g. ``resample_pool(np.arange(n_pool), n, rng)``.
    rng
        Random generator (the Gaussian draws).
    bandwidth
        ``h >= 0``, in units of the pool's own spread.

    Returns
    -------
    Array ``(len(positions), d)`` of ``z``'s dtype.
    """
    bandwidth = check_number("bandwidth", bandwidth, minimum=0)
    z, positions = _check_draws(z, positions)
    rng = _check_rng(rng)
    out = z[positions].copy()
    later = np.arange(len(positions)) >= len(z)
    if not later.any() or len(z) < 2:
        return out
    zf = z.astype(np.float64)
    mean = zf.mean(0)
    centred = zf - mean
    # e = G (z - m) / sqrt(n - 1), G standard normal: a draw with the pool's covariance
    g = rng.standard_normal((int(later.sum()), len(z)))
    e = g @ centred / np.sqrt(len(z) - 1)
    moved = mean + (centred[positions[later]] + bandwidth * e) / np.sqrt(1 + bandwidth**2)
    out[later] = moved.astype(z.dtype)
    return out


def stratified_rows(groups: np.ndarray, max_rows: int, seed: int) -> np.ndarray:
    """At most ``max_rows`` sorted positions, the same fraction of every group (seeded).

    Every group keeps at least one row; with ``max_rows >= len(groups)`` all rows.
    """
    groups = np.asarray(groups)
    max_rows = check_int("max_rows", max_rows, minimum=1)
    seed = check_seed("seed", seed)
    n = len(groups)
    if max_rows >= n:
        return np.arange(n)
    rng = np.random.default_rng([seed, max_rows])
    fraction = max_rows / n
    keep = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        keep.append(rng.choice(idx, max(1, int(round(fraction * len(idx)))), replace=False))
    return np.sort(np.concatenate(keep))
