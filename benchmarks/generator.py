"""Which head, path and temperature make CaLMFlow a generator? (a benchmark, not a test)

Holds out one Kang cell type's IFN-beta cells (as ``kang-loo`` and the demo do), trains one
model per variant on the rest and generates 500 cells of the held-out combination from the
type's control cells; scores them against the real held-out cells: R² (squared Pearson) on
the top-100 DE genes, E-distance, MMD and W2 in the model's 50-d PCA space, the number of
distinct generated cells and their spread. Sampling heads are scored at every temperature of
``--taus``. Every model also generates 500 cells from four sets of 40 of the type's control
cells; the default variant's runs also score Additive and the split-half replicate (the
page's gap-closed fractions). Each (cell type, seed, variant) is one line of
``generator.jsonl``; the page ``generator.md`` gives mean ± sd over runs.

    python benchmarks/generator.py                                   # B, CD14 Mono; seeds 0-2
    python benchmarks/generator.py --cell-types B --seeds 0 --variants head=flow,path=bridge
    python benchmarks/generator.py --report-only                     # the page from the jsonl

A variant is ``default`` (the constructor's defaults: from cells the flow head with the
deterministic head's mean network on straight paths, cross-fitted PCA coordinates, τ chosen
by ``train()``) or comma-separated keywords of the constructor or of ``train()``, e.g.
``head=deterministic``, ``head=gmm``, ``path=bridge,sigma_min=0.2,temperature=0.5`` or
``pca_folds=None``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # `python benchmarks/generator.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.records import add_run_arguments, read_jsonl, run_jsonl, scored_taus, tau_rows

RESULTS = Path(__file__).resolve().parent / "results"
#: The references of the gap-closed section (``--baselines`` rows hold more methods).
REFERENCES = ("Additive", "Additive, cross-fitted", "replicate")
#: The ``variant`` of the rows of ``--baselines`` runs (:func:`run_baselines`).
BASELINES = "kang-loo baselines"
#: The variants a plain run compares.
VARIANTS = ("default", "head=deterministic", "head=gmm")
#: How the deterministic head's pool runs reuse 40 sources (``predict(oversample=...)``).
OVERSAMPLE = ("repeat", "interpolate", "smooth")
#: The metrics ``calibrate_temperature`` is asked to choose τ with (on validation cells).
CALIBRATION_METRICS = ("mmd", "e_distance", "w2_gaussian")
#: Column name -> ``(metric, space)`` of ``kang_loo.score``.
METRICS = {
    "r2_pearson_top_de": ("r2_pearson", "top100_de"),
    "e_distance_pca": ("e_distance", "pca"),
    "mmd_pca": ("mmd", "pca"),
    "w2_pca": ("w2", "pca"),
}

#: Scored as well, not in the page's main tables (rows before 2026-12-04 lack them): the W2
#: between Gaussians fitted to the two sets, which does not reward narrow sets.
EXTRA_METRICS = {"w2_gaussian_pca": ("w2_gaussian", "pca")}


def parse_variant(text: str) -> dict:
    """``"head=flow,sigma_min=0.2"`` -> ``{"head": "flow", "sigma_min": 0.2}``."""
    kwargs: dict = {}
    if text == "default":
        return kwargs
    for part in text.split(","):
        key, value = part.split("=")
        for cast in (int, float):
            try:
                value = cast(value)
                break
            except ValueError:
                continue
        if value in ("True", "False"):
            value = value == "True"
        kwargs[key] = value
    return kwargs


def run_one(
    adata,
    cell_type: str,
    seed: int,
    variant: str,
    taus,
    n_cells: int,
    max_epochs=None,
    head_steps=(),
    pool: bool = True,
) -> dict:
    """Train one variant with one seed on the split of ``cell_type``; score each τ.

    ``head_steps``: for a head that integrates (the flow head), also generate at the default
    τ with each of these numbers of integration steps (:func:`score_head_steps`). ``pool``:
    score the 40-control pools (:func:`score_pool`).
    """
    from benchmarks.methods import fit_calmflow, predict_timed, train_defaults
    from benchmarks.tasks import kang_held_out, kang_setup

    setup, split = kang_setup(), kang_held_out(adata, cell_type)
    kwargs = parse_variant(variant)
    train_keys = train_defaults()
    train_kwargs = {k: kwargs.pop(k) for k in list(kwargs) if k in train_keys}
    if max_epochs is not None:
        train_kwargs["max_epochs"] = max_epochs
    model, train_s = fit_calmflow(split.train.copy(), setup, kwargs, train_kwargs, seed)
    model.add_pca(split.real)  # the split is this run's own: every score reads its PCA
    real = split.real
    row = {"variant": variant, "cell_type": cell_type, "seed": seed, "train_s": train_s}
    row["real_spread"] = real_spread(split)
    row["epochs"] = len(model.history["train_loss"])
    sampling = model.module.samples_latent(1.0)
    for tau in taus if sampling else [model.temperature]:
        pred, gen_s = predict_timed(model, split.condition, n_cells, seed, temperature=tau)
        row[f"tau={tau:g}"] = {**scored(pred, real, split, setup, seed), "gen_s": gen_s}
    row["default_tau"] = model.temperature
    if sampling and len(taus) > 1:
        row["calibration"] = calibrate_on_validation(model, split, taus)
    if head_steps and hasattr(model.module.head, "n_steps"):
        row["head_steps"] = score_head_steps(model, split, setup, seed, n_cells, head_steps)
    if pool:
        row["pool"] = score_pool(model, split, setup, seed, n_cells, taus if sampling else ())
    if variant == "default":
        row["references"] = score_references(model, split, setup, seed, n_cells)
    return row


def real_spread(split) -> float:
    """The spread (RMS distance to their mean) of the real held-out cells in the model's PCA.

    ``split.real`` must carry the model's PCA (``model.add_pca``); its control cells are
    left out. The page divides the generated cells' spread by it (1: the right spread).
    """
    from benchmarks.tasks import spread
    from sccalmflow.data import PCA_KEY

    z = np.asarray(split.real.obsm[PCA_KEY], dtype=np.float64)
    return spread(z[~split.control_mask])


def calibrate_on_validation(model, split, taus) -> dict:
    """The τ ``calibrate_temperature`` would choose on cells of the training conditions.

    The cells ``train()`` held out for validation (``model.validation_indices``; the
    held-out type's cells stay unseen), scored at every τ of ``taus`` with each of
    :data:`CALIBRATION_METRICS`; the model's τ is restored afterwards. (Rows before
    2026-12-03 15:00 used a re-drawn 10 % sample of the training cells, mostly cells the
    model trained on, and MMD and E-distance only; they lack ``"reference"``.)
    """
    val = model.validation_indices
    default, out = model.temperature, {"reference": "validation_indices"}
    for metric in CALIBRATION_METRICS:
        table = model.calibrate_temperature(
            split.train[val], temperatures=list(taus), metric=metric, progress_bar=False
        )
        out[metric] = {
            "chosen": float(table.temperature[table.chosen].iloc[0]),
            "values": [float(v) for v in table.value],
        }
    model.temperature = default
    return out


def score_head_steps(model, split, setup: dict, seed: int, n_cells: int, steps) -> dict:
    """The default τ's cells with the head's integration steps set to each of ``steps``.

    Same seed for every count, so only the steps differ; generation timed; the head's own
    count is restored afterwards.
    """
    from benchmarks.methods import head_steps_set, predict_timed

    out = {}
    for n in steps:
        with head_steps_set(model, n):
            pred, gen_s = predict_timed(model, split.condition, n_cells, seed)
        out[str(n)] = {**scored(pred, split.real, split, setup, seed), "gen_s": gen_s}
    return out


def score_pool(
    model, split, setup: dict, seed: int, n_cells: int, taus=(), pool: int = 40, subsets=4
):
    """``n_cells`` cells from ``subsets`` random sets of ``pool`` of the type's control cells.

    A sampling head reuses each source with new noise (``oversample="repeat"``), at its
    default τ (mode ``"repeat"``) and at every other τ of ``taus`` (``"repeat τ=0.5"``); the
    deterministic head is scored with ``"repeat"``, ``"interpolate"`` and ``"smooth"`` (the
    smoothed bootstrap of the sources). Means over subsets.
    """
    from benchmarks.methods import predict_timed

    ct = split.cell_type
    obs = split.train.obs
    ctrl = split.train[((obs["cell_type"] == ct) & (obs["condition"] == "control")).to_numpy()]
    if model.module.samples_latent(1.0):
        others = [t for t in taus if not np.isclose(t, model.temperature)]
        modes = [("repeat", "repeat", {})]
        modes += [(f"repeat τ={t:g}", "repeat", {"temperature": t}) for t in others]
    else:
        modes = [(mode, mode, {}) for mode in OVERSAMPLE]
    out: dict = {}
    for name, oversample, kwargs in modes:
        values = []
        for s in range(subsets):
            rng = np.random.default_rng(100 + s)
            subset = ctrl[np.sort(rng.choice(ctrl.n_obs, min(pool, ctrl.n_obs), replace=False))]
            pred, _ = predict_timed(
                model, split.condition, n_cells, seed + s, source_cells=subset,
                oversample=oversample, **kwargs,
            )  # fmt: skip
            values.append(scored(pred, split.real, split, setup, seed))
        out[name] = {k: float(np.mean([v[k] for v in values])) for k in values[0]}
    return out


def score_references(model, split, setup: dict, seed: int, n_cells: int) -> dict:
    """Additive (fitted on the split's training cells) and the split-half replicate.

    Scored like every variant, so the fraction of the Additive -> replicate gap a variant
    closes can be read off (``gap closed``: 0 = Additive, 1 = the replicate).
    """
    from benchmarks.methods import predict_timed
    from benchmarks.suites.kang_loo import replicate_halves
    from sccalmflow.baselines import Additive

    additive = {"Additive": None}
    if getattr(model, "pca_folds", None):  # the same cells, with the model's cross-fitting
        additive["Additive, cross-fitted"] = model.pca_folds
    out = {}
    for name, folds in additive.items():
        add = Additive().fit(
            split.train, n_pca=model.module.n_features, seed=seed, pca_folds=folds, **setup
        )
        pred, _ = predict_timed(add, split.condition, n_cells, seed)
        out[name] = scored(pred, split.real, split, setup, seed, cells=False)
    half_a, ref = replicate_halves(split, seed)
    out["replicate"] = scored(half_a, ref, split, setup, seed, cells=False)
    return out


def run_baselines(adata, cell_type: str, seed: int, n_cells: int, pca_folds: int) -> dict:
    """kang-loo's baselines on the split, on in-sample and on cross-fitted coordinates.

    No CaLMFlow model: Control, Additive, TrainMean and the CFMs (kang-loo's full budget),
    each fitted on the split's training cells with ``pca_folds=None`` and with
    ``pca_folds`` (names ending ``", cross-fitted"``), the split-half replicate; scored like
    :func:`score_references` (the real cells carry the cross-fitted Additive's projection,
    which is the default model's of the same split and seed). One row with
    ``"references"``, so the page's Additive and replicate come from it as well.
    """
    from benchmarks.config import get_config
    from benchmarks.methods import calmflow_defaults, fit_kang_baselines, predict_timed
    from benchmarks.suites.kang_loo import replicate_halves
    from benchmarks.tasks import kang_held_out, kang_setup

    setup, split = kang_setup(), kang_held_out(adata, cell_type)
    n_pca, cfm = calmflow_defaults()["n_pca"], get_config("kang-loo", "full").cfm
    fitted = fit_kang_baselines(split.train, setup, n_pca, cfm, seed)
    fitted += fit_kang_baselines(split.train, setup, n_pca, cfm, seed, pca_folds, ", cross-fitted")
    names = [f.name for f in fitted]
    fitted[names.index("Additive, cross-fitted")].obj.add_pca(split.real)
    out, train_s = {}, {}
    for f in fitted:
        pred, _ = predict_timed(f.obj, split.condition, n_cells, seed)
        out[f.name] = scored(pred, split.real, split, setup, seed, cells=False)
        train_s[f.name] = f.train_s
    half_a, ref = replicate_halves(split, seed)
    out["replicate"] = scored(half_a, ref, split, setup, seed, cells=False)
    row = {"variant": BASELINES, "cell_type": cell_type, "seed": seed, "pca_folds": pca_folds}
    return {**row, "references": out, "train_s": train_s}


def scored(pred, real, split, setup: dict, seed: int, cells: bool = True) -> dict:
    """The page's metrics of ``pred`` against ``real``.

    With ``cells``, also how many distinct cells there are and their spread (RMS distance to
    their mean in PCA).
    """
    from benchmarks.suites.kang_loo import EVAL_METRICS, score
    from benchmarks.tasks import spread
    from sccalmflow.data import PCA_KEY

    extra = [m for m, _ in EXTRA_METRICS.values()]
    values = score(pred, real, split, setup, seed, (*EVAL_METRICS, *extra))
    out = {name: float(values[key]) for name, key in {**METRICS, **EXTRA_METRICS}.items()}
    if cells:
        z = np.asarray(pred.obsm[PCA_KEY], dtype=np.float64)
        out["distinct"] = int(len(np.unique(np.round(z, 5), axis=0)))
        out["spread"] = spread(z)
    return out


def frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (variant, cell type, seed, τ)."""
    keys = ["variant", "cell_type", "seed", "default_tau", "train_s"]
    return pd.DataFrame(tau_rows(rows, keys))


def common_runs(df: pd.DataFrame, min_runs: int = 3) -> pd.DataFrame:
    """The rows of the (cell type, seed) pairs that every variant of ``min_runs`` runs has.

    Variants run fewer times (one-off checks) are left out of the table.
    """
    pairs = df.groupby("variant")[["cell_type", "seed"]].apply(
        lambda g: set(zip(g.cell_type, g.seed, strict=True))
    )
    pairs = [p for p in pairs if len(p) >= min_runs] or list(pairs)
    shared = set.intersection(*pairs)
    keep = [(c, s) in shared for c, s in zip(df.cell_type, df.seed, strict=True)]
    return df[keep]


def pool_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (variant, cell type, seed, oversample mode) of the 40-control pools."""
    return pd.DataFrame(
        [
            {
                "variant": r["variant"],
                "cell_type": r["cell_type"],
                "seed": r["seed"],
                "mode": m,
                **v,
            }
            for r in rows
            for m, v in r.get("pool", {}).items()
        ]
    )


def calibration_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (run, calibration metric): the τ chosen and the held-out scores there.

    ``reference``: the cells the choice was made on (``train()``'s validation cells, or, in
    rows before they were recorded, a re-drawn sample of mostly trained-on cells); ``grid``:
    the τ it chose from; ``delta_<metric>``: the held-out metric at the chosen τ minus at
    τ = 1.
    """
    out = []
    for r in rows:
        cal = r.get("calibration")
        if not cal:
            continue
        where = "validation cells" if cal.get("reference") else "re-drawn sample"
        taus = row_taus(r)
        default = r["tau=1"]
        for metric, v in cal.items():
            if metric == "reference":
                continue
            at = r[f"tau={v['chosen']:g}"]
            out.append(
                {
                    "variant": r["variant"],
                    "reference": where,
                    "grid": f"{taus[0]:g} ... {taus[-1]:g}",
                    "chosen_by": metric,
                    "cell_type": r["cell_type"],
                    "seed": r["seed"],
                    "tau": v["chosen"],
                    **{m: at[m] for m in [*METRICS, "spread"] if m in at},
                    **{f"delta_{m}": at[m] - default[m] for m in METRICS},
                }
            )
    return pd.DataFrame(out)


def row_taus(row: dict) -> list[float]:
    """The τ a row was scored at, in the order of its calibration values."""
    return list(scored_taus(row))


def trained_tau(row: dict) -> float | None:
    """The τ ``train()`` chooses for the row's model (``None``: no validation-cell record).

    ``train()`` (since 2026-12-03, evening) ends by choosing τ with MMD on its validation
    cells from :data:`~sccalmflow.model.CALIBRATION_TEMPERATURES`; rows run before it did
    recorded the same MMD curve (:func:`calibrate_on_validation`), so the choice is read
    from it: the lowest value among the row's τ up to the package grid's largest.
    """
    from sccalmflow.model import CALIBRATION_TEMPERATURES

    cal = row.get("calibration", {})
    if cal.get("reference") != "validation_indices":
        return None
    taus = row_taus(row)
    ok = [i for i, tau in enumerate(taus) if tau <= max(CALIBRATION_TEMPERATURES) + 1e-9]
    return taus[min(ok, key=lambda i: cal["mmd"]["values"][i])]


def trained_frame(rows: list[dict]) -> pd.DataFrame:
    """Per run with a validation-cell record: held-out scores at :func:`trained_tau` and at 1."""
    out = []
    for r in rows:
        tau = trained_tau(r)
        if tau is None:
            continue
        for at, label in ((tau, "chosen by train()"), (1.0, "τ = 1")):
            out.append(
                {
                    "variant": r["variant"],
                    "cell_type": r["cell_type"],
                    "seed": r["seed"],
                    "at": label,
                    "tau": at,
                    **{m: r[f"tau={at:g}"][m] for m in [*METRICS, "spread"]},
                    "spread / real": r[f"tau={at:g}"]["spread"] / r.get("real_spread", np.nan),
                }
            )
    return pd.DataFrame(out)


def steps_frame(rows: list[dict]) -> pd.DataFrame:
    """One row per (run, number of the flow head's integration steps)."""
    return pd.DataFrame(
        [
            {"cell_type": r["cell_type"], "seed": r["seed"], "n_steps": int(n), **v}
            for r in rows
            for n, v in r.get("head_steps", {}).items()
        ]
    )


def reference_frame(rows: list[dict]) -> pd.DataFrame:
    """Additive and the replicate per (cell type, seed), once (the latest run's)."""
    df = pd.DataFrame(
        [
            {"cell_type": r["cell_type"], "seed": r["seed"], "method": m, **v}
            for r in rows
            for m, v in r.get("references", {}).items()
        ]
    )
    if df.empty:
        return df
    return df.drop_duplicates(["cell_type", "seed", "method"], keep="last")


def gap_closed(df: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Per run, the fraction of the Additive (0) -> replicate (1) gap closed, per metric."""
    add = refs[refs.method == "Additive"].set_index(["cell_type", "seed"])[list(METRICS)]
    rep = refs[refs.method == "replicate"].set_index(["cell_type", "seed"])[list(METRICS)]
    runs = df.set_index(["cell_type", "seed"])
    out = runs[["variant", "tau"]].copy()
    for m in METRICS:
        base, ceil = add[m].reindex(runs.index), rep[m].reindex(runs.index)
        out[m] = ((runs[m] - base) / (ceil - base)).to_numpy()
    return out.reset_index()


def pooled_gap(df: pd.DataFrame, refs: pd.DataFrame) -> pd.DataFrame:
    """Per variant and τ: the fraction of the mean gap closed, and the per-run median.

    ``(mean method - mean Additive) / (mean replicate - mean Additive)``, the means over the
    variant's runs at that τ and the references of the same (cell type, seed) pairs;
    formatted ``"pooled (median)"``.
    """
    gaps = gap_closed(df, refs)
    ref = refs.set_index(["method", "cell_type", "seed"])[list(METRICS)]
    out = []
    for (variant, tau), g in df.groupby(["variant", "tau"], sort=True):
        runs = list(zip(g.cell_type, g.seed, strict=True))
        base = ref.loc["Additive"].reindex(runs).mean()
        ceil = ref.loc["replicate"].reindex(runs).mean()
        med = gaps[(gaps.variant == variant) & (gaps.tau == tau)][list(METRICS)].median()
        row = {"variant": variant, "tau": tau}
        for m in METRICS:
            pooled = (g[m].mean() - base[m]) / (ceil[m] - base[m])
            row[m] = f"{pooled:.3f} ({med[m]:.3f})"
        out.append({**row, "runs": len(g)})
    return pd.DataFrame(out)


def markdown(rows: list[dict], note: str = "") -> str:
    """Means over runs (type x seed) per variant and τ, the pools, the gap closed, per type.

    ``note`` (markdown) ends the page.
    """
    from benchmarks.report import md_table, mean_sd

    df = frame(rows)
    if df.empty:  # e.g. an output folder with --baselines rows only
        return "# generator\n\nNo variant has been run here yet.\n"
    has_spread = "spread" in df
    cols = [*METRICS, "distinct"] + (["spread"] if has_spread else [])
    types = ", ".join(dict.fromkeys(df.cell_type))
    seeds = ", ".join(str(s) for s in sorted(df.seed.unique()))
    lines = [
        "# generator: heads, paths and temperature on held-out Kang cell types",
        "",
        f"Held-out types: {types}; seeds {seeds}. One model per (held-out type, variant, "
        "seed), trained with `train()`'s defaults on all cells but the type's IFN-beta cells; "
        "500 cells generated from the type's control cells and scored against the real "
        "held-out cells: R² (squared Pearson) on the top-100 DE genes (higher is better); "
        "E-distance, MMD and W2 in the model's 50-d PCA space (lower is better); distinct = "
        "distinct generated cells"
        + (
            "; spread = RMS distance of the generated cells to their mean in PCA"
            if has_spread
            else ""
        )
        + ". `default` is the constructor's defaults when the row was run (until 2026-12-03 the "
        "deterministic head from cells, since then the flow head on the bottleneck mean, "
        '`head_mean="bottleneck"`); other variants name the keywords they change (rows run '
        "before that date with `head=flow` or `head=gmm` have the MLP mean). Sampling heads "
        "are scored at every τ. `default_tau` is the model's τ after `train()`: 1 from cells "
        "in rows run before the evening of 2026-12-03, since then the τ `train()` chooses "
        "from the validation cells (MMD); the sections on `calibrate_temperature` and on "
        "the τ `train()` chooses below give the held-out scores there for every row with a "
        "validation-cell record.",
        "",
        "## Mean ± sd over runs (held-out type x seed), per variant and τ",
        "",
        md_table(mean_sd(df.sort_values(["variant", "tau"]), ["variant", "tau"], cols)),
    ]
    common = common_runs(df)
    if len(common) < len(df):
        lines += [
            "",
            "## The same, on the runs every variant has",
            "",
            "Variants were run on different held-out types and seeds; here only the (type, "
            "seed) pairs that every variant run 3 or more times has "
            f"({len(common.groupby(['cell_type', 'seed']))}).",
            "",
            md_table(mean_sd(common.sort_values(["variant", "tau"]), ["variant", "tau"], cols)),
        ]
    refs = reference_frame(rows)
    refs = refs[refs.method.isin(REFERENCES)] if not refs.empty else refs
    if not refs.empty:
        gaps = gap_closed(df, refs)
        lines += [
            "",
            "## Fraction of the gap from Additive (0) to the split-half replicate (1) closed",
            "",
            "Per run, (method − Additive) / (replicate − Additive) for each metric, then "
            "mean ± sd over runs. Additive and the replicate, scored the same way:",
            "",
            md_table(mean_sd(refs, ["method"], list(METRICS))),
            "",
            md_table(
                mean_sd(gaps.sort_values(["variant", "tau"]), ["variant", "tau"], list(METRICS))
            ),
            "",
            "A per-run fraction is unstable where the replicate's score is close to "
            "Additive's (MMD on some types: two halves of 25-280 cells have a high MMD of "
            "their own), so the mean above can exceed 1 with a large sd. Steadier: the "
            "fraction of the mean gap, (mean method − mean Additive) / (mean replicate − "
            "mean Additive) over the same runs, and in brackets the median of the per-run "
            "fractions:",
            "",
            md_table(pooled_gap(df, refs)),
        ]
    pools = pool_frame(rows)
    if not pools.empty:
        lines += [
            "",
            "## 500 cells from 40 control cells",
            "",
            "Four random sets of 40 of the held-out type's control cells (`source_cells=`), "
            "500 cells each at the variant's default τ (`repeat`; runs since 2026-12-03 also at "
            "each other τ, `repeat τ=...`): the deterministic head repeats its 40 "
            "cells (`oversample='repeat'`), interpolates between controls "
            "(`'interpolate'`) or starts from a smoothed bootstrap of them that keeps their "
            "mean and covariance (`'smooth'`, runs since 2026-12-02); a sampling head draws a "
            "new cell each time a control is reused. Means over the four sets, then mean ± sd "
            "over runs.",
            "",
            md_table(mean_sd(pools, ["variant", "mode"], [*METRICS, "distinct"])),
        ]
    lines += calibration_section(rows) + trained_section(rows) + baselines_section(rows)
    lines += extra_metrics_section(rows) + steps_section(rows)
    at_default = at_default_tau(rows, df)
    lines += [
        "",
        "## Per held-out type at the variant's default τ (mean ± sd over seeds)",
        "",
        "Runs with a validation-cell record: at the τ `train()` chooses (previous section).",
        "",
        md_table(mean_sd(at_default, ["cell_type", "variant"], [*METRICS, "train_s"])),
        "",
        note,
    ]
    return "\n".join(lines)


def calibration_section(rows: list[dict]) -> list[str]:
    """The page's lines on the τ ``calibrate_temperature`` chose (none without records)."""
    from benchmarks.report import md_table, mean_sd

    cal = calibration_frame(rows)
    if cal.empty:
        return []
    by = ["variant", "reference", "grid", "chosen_by"]
    cols = [*METRICS, "spread", *(f"delta_{m}" for m in METRICS)]
    chosen = cal.groupby(by)["tau"].apply(
        lambda t: ", ".join(f"{k:g}: {n}" for k, n in sorted(t.value_counts().items()))
    )
    table = mean_sd(cal, by, cols).merge(chosen.rename("τ chosen (times)").reset_index(), on=by)
    return [
        "",
        "## The τ `calibrate_temperature` chooses, and the held-out cells there",
        "",
        "Per run, the τ of `--taus` that `calibrate_temperature` chose on cells of the seen "
        "conditions (`train()`'s validation cells, `model.validation_indices`; older rows: a "
        "re-drawn 10 % sample, mostly cells the model trained on) with each metric, and the "
        "held-out cells' scores at that τ; `delta_`: minus the scores at τ = 1 (below "
        "0 is better for E-distance, MMD and W2, above 0 for R²); `grid`: the τ it chose "
        "from (`train()` chooses from 0.25 ... 1.5).",
        "",
        md_table(table),
    ]


def trained_section(rows: list[dict]) -> list[str]:
    """The page's lines on the held-out scores at the τ ``train()`` chooses, per seed."""
    from benchmarks.report import md_table, mean_sd

    df = trained_frame(rows)
    if df.empty:
        return []
    cols = [*METRICS, "spread", "spread / real"]
    by = ["variant", "at"]
    per_seed = df.groupby([*by, "seed"], as_index=False)[cols].mean()
    chosen = (
        df[df["at"] == "chosen by train()"]
        .groupby("variant")
        .tau.apply(
            lambda t: ", ".join(f"{k:g} in {n} runs" for k, n in sorted(t.value_counts().items()))
        )
    )
    return [
        "",
        "## The τ `train()` chooses: held-out scores per seed",
        "",
        "The runs with a validation-cell record, per variant, at the τ `train()` chooses "
        "(MMD on its validation cells, grid up to 1.5; read from the record in rows run "
        "before `train()` chose it: `trained_tau`) and at τ = 1. Chosen: "
        + "; ".join(f"{v}: {c}" for v, c in chosen.items())
        + ". `spread / real`: the generated cells' spread over the real held-out cells' "
        "(1 is right; rows run since 2026-12-04 record `real_spread`). Per seed, the mean "
        "over held-out types; then mean ± sd over the seeds' means, and over all runs.",
        "",
        md_table(per_seed.sort_values([*by, "seed"]).round(4)),
        "",
        md_table(mean_sd(per_seed, by, cols, count="seeds")),
        "",
        md_table(mean_sd(df, by, cols)),
    ]


def at_default_tau(rows: list[dict], df: pd.DataFrame | None = None) -> pd.DataFrame:
    """The rows of :func:`frame` (or ``df``) at each run's default τ.

    Runs with a validation-cell record: the τ ``train()`` chooses (:func:`trained_tau`);
    others (e.g. the deterministic head): the model's τ after training (``default_tau``).
    """
    df = frame(rows) if df is None else df
    chosen = {(r["variant"], r["cell_type"], r["seed"]): trained_tau(r) for r in rows}
    runs = zip(df.variant, df.cell_type, df.seed, df.default_tau, strict=True)
    at_tau = np.array(
        [k[3] if chosen.get(k[:3]) is None else chosen[k[:3]] for k in runs], dtype=float
    )
    return df[np.isclose(df.tau, at_tau) | np.isnan(at_tau)]


def baselines_frame(rows: list[dict]) -> pd.DataFrame:
    """Per (method, cell type, seed): the baselines of ``--baselines`` runs and CaLMFlow.

    CaLMFlow: every variant with a run on each (type, seed) pair of the baseline rows, at
    its default τ (:func:`at_default_tau`), on those pairs only.
    """
    base = reference_frame([r for r in rows if r["variant"] == BASELINES])
    if base.empty:
        return base
    pairs = set(zip(base.cell_type, base.seed, strict=True))
    calm = at_default_tau(rows)
    keep = [(c, s) in pairs for c, s in zip(calm.cell_type, calm.seed, strict=True)]
    calm = calm[keep]
    full = calm.groupby("variant").size().loc[lambda n: n == len(pairs)].index
    calm = calm[calm.variant.isin(full)].assign(method=lambda d: "CaLMFlow: " + d.variant)
    cols = ["method", "cell_type", "seed", *METRICS]
    return pd.concat([calm[cols], base[cols]], ignore_index=True)


def baselines_section(rows: list[dict]) -> list[str]:
    """The page's lines on CaLMFlow against kang-loo's baselines on the same coordinates."""
    from benchmarks.report import md_table, mean_sd

    df = baselines_frame(rows)
    if df.empty:
        return []
    per_seed = df.groupby(["method", "seed"], as_index=False, sort=False)[list(METRICS)].mean()
    cfm = per_seed[per_seed.method.str.startswith("CFM-")]
    ratios = []
    for method in per_seed.method[per_seed.method.str.startswith("CaLMFlow")].unique():
        for (seed, fitted), g in cfm.groupby(["seed", cfm.method.str.endswith(", cross-fitted")]):
            best = g[list(METRICS)].min().copy()
            best["r2_pearson_top_de"] = g["r2_pearson_top_de"].max()
            mine = per_seed[(per_seed.method == method) & (per_seed.seed == seed)]
            row = {"method": method, "seed": seed}
            row["CFMs' coordinates"] = "cross-fitted" if fitted else "in-sample"
            ratios.append({**row, **(mine[list(METRICS)].iloc[0] / best).round(3).to_dict()})
    n_pairs = len(df.groupby(["cell_type", "seed"]))
    folds = sorted({r["pca_folds"] for r in rows if r["variant"] == BASELINES})
    return [
        "",
        "## CaLMFlow against kang-loo's baselines on the same coordinates",
        "",
        f"`--baselines {folds[0]}` runs (no CaLMFlow model, `run_baselines`): kang-loo's "
        "baselines with its full CFM budget on the same splits and seeds, trained on in-sample "
        f"PCA coordinates and on coordinates cross-fitted with `pca_folds={folds[0]}` as the "
        "default model's (`, cross-fitted`); CaLMFlow: the variants run on all "
        f"{n_pairs} (type, seed) pairs, at the τ `train()` chooses (sampling heads) or their "
        "own (the deterministic head). Every fit and score is "
        "seeded, so the baselines' rows are the same in any run of the same split and seed. "
        "Per seed the mean over held-out types, then mean ± sd over seeds:",
        "",
        md_table(mean_sd(per_seed, ["method"], list(METRICS), count="seeds")),
        "",
        "CaLMFlow / the best CFM of the same seed and coordinates, per metric (R²: above 1 "
        "is better; the distances: below 1):",
        "",
        md_table(pd.DataFrame(ratios)),
    ]


def extra_metrics_section(rows: list[dict]) -> list[str]:
    """The page's lines on :data:`EXTRA_METRICS`, for the runs that recorded them."""
    from benchmarks.report import md_table, mean_sd

    extra = list(EXTRA_METRICS)
    df, pools = frame(rows), pool_frame(rows)
    if not set(extra) <= set(df.columns):
        return []
    df = df.dropna(subset=extra)
    cols = [*METRICS, *extra, "spread"]
    lines = [
        "",
        "## The W2 between fitted Gaussians, where recorded",
        "",
        "Runs since 2026-12-04 also score `w2_gaussian` (`sccalmflow.metrics.gaussian_w2`: "
        "the W2 between Gaussians fitted to the generated and the real held-out cells in "
        "PCA, means and covariances). Unlike the empirical W2 it does not fall when a set "
        "is narrower than the real cells (`metric_spread.md`). Per variant and τ, mean ± sd "
        "over the runs that have it:",
        "",
        md_table(mean_sd(df.sort_values(["variant", "tau"]), ["variant", "tau"], cols)),
    ]
    if not pools.empty and set(extra) <= set(pools.columns):
        pools = pools.dropna(subset=extra)
        lines += [
            "",
            "500 cells from 40 control cells (as above), the same runs:",
            "",
            md_table(mean_sd(pools, ["variant", "mode"], [*METRICS, *extra, "spread"])),
        ]
    return lines


def steps_section(rows: list[dict]) -> list[str]:
    """The page's lines on the flow head's integration steps (none without records)."""
    from benchmarks.report import md_table, mean_sd

    steps = steps_frame(rows)
    if steps.empty:
        return []
    return [
        "",
        "## The flow head's integration steps",
        "",
        "The default model's 500 cells at the default τ, generated again with the head's "
        "midpoint steps set to each count after training (same seed); `gen_s`: seconds to "
        "generate the 500 cells (one torch thread, two runs sharing the machine).",
        "",
        md_table(mean_sd(steps.sort_values("n_steps"), ["n_steps"], [*METRICS, "spread", "gen_s"])),
    ]


def main(argv: list[str] | None = None) -> pd.DataFrame:
    """Run the variants (appending to ``generator.jsonl``) and write ``generator.md``.

    ``generator_notes.md`` in the output folder, when present, ends the page.
    """
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--cell-types", nargs="+", default=["B", "CD14 Mono"])
    add_run_arguments(parser, list(VARIANTS), RESULTS)
    parser.add_argument("--taus", nargs="+", type=float, default=[0.0, 0.25, 0.5, 0.75, 1.0])
    parser.add_argument("--n-cells", type=int, default=500)
    parser.add_argument("--max-epochs", type=int, default=None, help="default: train()'s")
    parser.add_argument(
        "--head-steps", nargs="+", type=int, default=[],
        help="also generate with the flow head's integration steps set to each of these",
    )  # fmt: skip
    parser.add_argument(
        "--pool", action=argparse.BooleanOptionalAction, default=True,
        help="score the 500-from-40-controls pools (default: yes)",
    )  # fmt: skip
    parser.add_argument(
        "--baselines", type=int, default=None, metavar="PCA_FOLDS",
        help="instead of the variants: kang-loo's baselines, in-sample and cross-fitted with "
        "this many folds (no CaLMFlow model; run_baselines)",
    )  # fmt: skip
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "generator.jsonl"
    if not args.report_only:
        import sccalmflow as scf

        adata = scf.datasets.kang2018()
        variants = [BASELINES] if args.baselines else args.variants
        items = [(ct, v) for ct in args.cell_types for v in variants]

        def run(item, seed):
            ct, variant = item
            if variant == BASELINES:
                return [run_baselines(adata, ct, seed, args.n_cells, args.baselines)]
            extra = {"head_steps": args.head_steps, "pool": args.pool}
            return [
                run_one(adata, ct, seed, variant, args.taus, args.n_cells, args.max_epochs, **extra)
            ]

        run_jsonl(jsonl, args.seeds, items, run)
    rows = read_jsonl(jsonl)
    notes = args.out / "generator_notes.md"  # hand-written findings, appended when present
    (args.out / "generator.md").write_text(
        markdown(rows, notes.read_text() if notes.exists() else "")
    )
    return frame(rows)


if __name__ == "__main__":
    main()
