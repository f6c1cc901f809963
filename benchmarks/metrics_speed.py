"""Timing of the distribution metrics of ``sccalmflow.metrics.evaluate`` at scale.

10,000 predicted x 10,000 real cells in a 50-d PCA space, one condition, all cells used
(``n_max=None``): energy distance (plain and squared), RBF MMD (6 bandwidths) and the
exact 2-Wasserstein distance. MMD and the E-distance use all 10,000 x 10,000 pairs (blocked,
bounded memory); the exact W2 solver (POT ``ot.emd2``) gets a seeded subsample of
``DEFAULT_MAX_EXACT`` = 5,000 cells per set, as documented in ``wasserstein2``.

Run (alone on the machine; target < 60 s on 2 cores)::

    OMP_NUM_THREADS=2 python benchmarks/metrics_speed.py [--n 10000] [--dim 50] [--breakdown]
"""

from __future__ import annotations

import argparse
import time

import anndata as ad
import numpy as np
import pandas as pd

from sccalmflow import metrics as scm
from sccalmflow.data import PCA_KEY


def make(n: int, dim: int, shift: float, seed: int) -> ad.AnnData:
    """``n`` cells of one condition with ``dim``-d Gaussian PCA scores shifted by ``shift``."""
    rng = np.random.default_rng(seed)
    scale = np.linspace(3.0, 0.5, dim)  # PCA-like decaying variances
    z = rng.normal(size=(n, dim)) * scale + shift
    a = ad.AnnData(
        np.zeros((n, 1), dtype=np.float32),
        obs=pd.DataFrame({"condition": "stim"}, index=[f"c{i}" for i in range(n)]),
    )
    a.obsm[PCA_KEY] = z  # the model's key (no fingerprints: compared as given)
    return a


def main(argv: list[str] | None = None) -> None:
    """Time ``evaluate`` (and, with ``--breakdown``, each metric)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--dim", type=int, default=50)
    parser.add_argument("--breakdown", action="store_true", help="also time each metric alone")
    args = parser.parse_args(argv)

    pred, real = make(args.n, args.dim, 0.1, seed=1), make(args.n, args.dim, 0.0, seed=2)
    metrics = ("e_distance", "e_distance_sq", "mmd", "w2")
    t0 = time.perf_counter()
    df = scm.evaluate(
        pred,
        real,
        condition_keys="condition",
        space="pca",
        metrics=metrics,
        n_max=None,
        seed=0,
    )
    total = time.perf_counter() - t0
    print(df[["metric", "space", "value", "n_used_pred", "n_used_real", "subsampled"]])
    print(f"evaluate: {args.n} x {args.n} cells, {args.dim}-d PCA, {metrics}: {total:.1f} s")
    if args.breakdown:
        x, y = pred.obsm[PCA_KEY], real.obsm[PCA_KEY]
        for name, fn in [
            ("e_distance", lambda: scm.energy_distance(x, y)),
            ("e_distance_sq", lambda: scm.energy_distance(x, y, squared=True)),
            ("mmd", lambda: scm.mmd(x, y)),
            ("w2 (exact, 5,000 subsample)", lambda: scm.wasserstein2(x, y)),
        ]:
            t0 = time.perf_counter()
            fn()
            print(f"  {name}: {time.perf_counter() - t0:.1f} s")


if __name__ == "__main__":
    main()
