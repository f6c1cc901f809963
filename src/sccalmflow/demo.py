"""The demo: hold out one cell type's IFN-beta cells, train CaLMFlow, predict them.

Run ``python -m sccalmflow.demo`` (see ``--help``). For each held-out cell type it trains a
model on the bundled Kang data without that cell type's IFN-beta cells, generates them, and
prints R² (squared Pearson of mean expression, scGen's convention) on the top-100 DE genes
next to the "control" and "additive" baselines, plus distribution distances in the model's
PCA space; figures go to ``--out``.
"""

from __future__ import annotations

import argparse
import logging
import time
import warnings
from pathlib import Path

import pandas as pd

from .datasets import kang2018_setup

KEYS = kang2018_setup()


def held_out_split(adata, cell_type: str, n_de: int = 100):
    """Kang split for one held-out cell type.

    Returns ``(train, real, ctrl, genes)``: every cell but ``cell_type``'s IFN-beta cells,
    those held-out cells, the type's control cells (copies), and the type's top ``n_de``
    DE genes (Wilcoxon, IFN-beta vs control).
    """
    from . import metrics

    in_type = (adata.obs["cell_type"] == cell_type).to_numpy()
    held = in_type & (adata.obs["condition"] == "IFN-beta").to_numpy()
    ctrl = in_type & (adata.obs["condition"] == "control").to_numpy()
    genes = metrics.top_de_genes(
        adata[in_type], groupby="condition", group="IFN-beta", reference="control", n=n_de
    )
    return adata[~held].copy(), adata[held].copy(), adata[ctrl].copy(), genes


def run_one(adata, cell_type: str, *, n_cells: int, seed: int, max_epochs: int | None, out: Path):
    """Train on everything but ``cell_type``'s IFN-beta cells and score their prediction."""
    from . import CaLMFlowModel, metrics
    from .baselines import Additive, Control
    from .data import PCA_KEY, check_same_pca, get_matrix

    train, real, ctrl, genes = held_out_split(adata, cell_type)
    CaLMFlowModel.setup_anndata(train, **KEYS)
    model = CaLMFlowModel(train, seed=seed)
    t0 = time.perf_counter()
    model.train(max_epochs=max_epochs, enable_progress_bar=True)
    train_s = time.perf_counter() - t0
    cond = {"cell_type": [cell_type], "condition": ["IFN-beta"]}
    t0 = time.perf_counter()
    preds = {"CaLMFlow": model.predict(cond, n_cells=n_cells, seed=seed)}
    gen_s = time.perf_counter() - t0
    for name, cls in (("control", Control), ("additive", Additive)):
        preds[name] = cls().fit(train, seed=seed, **KEYS).predict(cond, n_cells=n_cells, seed=seed)
    model.add_pca(real)  # the model's projection, next to scanpy's X_pca
    real_pca = get_matrix(real, obsm=PCA_KEY, name="real")
    rows = []
    for name, pred in preds.items():
        check_same_pca(pred, real)  # the baselines' PCA must be the model's
        z = get_matrix(pred, obsm=PCA_KEY, name=name)
        r_top = metrics.mean_expression_r2(pred, real, genes=genes)
        r_all = metrics.mean_expression_r2(pred, real)
        rows.append(
            {
                "held_out": cell_type,
                "method": name,
                "r2_top100_de": r_top["r2_pearson"],
                "r2_all_genes": r_all["r2_pearson"],
                "r2_sklearn_top100_de": r_top["r2_sklearn"],
                "e_distance_pca": metrics.energy_distance(z, real_pca),
                "mmd_pca": metrics.mmd(z, real_pca),
            }
        )
    info = {"train_s": train_s, "generate_s": gen_s, "epochs": len(model.history["train_loss"])}
    # figures are drawn after every model has trained: UMAP's numba worker threads can keep
    # a core busy and slow down a later training in the same process
    figure_args = (model, preds, real, ctrl, genes, cell_type, out)
    return pd.DataFrame(rows), info, figure_args


def _figures(model, preds, real, ctrl, genes, cell_type, out: Path) -> None:
    import anndata as ad
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from . import pl, tl

    stem = cell_type.replace(" ", "_")
    fig, axes = plt.subplots(1, 2, figsize=(11, 5))
    for a, name in zip(axes, ("CaLMFlow", "additive"), strict=True):
        pl.mean_expression(preds[name], real, genes=genes, ax=a, show=False)
        a.set_title(f"{name}: held-out {cell_type} IFN-beta")
    fig.tight_layout()
    fig.savefig(out / f"mean_expression_{stem}.png", dpi=120)
    plt.close(fig)
    cells = ad.concat([ctrl, real])
    model.add_pca(cells)
    overlay = tl.embedding(preds["CaLMFlow"], cells, control=KEYS["control"], basis="pca")
    fig = pl.embedding_overlay(overlay, return_fig=True)
    fig.savefig(out / f"embedding_{stem}.png", dpi=120)
    plt.close("all")
    fig = pl.history(model, return_fig=True)
    fig.savefig(out / f"history_{stem}.png", dpi=120)
    plt.close("all")


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the demo from the command line (``python -m sccalmflow.demo --help``).

    Returns
    -------
    The results table (one row per held-out cell type and method).
    """
    parser = argparse.ArgumentParser(
        prog="python -m sccalmflow.demo", description=__doc__.split("\n")[0]
    )
    parser.add_argument(
        "--held-out",
        nargs="+",
        default=["CD14 Mono", "B"],
        help="cell types to hold out, one model each",
    )
    parser.add_argument("--n-cells", type=int, default=500)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--max-epochs", type=int, default=None, help="default: the model's heuristic"
    )
    parser.add_argument("--out", default="demo_output", help="folder for figures and the table")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads in train/predict (default: sccalmflow.settings.n_threads, 1)",
    )
    args = parser.parse_args(argv)

    warnings.filterwarnings("ignore", category=UserWarning)
    logging.getLogger("lightning.pytorch").setLevel(logging.WARNING)
    from . import datasets
    from .utils import settings

    if args.threads:
        settings.n_threads = args.threads
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    adata = datasets.kang2018()
    tables, figures = [], []
    t_start = time.perf_counter()
    for ct in args.held_out:
        if ct not in set(adata.obs["cell_type"]):
            parser.error(
                f"unknown cell type {ct!r}; choose from {sorted(set(adata.obs['cell_type']))}"
            )
        table, info, figure_args = run_one(
            adata, ct, n_cells=args.n_cells, seed=args.seed, max_epochs=args.max_epochs, out=out
        )
        print(
            f"\n{ct}: trained {info['epochs']} epochs in {info['train_s']:.0f} s, generated "
            f"{args.n_cells} cells in {info['generate_s']:.2f} s"
        )
        tables.append(table)
        figures.append(figure_args)
    for figure_args in figures:
        _figures(*figure_args)
    table = pd.concat(tables, ignore_index=True)
    table.to_csv(out / "demo_results.csv", index=False)
    with pd.option_context("display.width", 140, "display.precision", 3):
        print("\nHeld-out IFN-beta cells; R² = squared Pearson of mean expression (scGen);")
        print("distances in the model's 50-d PCA space (lower is better)\n")
        print(table.to_string(index=False))
    print(f"\nTotal {time.perf_counter() - t_start:.0f} s; figures and table in {out}/")
    return table


if __name__ == "__main__":
    main()
