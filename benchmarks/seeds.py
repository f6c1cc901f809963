"""Several seeds of a suite on one page: mean ± sd over seeds, CaLMFlow against the best CFM.

Each full run of a suite (``python -m benchmarks --suite NAME --seed S --out DIR``) writes
one seed's ``NAME.csv``; this page gathers them::

    python -m benchmarks.seeds kang-loo results/kang-loo.csv /tmp/s1/kang-loo.csv /tmp/s2/kang-loo.csv
    python -m benchmarks.seeds unconditional --report-only      # from NAME_seeds.csv as it is

The rows of every file (or, with ``--report-only``, of ``NAME_seeds.csv``) are written to
``NAME_seeds.csv``; ``NAME_seeds.md`` gives, per method, the mean over splits of each seed,
then mean ± sd over seeds; per seed, each CaLMFlow row divided by the best CFM of that seed;
for ``kang-loo`` also the fraction of the gap from Additive to the replicate closed
(:func:`benchmarks.suites.kang_loo.gap_fractions`, per seed) and the per-type R².
Hand-written findings in ``NAME_seeds_notes.md`` (when present) are appended.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from .config import RESULTS
from .report import md_table, mean_sd

#: Per suite: the page's metrics as (metric, space, label, higher is better).
SEED_METRICS: dict[str, list[tuple[str, str, str, bool]]] = {
    "kang-loo": [
        ("r2_pearson", "top100_de", "R² top-100 DE", True),
        ("e_distance", "pca", "E-distance (PCA)", False),
        ("mmd", "pca", "MMD (PCA)", False),
        ("w2", "pca", "W2 (PCA)", False),
    ],
    "unconditional": [
        ("mmd", "pca", "MMD (PCA)", False),
        ("w2", "pca", "W2 (PCA)", False),
        ("e_distance", "pca", "E-distance (PCA)", False),
        ("w2_gaussian", "pca", "Gaussian W2 (PCA)", False),
        ("leiden_kl", "pca", "Leiden KL (PCA)", False),
        ("mmd", "umap10", "MMD (UMAP10)", False),
        ("w2", "umap10", "W2 (UMAP10)", False),
    ],
}


def per_seed(df: pd.DataFrame, suite: str) -> pd.DataFrame:
    """One row per (seed, method): each metric's mean over the seed's splits."""
    metrics = SEED_METRICS[suite]
    labels = {(m, s): label for m, s, label, _ in metrics}
    sel = df[[k in labels for k in zip(df.metric, df.space, strict=True)]]
    sel = sel.assign(label=[labels[k] for k in zip(sel.metric, sel.space, strict=True)])
    wide = sel.pivot_table(
        index=["seed", "method"], columns="label", values="value", aggfunc="mean", sort=False
    )
    return wide.reindex(columns=[m[2] for m in metrics]).reset_index()


def against_best_cfm(seeds: pd.DataFrame, suite: str) -> pd.DataFrame:
    """Per seed and CaLMFlow method, each metric divided by the best CFM's of that seed."""
    rows = []
    for seed, g in seeds.groupby("seed", sort=True):
        g = g.set_index("method")
        cfm = g[g.index.str.startswith("CFM")]
        if cfm.empty:
            continue
        for method in g.index[g.index.str.startswith("CaLMFlow")]:
            row = {"seed": seed, "method": method}
            for _, _, label, higher in SEED_METRICS[suite]:
                best = cfm[label].max() if higher else cfm[label].min()
                row[label] = g.loc[method, label] / best
            rows.append(row)
    return pd.DataFrame(rows)


def gap_closed(df: pd.DataFrame) -> pd.DataFrame:
    """kang-loo: per seed and method, the mean over held-out types of the gap-closed fraction."""
    from .suites.kang_loo import gap_fractions

    # gap_fractions' column labels (kang_loo.SUMMARY_COLUMNS) -> this page's
    labels = {"R² top-100 DE (Pearson²)": "R² top-100 DE"} | {
        label: label for _, _, label, _ in SEED_METRICS["kang-loo"][1:]
    }
    parts = []
    for seed, g in df.groupby("seed", sort=True):
        frac = gap_fractions(g).groupby("method", sort=False)[list(labels)].mean()
        parts.append(frac.rename(columns=labels).reset_index().assign(seed=seed))
    return pd.concat(parts, ignore_index=True)


def per_type_r2(df: pd.DataFrame) -> pd.DataFrame:
    """kang-loo: top-100-DE R² per held-out type, mean ± sd over seeds, for each method."""
    sel = df[(df.metric == "r2_pearson") & (df.space == "top100_de")]
    sel = sel.drop_duplicates(["seed", "split", "method"])
    table = mean_sd(sel, ["split", "method"], ["value"], count="seeds")
    wide = table.pivot(index="split", columns="method", values="value")
    order = list(dict.fromkeys(sel.split))
    return wide.reindex(index=order, columns=list(dict.fromkeys(sel.method))).reset_index(
        names="held-out type"
    )


def markdown(df: pd.DataFrame, suite: str, source: str) -> str:
    """The page: mean ± sd over seeds, CaLMFlow / best CFM per seed, kang-loo's extras."""
    seeds = per_seed(df, suite)
    labels = [m[2] for m in SEED_METRICS[suite]]
    order = list(dict.fromkeys(df.method))
    summary = mean_sd(seeds, ["method"], labels, count="seeds")
    summary = summary.set_index("method").reindex(order).dropna(how="all").reset_index()
    ratio = against_best_cfm(seeds, suite)
    higher = [m[2] for m in SEED_METRICS[suite] if m[3]]
    seed_list = ", ".join(str(s) for s in sorted(df.seed.unique()))
    lines = [
        f"# {suite}, seeds {seed_list}: mean ± sd over seeds",
        "",
        f"Gathered by `python -m benchmarks.seeds {suite}` from {source}; every method of a "
        f"seed ran in that seed's run. Rows: `{suite}_seeds.csv`.",
        "",
        "## Mean over splits, then mean ± sd over seeds",
        "",
        md_table(summary),
        "",
        "## CaLMFlow / best CFM of the same seed",
        "",
        "Below 1: CaLMFlow better"
        + (f", except for {', '.join(higher)} (higher is better: above 1)." if higher else "."),
        "",
        md_table(ratio) if not ratio.empty else "(no CFM in these runs)",
    ]
    if suite == "kang-loo":
        gaps = gap_closed(df)
        gap_summary = mean_sd(gaps, ["method"], list(gaps.columns[1:-1]), count="seeds")
        gap_summary = gap_summary.set_index("method").reindex(order).dropna(how="all")
        lines += [
            "",
            "## Fraction of the gap from Additive (0) to the replicate (1) closed",
            "",
            "Mean over held-out types per seed, then mean ± sd over seeds.",
            "",
            md_table(gap_summary.reset_index()),
            "",
            "## R² top-100 DE per held-out type (mean ± sd over seeds)",
            "",
            md_table(per_type_r2(df)),
        ]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    """Gather the CSVs (or read ``NAME_seeds.csv``) and write the page."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.seeds", description=__doc__.split("\n")[0]
    )
    p.add_argument("suite", choices=list(SEED_METRICS))
    p.add_argument("csv", nargs="*", type=Path, help="one seed's <suite>.csv per file")
    p.add_argument("--out", type=Path, default=RESULTS)
    p.add_argument("--report-only", action="store_true", help="read <suite>_seeds.csv as it is")
    args = p.parse_args(argv)
    rows = args.out / f"{args.suite}_seeds.csv"
    if args.report_only:
        df = pd.read_csv(rows)
    else:
        if not args.csv:
            p.error("give one <suite>.csv per seed, or --report-only")
        df = pd.concat([pd.read_csv(f) for f in args.csv], ignore_index=True)
        if df.duplicated(["seed", "split", "method", "metric", "space"]).any():
            p.error("two files hold the same seed: give one run per seed")
        args.out.mkdir(parents=True, exist_ok=True)
        df.to_csv(rows, index=False)
    df = df[df.suite == args.suite] if "suite" in df else df
    notes = args.out / f"{args.suite}_seeds_notes.md"
    source = f"the CSVs of {df.seed.nunique()} runs, one per seed"
    page = markdown(df, args.suite, source) + ("\n" + notes.read_text() if notes.exists() else "")
    (args.out / f"{args.suite}_seeds.md").write_text(page)
    print(f"wrote {args.out / f'{args.suite}_seeds.md'}")


if __name__ == "__main__":
    main()
