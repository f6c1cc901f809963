"""The data of the suites: toy samplers and mixtures, toy points as cells, Kang splits."""

from __future__ import annotations

from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd


# ====================================================================== toy samplers
def sample_8gaussians(n: int, rng: np.random.Generator) -> np.ndarray:
    """Torchcfm's ``sample_8gaussians``: 8 centres at radius 5, covariance sqrt(0.1) I."""
    s = 1 / np.sqrt(2)
    centers = 5 * np.array([(1, 0), (-1, 0), (0, 1), (0, -1), (s, s), (s, -s), (-s, s), (-s, -s)])
    which = rng.integers(8, size=n)
    return (centers[which] + rng.standard_normal((n, 2)) * 0.1**0.25).astype(np.float32)


def sample_moons(n: int, rng: np.random.Generator) -> np.ndarray:
    """Torchcfm's ``sample_moons``: sklearn ``make_moons(noise=0.2) * 3 - 1``."""
    from sklearn.datasets import make_moons

    x, _ = make_moons(n, noise=0.2, random_state=int(rng.integers(2**31 - 1)))
    return (x * 3 - 1).astype(np.float32)


@dataclass
class GaussianMixture:
    """Equal-weight isotropic Gaussian mixture."""

    means: np.ndarray
    sd: float

    def sample(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """``n`` points (float32)."""
        which = rng.integers(len(self.means), size=n)
        noise = rng.standard_normal((n, self.means.shape[1])) * self.sd
        return (self.means[which] + noise).astype(np.float32)


#: Mixture parameters of the ``gaussians`` suite (see :func:`gaussian_task`).
GAUSS_RADIUS, GAUSS_SD = 5.0, 0.1


def gaussian_task(dim: int, k: int, seed: int = 0) -> tuple[GaussianMixture, GaussianMixture]:
    """Source: 2 modes at ``±5 u``; target: ``k`` modes at ``5 v_j``; all with sd 0.1.

    ``u`` and the ``v_j`` are independent random unit vectors of R^dim (fixed by ``seed``;
    in 100-d they are nearly orthogonal, so target modes are ~7.1 apart and each ~7.1 from
    the source modes). Every coordinate carries sd-0.1 noise, so most of the 100 dimensions
    are pure noise that a generator must reproduce.
    """
    rng = np.random.default_rng([seed, 100 + k, dim])
    u = rng.standard_normal(dim)
    u /= np.linalg.norm(u)
    v = rng.standard_normal((k, dim))
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    src = GaussianMixture(np.stack([GAUSS_RADIUS * u, -GAUSS_RADIUS * u]), GAUSS_SD)
    tgt = GaussianMixture(GAUSS_RADIUS * v, GAUSS_SD)
    return src, tgt


@dataclass(frozen=True)
class ToySample:
    """Training points of a toy task, and two independent evaluation samples of the target.

    ``ref``: what generated points are scored against; ``fresh``: a second target sample
    scored the same way (the finite-sample floor of the metrics).
    """

    source: np.ndarray
    target: np.ndarray
    ref: np.ndarray
    fresh: np.ndarray


def gaussians_sample(dim: int, k: int, n_train: int, n_eval: int, seed: int) -> ToySample:
    """The ``gaussians`` suite's 2 -> ``k`` task in ``dim`` dimensions."""
    src_mix, tgt_mix = gaussian_task(dim, k, seed)
    rng = np.random.default_rng([seed, k])
    source = src_mix.sample(n_train, rng)
    target = tgt_mix.sample(n_train, rng)
    ref = tgt_mix.sample(n_eval, rng).astype(np.float64)
    fresh = tgt_mix.sample(n_eval, rng).astype(np.float64)
    return ToySample(source, target, ref, fresh)


def moons_sample(n_train: int, n_eval: int, seed: int) -> ToySample:
    """The ``moons`` suite's task: 8 Gaussians -> 2 moons."""
    rng = np.random.default_rng(seed)
    source = sample_8gaussians(n_train, rng)
    target = sample_moons(n_train, rng)
    ref = sample_moons(n_eval, rng).astype(np.float64)
    fresh = sample_moons(n_eval, rng).astype(np.float64)
    return ToySample(source, target, ref, fresh)


def spread(points: np.ndarray) -> float:
    """Root mean squared distance of the points to their mean (how spread out they are)."""
    return float(np.sqrt(((points - points.mean(0)) ** 2).sum(1).mean()))


def nearest_mode(points: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The index of each point's nearest mean."""
    return ((points[:, None, :] - means[None]) ** 2).sum(-1).argmin(1)


def mode_shares(points: np.ndarray, means: np.ndarray) -> np.ndarray:
    """The share of the points nearest to each mean (``len(means)`` values summing to 1)."""
    return np.bincount(nearest_mode(points, means), minlength=len(means)) / len(points)


def total_variation(p: np.ndarray, q: np.ndarray) -> float:
    """Total variation distance between two discrete distributions (e.g. mode shares)."""
    return float(0.5 * np.abs(np.asarray(p) - np.asarray(q)).sum())


def mode_fit(points: np.ndarray, means: np.ndarray) -> dict[str, float]:
    """How points sit on the modes of an equal-weight mixture (each point to its nearest mean).

    ``mode_tv``: total variation between the points' shares of the modes and equal shares
    (0: exact shares; a perfect sampler of ``n`` independent points has about
    ``sqrt((k - 1) / (2 pi n))``, 0.018 for 3 modes and 1,000 points); ``within_sd``: RMS
    per-coordinate distance of a point to its mode's mean (the true mixtures': the
    mixture's ``sd``); ``centre_error``: RMS distance between a mode's mean and the mean of
    its points (modes without points left out).
    """
    d = ((points[:, None, :] - means[None]) ** 2).sum(-1)
    near = d.argmin(1)  # as nearest_mode, keeping the distances
    k = len(means)
    shares = np.bincount(near, minlength=k) / len(points)
    offsets = [points[near == j].mean(0) - means[j] for j in range(k) if (near == j).any()]
    return {
        "mode_tv": total_variation(shares, np.full(k, 1 / k)),
        "within_sd": float(np.sqrt(d[np.arange(len(points)), near].mean() / points.shape[1])),
        "centre_error": float(np.sqrt(np.mean([(o**2).sum() for o in offsets]))),
    }


def sequence_fit(points: np.ndarray, means: np.ndarray, n_trajectories: int) -> dict[str, float]:
    """How the cells of each sequence share the modes (rows in consecutive blocks of ``N``).

    ``mode_dispersion``: the variance of a mode's count per sequence over the variance of
    ``N`` independent cells, ``N p (1 - p)`` (``p``: the mode's share of all points), mean
    over modes: about 1 when the cells of a sequence go to their modes independently, 0 when
    every sequence gives every mode the same count (below 1: the sequence spreads its cells
    over the modes). ``first_within_sd``: :func:`mode_fit`'s within-mode sd of the first
    cell of each sequence, generated before any other trajectory of the sequence (its
    centre error is left out: a few dozen cells per mode put it below the noise).
    """
    N = int(n_trajectories)
    if N < 2 or len(points) % N:
        raise ValueError(f"sequence_fit needs N > 1 and a multiple of N points, got {len(points)}")
    near = nearest_mode(points, means)
    k = len(means)
    counts = np.stack([np.bincount(block, minlength=k) for block in near.reshape(-1, N)])
    p = np.bincount(near, minlength=k) / len(near)
    used = (p > 0) & (p < 1)
    ratio = counts.var(0)[used] / (N * p[used] * (1 - p[used]))
    return {
        "mode_dispersion": float(ratio.mean()) if used.any() else float("nan"),
        "first_within_sd": mode_fit(points[::N], means)["within_sd"],
    }


def toy_metrics(gen: np.ndarray, ref: np.ndarray, seed: int) -> dict[tuple[str, str], float]:
    """W2 and MMD of generated toy points against the reference sample."""
    from sccalmflow import metrics

    return {
        ("w2", "data"): metrics.wasserstein2(gen, ref, seed=seed),
        ("mmd", "data"): metrics.mmd(gen, ref),
    }


# ====================================================================== toy points as cells
def toy_anndata(source: np.ndarray, target: np.ndarray) -> ad.AnnData:
    """Source and target points as cells: ``obs`` ``system`` = "toy", ``role`` = source/target.

    The points are both ``X`` and ``obsm["X_feat"]`` (CaLMFlow's flow lives in the latter).
    """
    X = np.vstack([source, target]).astype(np.float32)
    role = ["source"] * len(source) + ["target"] * len(target)
    obs = pd.DataFrame(
        {
            "system": pd.Categorical(["toy"] * len(X)),
            "role": pd.Categorical(role, categories=["source", "target"]),
        },
        index=[f"p{i}" for i in range(len(X))],
    )
    adata = ad.AnnData(X=X, obs=obs, var=pd.DataFrame(index=[f"x{j}" for j in range(X.shape[1])]))
    adata.obsm["X_feat"] = X.copy()
    return adata


#: CaLMFlow's registration of :func:`toy_anndata` (source points = control cells).
TOY_SETUP = dict(
    condition_keys=["system", "role"], control={"role": "source"}, features_key="X_feat"
)
#: The condition CaLMFlow generates on a toy task.
TOY_TARGET = {"system": ["toy"], "role": ["target"]}


def toy_target_anndata(target: np.ndarray) -> ad.AnnData:
    """Target points as cells of one condition, with a zero column appended (for the CFM).

    The zero column lets the baseline's PCA (at most ``n_vars - 1`` components) keep all
    directions of the points.
    """
    X = np.hstack([target, np.zeros((len(target), 1), np.float32)])
    return ad.AnnData(
        X=X,
        obs=pd.DataFrame(
            {"system": pd.Categorical(["toy"] * len(X))}, index=[f"p{i}" for i in range(len(X))]
        ),
        var=pd.DataFrame(index=[f"x{j}" for j in range(X.shape[1])]),
    )


# ====================================================================== Kang 2018
def kang_setup() -> dict:
    """The Kang registration keywords (``sccalmflow.datasets.kang2018_setup()``)."""
    from sccalmflow.datasets import kang2018_setup

    return kang2018_setup()


def load_kang(n_genes: int | None = None) -> ad.AnnData:
    """Kang 2018; with ``n_genes``, only that many most variable genes."""
    import sccalmflow as scf

    adata = scf.datasets.kang2018()
    if n_genes:
        genes = adata.var.sort_values("highly_variable_rank").index[:n_genes]
        adata = adata[:, genes].copy()
    return adata


def kang_counts(adata: ad.AnnData) -> pd.DataFrame:
    """Cells per cell type (rows) and condition (columns)."""
    return adata.obs.groupby(["cell_type", "condition"], observed=False).size().unstack()


def eligible_types(counts: pd.DataFrame, min_cells: int = 40) -> list[str]:
    """Cell types with at least ``min_cells`` IFN-beta cells, the largest first."""
    eligible = [ct for ct in counts.index if counts.loc[ct, "IFN-beta"] >= min_cells]
    return sorted(eligible, key=lambda ct: -counts.loc[ct, "IFN-beta"])


@dataclass
class KangSplit:
    """One held-out cell type: train on ``train``, predict ``condition``, score vs ``real``.

    ``real``: all cells of the type (its held-out IFN-beta cells and its control cells,
    which the metrics use as the control reference); ``de_genes``: the type's top-100 DE
    genes (Wilcoxon, IFN-beta vs control).
    """

    cell_type: str
    train: ad.AnnData
    real: ad.AnnData
    de_genes: list[str]

    @property
    def condition(self) -> dict[str, list[str]]:
        """The held-out condition (for ``predict``)."""
        return {"cell_type": [self.cell_type], "condition": ["IFN-beta"]}

    @property
    def control_mask(self) -> np.ndarray:
        """Which cells of ``real`` are control cells."""
        return (self.real.obs["condition"] == "control").to_numpy()


def kang_held_out(adata: ad.AnnData, cell_type: str) -> KangSplit:
    """Hold out ``cell_type``'s IFN-beta cells (``sccalmflow.demo.held_out_split``)."""
    from sccalmflow.demo import held_out_split

    train, _, _, genes = held_out_split(adata, cell_type, n_de=100)
    real = adata[(adata.obs["cell_type"] == cell_type).to_numpy()].copy()
    return KangSplit(cell_type, train, real, list(genes))
