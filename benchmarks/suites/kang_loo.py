"""``kang-loo``: held-out IFN-beta cell types of Kang 2018, CaLMFlow against the baselines.

Every Kang cell type with >= 40 IFN-beta cells is held out in turn (its IFN-beta cells);
CaLMFlow with the model's defaults, Control, Additive, TrainMean and CFM (icfm / otcfm /
sbcfm) are trained on the rest and predict the held-out cells; R² (both conventions) on all
genes and on the top-100 DE genes, Pearson delta, E-distance, MMD and W2 in the shared 50-d
PCA space. A split-half replicate of the real held-out cells (half A scored against half B)
is the ceiling; each method's score is also reported as the fraction of the gap from
Additive (0) to the replicate (1) it closes.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .. import figures
from ..config import CFM_VARIANTS, KangLooConfig
from ..figures import KANG_ORDER
from ..methods import (
    Fitted,
    calmflow_defaults,
    epochs,
    fit_calmflow,
    fit_kang_baselines,
    predict_timed,
    train_defaults,
)
from ..records import Measurement, Recorder, SuiteResult
from ..report import md_table, mode_tag, speed_line, speed_section
from ..tasks import KangSplit, eligible_types, kang_counts, kang_held_out, kang_setup, load_kang

SUITE = "kang-loo"
#: Methods whose generated cells are drawn in the PCA figure.
DRAWN = ("CaLMFlow", "Additive", "CFM-otcfm")
#: The distribution metrics of ``sccalmflow.metrics.evaluate`` (besides the R²s).
EVAL_METRICS = ("mean_expression", "e_distance", "mmd", "w2")
#: A larger generation-speed comparison on the last split's models (when n_gen >= 500).
N_SPEED = 5000
#: The ceiling: half of the real held-out IFN-beta cells scored against the other half.
REPLICATE = "Replicate (half vs half)"
#: The floor of the gap-closed fraction.
BASELINE = "Additive"
#: A gap-closed fraction is NaN where replicate and Additive differ by at most this
#: (relative to the larger magnitude of the two, or absolutely below 1e-12).
GAP_RTOL = 1e-6


@dataclass
class KangLooNotes:
    """What the kang-loo page reports besides the rows."""

    counts: pd.DataFrame  # cells per type x condition
    eligible: list[str]
    types: list[str]  # the held-out types run
    n_pca: int
    model_defaults: dict[str, Any]
    train_defaults: dict[str, Any]
    pca_check: list[tuple[str, str, float]] = field(default_factory=list)  # type, method, diff
    speed_big: str = ""


# ====================================================================== run
def run(cfg: KangLooConfig, out: Path, seed: int) -> SuiteResult:
    """Run the suite; its figures go to ``out``."""
    rec = Recorder(SUITE, seed)
    setup = kang_setup()
    adata = load_kang(cfg.n_genes)
    counts = kang_counts(adata)
    eligible = eligible_types(counts)
    model_defaults = calmflow_defaults()
    notes = KangLooNotes(
        counts=counts,
        eligible=eligible,
        types=[ct for ct in (cfg.cell_types or eligible) if ct in eligible],
        n_pca=cfg.calmflow.get("n_pca", model_defaults["n_pca"]),
        model_defaults=model_defaults,
        train_defaults=train_defaults(),
    )
    if not notes.types:
        raise ValueError(f"none of {cfg.cell_types} has >= 40 IFN-beta cells ({eligible})")
    points: dict[str, dict[str, np.ndarray]] = {}
    for ct in notes.types:
        print(f"[kang-loo] held out: {ct} IFN-beta", flush=True)
        split = kang_held_out(adata, ct)
        fitted = {f.name: f for f in fit_all(split, cfg, setup, notes, seed)}
        points[ct] = score_split(rec, split, list(fitted.values()), cfg.n_gen, setup, seed)
        last = (split, fitted["CaLMFlow"], fitted["CFM-otcfm"])
    notes.speed_big = speed_comparison(*last, cfg, seed)  # on the last split's models
    figs = [figures.kang_loo_r2(rec.frame(), out), figures.kang_loo_pca(points, out)]
    return SuiteResult(rec, figs, notes)


def fit_all(
    split: KangSplit, cfg: KangLooConfig, setup: dict, notes: KangLooNotes, seed: int
) -> list[Fitted]:
    """CaLMFlow, then every baseline, on the split's training cells; checks their PCAs."""
    model, t = fit_calmflow(split.train, setup, cfg.calmflow, cfg.train, seed)
    calm = Fitted("CaLMFlow", model, t, f"defaults, {epochs(model)} epochs")
    folds = getattr(model, "pca_folds", None)  # the baselines train on the model's coordinates
    baselines = fit_kang_baselines(split.train, setup, notes.n_pca, cfg.cfm, seed, folds)
    check_shared_pca(split.cell_type, model.features_, baselines, notes)
    return [calm, *baselines]


def check_shared_pca(ct: str, ref, baselines: list[Fitted], notes: KangLooNotes) -> None:
    """All methods must share the model's PCA (same training cells, n_pca, scaling, seed)."""
    for f in baselines:
        p = f.obj.pca
        diff = max(
            float(np.abs(p.components_ - ref.components_).max()),
            float(np.abs(p.mean_ - ref.mean_).max()),
            float(np.abs(p.scale_ - ref.scale_).max() / ref.scale_.max()),
        )
        notes.pca_check.append((ct, f.name, diff))
        if diff > 1e-4:
            warnings.warn(f"{f.name} PCA differs from CaLMFlow's by {diff:.2e}", stacklevel=1)


def score_split(
    rec: Recorder, split: KangSplit, fitted: list[Fitted], n_gen: int, setup: dict, seed: int
) -> dict[str, np.ndarray]:
    """Predict the held-out cells with every method and record the metrics.

    Then the split-half replicate (:func:`replicate_halves`), scored the same way.
    Returns PC1/PC2 of the drawn methods' cells, the real IFN-beta and the control cells.
    """
    from sccalmflow.data import PCA_KEY

    ct, real = split.cell_type, split.real
    # fitted[0]: CaLMFlow; its projection (and fingerprint) next to any scanpy X_pca;
    # evaluate refuses a method whose PCA differs from it
    fitted[0].obj.add_pca(real)
    points: dict[str, np.ndarray] = {}
    for f in fitted:
        pred, gen_s = predict_timed(f.obj, split.condition, n_gen, seed)
        values = score(pred, real, split, setup, seed)
        cost = dict(train_s=f.train_s, gen_s=gen_s, n_gen=pred.n_obs, nfe=f.nfe)
        rec.add(Measurement(ct, f.name, values, setting=f.setting, **cost))
        if f.name in DRAWN:
            points[f.name] = np.asarray(pred.obsm[PCA_KEY][:, :2])
    half_a, ref = replicate_halves(split, seed)
    n_b = ref.n_obs - int(split.control_mask.sum())
    setting = f"real half A ({half_a.n_obs} cells) vs real half B ({n_b} cells)"
    values = score(half_a, ref, split, setup, seed)
    rec.add(Measurement(ct, REPLICATE, values, setting=setting, n_gen=half_a.n_obs))
    ctrl = split.control_mask
    points["real IFN-beta"] = real.obsm[PCA_KEY][~ctrl, :2]
    points["control"] = real.obsm[PCA_KEY][ctrl, :2]
    return points


def score(
    pred, real, split: KangSplit, setup: dict, seed: int, metrics=EVAL_METRICS
) -> dict[tuple[str, str], float]:
    """``metrics.evaluate`` of ``pred`` against ``real``: ``(metric, space) -> value``.

    The top-DE genes are the split's (``top100_de``), whatever cells ``real`` holds;
    ``metrics``: those of ``evaluate`` to compute (default :data:`EVAL_METRICS`).
    """
    from sccalmflow import metrics as scf_metrics

    res = scf_metrics.evaluate(
        pred,
        real,
        control=setup["control"],
        condition_keys=setup["condition_keys"],
        space=("pca",),
        metrics=metrics,
        top_de={(split.cell_type, "IFN-beta"): list(split.de_genes)},
        seed=seed,
    )
    return {
        (m, "top100_de" if s == "top_de" else s): v
        for m, s, v in res[["metric", "space", "value"]].itertuples(index=False)
    }


def replicate_halves(split: KangSplit, seed: int):
    """Half A of the real held-out IFN-beta cells, and the real cells with only half B.

    The type's IFN-beta cells are permuted with ``numpy.random.default_rng(seed)``; the
    first ``n // 2`` are half A (scored as if a method had predicted them), the rest half B.
    The second object keeps all the type's control cells (the delta metrics' reference).
    Both are slices of ``split.real``, so they carry its PCA projection and fingerprint
    (``add_pca`` must have run on it).
    """
    real, ctrl = split.real, split.control_mask
    perm = np.random.default_rng(seed).permutation(np.flatnonzero(~ctrl))
    a, b = np.sort(perm[: len(perm) // 2]), perm[len(perm) // 2 :]
    keep = np.sort(np.concatenate([np.flatnonzero(ctrl), b]))
    return real[a].copy(), real[keep].copy()


def speed_comparison(
    split: KangSplit, calm: Fitted, cfm: Fitted, cfg: KangLooConfig, seed: int
) -> str:
    """CaLMFlow vs CFM-otcfm generating more cells (``N_SPEED`` in full / quick runs)."""
    n_speed = N_SPEED if cfg.n_gen >= 500 else cfg.n_gen
    _, tc = predict_timed(calm.obj, split.condition, n_speed, seed + 1)
    _, tf = predict_timed(cfm.obj, split.condition, n_speed, seed + 1)
    speed = (
        f"Generation speed on {n_speed:,} cells ({split.cell_type} IFN-beta): CaLMFlow "
        f"{tc:.2f} s ({n_speed / tc:,.0f} cells/s) vs CFM-otcfm dopri5 {tf:.2f} s (NFE "
        f"{cfm.obj.nfe_}) -> ratio {tf / tc:.2f} (> 1: CaLMFlow faster)"
    )
    print(speed, flush=True)
    return speed


# ====================================================================== markdown
#: (metric, space, column label) of the summary table.
SUMMARY_COLUMNS = [
    ("r2_pearson", "top100_de", "R² top-100 DE (Pearson²)"),
    ("r2_sklearn", "top100_de", "R² top-100 DE (sklearn)"),
    ("r2_pearson", "genes", "R² all genes (Pearson²)"),
    ("r2_sklearn", "genes", "R² all genes (sklearn)"),
    ("pearson_delta", "genes", "Pearson Δ (all genes)"),
    ("pearson_delta", "top100_de", "Pearson Δ (top-100 DE)"),
    ("e_distance", "pca", "E-distance (PCA)"),
    ("mmd", "pca", "MMD (PCA)"),
    ("w2", "pca", "W2 (PCA)"),
]
GOAL_COLUMN = "R² top-100 DE (Pearson²)"


def summary_table(df: pd.DataFrame, methods: list[str], n_gen: int) -> pd.DataFrame:
    """Mean over held-out types of every metric, with the mean costs."""
    first = df.drop_duplicates(["split", "method"])
    rows = []
    for m in methods:
        row: dict[str, Any] = {"Method": m}
        for metric, space, label in SUMMARY_COLUMNS:
            v = df[(df.method == m) & (df.metric == metric) & (df.space == space)].value
            row[label] = v.mean()
        t = first[first.method == m]
        row["train s (mean)"] = t.train_seconds.mean()
        row[f"gen s ({n_gen} cells)"] = t.generate_seconds.mean()
        row["NFE"] = t.nfe.mean()
        rows.append(row)
    return pd.DataFrame(rows)


def per_type_table(df: pd.DataFrame, methods: list[str], counts: pd.DataFrame) -> pd.DataFrame:
    """Top-100-DE R² (Pearson²) per held-out type, with the type's cell counts."""
    per = (
        df[(df.metric == "r2_pearson") & (df.space == "top100_de")]
        .pivot_table(index="split", columns="method", values="value", sort=False)[methods]
        .reset_index()
        .rename(columns={"split": "held-out type"})
    )
    per.insert(
        1,
        "n IFN / ctrl",
        [f"{counts.loc[t, 'IFN-beta']}/{counts.loc[t, 'control']}" for t in per["held-out type"]],
    )
    return per


def gap_fractions(df: pd.DataFrame) -> pd.DataFrame:
    """Per held-out type, method and summary column, the fraction of the gap closed.

    ``(score - score_Additive) / (score_Replicate - score_Additive)``: 0 = Additive,
    1 = the split-half replicate, for "higher is better" (R²) and "lower is better"
    (E-distance, MMD, W2) metrics alike (the sign cancels). NaN where replicate and Additive
    are equal within ``GAP_RTOL`` (or either is missing). Columns: ``split``, ``method``
    (all but Additive and the replicate) and one per label of ``SUMMARY_COLUMNS``.
    """
    labels = {(metric, space): label for metric, space, label in SUMMARY_COLUMNS}
    cols = list(labels.values())
    label = [labels.get(k) for k in zip(df.metric, df.space)]
    wide = (
        df.assign(label=label)
        .dropna(subset=["label"])
        .set_index(["split", "method", "label"])
        .value.unstack("label")
        .reindex(columns=cols)
    )
    rows = []
    for split, method in wide.index:
        if method in (BASELINE, REPLICATE):
            continue
        missing = pd.Series(np.nan, index=cols)
        base = wide.loc[(split, BASELINE)] if (split, BASELINE) in wide.index else missing
        ceil = wide.loc[(split, REPLICATE)] if (split, REPLICATE) in wide.index else missing
        den = ceil - base
        tol = np.maximum(GAP_RTOL * np.maximum(base.abs(), ceil.abs()), 1e-12)
        frac = (wide.loc[(split, method)] - base) / den.where(den.abs() > tol)
        rows.append({"split": split, "method": method, **frac.to_dict()})
    return pd.DataFrame(rows, columns=["split", "method", *cols])


def gap_table(fractions: pd.DataFrame, methods: list[str]) -> pd.DataFrame:
    """``mean (median)`` over held-out types of :func:`gap_fractions`, NaNs left out."""
    labels = [c[2] for c in SUMMARY_COLUMNS]
    rows = []
    for m in methods:
        sel = fractions[fractions.method == m]
        if sel.empty:
            continue
        row: dict[str, Any] = {"Method": m}
        for label in labels:
            v = sel[label].dropna()
            row[label] = f"{v.mean():.2f} ({v.median():.2f})" if len(v) else "–"
        rows.append(row)
    return pd.DataFrame(rows, columns=["Method", *labels])


def gap_section(fractions: pd.DataFrame, methods: list[str]) -> list[str]:
    """The page's gap-closed section: one explanation line, the table, the NaN note."""
    labels = [c[2] for c in SUMMARY_COLUMNS]
    n_nan = int(fractions[labels].isna().to_numpy().sum())
    lines = [
        "## Fraction of the gap from Additive (0) to the replicate (1) closed",
        "",
        "Each method's score relative to a simple baseline and a split-half replicate of the "
        "real cells (the field's newest evaluation practice, cf. cell-eval's `--ceiling`): "
        "(score − Additive) / (replicate − Additive) per held-out type and metric — 0 = as "
        "good as Additive, 1 = as good as the replicate, > 1 beyond it, < 0 below Additive; "
        "the same for higher-is-better (R²) and lower-is-better (E-distance, MMD, W2) "
        "metrics. Cells: mean (median) over held-out types.",
        "",
        md_table(gap_table(fractions, methods)),
    ]
    if n_nan:
        lines += [
            "",
            f"{n_nan} per-type fraction(s) are NaN (replicate and Additive equal within a "
            f"relative {GAP_RTOL:g}, so no gap to close, or a score missing) and are left "
            "out of the mean and "
            'median; "–" where every type\'s is NaN.',
        ]
    return lines


def goal_line(summary: pd.DataFrame, fractions: pd.DataFrame | None = None) -> str:
    """Does CaLMFlow's mean top-100-DE R² beat Control, TrainMean and every CFM?

    With ``fractions`` (:func:`gap_fractions`), also CaLMFlow's mean gap-closed fraction
    on that R².
    """
    mean_top = summary.set_index("Method")[GOAL_COLUMN]
    if "CaLMFlow" not in mean_top:
        return ""
    candidates = ("Control", "TrainMean", *[f"CFM-{v}" for v in CFM_VARIANTS])
    others = [m for m in candidates if m in mean_top]
    beaten = [m for m in others if mean_top["CaLMFlow"] > mean_top[m]]
    lost = [m for m in others if m not in beaten]
    gap = ""
    if fractions is not None and REPLICATE in mean_top:
        frac = fractions.loc[fractions.method == "CaLMFlow", GOAL_COLUMN].mean()
        gap = (
            f" Replicate: {mean_top[REPLICATE]:.3f}; CaLMFlow closes {frac:.2f} of the gap "
            f"from Additive (0) to the replicate (1) on this R² (mean over held-out types)."
        )
    return (
        f"**Goal (mean top-100-DE R² above Control, TrainMean and every CFM):** CaLMFlow "
        f"{mean_top['CaLMFlow']:.3f}; beats {', '.join(beaten) or 'none'}"
        + (f"; does not beat {', '.join(lost)}" if lost else " — met")
        + f". Additive: {mean_top.get('Additive', float('nan')):.3f}."
        + gap
    )


def setup_lines(cfg: KangLooConfig, notes: KangLooNotes, seed: int) -> list[str]:
    """The ``## Setup`` bullets: every method's configuration, the PCA check, the metrics."""
    md_def, c = notes.model_defaults, cfg.cfm
    pca_diff = max((d for *_, d in notes.pca_check), default=float("nan"))
    return [
        "- **CaLMFlow**: `CaLMFlowModel(train)` with the constructor's defaults, read at run time: "
        + ", ".join(f"`{k}={v!r}`" for k, v in md_def.items() if k != "backbone_config")
        + (f"; overrides in this mode: `{cfg.calmflow}`" if cfg.calmflow else "")
        + "; `train()` with its defaults"
        + (f" except `{cfg.train}`" if cfg.train else "")
        + " (default `max_epochs`: about 2,000 optimiser steps, batch 128, 10 % validation).",
        "- **Control / Additive / TrainMean**: `sccalmflow.baselines`, resampled control "
        "cells of the held-out type (+ shift).",
        f"- **CFM** (icfm / otcfm / sbcfm, torchcfm, from N(0, I), dopri5 atol = rtol = 1e-4): "
        f"{c.mlp('×')} SELU MLP, {c.n_steps} Adam steps of {c.batch_size} "
        f"cells, lr {c.lr} — a budget for 1 CPU thread; the paper used 4×1024.",
        f"- **Shared PCA**: every method fits `PCAFeatures({notes.n_pca}, "
        f"'{md_def['pca_scaling']}')` on the same training cells with the same seed; the largest "
        f"difference to CaLMFlow's PCA (components, mean, relative scale) over all methods and "
        f"splits is {pca_diff:.1e}, so E-distance / MMD / W2 are in one space (unscaled PCA "
        "scores; real cells projected with `model.add_pca`, fingerprints checked). The "
        "baselines train on the model's coordinates of the training cells: cross-fitted "
        f"with `pca_folds={md_def.get('pca_folds')!r}` as CaLMFlow's (runs before 2026-12-04 "
        "trained every method on in-sample coordinates).",
        "- **Metrics** (`sccalmflow.metrics.evaluate`): R² = squared Pearson of mean "
        "expression (scGen) and sklearn `r2_score` of the means (CPA / CellFlow); top-100 DE "
        "genes = Wilcoxon, held-out type's real IFN-beta vs its control cells; Pearson Δ = "
        "correlation of (mean − control mean); E-distance (Euclidean, pertpy), MMD (RBF, "
        "CellFlow's bandwidths), exact W2 (POT).",
        f"- **{REPLICATE}**: the ceiling (cell-eval's `--ceiling` idea). The held-out type's "
        "real IFN-beta cells are permuted with `numpy.random.default_rng(seed)` (the run's "
        f"seed, {seed}, the same for every type) and split in two halves; half A is scored "
        "like a method's prediction with the same `evaluate` call against the real cells "
        "holding only half B (the type's control cells and its top-100 DE genes unchanged). "
        "So its distribution metrics (E-distance, MMD, W2) are at half the sample size on "
        "both sides, against up to the full held-out cells for the methods; no training or "
        "generation time.",
        "- **Paper numbers**: the paper's perturbation tables (4, 5) are for another data set "
        "(Dong et al. 2023) and their numbers were lost in the text extraction, so there is "
        "nothing to put beside these. A small pilot on the same Kang splits (METHOD.md) had "
        "top-100-DE R² B / CD14 Mono: Additive 0.904 / 0.656, OT-CFM (1,500 steps) "
        "0.814 / 0.811.",
    ]


def markdown(result: SuiteResult, cfg: KangLooConfig, mode: str, runtime: float) -> str:
    """The suite's results page (markdown)."""
    notes: KangLooNotes = result.notes
    df = result.frame()
    methods = [m for m in [*KANG_ORDER, REPLICATE] if m in set(df.method)]
    summary = summary_table(df, methods, cfg.n_gen)
    fractions = gap_fractions(df)
    speed = speed_line(result.recorder, "CaLMFlow")
    lines = [
        f"# kang-loo: held-out IFN-beta cell types (Kang 2018){mode_tag(mode)}",
        "",
        f"For each cell type with ≥ 40 IFN-beta cells ({len(notes.eligible)}: "
        f"{', '.join(notes.eligible)}), its IFN-beta cells are held out, every method is "
        f"trained on all other cells (both conditions of all other types, and the held-out "
        f"type's control cells), and {cfg.n_gen} cells are generated for the held-out "
        f"condition. Split(s) run here: {', '.join(notes.types)}. Seed {result.recorder.seed}.",
        "",
        "## Mean over held-out cell types",
        "",
        md_table(summary),
        "",
        goal_line(summary, fractions),
        "",
        *gap_section(fractions, [m for m in methods if m not in (BASELINE, REPLICATE)]),
        "",
        "## R² (Pearson², scGen's convention) on the top-100 DE genes, per held-out type",
        "",
        md_table(per_type_table(df, methods, notes.counts)),
        "",
        "## Setup",
        "",
        *setup_lines(cfg, notes, result.recorder.seed),
    ]
    return "\n".join(lines + speed_section([speed, notes.speed_big], runtime, result.figures))
