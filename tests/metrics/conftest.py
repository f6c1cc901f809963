"""Fixtures of the metric tests: small simulated data sets (factories, fresh per call)."""

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp


def _gauss(n, d, shift=0.0, seed=0):
    return np.random.default_rng(seed).normal(size=(n, d)) + shift


def _perturb_data(
    seed=0, n_genes=30, n_cells=40, perts=("A", "B", "C"), shift=0.0, effect_noise=0.0
):
    """Log-normalised toy expression: control + perturbations with distinct effects."""
    rng = np.random.default_rng(seed)
    base = np.random.default_rng(7).uniform(0.2, 2.0, n_genes)
    effects = {"ctrl": np.zeros(n_genes)}
    erng = np.random.default_rng(123)  # effects shared between real and pred
    for p in perts:
        effects[p] = erng.normal(0, 0.3, n_genes) + rng.normal(0, effect_noise, n_genes)
    xs, labels = [], []
    for p, eff in effects.items():
        lam = np.exp(np.log(base) + eff + shift * (p != "ctrl"))
        xs.append(np.log1p(rng.poisson(lam, size=(n_cells, n_genes)) * 1.7))
        labels += [p] * n_cells
    a = ad.AnnData(
        sp.csr_matrix(np.vstack(xs).astype(np.float32)),
        obs=pd.DataFrame({"pert": labels}, index=[f"c{i}" for i in range(len(labels))]),
        var=pd.DataFrame(index=[f"g{i}" for i in range(n_genes)]),
    )
    return a


def _de_data():
    rng = np.random.default_rng(0)
    x = rng.normal(1.0, 0.3, size=(120, 50)).clip(0)
    x[:60, :5] += 2.0  # genes 0-4 up in "stim"
    return ad.AnnData(
        x.astype(np.float32),
        obs=pd.DataFrame(
            {"cond": ["stim"] * 60 + ["ctrl"] * 60}, index=[str(i) for i in range(120)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(50)]),
    )


@pytest.fixture(scope="session")
def gauss():
    """``gauss(n, d, shift=0.0, seed=0)``: standard normal cells, shifted."""
    return _gauss


@pytest.fixture(scope="session")
def perturb_data():
    """``perturb_data(seed=0, n_genes=30, n_cells=40, perts=("A", "B", "C"), ...)``.

    Log-normalised toy expression (sparse ``X``, ``obs["pert"]``): control cells
    (``"ctrl"``) and perturbations with distinct effects shared between seeds.
    """
    return _perturb_data


@pytest.fixture(scope="session")
def de_data():
    """``de_data()``: 60 "stim" and 60 "ctrl" cells; genes g0-g4 are up in "stim"."""
    return _de_data
