"""A synthetic perturbation screen whose true responses are known (additive or interacting)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from os import PathLike
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import SparseRowWriter, check_store_path, read_backed
from ..utils import check_int, check_number, check_numbers, check_seed

#: Values (cells x genes) simulated at once when the screen goes to disk (~80 MB per array).
SIMULATION_VALUES = 10_000_000


def synthetic_setup(doses: bool = False) -> dict:
    """Registration keywords of :func:`synthetic_perturbation` data (``setup_anndata``).

    Parameters
    ----------
    doses
        The screen was made with ``doses``: ``dose`` is a condition key, and control cells
        are ``perturbation="control", dose="0"``.
    """
    if doses:
        return {
            "condition_keys": ["cell_type", "perturbation", "dose"],
            "control": {"perturbation": "control", "dose": "0"},
        }
    return {"condition_keys": ["cell_type", "perturbation"], "control": {"perturbation": "control"}}


@dataclass
class _Screen:
    """The screen's parameters (drawn once) and how its cells are simulated."""

    mu: np.ndarray
    types: np.ndarray
    effects: np.ndarray
    loadings: np.ndarray
    responsiveness: np.ndarray
    markers: np.ndarray
    interaction: float
    library_size: float

    @classmethod
    def draw(cls, rng, G, T, P, effect_size, interaction, library_size) -> _Screen:
        mu = rng.normal(-1.0, 1.0, G)
        types = rng.normal(0.0, 1.0, (T, G)) * (rng.random((T, G)) < 0.2)
        effects = effect_size * rng.normal(0.0, 1.0, (P, G)) * (rng.random((P, G)) < 0.1)
        loadings = rng.normal(0.0, 0.3, (G, 5))
        responsiveness = rng.normal(0.0, 1.0, T)
        markers = rng.random(G) < 0.05
        return cls(mu, types, effects, loadings, responsiveness, markers, interaction, library_size)

    def simulate(self, rng, t_idx, p_idx, dose_scale) -> tuple[np.ndarray, np.ndarray]:
        """Counts (int32) and log-normalised expression (float32) of the given cells."""
        n = len(t_idx)
        log_rate = self.mu + self.types[t_idx] + rng.normal(size=(n, 5)) @ self.loadings.T
        log_rate[:, self.markers] += self.responsiveness[t_idx, None]
        pert = p_idx >= 0
        boost = np.exp(self.interaction * self.responsiveness[t_idx[pert]])[:, None]
        if dose_scale is not None:
            boost = boost * dose_scale[pert, None]
        log_rate[pert] += self.effects[p_idx[pert]] * boost
        library = rng.lognormal(np.log(self.library_size), 0.3, n)
        rate = np.exp(log_rate)
        mean = rate / rate.sum(1, keepdims=True) * library[:, None]
        theta = 10.0
        counts = rng.negative_binomial(theta, theta / (theta + mean)).astype(np.int32)
        lib = np.maximum(counts.sum(1, keepdims=True), 1)
        return counts, np.log1p(counts / lib * 1e4).astype(np.float32)


def _dose_label(d: float) -> str:
    return f"{d:g}"


def synthetic_perturbation(
    n_cells: int = 2000,
    n_genes: int = 500,
    n_cell_types: int = 6,
    n_perturbations: int = 2,
    interaction: float = 0.0,
    effect_size: float = 1.0,
    seed: int = 0,
    *,
    doses: Sequence[float] | None = None,
    library_size: float = 2000.0,
    path: str | PathLike | None = None,
    keep_counts: bool = True,
    chunk_size: int | None = None,
) -> ad.AnnData:
    """A perturbation screen of cell types x perturbations with negative-binomial counts.

    The log-rate of gene ``g`` in a cell of type ``t`` under perturbation ``p`` is::

        mu_g + type_t,g + m_t * marker_g + effect_p,g * exp(interaction * m_t) * f_d + (W s)_g

    with sparse type programmes ``type_t`` (a fifth of the genes), a responsiveness
    ``m_t ~ N(0, 1)`` per type that also raises a set of marker genes (a twentieth of the
    genes, so it is visible in the type's control cells), sparse perturbation effects
    (a tenth of the genes, scaled by ``effect_size``), a dose factor ``f_d`` (1 without
    ``doses``) and a cell-level latent state ``s`` (5 factors) that makes cells of one
    condition differ. With ``interaction=0`` the response is the same in every cell type
    (the :class:`~sccalmflow.baselines.Additive` baseline is right up to the
    log-normalisation); with ``interaction > 0`` it is scaled by ``exp(interaction * m_t)``,
    larger in types with high marker expression: the response depends on the control
    state, which a model mapping control cells can learn from the other types and
    arithmetic cannot. Counts are negative binomial (dispersion 10) with log-normal library
    sizes around ``library_size``.

    Parameters
    ----------
    n_cells
        Cells, spread evenly over the ``n_cell_types x (n_perturbations x n_doses + 1)``
        conditions, stored condition by condition.
    n_genes
        Genes.
    n_cell_types, n_perturbations
        Contexts and perturbations besides ``"control"``.
    interaction
        Strength of the context x perturbation interaction (0: additive).
    effect_size
        Scale of the perturbation effects on the log-rate.
    seed
        Seed of everything drawn.
    doses
        Positive doses: every perturbation is given at each, with the effect scaled by
        ``f_d = d / max(doses)``, and ``obs["dose"]`` holds the dose as text (``"0"`` for
        control cells). Register with ``synthetic_setup(doses=True)``.
    library_size
        Median total counts per cell (fewer counts: sparser ``X``).
    path
        Write the screen to this new ``.h5ad`` file or ``.zarr`` folder, ``chunk_size``
        cells at a time (memory holds one chunk, whatever ``n_cells``), and return it with
        ``X`` on disk (:func:`sccalmflow.data.read_backed`). The cells are then drawn
        chunk by chunk from their own random streams: same distribution, not the same
        values as the in-memory screen of the same seed.
    keep_counts
        Store the counts in ``layers["counts"]`` (``False`` halves the file).
    chunk_size
        Cells simulated at once when writing to ``path`` (default: 10 million values,
        ``10_000_000 // n_genes`` cells).

    Returns
    -------
    AnnData with ``X`` (``log1p(counts / library size * 1e4)``, float32 CSR),
    ``layers["counts"]`` (int32 CSR), ``obs["cell_type"]`` (``"type0"`` ...),
    ``obs["perturbation"]`` (``"control"``, ``"pert0"`` ...), ``obs["dose"]`` with ``doses``,
    and the parameters in ``uns["synthetic"]``. Register it with
    ``setup_anndata(adata, **synthetic_setup())``.

    Examples
    --------
    >>> import sccalmflow as scf
    >>> adata = scf.datasets.synthetic_perturbation(n_cells=300, n_genes=50, n_cell_types=2)
    >>> adata.shape
    (300, 50)
    >>> scf.CaLMFlowModel.setup_anndata(adata, **scf.datasets.synthetic_setup())
    """
    check_int("n_cells", n_cells, minimum=1)
    check_int("n_genes", n_genes, minimum=2)
    check_int("n_cell_types", n_cell_types, minimum=1)
    check_int("n_perturbations", n_perturbations, minimum=1)
    if chunk_size is None:
        chunk_size = max(1, SIMULATION_VALUES // n_genes)
    check_int("chunk_size", chunk_size, minimum=1)
    check_number("interaction", interaction, minimum=0)
    check_number("effect_size", effect_size, minimum=0)
    check_number("library_size", library_size, minimum=1)
    dose_values = _check_doses(doses)
    if path is not None:
        path = check_store_path(path, "path")
    rng = np.random.default_rng(check_seed("seed", seed))
    G, T, P = n_genes, n_cell_types, n_perturbations
    screen = _Screen.draw(rng, G, T, P, effect_size, float(interaction), float(library_size))
    levels = [None] if dose_values is None else list(range(len(dose_values)))
    conditions = [
        (t, p, d) for t in range(T) for p in range(-1, P) for d in ([None] if p < 0 else levels)
    ]
    if n_cells < len(conditions):
        what = f"{P + 1} perturbations incl. control" + (
            "" if dose_values is None else f", {len(dose_values)} doses"
        )
        raise ValueError(
            f"n_cells={n_cells} is fewer than the {len(conditions)} conditions "
            f"({T} cell types x {what}); ask for more cells."
        )
    per = np.full(len(conditions), n_cells // len(conditions))
    per[: n_cells % len(conditions)] += 1
    t_idx = np.repeat([c[0] for c in conditions], per)
    p_idx = np.repeat([c[1] for c in conditions], per)
    d_idx = np.repeat([-1 if c[2] is None else c[2] for c in conditions], per)
    scale = None
    if dose_values is not None:
        scale = np.where(d_idx >= 0, dose_values[np.maximum(d_idx, 0)] / dose_values.max(), 0.0)
    obs = _obs(t_idx, p_idx, d_idx, P, dose_values)
    var = pd.DataFrame(index=[f"gene{g}" for g in range(G)])
    uns = {
        "synthetic": {
            "responsiveness": screen.responsiveness,
            "interaction": float(interaction),
            "effect_size": float(effect_size),
            "library_size": float(library_size),
            "seed": int(seed),
            **({} if dose_values is None else {"doses": dose_values}),
        }
    }
    if path is not None:
        return _write(
            path, screen, t_idx, p_idx, scale, obs, var, uns, seed, keep_counts, chunk_size
        )
    counts, X = screen.simulate(rng, t_idx, p_idx, scale)
    adata = ad.AnnData(X=sp.csr_matrix(X), obs=obs, var=var, uns=uns)
    if keep_counts:
        adata.layers["counts"] = sp.csr_matrix(counts)
    return adata


def _check_doses(doses) -> np.ndarray | None:
    if doses is None:
        return None
    values = np.array(check_numbers("doses", doses, minimum=0, exclusive_minimum=True))
    if len(set(map(_dose_label, values))) < len(values):
        raise ValueError(f"`doses` must be distinct, got {list(values)}.")
    return values


def _obs(t_idx, p_idx, d_idx, P, dose_values) -> pd.DataFrame:
    columns = {
        "cell_type": pd.Categorical([f"type{t}" for t in t_idx]),
        "perturbation": pd.Categorical(
            ["control" if p < 0 else f"pert{p}" for p in p_idx],
            categories=["control"] + [f"pert{p}" for p in range(P)],
        ),
    }
    if dose_values is not None:
        labels = ["0"] + [_dose_label(d) for d in dose_values]
        columns["dose"] = pd.Categorical.from_codes(d_idx + 1, categories=labels)
    return pd.DataFrame(columns, index=[f"cell{i}" for i in range(len(t_idx))])


def _write(path: Path, screen, t_idx, p_idx, scale, obs, var, uns, seed, keep_counts, chunk):
    """Simulate and write ``chunk`` cells at a time; each chunk has its own random stream."""
    layers = {"counts": "int32"} if keep_counts else {}
    with SparseRowWriter(path, n_vars=len(var), layers=layers) as writer:
        for i, start in enumerate(range(0, len(t_idx), chunk)):
            sl = slice(start, start + chunk)
            rng = np.random.default_rng([int(seed), 1, i])
            counts, X = screen.simulate(
                rng, t_idx[sl], p_idx[sl], None if scale is None else scale[sl]
            )
            writer.write_rows(X, {"counts": counts} if keep_counts else {})
        writer.finish(obs, var, uns)
    return read_backed(path)
