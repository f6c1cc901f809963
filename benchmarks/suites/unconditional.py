"""``unconditional``: all Kang cells generated from noise (paper Table 3).

MMD, W2, adaptive MMD and Leiden KL in a joint 10-d UMAP (and in PCA, with E-distance and the
Gaussian W2), CaLMFlow with 1 and 5 trajectories vs the three CFM variants; a random half of
the real cells is the reference, the other half scored the same way gives the sampling floor.
The first CaLMFlow model is also scored at each temperature of the config's sweep.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import anndata as ad
import numpy as np
import pandas as pd

from .. import figures
from ..config import CFM_VARIANTS, PAPER_UNCONDITIONAL, UnconditionalConfig
from ..methods import (
    EQUAL_BUDGET,
    budget,
    calmflow_defaults,
    cfm_setting,
    fit_calmflow,
    head_steps_set,
    predict_timed,
    timed,
)
from ..records import Measurement, Recorder, SuiteResult
from ..report import md_table, mode_tag, speed_line, speed_section
from ..tasks import load_kang, spread

SUITE = "unconditional"
SPLIT = "all cells"
FLOOR = "Real (other half)"


@dataclass(frozen=True)
class Generated:
    """One method's generated cells (PCA scores) and what they cost."""

    points: np.ndarray
    train_s: float
    gen_s: float
    nfe: float
    setting: str


@dataclass
class UnconditionalNotes:
    """What the unconditional page reports besides the rows."""

    n_eval: int
    n_cells: int
    model_defaults: dict[str, Any]
    pca_check: list[float] = field(default_factory=list)  # max |CFM - CaLMFlow| components
    temperature: pd.DataFrame | None = None  # the first CaLMFlow model's τ sweep
    default_tau: float = math.nan
    calibration: dict[str, Any] | None = None  # train()'s choice of τ (temperature_calibration_)
    reference_spread: float = math.nan


# ====================================================================== run
def run(cfg: UnconditionalConfig, out: Path, seed: int) -> SuiteResult:
    """Run the suite; its figures go to ``out``."""
    rec = Recorder(SUITE, seed)
    adata = load_kang(cfg.n_genes)
    # reference cells: a random half of the real cells (all cells are training data, as in
    # the paper); the other half scored the same way gives the sampling floor
    rng = np.random.default_rng(seed)
    perm = rng.permutation(adata.n_obs)
    n_eval = cfg.n_eval or adata.n_obs // 2
    ref_idx, other_idx = perm[:n_eval], perm[n_eval : 2 * n_eval]
    notes = UnconditionalNotes(n_eval, adata.n_obs, calmflow_defaults())
    gen, pca_model = generate_calmflow(adata, cfg, n_eval, seed)
    # the sweep's τ and the one train() chose (the default), scored the same way
    taus = tuple(sorted({*cfg.temperatures, float(pca_model.temperature)}))
    sweep = sweep_temperatures(pca_model, taus if cfg.temperatures else (), n_eval, seed)
    gen |= head_steps(pca_model, cfg, gen, n_eval, seed)
    real_pca = pca_model.get_pca(adata)
    gen |= generate_cfm(adata, cfg, pca_model, notes, n_eval, seed)
    nan = math.nan
    gen[FLOOR] = Generated(real_pca[other_idx], nan, nan, nan, "sampling floor")
    ref = real_pca[ref_idx]
    clf = score(rec, gen, ref, seed)
    if sweep:
        notes.temperature = score_temperatures(sweep, ref, seed, clf)
        notes.default_tau = float(pca_model.temperature)
        notes.calibration = getattr(pca_model, "temperature_calibration_", None)
        notes.reference_spread = spread(ref)
    fig = figures.unconditional_pca(ref, {k: g.points for k, g in gen.items()}, out)
    return SuiteResult(rec, [fig], notes)


def check_space(pred: ad.AnnData, pca_model: Any) -> None:
    """Refuse a prediction whose PCA is not the shared space (``pca_model``'s)."""
    got = pred.uns["calmflow_pca"]["fingerprint"]
    want = pca_model.features_.fingerprint()
    if got != want:
        raise ValueError(
            f"A prediction's PCA (fingerprint {got!r}) is not the shared space of the first "
            f"CaLMFlow model ({want!r}): fit every method on the same cells with the same "
            "n_pca and seed."
        )


def generate_calmflow(
    adata: ad.AnnData, cfg: UnconditionalConfig, n_eval: int, seed: int
) -> tuple[dict[str, Generated], Any]:
    """CaLMFlow from noise with each number of trajectories.

    Also returns the first model: its PCA is the shared space.
    """
    from sccalmflow.data import PCA_KEY

    gen: dict[str, Generated] = {}
    first = None
    for n_traj in cfg.trajectories:
        name = f"CaLMFlow ({n_traj} traj.)"
        print(f"[unconditional] {name}", flush=True)
        model, t = fit_calmflow(
            adata.copy(),
            {},
            {"source": "noise", "n_trajectories": n_traj, **cfg.calmflow},
            cfg.train,
            seed,
            per_trajectory_batch=True,
        )
        pred, g = predict_timed(model, None, n_eval, seed)
        head = model.init_params_["non_kwargs"]["head"]  # from noise: the flow head
        setting = f"source=noise, N={n_traj}, {head} head, {budget(model)}"
        if first is None:
            first = model
        check_space(pred, first)
        gen[name] = Generated(np.asarray(pred.obsm[PCA_KEY]), t, g, math.nan, setting)
    return gen, first


def head_steps(
    model, cfg: UnconditionalConfig, gen: dict[str, Generated], n_eval: int, seed: int
) -> dict[str, Generated]:
    """The first model's cells again with its head's steps set to each of ``cfg.head_steps``.

    Same seed and τ, named ``"CaLMFlow (N traj., n head steps)"``; nothing for a head that
    does not integrate.
    """
    from sccalmflow.data import PCA_KEY

    if not cfg.head_steps or not hasattr(model.module.head, "n_steps"):
        return {}
    first = f"CaLMFlow ({cfg.trajectories[0]} traj.)"
    out = {}
    for n in cfg.head_steps:
        with head_steps_set(model, n):
            pred, g = predict_timed(model, None, n_eval, seed)
        setting = f"{gen[first].setting}, {n} head steps (default {model.module.head.n_steps})"
        name = f"CaLMFlow ({cfg.trajectories[0]} traj., {n} head steps)"
        out[name] = Generated(np.asarray(pred.obsm[PCA_KEY]), math.nan, g, math.nan, setting)
    return out


def sweep_temperatures(
    model, temperatures: tuple[float, ...], n_eval: int, seed: int
) -> dict[float, np.ndarray]:
    """The model's generated cells (PCA scores) at each temperature τ."""
    from sccalmflow.data import PCA_KEY

    out = {}
    for tau in temperatures:
        print(f"[unconditional] CaLMFlow at τ = {tau}", flush=True)
        pred, _ = predict_timed(model, None, n_eval, seed, temperature=tau)
        out[float(tau)] = np.asarray(pred.obsm[PCA_KEY])
    return out


def generate_cfm(
    adata: ad.AnnData,
    cfg: UnconditionalConfig,
    pca_model,
    notes: UnconditionalNotes,
    n_eval: int,
    seed: int,
) -> dict[str, Generated]:
    """Each CFM variant from noise, with one constant condition key (the baseline needs one).

    The CFMs train on the coordinates CaLMFlow trains on and is scored against: the
    cells of the PCA's fit cross-fitted in the same folds when the model cross-fits
    (``pca_folds``; the reference cells come from ``pca_model.get_pca``).
    """
    from sccalmflow.baselines import CFM
    from sccalmflow.data import PCA_KEY

    const = adata.copy()
    const.obs["all"] = pd.Categorical(["all"] * const.n_obs)
    n_pca = cfg.calmflow.get("n_pca", notes.model_defaults["n_pca"])
    gen: dict[str, Generated] = {}
    for v in CFM_VARIANTS:
        print(f"[unconditional] CFM-{v}", flush=True)
        cfm = CFM(v, **cfg.cfm.kwargs())
        _, t = timed(
            lambda cfm=cfm: cfm.fit(
                const,
                condition_keys=["all"],
                control={"all": "all"},
                n_pca=n_pca,
                seed=seed,
                pca_folds=getattr(pca_model, "pca_folds", None),
            )
        )
        diff = float(np.abs(cfm.pca.components_ - pca_model.features_.components_).max())
        notes.pca_check.append(diff)
        pred, g = predict_timed(cfm, {"all": ["all"]}, n_eval, seed)
        check_space(pred, pca_model)
        points = np.asarray(pred.obsm[PCA_KEY])
        gen[f"CFM-{v}"] = Generated(points, t, g, float(cfm.nfe_), cfm_setting(cfg.cfm))
    return gen


def pca_scores(
    z: np.ndarray, ref: np.ndarray, seed: int, classifier: Any = None
) -> tuple[dict[str, float], Any]:
    """Generated cells ``z`` against ``ref`` in the shared PCA, and the Leiden classifier.

    The classifier is fitted on ``ref`` when not given; pass it back in so every set is
    assigned to the same clusters.
    """
    from sccalmflow import metrics

    lk = metrics.leiden_kl(ref, z, resolution=0.3, seed=seed, classifier=classifier)
    values = {
        "mmd": metrics.mmd(z, ref),
        "w2": metrics.wasserstein2(z, ref, seed=seed),
        "e_distance": metrics.energy_distance(z, ref),
        "w2_gaussian": metrics.gaussian_w2(z, ref),
        "leiden_kl": lk.kl,
        "inception_score": lk.inception_score,
    }
    return values, lk.classifier


def score(rec: Recorder, gen: dict[str, Generated], ref: np.ndarray, seed: int) -> Any:
    """Every method in its joint UMAP with the reference, and in the shared PCA.

    Returns the Leiden classifier of the PCA scores (fitted on the reference).
    """
    from sccalmflow import metrics

    clf = None  # one Leiden classifier (fitted on the reference PCA) for all methods
    for name, g in gen.items():
        print(f"[unconditional] scoring {name}", flush=True)
        z = g.points
        emb_r, emb_g = metrics.joint_umap(ref, z, n_components=10, seed=seed)
        lk = metrics.leiden_kl(emb_r, emb_g, resolution=0.3, seed=seed)
        pca, clf = pca_scores(z, ref, seed, clf)
        values = {
            ("mmd", "umap10"): metrics.mmd(emb_g, emb_r),
            ("w2", "umap10"): metrics.wasserstein2(emb_g, emb_r, seed=seed),
            ("adaptive_mmd", "umap10"): metrics.adaptive_mmd(emb_g, emb_r),
            ("leiden_kl", "umap10"): lk.kl,
        } | {(metric, "pca"): v for metric, v in pca.items()}
        cost = dict(train_s=g.train_s, gen_s=g.gen_s, n_gen=len(z), nfe=g.nfe)
        rec.add(Measurement(SPLIT, name, values, setting=g.setting, **cost))
    return clf


#: The τ table's columns: :func:`pca_scores`' names -> the page's labels.
TEMPERATURE_COLUMNS = {
    "mmd": "MMD",
    "w2": "W2",
    "e_distance": "E-distance",
    "w2_gaussian": "Gaussian W2",
    "leiden_kl": "Leiden KL",
}


def score_temperatures(
    sweep: dict[float, np.ndarray], ref: np.ndarray, seed: int, classifier: Any
) -> pd.DataFrame:
    """The shared-PCA metrics and the spread of the cells generated at each τ."""
    rows = []
    for tau, z in sweep.items():
        pca, _ = pca_scores(z, ref, seed, classifier)
        labelled = {label: pca[name] for name, label in TEMPERATURE_COLUMNS.items()}
        rows.append({"τ": tau, **labelled, "spread": spread(z)})
    return pd.DataFrame(rows)


# ====================================================================== markdown
def umap_table(df: pd.DataFrame) -> pd.DataFrame:
    """The paper's metrics in the joint UMAP, the paper's numbers beside them."""
    first = df.drop_duplicates("method").set_index("method")
    paper = PAPER_UNCONDITIONAL
    rows = []
    for m in dict.fromkeys(df.method):
        d = df[df.method == m].set_index(["metric", "space"]).value
        rows.append(
            {
                "Method": m,
                "MMD (UMAP10)": d.get(("mmd", "umap10")),
                "paper MMD": paper.text(m, "mmd"),
                "W2 (UMAP10)": d.get(("w2", "umap10")),
                "paper W2": paper.text(m, "w2"),
                "Leiden KL (UMAP10)": d.get(("leiden_kl", "umap10")),
                "paper KLD": paper.text(m, "leiden_kl"),
                "adMMD (UMAP10)": d.get(("adaptive_mmd", "umap10")),
                "paper adMMD": paper.text(m, "adaptive_mmd"),
                "train s": first.loc[m, "train_seconds"],
                "gen s": first.loc[m, "generate_seconds"],
                "NFE": first.loc[m, "nfe"],
            }
        )
    return pd.DataFrame(rows)


def pca_table(df: pd.DataFrame) -> pd.DataFrame:
    """The metrics in the shared PCA space."""
    first = df.drop_duplicates("method").set_index("method")
    rows = []
    for m in dict.fromkeys(df.method):
        d = df[df.method == m].set_index(["metric", "space"]).value
        rows.append(
            {
                "Method": m,
                "MMD": d.get(("mmd", "pca")),
                "W2": d.get(("w2", "pca")),
                "E-distance": d.get(("e_distance", "pca")),
                "Gaussian W2": d.get(("w2_gaussian", "pca")),
                "Leiden KL": d.get(("leiden_kl", "pca")),
                "inception score": d.get(("inception_score", "pca")),
                "setting": first.loc[m, "setting"],
            }
        )
    return pd.DataFrame(rows)


def temperature_section(notes: UnconditionalNotes, n_traj: int) -> list[str]:
    """The τ sweep's table and where each metric is lowest (nothing without a sweep)."""
    t = notes.temperature
    if t is None or t.empty:
        return []
    lowest = ", ".join(
        f"{m} at τ = {t.loc[t[m].idxmin(), 'τ']:g}" for m in TEMPERATURE_COLUMNS.values()
    )
    return [
        f"## Temperature (CaLMFlow, {n_traj} traj., shared 50-d PCA)",
        "",
        f"The same model generating at each τ (default τ = {notes.default_tau:g}); spread = RMS "
        f"distance of the cells to their mean (the reference cells': "
        f"{notes.reference_spread:.2f}). Lowest: {lowest}.",
        "",
        md_table(t),
        "",
        *calibration_lines(notes.calibration),
    ]


def calibration_lines(record: dict[str, Any] | None) -> list[str]:
    """How ``train()`` chose the default τ (nothing for a τ given by hand)."""
    if not record:
        return []
    values = ", ".join(
        f"{t:g}: {v:.5g}" for t, v in zip(record["temperatures"], record["values"], strict=True)
    )
    return [
        f"train() chose τ = {record['chosen']:g} (`temperature=None`, the default): the lowest "
        f"{record['metric']} against {record['n_reference_cells']:,} of the {record['reference']} "
        f"(seed {record['seed']}): {values}.",
        "",
    ]


def markdown(result: SuiteResult, cfg: UnconditionalConfig, mode: str, runtime: float) -> str:
    """The suite's results page (markdown)."""
    notes: UnconditionalNotes = result.notes
    df = result.frame()
    c = cfg.cfm
    speed = speed_line(result.recorder, f"CaLMFlow ({cfg.trajectories[0]} traj.)")
    pca_diff = max(notes.pca_check or [float("nan")])
    lines = [
        f"# unconditional: generating all Kang cells from noise (paper Table 3 style){mode_tag(mode)}",
        "",
        f"All {notes.n_cells:,} Kang cells are the training data of every method. Each "
        f"method generates {notes.n_eval:,} cells, scored against a random half of the "
        f'real cells ({notes.n_eval:,}); "Real (other half)" scores the other half '
        "the same way (the sampling floor). UMAP metrics: one 10-d UMAP fitted jointly on the "
        "reference and the generated cells of each method (the paper's space, so each method "
        "has its own space); Leiden KL there re-clusters the real cells per method. The PCA "
        "table uses the fixed shared 50-d PCA and one Leiden classifier for all methods.",
        "",
        "## Joint 10-d UMAP (paper's metrics; paper values are on Dong et al. 2023, 1,000 PCs)",
        "",
        md_table(umap_table(df)),
        "",
        "## Shared 50-d PCA space",
        "",
        md_table(pca_table(df)),
        "",
        *temperature_section(notes, cfg.trajectories[0]),
        "## Setup",
        "",
        f"- **CaLMFlow**: `setup_anndata(adata)` without condition keys, "
        f"`CaLMFlowModel(adata, source='noise', n_trajectories=N)`, other arguments at their "
        f"defaults{(' except ' + str(cfg.calmflow)) if cfg.calmflow else ''} (from noise: "
        "the flow head on Brownian-bridge paths, `sigma_min=1.0`); "
        f"`train({cfg.train})` (from noise by default: every cell, no validation split, the "
        f"weights' moving average, decay 0.995); {EQUAL_BUDGET}.",
        f"- **CFM** (icfm / otcfm / sbcfm): one constant condition key (the baseline needs "
        f"one), {c.mlp('×')} SELU MLP, {c.n_steps} steps of {c.batch_size}, "
        f"dopri5; the paper used 4×1024. Max PCA difference to CaLMFlow's: {pca_diff:.1e}.",
        '- Paper\'s Leiden KLD column as printed in the extracted text ("0.0330 0.0027e-2"); '
        "its units are ambiguous. The paper's data (Dong et al.) and PCA size (1,000) differ "
        "from ours, so only the ranking is comparable.",
    ]
    return "\n".join(lines + speed_section([speed], runtime, result.figures))
