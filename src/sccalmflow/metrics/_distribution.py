"""Distances between two sets of cells: MMD, adaptive MMD, 2-Wasserstein, energy distance.

The 2-Wasserstein distance comes in two estimators: between the empirical distributions
(:func:`wasserstein2`, the paper's) and between Gaussians fitted to the two sets
(:func:`gaussian_w2`, the Fréchet distance of FID, square-rooted).

All functions take two ``cells x features`` sets (numpy arrays, sparse matrices or AnnData
with ``obsm=``/``layer=``) living in the same space, and return a float (smaller is better,
0 for identical sets). Pairwise quantities are accumulated block by block, so the memory
stays bounded (a few tens of MiB) whatever the number of cells.
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from typing import Any, Literal

import numpy as np

from ..utils import check_bool, check_choice, check_int, check_number, check_numbers, check_seed
from ._utils import ArrayLike, as_matrix, check_n_max, check_pair, subsample

#: CellFlow's bandwidths for the RBF kernel ``exp(-gamma * ||a - b||^2)``.
DEFAULT_GAMMAS: tuple[float, ...] = (2.0, 1.0, 0.5, 0.1, 0.01, 0.005)

#: Largest number of cells per set passed to POT's exact solver by default (see
#: :func:`wasserstein2`): the solver's time grows roughly as ``n ** 2.5`` and its dense cost
#: matrix takes ``8 n m`` bytes (200 MB for 5,000 x 5,000 cells).
DEFAULT_MAX_EXACT = 5000

#: Largest number of cells per set for the Sinkhorn solver (dense kernel matrix in memory).
MAX_SINKHORN = 10000

_BLOCK_ELEMS = 2**22  # ~4M pairwise entries (32 MiB in float64) per block


def _pair(
    x: ArrayLike, y: ArrayLike, obsm: str | None, layer: str | None
) -> tuple[np.ndarray, np.ndarray]:
    a = as_matrix(x, obsm=obsm, layer=layer, name="x")
    b = as_matrix(y, obsm=obsm, layer=layer, name="y")
    check_pair(a, b)
    return a, b


def _centre(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Subtract the pooled mean.

    Distances are translation invariant; centring limits the cancellation error of
    ``|a|^2 + |b|^2 - 2 a.b``.
    """
    mu = (x.sum(axis=0) + y.sum(axis=0)) / (x.shape[0] + y.shape[0])
    return x - mu, y - mu


def _sqdist_blocks(
    a: np.ndarray, b: np.ndarray, *, same: bool = False
) -> Iterator[tuple[int, int, np.ndarray]]:
    """Yield ``(start, stop, D)`` with ``D[i, j] = ||a[start + i] - b[j]||^2`` (float64).

    With ``same=True`` (``a`` is ``b``) the diagonal entries are set to exactly 0, and
    entries below the rounding error of ``|a|^2 + |b|^2 - 2 a.b`` are set to 0.
    """
    a_sq = np.einsum("ij,ij->i", a, a)
    b_sq = a_sq if same else np.einsum("ij,ij->i", b, b)
    # squared distances below the rounding error of the expansion are exact zeros
    # (duplicated cells), which keeps e.g. E(x, x) at exactly 0
    tol = 16 * np.finfo(np.float64).eps * max(float(a_sq.max()), float(b_sq.max()))
    rows = max(1, _BLOCK_ELEMS // max(b.shape[0], 1))
    for start in range(0, a.shape[0], rows):
        stop = min(start + rows, a.shape[0])
        d = a[start:stop] @ b.T
        d *= -2.0
        d += a_sq[start:stop, None]
        d += b_sq[None, :]
        d[d < tol] = 0.0
        if same:
            r = np.arange(stop - start)
            d[r, start + r] = 0.0
        yield start, stop, d


def _check_gammas(gammas: Any) -> tuple[float, ...]:
    """The RBF bandwidths: a non-empty sequence of finite positive numbers."""
    return check_numbers("gammas", gammas, minimum=0, exclusive_minimum=True)


def _gamma_plan(gammas: Sequence[float]) -> list[tuple[int, int | None, int]]:
    """Order in which to evaluate ``exp(-g d)`` for each bandwidth.

    Entries are ``(i, j, k)``: bandwidth ``i`` is bandwidth ``j`` squared ``k`` times
    (when ``gammas[i] == 2**k * gammas[j]``), or a fresh ``exp`` when ``j`` is None. For the
    default bandwidths this halves the number of exponentials.
    """
    order = sorted(range(len(gammas)), key=lambda i: gammas[i])
    plan: list[tuple[int, int | None, int]] = []
    done: list[int] = []
    for i in order:
        src: tuple[int, int] | None = None
        for j in done:
            ratio = gammas[i] / gammas[j]
            for k in (1, 2, 3):
                if abs(ratio - 2**k) <= 1e-12 * 2**k and (src is None or k < src[1]):
                    src = (j, k)
        plan.append((i, None, 0) if src is None else (i, src[0], src[1]))
        done.append(i)
    return plan


def _rbf_sum(a: np.ndarray, b: np.ndarray, gammas: Sequence[float], *, same: bool) -> np.ndarray:
    """``sum_ij exp(-gamma ||a_i - b_j||^2)`` for each gamma (float64 accumulation)."""
    plan = _gamma_plan(gammas)
    totals = np.zeros(len(gammas))
    for _, _, d in _sqdist_blocks(a, b, same=same):
        d32 = d.astype(np.float32)
        vals: dict[int, np.ndarray] = {}
        for i, j, k in plan:
            if j is None:
                e = np.multiply(d32, -gammas[i], dtype=np.float32)
                np.exp(e, out=e)
            else:
                e = np.square(vals[j])
                for _ in range(k - 1):
                    np.square(e, out=e)
            vals[i] = e
            totals[i] += e.sum(dtype=np.float64)
    return totals


def mmd(
    x: ArrayLike,
    y: ArrayLike,
    *,
    kernel: Literal["rbf"] = "rbf",
    gammas: Sequence[float] = DEFAULT_GAMMAS,
    unbiased: bool = False,
    obsm: str | None = None,
    layer: str | None = None,
) -> float:
    r"""Squared maximum mean discrepancy with an RBF kernel, averaged over bandwidths.

    Follows CellFlow's ``compute_scalar_mmd`` convention: the kernel is
    :math:`k_\gamma(a, b) = \exp(-\gamma \lVert a - b \rVert^2)` (``gamma`` multiplies the
    *squared* distance; there is no factor 1/2 and no per-dimension scaling) and the result
    is the plain mean over ``gammas`` of

    .. math::

        \mathrm{MMD}^2_\gamma = \frac{1}{n^2}\sum_{i,j} k_\gamma(x_i, x_j)
            + \frac{1}{m^2}\sum_{i,j} k_\gamma(y_i, y_j)
            - \frac{2}{nm}\sum_{i,j} k_\gamma(x_i, y_j)

    (the biased V-statistic, self-pairs included, as in CellFlow). With ``unbiased=True``
    the within-set sums exclude :math:`i = j` and are divided by :math:`n(n-1)` and
    :math:`m(m-1)` (Gretton et al.'s unbiased estimator; can be slightly negative).

    Parameters
    ----------
    x, y
        ``cells x features`` arrays (or AnnData with ``obsm``/``layer``) in the same space.
        The bandwidths are absolute, so the value depends on the scale of that space.
    kernel
        Only ``"rbf"``.
    gammas
        Inverse squared bandwidths :math:`\gamma` (finite, positive).
    unbiased
        Use the unbiased estimator (needs at least 2 cells per set).
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    float
        :math:`\frac{1}{|\Gamma|}\sum_{\gamma\in\Gamma}\mathrm{MMD}^2_\gamma`; 0 for identical
        sets (biased estimator).

    Notes
    -----
    Squared distances are computed in float64; kernel values are evaluated in float32
    (relative error ~1e-7) and summed in float64. Cost :math:`O((n+m)^2 d)` time, bounded
    memory.
    """
    check_choice("kernel", kernel, ("rbf",))
    gammas = _check_gammas(gammas)
    unbiased = check_bool("unbiased", unbiased)
    a, b = _pair(x, y, obsm, layer)
    n, m = a.shape[0], b.shape[0]
    if unbiased and min(n, m) < 2:
        raise ValueError("The unbiased MMD needs at least 2 cells in each set.")
    a, b = _centre(a, b)
    kxx = _rbf_sum(a, a, gammas, same=True)
    kyy = _rbf_sum(b, b, gammas, same=True)
    kxy = _rbf_sum(a, b, gammas, same=False)
    if unbiased:
        # the diagonal terms are exactly exp(0) = 1
        per_gamma = (kxx - n) / (n * (n - 1)) + (kyy - m) / (m * (m - 1)) - 2 * kxy / (n * m)
    else:
        per_gamma = kxx / n**2 + kyy / m**2 - 2 * kxy / (n * m)
    return float(np.mean(per_gamma))


def adaptive_mmd(
    x: ArrayLike,
    y: ArrayLike,
    *,
    k: int = 20,
    obsm: str | None = None,
    layer: str | None = None,
) -> float:
    r"""Squared MMD with a locally adaptive (per-point bandwidth) Gaussian kernel.

    The paper's "adaptive MMD" sets each point's bandwidth from its k-nearest-neighbour
    distance; the exact kernel is not given there, so we use the self-tuning kernel of
    Zelnik-Manor & Perona (2004) on the pooled sample :math:`z = x \cup y`
    (:math:`N = n + m` points):

    .. math::

        \sigma_i &= \lVert z_i - z_{(k)}(i) \rVert
            \quad\text{(distance to the $k$-th nearest other point of the pooled set)}\\
        K_{ij} &= \exp\!\left(-\frac{\lVert z_i - z_j\rVert^2}{\sigma_i \sigma_j}\right)\\
        \mathrm{adMMD}^2 &= w^\top K w, \qquad
            w_i = \tfrac{1}{n} \text{ for } z_i \in x,\; w_i = -\tfrac{1}{m} \text{ for } z_i \in y

    i.e. the biased (V-statistic) MMD² with self-pairs included, so identical sets give 0
    and the value is symmetric in ``x`` and ``y``. Bandwidths of 0 (more than ``k``
    duplicates) are replaced by the smallest positive bandwidth. The self-tuning kernel is
    not guaranteed to be positive definite, so tiny negative values are possible.

    Parameters
    ----------
    x, y
        ``cells x features`` sets in the same space (or AnnData with ``obsm``/``layer``).
    k
        Neighbour rank defining the bandwidth (clipped to :math:`N - 1`).
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    float
        :math:`\mathrm{adMMD}^2`.
    """
    k = check_int("k", k, minimum=1)
    a, b = _pair(x, y, obsm, layer)
    n, m = a.shape[0], b.shape[0]
    if n + m < 2:
        raise ValueError("adaptive_mmd needs at least 2 cells in total.")
    a, b = _centre(a, b)
    z = np.vstack([a, b])
    kk = min(int(k), n + m - 1)
    sig2 = np.empty(n + m)
    for start, stop, d in _sqdist_blocks(z, z, same=True):
        r = np.arange(stop - start)
        d[r, start + r] = np.inf
        sig2[start:stop] = np.partition(d, kk - 1, axis=1)[:, kk - 1]
    sig = np.sqrt(sig2)
    positive = sig[sig > 0]
    if positive.size == 0:  # all points identical
        return 0.0
    sig = np.where(sig > 0, sig, positive.min())
    w = np.concatenate([np.full(n, 1.0 / n), np.full(m, -1.0 / m)])
    total = 0.0
    for start, stop, d in _sqdist_blocks(z, z, same=True):
        d /= sig[start:stop, None]
        d /= sig[None, :]
        np.negative(d, out=d)
        np.exp(d, out=d)
        total += float(w[start:stop] @ (d @ w))
    return total


def wasserstein2(
    x: ArrayLike,
    y: ArrayLike,
    *,
    exact: bool = True,
    max_exact: int | None = DEFAULT_MAX_EXACT,
    seed: int = 0,
    reg: float = 0.05,
    return_info: bool = False,
    obsm: str | None = None,
    layer: str | None = None,
) -> float | tuple[float, dict[str, Any]]:
    r"""2-Wasserstein distance between the empirical distributions of two sets of cells.

    .. math::

        W_2(x, y) = \Big(\min_{P \in U(a, b)} \sum_{ij} P_{ij} \lVert x_i - y_j \rVert^2\Big)^{1/2},
        \qquad a = \tfrac{1}{n}\mathbf{1},\; b = \tfrac{1}{m}\mathbf{1}

    solved exactly with POT's network simplex (``ot.emd2``) on the squared Euclidean cost
    matrix (as in the paper), then square-rooted.

    **Size limit.** The exact solver costs roughly :math:`O(n^{2.5})` time and
    :math:`O(nm)` memory. When a set has more than ``max_exact`` cells, ``max_exact`` of
    them are drawn uniformly without replacement with ``numpy.random.default_rng(seed)``
    (the other set is subsampled the same way if it is also too large), and the exact
    problem is solved on the subsample; ``return_info=True`` reports it. Note that the
    empirical W2 between finite samples is biased upwards (strongly so in high dimension),
    so only compare values computed with the same numbers of cells.
    ``max_exact=None`` disables subsampling.

    ``exact=False`` solves the entropic problem with ``ot.sinkhorn2`` instead, with
    :math:`\varepsilon = \text{reg}\cdot\overline{C}` (``reg`` times the mean cost), and
    returns :math:`\sqrt{\langle P_\varepsilon, C\rangle}` — an upper bound on the exact
    value; its name in :func:`evaluate` is ``"w2_sinkhorn"``. Sinkhorn uses all cells up to
    :data:`MAX_SINKHORN` per set and subsamples above that.

    Parameters
    ----------
    x, y
        ``cells x features`` sets (or AnnData with ``obsm``/``layer``).
    exact
        Exact OT (``True``) or Sinkhorn (``False``).
    max_exact
        Largest set size given to the exact solver (default 5,000).
    seed
        Seed of the subsampling.
    reg
        Relative entropic regularisation (Sinkhorn only).
    return_info
        Also return a dict with ``method`` (``"exact"``/``"sinkhorn"``), ``name``
        (``"w2"``/``"w2_sinkhorn"``), ``n_x``, ``n_y`` (input sizes), ``n_x_used``,
        ``n_y_used``, ``subsampled``, ``seed`` and ``epsilon``.
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    float or (float, dict)
        :math:`W_2` (same unit as the features).
    """
    import ot
    from scipy.spatial.distance import cdist

    exact = check_bool("exact", exact)
    return_info = check_bool("return_info", return_info)
    max_exact = check_n_max("max_exact", max_exact)
    seed = check_seed("seed", seed)
    reg = check_number("reg", reg, minimum=0, exclusive_minimum=True)
    a, b = _pair(x, y, obsm, layer)
    n, m = a.shape[0], b.shape[0]
    cap = max_exact if exact else MAX_SINKHORN
    rng = np.random.default_rng(seed)
    a_used, sub_a = subsample(a, cap, rng, name="max_exact")
    b_used, sub_b = subsample(b, cap, rng, name="max_exact")
    # exact differences (not the |a|^2+|b|^2-2ab expansion): identical rows cost exactly 0
    cost = cdist(a_used, b_used, metric="sqeuclidean")
    wa = np.full(a_used.shape[0], 1.0 / a_used.shape[0])
    wb = np.full(b_used.shape[0], 1.0 / b_used.shape[0])
    epsilon = None
    if exact:
        value, log = ot.emd2(wa, wb, cost, numItermax=50_000_000, log=True)
        if log.get("warning"):
            warnings.warn(f"ot.emd2: {log['warning']}", RuntimeWarning, stacklevel=2)
    else:
        scale = float(cost.mean())
        if scale == 0.0:
            value = 0.0
        else:
            epsilon = float(reg) * scale
            value = ot.sinkhorn2(wa, wb, cost, epsilon, numItermax=5000, stopThr=1e-7)
    w2 = float(np.sqrt(max(float(value), 0.0)))
    if not return_info:
        return w2
    info = {
        "method": "exact" if exact else "sinkhorn",
        "name": "w2" if exact else "w2_sinkhorn",
        "n_x": n,
        "n_y": m,
        "n_x_used": a_used.shape[0],
        "n_y_used": b_used.shape[0],
        "subsampled": bool(sub_a or sub_b),
        "seed": seed,
        "epsilon": epsilon,
    }
    return w2, info


def _sqrt_psd(c: np.ndarray) -> np.ndarray:
    """Symmetric square root of a positive semi-definite matrix (eigenvalues clipped at 0)."""
    vals, vecs = np.linalg.eigh((c + c.T) / 2)
    return (vecs * np.sqrt(np.clip(vals, 0.0, None))) @ vecs.T


def gaussian_w2(
    x: ArrayLike,
    y: ArrayLike,
    *,
    obsm: str | None = None,
    layer: str | None = None,
) -> float:
    r"""2-Wasserstein distance between Gaussians fitted to two sets of cells.

    .. math::

        W_2^{\mathcal N}(x, y)^2 = \lVert \bar x - \bar y \rVert^2
        + \operatorname{tr}\Big(S_x + S_y - 2\big(S_x^{1/2} S_y S_x^{1/2}\big)^{1/2}\Big)

    with :math:`\bar x, S_x` the mean and the (maximum-likelihood, :math:`1/n`) covariance of
    ``x``: the closed-form 2-Wasserstein (Bures–Wasserstein) distance between
    :math:`\mathcal N(\bar x, S_x)` and :math:`\mathcal N(\bar y, S_y)`, i.e. the square root of
    the Fréchet distance behind FID (POT's ``ot.gaussian.empirical_bures_wasserstein_distance``
    with ``reg=0``; here the matrix square roots clip round-off negative eigenvalues, so
    rank-deficient sets and identical sets, which give 0, are handled).

    **Why a second W2.** The empirical :func:`wasserstein2` between finite samples is biased
    upwards, and the bias grows with the spread of the samples, so in 50 dimensions a set that
    is *narrower* than the real cells can score a lower W2 than a sample of the real
    distribution itself (interpolating between a few cells does, see
    ``benchmarks/results/generator_notes.md``). This estimator only sees the first two
    moments and penalises a spread that is too small as well as one that is too large: for
    500 draws of :math:`\mathcal N(0, c^2 I_{50})` against 500 of :math:`\mathcal N(0, I_{50})`
    it is lowest near :math:`c = 0.95` (it is biased too, upwards, by the covariances'
    sampling error), while the empirical W2 keeps falling as :math:`c` shrinks to 0.8. It is
    blind to everything beyond the covariance (several modes, skew), so report it beside
    :func:`wasserstein2`, not instead of it, and on sets that are roughly unimodal (one cell
    type, one condition). Compare values computed with the same numbers of cells.

    Parameters
    ----------
    x, y
        ``cells x features`` sets (or AnnData with ``obsm``/``layer``), at least 2 cells each.
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    float
        :math:`W_2^{\mathcal N}(x, y)` (same unit as the features).
    """
    a, b = _pair(x, y, obsm, layer)
    if min(a.shape[0], b.shape[0]) < 2:
        raise ValueError(
            f"gaussian_w2 fits a covariance to each set and needs at least 2 cells per set; "
            f"got {a.shape[0]} and {b.shape[0]}. Pass more cells, or use wasserstein2."
        )
    a, b = _centre(a, b)
    mean_a, mean_b = a.mean(axis=0), b.mean(axis=0)
    cov_a = np.cov(a, rowvar=False, bias=True).reshape(a.shape[1], a.shape[1])
    cov_b = np.cov(b, rowvar=False, bias=True).reshape(b.shape[1], b.shape[1])
    root_a = _sqrt_psd(cov_a)
    cross = root_a @ cov_b @ root_a
    cross_vals = np.clip(np.linalg.eigvalsh((cross + cross.T) / 2), 0.0, None)
    bures2 = float(np.trace(cov_a) + np.trace(cov_b) - 2.0 * np.sqrt(cross_vals).sum())
    diff = mean_a - mean_b
    return float(np.sqrt(max(float(diff @ diff) + bures2, 0.0)))


def _dist_sum(a: np.ndarray, b: np.ndarray, *, same: bool) -> float:
    total = 0.0
    for _, _, d in _sqdist_blocks(a, b, same=same):
        np.sqrt(d, out=d)
        total += float(d.sum())
    return total


def energy_distance(
    x: ArrayLike,
    y: ArrayLike,
    *,
    squared: bool = False,
    self_pairs: bool = True,
    obsm: str | None = None,
    layer: str | None = None,
) -> float:
    r"""Energy distance (E-distance) between two sets of cells.

    .. math::

        E(x, y) = 2\delta - \sigma_x - \sigma_y, \qquad
        \delta = \frac{1}{nm}\sum_{i,j} \rho(x_i, y_j)

    with :math:`\rho(a, b) = \lVert a - b\rVert` (``squared=False``, the "plain" E-distance
    of pertpy) or :math:`\rho(a, b) = \lVert a - b\rVert^2` (``squared=True``, scPerturb /
    CellFlow). The within-set means :math:`\sigma_x` depend on ``self_pairs``:

    - ``self_pairs=True`` (default): mean over all :math:`n^2` ordered pairs, self-pairs
      (distance 0) included, :math:`\sigma_x = \frac{1}{n^2}\sum_{i,j}\rho(x_i, x_j)`.
      This is what the code of pertpy's ``Edistance``, cell-eval's ``pearson_edistance``
      and CellFlow's ``compute_e_distance`` computes (``pairwise_distances(X, X).mean()``),
      and it gives exactly 0 for identical sets.
    - ``self_pairs=False``: mean over the :math:`n(n-1)/2` pairs :math:`i<j`
      (the U-statistic); unbiased for the population energy distance, but not 0 for two
      identical finite sets (it is then :math:`-2\sigma_x/n`, slightly negative).

    **Squared variant.** Expanding the squares gives closed forms, used here (so it costs
    :math:`O((n+m)d)`):

    - with self-pairs, exactly :math:`E^2 = 2\lVert\bar x - \bar y\rVert^2` — twice the
      squared distance between the means, blind to everything but the means;
    - without, :math:`E^2 = 2\left(\lVert\bar x - \bar y\rVert^2
      - \operatorname{tr}S_x/n - \operatorname{tr}S_y/m\right)` with :math:`S` the
      unbiased (:math:`n-1`) sample covariance: the unbiased estimate of
      :math:`2\lVert\mu_x - \mu_y\rVert^2`.

    Parameters
    ----------
    x, y
        ``cells x features`` sets (or AnnData with ``obsm``/``layer``).
    squared
        Use squared Euclidean distances.
    self_pairs
        Include :math:`i = j` pairs in the within-set means (see above).
    obsm, layer
        For AnnData input: the representation to use.

    Returns
    -------
    float
        :math:`E(x, y)`.
    """
    squared = check_bool("squared", squared)
    self_pairs = check_bool("self_pairs", self_pairs)
    a, b = _pair(x, y, obsm, layer)
    n, m = a.shape[0], b.shape[0]
    if not self_pairs and min(n, m) < 2:
        raise ValueError("energy_distance with self_pairs=False needs at least 2 cells per set.")
    if squared:
        diff = a.mean(axis=0) - b.mean(axis=0)
        value = float(diff @ diff)
        if not self_pairs:
            value -= float(a.var(axis=0, ddof=1).sum()) / n + float(b.var(axis=0, ddof=1).sum()) / m
        return 2.0 * value
    a, b = _centre(a, b)
    sxx = _dist_sum(a, a, same=True)
    syy = _dist_sum(b, b, same=True)
    sxy = _dist_sum(a, b, same=False)
    delta = sxy / (n * m)
    if self_pairs:
        sigma_x, sigma_y = sxx / n**2, syy / m**2
    else:
        sigma_x, sigma_y = sxx / (n * (n - 1)), syy / (m * (m - 1))
    return float(2.0 * delta - sigma_x - sigma_y)
