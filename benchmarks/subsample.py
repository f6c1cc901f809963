"""Never below Additive? Held-out Kang types with less training data (a benchmark, not a test).

For each held-out cell type (its IFN-beta cells, as in ``kang-loo``), seed and fraction
of the training cells (a subsample stratified by cell type x condition, drawn with the
seed), fits Additive and every CaLMFlow variant on the same subsample, generates 500
cells of the held-out combination from the type's control cells and scores them against
the real held-out cells with ``kang_loo.score``; the split-half replicate of the real
cells is scored the same way (the ceiling of the gap-closed fraction: 0 = Additive,
1 = replicate). One line of ``subsample.jsonl`` per (type, seed, fraction, method); the
page ``subsample.md`` gives mean ± sd over seeds.

    python benchmarks/subsample.py                                  # defaults vs Additive
    python benchmarks/subsample.py --variants default source=control --fractions 1
    python benchmarks/subsample.py --report-only

A variant is ``default`` or comma-separated keywords as in ``benchmarks/generator.py``;
keywords starting with ``train.`` go to ``train()`` (``train.early_stopping=False``).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # `python benchmarks/subsample.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.records import add_run_arguments, append_jsonl, read_jsonl

RESULTS = Path(__file__).resolve().parent / "results"
TYPES = ["B", "CD14 Mono", "CD4 Naive T", "NK"]
#: Column -> ``(metric, space)`` of ``kang_loo.score``; the first four are "higher is better".
METRICS = {
    "R² top-100 DE": ("r2_pearson", "top100_de"),
    "Pearson Δ": ("pearson_delta", "genes"),
    "Pearson Δ top-100 DE": ("pearson_delta", "top100_de"),
    "R² all genes": ("r2_pearson", "genes"),
    "E-distance": ("e_distance", "pca"),
    "MMD": ("mmd", "pca"),
    "W2": ("w2", "pca"),
}
ADDITIVE, REPLICATE = "Additive", "Replicate (half vs half)"


def split_variant(text: str) -> tuple[dict, dict]:
    """``"source=additive,train.max_epochs=5"`` -> model and ``train()`` keywords."""
    from benchmarks.generator import parse_variant

    kwargs = parse_variant(text)
    train = {k[6:]: v for k, v in kwargs.items() if k.startswith("train.")}
    return {k: v for k, v in kwargs.items() if not k.startswith("train.")}, train


def stratified_subsample(adata, fraction: float, seed: int):
    """``fraction`` of each cell type x condition (at least one cell each), seeded."""
    if fraction >= 1:
        return adata.copy()
    rng = np.random.default_rng([seed, int(fraction * 1000)])
    groups = adata.obs["cell_type"].astype(str) + "|" + adata.obs["condition"].astype(str)
    keep = []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups.to_numpy() == g)
        keep.append(rng.choice(idx, max(1, round(fraction * len(idx))), replace=False))
    return adata[np.sort(np.concatenate(keep))].copy()


def run_split(adata, ct: str, seed: int, fraction: float, variants, n_cells: int) -> list[dict]:
    """Every method on one (type, seed, fraction); one record per method."""
    from benchmarks.methods import fit_calmflow, predict_timed, timed
    from benchmarks.suites.kang_loo import replicate_halves
    from benchmarks.tasks import kang_held_out, kang_setup
    from sccalmflow.baselines import Additive

    setup, split = kang_setup(), kang_held_out(adata, ct)
    train = stratified_subsample(split.train, fraction, seed)
    base = {"cell_type": ct, "seed": seed, "fraction": fraction, "n_train": int(train.n_obs)}
    records, real = [], split.real
    for i, variant in enumerate(variants):
        model_kw, train_kw = split_variant(variant)
        model, train_s = fit_calmflow(train.copy(), setup, model_kw, train_kw, seed)
        if i == 0:
            model.add_pca(real)  # the shared PCA space (every model fits the same one)
        pred, gen_s = predict_timed(model, split.condition, n_cells, seed)
        epochs = int(len(model.history["train_loss"]))
        extra = {"train_s": train_s, "gen_s": gen_s, "epochs": epochs, **_de_means(pred, split)}
        records.append({**base, "method": variant, **extra, **_values(pred, real, split, seed)})
    add, train_s = timed(lambda: Additive().fit(train, seed=seed, **setup))
    pred, _ = predict_timed(add, split.condition, n_cells, seed)
    records.append(
        {**base, "method": ADDITIVE, "train_s": train_s, **_values(pred, real, split, seed)}
    )
    half_a, ref = replicate_halves(split, seed)
    records.append({**base, "method": REPLICATE, **_values(half_a, ref, split, seed)})
    return records


def _de_means(pred, split) -> dict:
    """Top-100 DE genes: predicted mean and cell variance, real mean and number of cells."""
    genes = list(split.de_genes)
    real = split.real[~split.control_mask, genes].X
    x = pred[:, genes].X
    x = x.toarray() if hasattr(x, "toarray") else np.asarray(x)
    return {
        "de_pred": x.mean(0).tolist(),
        "de_pred_var": x.var(0, ddof=1).tolist(),
        "de_real": np.asarray(real.mean(0)).ravel().tolist(),
        "n_real": int(real.shape[0]),
    }


def interval_coverage(df: pd.DataFrame, level: float = 0.9) -> pd.DataFrame:
    """Share of top-100 DE genes whose real mean lies in the ensemble's interval.

    The runs of one (fraction, method, type) over seeds form the ensemble (at fraction 1 the
    seeds differ only in training randomness, as in ``train_ensemble``; below 1 also in the
    subsample). ``population``: :func:`sccalmflow.tl.mean_interval` over the models;
    ``observed``: with ``n_observed`` = the number of real cells (the real mean's sampling
    error added), available for runs that stored the generated cells' variance;
    ``calibrated``: the ``observed`` interval (``population`` for runs without the variance)
    scaled by :func:`sccalmflow.tl.interval_scale` measured on the *other* held-out types of
    the same fraction and method (leave one type out: the type scored never calibrates its
    own interval).
    """
    from sccalmflow.tl import interval_scale, mean_interval

    have = df[df.de_pred.notna()] if "de_pred" in df else df[:0]
    groups = {}
    for (fraction, method, ct), g in have.groupby(["fraction", "method", "cell_type"]):
        if len(g) < 2:
            continue
        entry = {"means": np.array(g.de_pred.tolist()), "real": np.array(g.de_real.iloc[0])}
        if "de_pred_var" in g and g.de_pred_var.notna().all():
            entry["cell_var"] = np.array(g.de_pred_var.tolist())
            entry["n_observed"] = int(g.n_real.iloc[0])
        groups[(fraction, method, ct)] = entry

    def inside(res, real) -> float:
        return float(np.mean((res["lower"] <= real) & (real <= res["upper"])))

    def sampling(e) -> dict:
        return {"cell_var": e["cell_var"], "n_observed": e["n_observed"]} if "cell_var" in e else {}

    rows = []
    for (fraction, method, ct), e in groups.items():
        row = {"fraction": fraction, "method": method, "cell_type": ct, "models": len(e["means"])}
        row["population"] = inside(mean_interval(e["means"], level), e["real"])
        if "cell_var" in e:
            row["observed"] = inside(mean_interval(e["means"], level, **sampling(e)), e["real"])
        # calibrate on the other types (with the sampling error where every run stored it)
        others = [o for (f, m, c), o in groups.items() if (f, m) == (fraction, method) and c != ct]
        if others:
            both = "cell_var" in e and all("cell_var" in o for o in others)
            scale = interval_scale(
                [o["means"] for o in others],
                [o["real"] for o in others],
                level,
                cell_var=[o["cell_var"] for o in others] if both else None,
                n_observed=[o["n_observed"] for o in others] if both else None,
            )
            res = mean_interval(e["means"], level, **(sampling(e) if both else {}), scale=scale)
            row["scale"], row["calibrated"] = scale, inside(res, e["real"])
        rows.append(row)
    return pd.DataFrame(rows)


def _values(pred, real, split, seed: int) -> dict[str, float]:
    from benchmarks.suites.kang_loo import score
    from benchmarks.tasks import kang_setup

    values = score(pred, real, split, kang_setup(), seed)
    return {name: float(values[key]) for name, key in METRICS.items()}


def gap_closed(df: pd.DataFrame) -> pd.DataFrame:
    """Per record, ``(score - Additive) / (Replicate - Additive)`` of the same split."""
    keys = ["cell_type", "seed", "fraction"]
    cols = list(METRICS)
    base = df[df.method == ADDITIVE].set_index(keys)[cols]
    ceil = df[df.method == REPLICATE].set_index(keys)[cols]
    out = df[~df.method.isin([ADDITIVE, REPLICATE])].set_index(keys)
    den = (ceil - base).reindex(out.index)
    frac = (out[cols] - base.reindex(out.index)) / den.where(den.abs() > 1e-12)
    return frac.assign(method=out.method).reset_index()


def complete_runs(df: pd.DataFrame) -> tuple[pd.DataFrame, list[str]]:
    """The (fraction, method, seed) runs that hold every held-out type, and what was left out.

    A mean over types is only comparable between runs over the same types.
    """
    n_types = df.cell_type.nunique()
    counts = df.groupby(["fraction", "method", "seed"]).cell_type.transform("nunique")
    left = df[counts < n_types].drop_duplicates(["fraction", "method", "seed"])
    notes = [f"{r.method} at {r.fraction:g}, seed {r.seed}" for r in left.itertuples()]
    return df[counts == n_types], notes


def markdown(df: pd.DataFrame, name: str = "subsample") -> str:
    """Mean ± sd over seeds (per fraction, method; then per type) and the gap closed.

    The summary tables use only runs with every held-out type (:func:`complete_runs`);
    the per-type table uses every run.
    """
    from benchmarks.report import md_table

    # a split run again (other variants) records Additive and the replicate again: same values
    df = df.drop_duplicates(["cell_type", "seed", "fraction", "method"])
    full, df = df, complete_runs(df)[0]
    incomplete = complete_runs(full)[1]

    def mean_sd(frame: pd.DataFrame, by: list[str]) -> pd.DataFrame:
        g = frame.groupby(by, sort=False)
        cols = [c for c in METRICS if c in frame]
        m, s = g[cols].mean(), g[cols].std()
        out = m.copy().astype(object)
        for c in cols:
            out[c] = [f"{a:.3f} ± {b:.3f}" for a, b in zip(m[c], s[c], strict=True)]
        n = g.seed.nunique().rename("runs") if "seed" in frame else None
        return out.join(n).reset_index() if n is not None else out.reset_index()

    per_seed = df.groupby(["fraction", "method", "seed"], sort=False)[list(METRICS)].mean()
    per_seed = per_seed.reset_index()
    gaps = gap_closed(df)
    gap_seed = gaps.groupby(["fraction", "method", "seed"], sort=False)[list(METRICS)].mean()
    wins = _wins(df)
    lines = [
        f"# {name}: held-out Kang types, CaLMFlow variants against Additive"
        + (" with 25 / 50 / 100 % of the training cells" if name == "subsample" else ""),
        "",
        "Each held-out type's IFN-beta cells are predicted from its control cells by models "
        "trained on a stratified subsample (cell type x condition) of the other cells; 500 "
        "generated cells per run. R² (squared Pearson) of the mean on the top-100 DE genes "
        "and on all genes, Pearson Δ (correlation of predicted and real mean change from "
        "control) on all genes and on the top-100 DE genes (higher is better); E-distance, "
        "MMD and W2 in the model's 50-d PCA space (lower is better). Values are means over "
        f"the held-out types ({', '.join(sorted(df.cell_type.unique()))}), then mean ± sd "
        "over seeds. Variants: `default` is the constructor's and `train()`'s defaults.",
        "",
        "Left out of the summaries (not every type was run; in the per-type table): "
        + (", ".join(incomplete) if incomplete else "nothing")
        + ".",
        "",
        "## Mean over types, mean ± sd over seeds",
        "",
        md_table(mean_sd(per_seed, ["fraction", "method"])),
        "",
        "## Fraction of the Additive → replicate gap closed (0 = Additive, 1 = replicate)",
        "",
        md_table(mean_sd(gap_seed.reset_index(), ["fraction", "method"])),
        "",
        "## Runs (type x seed) at least as good as Additive",
        "",
        md_table(wins),
        "",
        "## Ensemble intervals: real mean inside the 90 % interval (top-100 DE genes)",
        "",
        "The seeds of one type form a k-model ensemble (`scf.tl.mean_interval`); "
        "`population`: the interval over the models only; `observed`: with the real mean's "
        "sampling error for the number of real cells (`n_observed`); `calibrated`: that "
        "interval (`population` where runs lack the cells' variance) with the models' half-width scaled by `scf.tl.interval_scale` measured on "
        "the other held-out types (leave one type out; `scale` is the mean factor). Aim: 0.90.",
        "",
        md_table(_coverage_table(df)),
        "",
        "## Per type (mean ± sd over seeds)",
        "",
        md_table(mean_sd(full, ["fraction", "cell_type", "method"])),
        "",
        "## Cost (mean over runs)",
        "",
        md_table(
            df.groupby(["fraction", "method"], sort=False)[["n_train", "epochs", "train_s"]]
            .mean()
            .round(1)
            .reset_index()
        ),
    ]
    return "\n".join(lines)


def _coverage_table(df: pd.DataFrame) -> pd.DataFrame:
    cov = interval_coverage(df)
    if cov.empty:
        return pd.DataFrame({"note": ["no run stored its predicted DE means"]})
    cols = [c for c in ("population", "observed", "calibrated", "scale") if c in cov]
    mean = cov.groupby(["fraction", "method"])[cols].mean().round(2)
    last = "calibrated" if "calibrated" in cov else cols[-1]
    per_type = cov.pivot_table(index=["fraction", "method"], columns="cell_type", values=last)
    per_type.columns = [f"{last}: {c}" for c in per_type.columns]
    return mean.join(per_type.round(2)).reset_index()


def _wins(df: pd.DataFrame) -> pd.DataFrame:
    """Per fraction and method, the runs at least as good as Additive's, per metric."""
    keys = ["cell_type", "seed", "fraction"]
    base = df[df.method == ADDITIVE].set_index(keys)
    rows = []
    for (fraction, method), sel in df[~df.method.isin([ADDITIVE, REPLICATE])].groupby(
        ["fraction", "method"], sort=False
    ):
        sel = sel.set_index(keys)
        b = base.reindex(sel.index)
        row = {"fraction": fraction, "method": method}
        for i, c in enumerate(METRICS):
            better = sel[c] >= b[c] if i < 4 else sel[c] <= b[c]
            row[c] = f"{int(better.sum())}/{len(sel)}"
        rows.append(row)
    return pd.DataFrame(rows)


def _done(jsonl: Path, variants) -> set[tuple[str, int, float]]:
    """The (type, seed, fraction) splits ``jsonl`` already has for every variant."""
    if not jsonl.exists():
        return set()
    have: dict[tuple[str, int, float], set[str]] = {}
    for r in read_jsonl(jsonl):
        have.setdefault((r["cell_type"], r["seed"], r["fraction"]), set()).add(r["method"])
    return {k for k, methods in have.items() if set(variants) <= methods}


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run (appending to ``subsample.jsonl``) and write ``subsample.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    add_run_arguments(parser, ["default"], RESULTS)
    parser.add_argument("--cell-types", nargs="+", default=TYPES)
    parser.add_argument("--fractions", nargs="+", type=float, default=[0.25, 0.5, 1.0])
    parser.add_argument("--n-cells", type=int, default=500)
    parser.add_argument("--name", default="subsample")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / f"{args.name}.jsonl"
    if not args.report_only:
        import sccalmflow as scf
        from benchmarks.methods import configure_runtime

        configure_runtime()
        adata = scf.datasets.kang2018()
        t0 = time.perf_counter()
        done = _done(jsonl, args.variants)
        for seed in args.seeds:
            for fraction in args.fractions:
                for ct in args.cell_types:
                    if (ct, seed, fraction) in done:
                        continue
                    rows = run_split(adata, ct, seed, fraction, args.variants, args.n_cells)
                    append_jsonl(jsonl, rows)
                    print(json.dumps(rows[0]), flush=True)
        print(f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)
    df = pd.DataFrame(read_jsonl(jsonl))
    (args.out / f"{args.name}.md").write_text(markdown(df, args.name))
    return df


if __name__ == "__main__":
    main()
