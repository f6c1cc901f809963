"""Which distance is lowest at the right spread? Real cells against real cells, one set rescaled.

The held-out benchmarks compare generated cells with real ones by E-distance, MMD and W2 in a
50-d PCA space, and they disagree on the sampling temperature: E-distance and MMD prefer
wider cells, the empirical W2 narrower ones. This asks each metric a question with a known
answer. The IFN-beta cells of one Kang cell type are split at random into two halves; one
half is scaled about its own mean by a factor ``s`` (``s < 1``: narrower, ``s > 1``:
wider) and compared with the other half. A metric that rewards the right spread is lowest
at ``s = 1``; one that is lowest below 1 rewards sets narrower than the real cells.

    python benchmarks/metric_spread.py                      # 4 types, 10 splits each
    python benchmarks/metric_spread.py --report-only        # the page from the csv

PCA: 50 components of the log-normalised expression of all Kang cells (scanpy). Writes
``results/metric_spread.csv`` (one row per type, split and scale) and ``metric_spread.md``
(means over splits, and per type the scale where each metric is lowest).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # `python benchmarks/metric_spread.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sccalmflow.metrics import energy_distance, gaussian_w2, mmd, wasserstein2

RESULTS = Path(__file__).resolve().parent / "results"
SCALES = (0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.5)
TYPES = ("CD14 Mono", "CD4 Naive T", "B", "NK")
#: Column -> the distance of ``sccalmflow.metrics`` (all on the PCA scores as given).
METRICS = {
    "w2": wasserstein2,
    "e_distance": energy_distance,
    "mmd": mmd,
    "w2_gaussian": gaussian_w2,
}


def rescaled(z: np.ndarray, scale: float) -> np.ndarray:
    """``z`` scaled about its mean by ``scale``."""
    mean = z.mean(0)
    return mean + scale * (z - mean)


def scores(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """The distances of :data:`METRICS` between ``a`` and ``b``."""
    return {name: float(distance(a, b)) for name, distance in METRICS.items()}


def halves(z: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """A seeded random split of the rows of ``z`` into two halves."""
    order = np.random.default_rng(seed).permutation(len(z))
    return z[order[: len(z) // 2]], z[order[len(z) // 2 :]]


def run(z_by_type: dict[str, np.ndarray], scales=SCALES, n_splits: int = 10) -> pd.DataFrame:
    """One row per (type, split, scale): the four distances of the rescaled half."""
    rows = []
    for cell_type, z in z_by_type.items():
        for split in range(n_splits):
            a, b = halves(z, split)
            for s in scales:
                rows.append(
                    {"cell_type": cell_type, "n_half": len(a), "split": split, "scale": s}
                    | scores(rescaled(a, s), b)
                )
    return pd.DataFrame(rows)


def lowest_at(df: pd.DataFrame) -> pd.DataFrame:
    """Per type and metric, the scale with the lowest mean over splits."""
    means = df.groupby(["cell_type", "scale"])[list(METRICS)].mean()
    return means.groupby("cell_type").idxmin().map(lambda ix: ix[1])


def markdown(df: pd.DataFrame) -> str:
    """The page: means over splits per type and scale, and where each metric is lowest."""
    from benchmarks.report import md_table

    means = df.groupby(["cell_type", "n_half", "scale"], sort=False)[list(METRICS)].mean()
    low = lowest_at(df).reset_index()
    n_splits = df.split.nunique()
    return "\n".join(
        [
            "# Which distance is lowest at the right spread?",
            "",
            "Real cells against real cells: the IFN-beta cells of one Kang cell type split at "
            f"random into two halves ({n_splits} splits), one half scaled about its mean by "
            "`scale` and compared with the other, in a 50-d PCA of all Kang cells. A metric "
            "that rewards the right spread is lowest at scale 1. `w2`: the exact empirical "
            "2-Wasserstein distance (`scf.metrics.wasserstein2`); `w2_gaussian`: between "
            "Gaussians fitted to each set (`gaussian_w2`). Means over splits "
            "(`n_half`: cells per half):",
            "",
            md_table(means.reset_index().round(4)),
            "",
            "## The scale where each metric is lowest",
            "",
            md_table(low),
            "",
            "E-distance and MMD are lowest at the real spread; the empirical W2 keeps falling "
            "as one set is narrowed, so in this space and at these sizes it rewards generated "
            "cells narrower than the real ones. `w2_gaussian` is lowest at the real spread "
            "with a few hundred cells per set and below it with fewer.",
        ]
    )


def pca_by_type(types=TYPES, n_pca: int = 50) -> dict[str, np.ndarray]:
    """The IFN-beta cells of each type in a 50-d PCA of all Kang cells."""
    import scanpy as sc

    import sccalmflow as scf

    adata = scf.datasets.kang2018()
    z = sc.pp.pca(np.asarray(adata.X.todense() if hasattr(adata.X, "todense") else adata.X),
                  n_comps=n_pca, random_state=0)  # fmt: skip
    obs = adata.obs
    return {
        t: z[((obs["cell_type"] == t) & (obs["condition"] != "control")).to_numpy()] for t in types
    }


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run (or read) the table and write the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell-types", nargs="+", default=list(TYPES))
    parser.add_argument("--splits", type=int, default=10)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    csv = args.out / "metric_spread.csv"
    if not args.report_only:
        df = run(pca_by_type(args.cell_types), n_splits=args.splits)
        df.to_csv(csv, index=False)
    df = pd.read_csv(csv)
    (args.out / "metric_spread.md").write_text(markdown(df))
    print(lowest_at(df))
    return df


if __name__ == "__main__":
    main()
