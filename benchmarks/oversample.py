"""Many cells from a small pool of control cells: repeat, interpolate or smooth the sources?

With ``source="control"`` and the deterministic head, each source cell gives one generated
cell; a sampling head (``head="flow"``, ``"cvae"``) draws a different cell each time a source
is reused. This benchmark holds out one cell type's IFN-beta cells (Kang), trains one model
per head in ``--heads``, and generates 500 cells from random subsets of ``--pool`` control
cells of that type with ``predict(..., source_cells=subset, oversample="repeat" |
"interpolate" | "smooth")``; as a reference, 500 cells from all the type's control cells (``all
controls``). Every set is scored against the real held-out cells (R² on the top-100 DE
genes; E-distance, MMD, W2 in the model's 50-d PCA space) and counted for distinct cells.

    python benchmarks/oversample.py                      # CD14 Mono and B, both heads
    python -m benchmarks.oversample --cell-types B --subsets 2 --heads flow
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch


def run_cell_type(
    adata,
    cell_type: str,
    pool: int,
    subsets: int,
    n_cells: int,
    max_epochs: int | None = None,
    head: str = "deterministic",
) -> pd.DataFrame:
    """Train on all but ``cell_type``'s IFN-beta cells; score repeat vs interpolate."""
    from sccalmflow import CaLMFlowModel, metrics
    from sccalmflow.data import PCA_KEY, check_same_pca
    from sccalmflow.datasets import kang2018_setup
    from sccalmflow.demo import held_out_split

    train, real, ctrl, genes = held_out_split(adata, cell_type)
    CaLMFlowModel.setup_anndata(train, **kang2018_setup())
    model = CaLMFlowModel(train, seed=0, head=head)
    t0 = time.perf_counter()
    model.train(max_epochs=max_epochs, enable_progress_bar=False)
    print(
        f"[oversample] {cell_type}, {head} head: trained in {time.perf_counter() - t0:.0f} s",
        flush=True,
    )
    model.add_pca(real)
    real_pca = real.obsm[PCA_KEY]
    cond = {"cell_type": [cell_type], "condition": ["IFN-beta"]}
    rows = []

    def score(pred, mode: str, subset: int, n_sources: int) -> None:
        check_same_pca(pred, real)
        z = pred.obsm[PCA_KEY]
        rows.append(
            {
                "cell_type": cell_type,
                "head": head,
                "mode": mode,
                "subset": subset,
                "n_sources": n_sources,
                "r2_top100_de": metrics.mean_expression_r2(pred, real, genes=genes)["r2_pearson"],
                "e_distance": metrics.energy_distance(z, real_pca),
                "mmd": metrics.mmd(z, real_pca),
                "w2": metrics.wasserstein2(z, real_pca, seed=0),
                "distinct_cells": len(np.unique(z.round(5), axis=0)),
            }
        )

    score(model.predict(cond, n_cells=n_cells, seed=0), "all controls", -1, ctrl.n_obs)
    for s in range(subsets):
        rng = np.random.default_rng(100 + s)
        subset = ctrl[np.sort(rng.choice(ctrl.n_obs, min(pool, ctrl.n_obs), replace=False))]
        for mode in ("repeat", "interpolate", "smooth"):
            pred = model.predict(
                cond, n_cells=n_cells, seed=s, source_cells=subset, oversample=mode
            )
            score(pred, mode, s, subset.n_obs)
    return pd.DataFrame(rows)


def markdown(df: pd.DataFrame, args: argparse.Namespace, minutes: float) -> str:
    """The results page: settings and the per-mode means over subsets."""
    from benchmarks.report import md_table

    cols = ["r2_top100_de", "e_distance", "mmd", "w2", "distinct_cells"]
    summary = df.groupby(["cell_type", "head", "mode"], sort=False)[cols].mean().reset_index()
    lines = [
        "# oversample: many cells from a small pool of source control cells",
        "",
        f"Default model with each of the heads {', '.join(args.heads)}, one per held-out type "
        f"(its IFN-beta cells held out); {args.n_cells} cells "
        f"generated from {args.subsets} random subsets of {args.pool} of the type's control "
        "cells with `oversample='repeat'`, `'interpolate'` or `'smooth'` (means over subsets), "
        "and from all "
        "its control cells. Scored against the real held-out cells: R² (squared Pearson) on the "
        "top-100 DE genes; E-distance, MMD, W2 in the model's 50-d PCA space (lower is better).",
        "",
        md_table(summary),
        "",
        f"Runtime {minutes:.1f} min, torch {torch.__version__}, 1 thread. "
        "Produced by `python benchmarks/oversample.py`.",
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the benchmark; write ``oversample.csv`` and ``oversample.md``."""
    from benchmarks.config import RESULTS

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell-types", nargs="+", default=["CD14 Mono", "B"])
    parser.add_argument("--pool", type=int, default=40, help="control cells per subset")
    parser.add_argument("--subsets", type=int, default=4)
    parser.add_argument("--n-cells", type=int, default=500)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--max-epochs", type=int, default=None, help="default: train()'s")
    parser.add_argument(
        "--heads", nargs="+", default=["deterministic", "flow"], help="one model per head"
    )
    args = parser.parse_args(argv)
    import sccalmflow as scf
    from benchmarks.methods import configure_runtime

    configure_runtime()  # one torch thread, quiet Lightning
    adata = scf.datasets.kang2018()
    t0 = time.perf_counter()
    df = pd.concat(
        [
            run_cell_type(adata, ct, args.pool, args.subsets, args.n_cells, args.max_epochs, head)
            for ct in args.cell_types
            for head in args.heads
        ],
        ignore_index=True,
    )
    args.out.mkdir(parents=True, exist_ok=True)
    df.to_csv(args.out / "oversample.csv", index=False)
    text = markdown(df, args, (time.perf_counter() - t0) / 60)
    (args.out / "oversample.md").write_text(text)
    print(text)
    return df


def use_repository_root() -> None:
    """Run as ``python benchmarks/oversample.py``: import ``benchmarks`` from the repository.

    The repository root takes the place of ``benchmarks/``, which Python put first on
    ``sys.path``.
    """
    here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == here:
        sys.path[0] = str(here.parent)
    elif str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))


if __name__ == "__main__":
    use_repository_root()
    main()
