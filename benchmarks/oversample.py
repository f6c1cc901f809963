"""Many cells from a small pool of control cells: repeat, interpolate or smooth the sources?

With ``source="control"`` and the deterministic head, each source cell gives one generated
cell; a sampling head (``head="flow"``, ``"cvae"``) draws a different cell each time a source
is reused. This benchmark holds out one cell type's IFN-beta cells (Kang), trains one model
per head in ``--heads``, and generates 500 cells from random subsets of ``--pool`` control
cells of that type with ``predict(..., source_cells=subset, oversample="repeat" |
"interpolate" | "smooth")``; as a reference, 500 cells from all the type's control cells (``all
controls``). Every set is scored against the real held-out cells (R² on the top-100 DE
genes; E-distance, MMD, the empirical W2 and the W2 between fitted Gaussians in the model's
50-d PCA space), measured for spread (RMS distance to its mean) and counted for distinct
cells. ``--seeds`` trains one model per seed (the subsets change with the seed too).

    python benchmarks/oversample.py                      # CD14 Mono and B, both heads, seed 0
    python -m benchmarks.oversample --heads deterministic --seeds 0 1 2
    python -m benchmarks.oversample --cell-types B --subsets 2 --heads flow
"""

from __future__ import annotations

import argparse
import shlex
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
    seed: int = 0,
) -> pd.DataFrame:
    """Train on all but ``cell_type``'s IFN-beta cells; score repeat, interpolate, smooth."""
    from benchmarks.tasks import spread
    from sccalmflow import CaLMFlowModel, metrics
    from sccalmflow.data import PCA_KEY, check_same_pca
    from sccalmflow.datasets import kang2018_setup
    from sccalmflow.demo import held_out_split

    train, real, ctrl, genes = held_out_split(adata, cell_type)
    CaLMFlowModel.setup_anndata(train, **kang2018_setup())
    model = CaLMFlowModel(train, seed=seed, head=head)
    t0 = time.perf_counter()
    model.train(max_epochs=max_epochs, enable_progress_bar=False)
    print(
        f"[oversample] {cell_type}, {head} head, seed {seed}: "
        f"trained in {time.perf_counter() - t0:.0f} s",
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
                "seed": seed,
                "mode": mode,
                "subset": subset,
                "n_sources": n_sources,
                "r2_top100_de": metrics.mean_expression_r2(pred, real, genes=genes)["r2_pearson"],
                "e_distance": metrics.energy_distance(z, real_pca),
                "mmd": metrics.mmd(z, real_pca),
                "w2": metrics.wasserstein2(z, real_pca, seed=0),
                "w2_gaussian": metrics.gaussian_w2(z, real_pca),
                "spread": spread(z),
                "real_spread": spread(real_pca),
                "distinct_cells": len(np.unique(z.round(5), axis=0)),
            }
        )

    score(model.predict(cond, n_cells=n_cells, seed=seed), "all controls", -1, ctrl.n_obs)
    for s in range(subsets):
        rng = np.random.default_rng(100 + s + 1000 * seed)
        subset = ctrl[np.sort(rng.choice(ctrl.n_obs, min(pool, ctrl.n_obs), replace=False))]
        for mode in ("repeat", "interpolate", "smooth"):
            pred = model.predict(
                cond, n_cells=n_cells, seed=s + 1000 * seed, source_cells=subset, oversample=mode
            )
            score(pred, mode, s, subset.n_obs)
    return pd.DataFrame(rows)


#: Scores of the page, lower is better for all but R²; the spread is the real cells'.
DISTANCES = ("e_distance", "mmd", "w2", "w2_gaussian")


def smooth_wins(df: pd.DataFrame) -> pd.DataFrame:
    """Per head and distance: in how many (cell type, seed) ``smooth`` beats the other two.

    Each (cell type, head, seed) compares the means over subsets; ``all controls`` is a
    reference, not a competitor.
    """
    means = df.groupby(["cell_type", "head", "seed", "mode"])[list(DISTANCES)].mean()
    rows = []
    for head, d in means.groupby(level="head", sort=False):
        wide = d.reset_index().pivot_table(
            index=["cell_type", "seed"], columns="mode", values=list(DISTANCES)
        )
        row = {"head": head, "runs": len(wide)}
        for m in DISTANCES:
            smooth = wide[(m, "smooth")]
            row[f"{m}: < repeat"] = int((smooth < wide[(m, "repeat")]).sum())
            row[f"{m}: < interpolate"] = int((smooth < wide[(m, "interpolate")]).sum())
        rows.append(row)
    return pd.DataFrame(rows)


def command_line(args: argparse.Namespace) -> str:
    """The command that reruns the page (options at their given values, ``--out`` left out)."""
    words = ["python", "benchmarks/oversample.py"]
    for key, value in vars(args).items():
        if key == "out" or value is None:
            continue
        words += [
            f"--{key.replace('_', '-')}",
            *map(str, value if isinstance(value, list) else [value]),
        ]
    return shlex.join(words)


def markdown(df: pd.DataFrame, args: argparse.Namespace, minutes: float) -> str:
    """The results page: settings, the per-mode means over seeds and subsets, the wins."""
    from benchmarks.report import md_table

    cols = ["r2_top100_de", *DISTANCES, "spread", "real_spread", "distinct_cells"]
    summary = df.groupby(["cell_type", "head", "mode"], sort=False)[cols].mean().reset_index()
    seeds = ", ".join(str(s) for s in sorted(df["seed"].unique()))
    lines = [
        "# oversample: many cells from a small pool of source control cells",
        "",
        f"Default model with each of the heads {', '.join(args.heads)}, one per held-out type "
        f"and seed (seeds {seeds}; its IFN-beta cells held out); {args.n_cells} cells "
        f"generated from {args.subsets} random subsets of {args.pool} of the type's control "
        "cells with `oversample='repeat'`, `'interpolate'` or `'smooth'`, and from all its "
        "control cells (a reference). Means over seeds and subsets. Scored against the real "
        "held-out cells: R² (squared Pearson) on the top-100 DE genes; E-distance, MMD, the "
        "empirical W2 (`w2`) and the W2 between Gaussians fitted to the two sets "
        "(`w2_gaussian`, `scf.metrics.gaussian_w2`) in the model's 50-d PCA space (lower is "
        "better); `spread` is the RMS distance of the cells to their mean, `real_spread` the "
        "real cells'.",
        "",
        md_table(summary),
        "",
        "In how many (cell type, seed) runs `smooth` scores lower than `repeat` and than "
        "`interpolate` (means over subsets):",
        "",
        md_table(smooth_wins(df)),
        "",
        f"Runtime {minutes:.1f} min, torch {torch.__version__}, 1 thread. "
        f"Produced by `{command_line(args)}`.",
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
    parser.add_argument("--seeds", nargs="+", type=int, default=[0], help="one model per seed")
    args = parser.parse_args(argv)
    import sccalmflow as scf
    from benchmarks.methods import configure_runtime

    configure_runtime()  # one torch thread, quiet Lightning
    adata = scf.datasets.kang2018()
    t0 = time.perf_counter()
    df = pd.concat(
        [
            run_cell_type(
                adata, ct, args.pool, args.subsets, args.n_cells, args.max_epochs, head, seed
            )
            for seed in args.seeds
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
