"""``gaussians``: 2 -> 3 and 2 -> 4 Gaussians in 100 dimensions (paper Table 2).

W2 and MMD of CaLMFlow with 1 and 8 trajectories (from the source points) vs the CFM
variants (from noise), beside the paper's numbers.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from .. import figures
from ..config import CFM_VARIANTS, PAPER_GAUSSIANS, PAPER_SYNTHETIC_ARCH, GaussiansConfig
from ..methods import (
    EQUAL_BUDGET,
    budget,
    fit_toy_calmflow,
    fit_toy_cfm,
    predict_toy_calmflow,
    predict_toy_cfm,
    toy_cfm_setting,
)
from ..records import Measurement, Recorder, SuiteResult
from ..report import md_table, mode_tag, speed_line, speed_section
from ..tasks import GAUSS_RADIUS, GAUSS_SD, ToySample, gaussians_sample, toy_metrics

SUITE = "gaussians"
REFERENCE = "Reference (fresh target sample)"
#: The paper's "CFM" row is put beside this variant.
PAPER_CFM = "CFM-icfm"
#: Goal: best CaLMFlow W2 at most this fraction of the best CFM W2.
GOAL_RATIO = 0.5


# ====================================================================== run
def run(cfg: GaussiansConfig, out: Path, seed: int) -> SuiteResult:
    """Run the suite; its figures go to ``out``."""
    rec = Recorder(SUITE, seed)
    fig_pts: dict[str, dict[str, np.ndarray]] = {}
    for k in cfg.modes:
        split = f"2->{k}"
        task = gaussians_sample(cfg.dim, k, cfg.n_train, cfg.n_eval, seed)
        floor = toy_metrics(task.fresh, task.ref, seed)
        rec.add(
            Measurement(split, REFERENCE, floor, setting="sampling floor", n_gen=len(task.fresh))
        )
        pts = {"target (real)": task.ref, "source": task.source[: cfg.n_eval]}
        pts |= run_calmflow(rec, split, task, cfg, seed)
        pts |= run_cfm(rec, split, task, cfg, seed)
        fig_pts[split] = pts
    # figure: the first task projected on the plane of its two leading target PCs
    split = next(iter(fig_pts))
    fig = figures.gaussians_samples(split, cfg.dim, fig_pts[split], out)
    return SuiteResult(rec, [fig])


def run_calmflow(
    rec: Recorder, split: str, task: ToySample, cfg: GaussiansConfig, seed: int
) -> dict[str, np.ndarray]:
    """CaLMFlow with each number of trajectories; returns the generated points by name."""
    pts = {}
    for n_traj in cfg.trajectories:
        name = f"CaLMFlow ({n_traj} traj.)"
        print(f"[gaussians] {split} {name}", flush=True)
        model, t = fit_toy_calmflow(
            task.source,
            task.target,
            {"n_trajectories": n_traj, **cfg.calmflow},
            {"validation_size": 0.0, **cfg.train},
            seed,
        )
        g, gs = predict_toy_calmflow(model, cfg.n_eval, seed)
        setting = f"N={n_traj}, {budget(model)}"
        values = toy_metrics(g, task.ref, seed)
        rec.add(
            Measurement(split, name, values, setting=setting, train_s=t, gen_s=gs, n_gen=len(g))
        )
        pts[name] = g
    return pts


def run_cfm(
    rec: Recorder, split: str, task: ToySample, cfg: GaussiansConfig, seed: int
) -> dict[str, np.ndarray]:
    """Each CFM variant from noise; returns the generated points by name."""
    pts = {}
    for v in CFM_VARIANTS:
        name = f"CFM-{v}"
        print(f"[gaussians] {split} {name}", flush=True)
        cfm, t = fit_toy_cfm(task.target, v, cfg.cfm, seed)
        g, gs, nfe = predict_toy_cfm(cfm, cfg.n_eval, seed)
        values = toy_metrics(g, task.ref, seed)
        setting = toy_cfm_setting(cfg.cfm)
        rec.add(
            Measurement(
                split, name, values, setting=setting, train_s=t, gen_s=gs, n_gen=len(g), nfe=nfe
            )
        )
        pts[name] = g
    return pts


# ====================================================================== markdown
def split_rows(d: pd.DataFrame, split: str, dim: int) -> list[dict]:
    """One table row per method of one task."""
    best_cfm = d[(d.metric == "w2") & d.method.str.startswith("CFM")].value.min()
    rows = []
    for m in dict.fromkeys(d.method):
        dm = d[d.method == m].set_index("metric")
        paper_key = (split, "CFM" if m == PAPER_CFM else m)
        rows.append(
            {
                "Task": f"{split} ({dim}-d)",
                "Method": m,
                "W2": dm.value["w2"],
                "paper W2": PAPER_GAUSSIANS.text(paper_key, "w2"),
                "MMD": dm.value["mmd"],
                "paper MMD": PAPER_GAUSSIANS.text(paper_key, "mmd"),
                "W2 / best CFM W2": dm.value["w2"] / best_cfm,
                "train s": dm.train_seconds.iloc[0],
                "gen s": dm.generate_seconds.iloc[0],
                "NFE": dm.nfe.iloc[0],
                "setting": dm.setting.iloc[0],
            }
        )
    return rows


def split_goal(d: pd.DataFrame, split: str) -> str | None:
    """Best CaLMFlow W2 against the best CFM W2 on one task."""
    best_cfm = d[(d.metric == "w2") & d.method.str.startswith("CFM")].value.min()
    calm = d[(d.metric == "w2") & d.method.str.startswith("CaLMFlow")]
    if calm.empty:
        return None
    best = calm.loc[calm.value.idxmin()]
    return (
        f"{split}: best CaLMFlow W2 {best.value:.3f} ({best.method}) vs best CFM "
        f"{best_cfm:.3f} -> ratio {best.value / best_cfm:.2f} "
        f"({'met' if best.value <= GOAL_RATIO * best_cfm else 'not met'}: goal ≤ {GOAL_RATIO})"
    )


def markdown(result: SuiteResult, cfg: GaussiansConfig, mode: str, runtime: float) -> str:
    """The suite's results page (markdown)."""
    df = result.frame()
    rows, goals = [], []
    for split in dict.fromkeys(df.split):
        d = df[df.split == split]
        rows += split_rows(d, split, cfg.dim)
        goals += [g for g in [split_goal(d, split)] if g]
    speed = speed_line(result.recorder, f"CaLMFlow ({cfg.trajectories[0]} traj.)")
    c = cfg.cfm
    lines = [
        f"# gaussians: 2 Gaussians -> 3 / 4 Gaussians in {cfg.dim} dimensions (paper Table 2){mode_tag(mode)}",
        "",
        md_table(pd.DataFrame(rows)),
        "",
        "**Goal (CaLMFlow W2 ≤ half of CFM's):** " + "; ".join(goals),
        "",
        "## Task",
        "",
        f"- Source: 2 equal-weight Gaussians with means ±{GAUSS_RADIUS:g}·u; target: k "
        f"equal-weight Gaussians with means {GAUSS_RADIUS:g}·v_j; every mode isotropic with sd "
        f"{GAUSS_SD:g} in all {cfg.dim} coordinates; u, v_j random unit vectors "
        f"(`gaussian_task(dim, k, seed)` in `benchmarks/tasks.py`; target modes ≈ "
        f"{GAUSS_RADIUS * np.sqrt(2):.1f} apart). {cfg.n_train:,} source and "
        f"{cfg.n_train:,} target training points; metrics on {cfg.n_eval:,} generated "
        f"vs {cfg.n_eval:,} fresh target points (exact W2, POT; MMD with CellFlow's RBF "
        "bandwidths). The paper does not give its mixture parameters, so only the ranking "
        'is comparable with its numbers. "Reference" = a second fresh target sample (the '
        "finite-sample floor of both metrics).",
        f"- **CaLMFlow**: the source points are registered as control cells "
        f"(`obs` system/role, `control={{'role': 'source'}}`, `source='control'`, "
        f"`features_key='X_feat'`); the paper's synthetic architecture "
        f"`{PAPER_SYNTHETIC_ARCH}`, other constructor arguments at their defaults; "
        f"`train({cfg.train}, validation_size=0)`; {EQUAL_BUDGET}.",
        f"- **CFM**: the baseline always starts from N(0, I) (it has no source-distribution "
        f"option), so, as in the paper's CFM rows, it maps Gaussian noise to the target. "
        f"{c.mlp('×')} SELU MLP, {c.n_steps} steps of {c.batch_size}, "
        'dopri5; the paper used 4×1024. The paper\'s "CFM" row is put beside CFM-icfm.',
    ]
    return "\n".join(lines + speed_section([speed], runtime, result.figures))
