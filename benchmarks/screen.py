"""Where the truth is known: a synthetic screen with additive or interacting effects.

``sccalmflow.datasets.synthetic_perturbation`` draws a screen of cell types x
perturbations; with ``interaction=0`` every type responds alike (Additive is right), with
``interaction > 0`` the response is scaled by a per-type responsiveness that the type's
control cells show (Additive is wrong, a model that maps control cells can learn it). Two
combinations (type0 x pert0, type1 x pert1) are held out; CaLMFlow variants and Additive
trained on the rest predict them; R² (squared Pearson) of the mean on each combination's
top-100 DE genes, Pearson Δ on all genes, E-distance and W2 in the shared 50-d PCA space.
One line of ``screen.jsonl`` per (interaction, seed, method, held-out combination).

    python benchmarks/screen.py                       # interaction 0 and 1, seeds 0-2
    python benchmarks/screen.py --report-only
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # `python benchmarks/screen.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.records import add_run_arguments, read_jsonl, run_jsonl

RESULTS = Path(__file__).resolve().parent / "results"
HELD_OUT = [("type0", "pert0"), ("type1", "pert1")]
METRICS = {
    "R² top-100 DE": ("r2_pearson", "top100_de"),
    "Pearson Δ": ("pearson_delta", "genes"),
    "E-distance": ("e_distance", "pca"),
    "W2": ("w2", "pca"),
}


def run_one(interaction: float, seed: int, variants, n_cells: int, n_gen: int) -> list[dict]:
    """One screen, every method; one record per (method, held-out combination)."""
    import sccalmflow as scf
    from benchmarks.methods import fit_calmflow, predict_timed
    from benchmarks.subsample import split_variant
    from sccalmflow.baselines import Additive

    setup = scf.datasets.synthetic_setup()
    adata = scf.datasets.synthetic_perturbation(n_cells=n_cells, interaction=interaction, seed=seed)
    held = np.zeros(adata.n_obs, dtype=bool)
    for ct, p in HELD_OUT:
        held |= ((adata.obs.cell_type == ct) & (adata.obs.perturbation == p)).to_numpy()
    train = adata[~held].copy()
    conditions = {"cell_type": [c for c, _ in HELD_OUT], "perturbation": [p for _, p in HELD_OUT]}
    methods = []
    for i, variant in enumerate(variants):
        model_kw, train_kw = split_variant(variant)
        model, _ = fit_calmflow(train.copy(), setup, model_kw, train_kw, seed)
        if i == 0:
            model.add_pca(adata)
        methods.append((variant, model))
    methods.append(("Additive", Additive().fit(train, seed=seed, **setup)))
    records = []
    for name, obj in methods:
        pred, _ = predict_timed(obj, conditions, n_gen, seed)
        res = scf.metrics.evaluate(
            pred, adata, **setup, space=("pca",), top_de=100, seed=seed,
            metrics=("mean_expression", "e_distance", "w2"),
        )  # fmt: skip
        for (ct, p), sel in res.groupby(["cell_type", "perturbation"], observed=True):
            values = {
                label: float(sel[(sel.metric == m) & (sel.space == s)].value.iloc[0])
                for label, (m, s) in METRICS.items()
            }
            records.append(
                {"interaction": interaction, "seed": seed, "method": name,
                 "held_out": f"{ct} x {p}", **values}
            )  # fmt: skip
    return records


def markdown(df: pd.DataFrame) -> str:
    """Mean ± sd over seeds (of the mean over held-out combinations) per regime and method."""
    from benchmarks.report import md_table

    per_seed = df.groupby(["interaction", "method", "seed"], sort=False)[list(METRICS)].mean()
    g = per_seed.groupby(level=["interaction", "method"], sort=False)
    m, s = g.mean(), g.std()
    table = m.copy().astype(object)
    for c in METRICS:
        table[c] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(m[c], s[c], strict=True)]
    table = table.join(g.size().rename("seeds")).reset_index()
    per_combo = df.groupby(["interaction", "held_out", "method"], sort=False)[list(METRICS)]
    return "\n".join(
        [
            "# screen: a synthetic screen where Additive is right (interaction 0) or wrong",
            "",
            "`sccalmflow.datasets.synthetic_perturbation(n_cells, interaction)` (6 cell types x "
            "2 perturbations + control, 500 genes, negative-binomial counts); type0 x pert0 "
            "and type1 x pert1 held out; 500 cells generated per combination. R² (squared "
            "Pearson) of the mean on each combination's top-100 DE genes and Pearson Δ on "
            "all genes (higher is better), E-distance and W2 in the shared 50-d PCA space "
            "(lower is better). Mean over the two combinations, then mean ± sd over seeds.",
            "",
            md_table(table),
            "",
            "## Per held-out combination (mean over seeds)",
            "",
            md_table(per_combo.mean().round(3).reset_index()),
        ]
    )


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run (appending to ``screen.jsonl``) and write ``screen.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(parser, ["default"], RESULTS)
    parser.add_argument("--interactions", nargs="+", type=float, default=[0.0, 1.0])
    parser.add_argument("--n-cells", type=int, default=1500)
    parser.add_argument("--n-gen", type=int, default=500)
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "screen.jsonl"
    if not args.report_only:

        def run(inter, seed):
            return run_one(inter, seed, args.variants, args.n_cells, args.n_gen)

        run_jsonl(jsonl, args.seeds, args.interactions, run)
    df = pd.DataFrame(read_jsonl(jsonl))
    (args.out / "screen.md").write_text(markdown(df))
    return df


if __name__ == "__main__":
    main()
