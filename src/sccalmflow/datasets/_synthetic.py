"""A synthetic perturbation screen whose true responses are known (additive or interacting)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..utils import check_int, check_number, check_seed


def synthetic_setup() -> dict:
    """Registration keywords of :func:`synthetic_perturbation` data (``setup_anndata``)."""
    return {"condition_keys": ["cell_type", "perturbation"], "control": {"perturbation": "control"}}


def synthetic_perturbation(
    n_cells: int = 2000,
    n_genes: int = 500,
    n_cell_types: int = 6,
    n_perturbations: int = 2,
    interaction: float = 0.0,
    effect_size: float = 1.0,
    seed: int = 0,
) -> ad.AnnData:
    """A perturbation screen of cell types x perturbations with negative-binomial counts.

    The log-rate of gene ``g`` in a cell of type ``t`` under perturbation ``p`` is::

        mu_g + type_t,g + m_t * marker_g + effect_p,g * exp(interaction * m_t) + (W s)_g

    with sparse type programmes ``type_t`` (a fifth of the genes), a responsiveness
    ``m_t ~ N(0, 1)`` per type that also raises a set of marker genes (a twentieth of the
    genes, so it is visible in the type's control cells), sparse perturbation effects
    (a tenth of the genes, scaled by ``effect_size``), and a cell-level latent state ``s``
    (5 factors) that makes cells of one condition differ. With ``interaction=0`` the
    response is the same in every cell type (the :class:`~sccalmflow.baselines.Additive`
    baseline is right up to the log-normalisation); with ``interaction > 0`` it is scaled
    by ``exp(interaction * m_t)``, larger in types with high marker expression: the response
    depends on the control state, which a model mapping control cells can learn from the
    other types and arithmetic cannot. Counts are negative binomial (dispersion 10) with
    log-normal library sizes.

    Parameters
    ----------
    n_cells
        Cells, spread evenly over the ``n_cell_types x (n_perturbations + 1)`` conditions.
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

    Returns
    -------
    AnnData with ``X`` (``log1p(counts / library size * 1e4)``, float32 CSR),
    ``layers["counts"]``, ``obs["cell_type"]`` (``"type0"`` ...), ``obs["perturbation"]``
    (``"control"``, ``"pert0"`` ...) and the parameters in ``uns["synthetic"]``. Register
    it with ``setup_anndata(adata, **synthetic_setup())``.
    """
    check_int("n_cells", n_cells, minimum=1)
    check_int("n_genes", n_genes, minimum=2)
    check_int("n_cell_types", n_cell_types, minimum=1)
    check_int("n_perturbations", n_perturbations, minimum=1)
    check_number("interaction", interaction, minimum=0)
    check_number("effect_size", effect_size, minimum=0)
    rng = np.random.default_rng(check_seed("seed", seed))
    G, T, P = n_genes, n_cell_types, n_perturbations
    mu = rng.normal(-1.0, 1.0, G)
    types = rng.normal(0.0, 1.0, (T, G)) * (rng.random((T, G)) < 0.2)
    effects = effect_size * rng.normal(0.0, 1.0, (P, G)) * (rng.random((P, G)) < 0.1)
    loadings = rng.normal(0.0, 0.3, (G, 5))
    responsiveness = rng.normal(0.0, 1.0, T)
    markers = rng.random(G) < 0.05
    conditions = [(t, p) for t in range(T) for p in range(-1, P)]
    if n_cells < len(conditions):
        raise ValueError(
            f"n_cells={n_cells} is fewer than the {len(conditions)} conditions "
            f"({T} cell types x {P + 1} perturbations incl. control); ask for more cells."
        )
    per = np.full(len(conditions), n_cells // len(conditions))
    per[: n_cells % len(conditions)] += 1
    t_idx = np.repeat([c[0] for c in conditions], per)
    p_idx = np.repeat([c[1] for c in conditions], per)
    log_rate = mu + types[t_idx] + rng.normal(size=(n_cells, 5)) @ loadings.T
    log_rate[:, markers] += responsiveness[t_idx, None]
    pert = p_idx >= 0
    boost = np.exp(interaction * responsiveness[t_idx[pert]])[:, None]
    log_rate[pert] += effects[p_idx[pert]] * boost
    library = rng.lognormal(np.log(2000.0), 0.3, n_cells)
    rate = np.exp(log_rate)
    mean = rate / rate.sum(1, keepdims=True) * library[:, None]
    theta = 10.0
    counts = rng.negative_binomial(theta, theta / (theta + mean)).astype(np.int32)
    lib = np.maximum(counts.sum(1, keepdims=True), 1)
    X = np.log1p(counts / lib * 1e4).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical([f"type{t}" for t in t_idx]),
            "perturbation": pd.Categorical(
                ["control" if p < 0 else f"pert{p}" for p in p_idx],
                categories=["control"] + [f"pert{p}" for p in range(P)],
            ),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    adata = ad.AnnData(
        X=sp.csr_matrix(X), obs=obs, var=pd.DataFrame(index=[f"gene{g}" for g in range(G)])
    )
    adata.layers["counts"] = sp.csr_matrix(counts)
    adata.uns["synthetic"] = {
        "responsiveness": responsiveness,
        "interaction": float(interaction),
        "effect_size": float(effect_size),
        "seed": int(seed),
    }
    return adata
