"""``kang-loo``: held-out IFN-beta cell types of Kang 2018, CaLMFlow against the baselines.

Every Kang cell type with >= 40 IFN-beta cells is held out in turn (its IFN-beta cells);
CaLMFlow with the model's defaults, Control, Additive, TrainMean and CFM (icfm / otcfm /
sbcfm) are trained on the rest and predict the held-out cells; R² (both conventions) on all
genes and on the top-100 DE genes, Pearson delta, E-distance, MMD and W2 in the shared 50-d
PCA space.
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
    baselines = fit_kang_baselines(split.train, setup, notes.n_pca, cfg.cfm, seed)
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

    Returns PC1/PC2 of the drawn methods' cells, the real IFN-beta and the control cells.
    """
    from sccalmflow import metrics
    from sccalmflow.data import PCA_KEY

    ct, real = split.cell_type, split.real
    # fitted[0]: CaLMFlow; its projection (and fingerprint) next to any scanpy X_pca;
    # evaluate refuses a method whose PCA differs from it
    fitted[0].obj.add_pca(real)
    points: dict[str, np.ndarray] = {}
    for f in fitted:
        pred, gen_s = predict_timed(f.obj, split.condition, n_gen, seed)
        res = metrics.evaluate(
            pred,
            real,
            control=setup["control"],
            condition_keys=setup["condition_keys"],
            space=("pca",),
            metrics=EVAL_METRICS,
            top_de={(ct, "IFN-beta"): list(split.de_genes)},
            seed=seed,
        )
        values = {
            (m, "top100_de" if s == "top_de" else s): v
            for m, s, v in res[["metric", "space", "value"]].itertuples(index=False)
        }
        cost = dict(train_s=f.train_s, gen_s=gen_s, n_gen=pred.n_obs, nfe=f.nfe)
        rec.add(Measurement(ct, f.name, values, setting=f.setting, **cost))
        if f.name in DRAWN:
            points[f.name] = np.asarray(pred.obsm[PCA_KEY][:, :2])
    ctrl = split.control_mask
    points["real IFN-beta"] = real.obsm[PCA_KEY][~ctrl, :2]
    points["control"] = real.obsm[PCA_KEY][ctrl, :2]
    return points


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


def goal_line(summary: pd.DataFrame) -> str:
    """Does CaLMFlow's mean top-100-DE R² beat Control, TrainMean and every CFM?"""
    mean_top = summary.set_index("Method")[GOAL_COLUMN]
    if "CaLMFlow" not in mean_top:
        return ""
    candidates = ("Control", "TrainMean", *[f"CFM-{v}" for v in CFM_VARIANTS])
    others = [m for m in candidates if m in mean_top]
    beaten = [m for m in others if mean_top["CaLMFlow"] > mean_top[m]]
    lost = [m for m in others if m not in beaten]
    return (
        f"**Goal (mean top-100-DE R² above Control, TrainMean and every CFM):** CaLMFlow "
        f"{mean_top['CaLMFlow']:.3f}; beats {', '.join(beaten) or 'none'}"
        + (f"; does not beat {', '.join(lost)}" if lost else " — met")
        + f". Additive: {mean_top.get('Additive', float('nan')):.3f}."
    )


def setup_lines(cfg: KangLooConfig, notes: KangLooNotes) -> list[str]:
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
        "scores; real cells projected with `model.add_pca`, fingerprints checked).",
        "- **Metrics** (`sccalmflow.metrics.evaluate`): R² = squared Pearson of mean "
        "expression (scGen) and sklearn `r2_score` of the means (CPA / CellFlow); top-100 DE "
        "genes = Wilcoxon, held-out type's real IFN-beta vs its control cells; Pearson Δ = "
        "correlation of (mean − control mean); E-distance (Euclidean, pertpy), MMD (RBF, "
        "CellFlow's bandwidths), exact W2 (POT).",
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
    methods = [m for m in KANG_ORDER if m in set(df.method)]
    summary = summary_table(df, methods, cfg.n_gen)
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
        goal_line(summary),
        "",
        "## R² (Pearson², scGen's convention) on the top-100 DE genes, per held-out type",
        "",
        md_table(per_type_table(df, methods, notes.counts)),
        "",
        "## Setup",
        "",
        *setup_lines(cfg, notes),
    ]
    return "\n".join(lines + speed_section([speed, notes.speed_big], runtime, result.figures))
