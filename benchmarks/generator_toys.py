"""Does a sampling head make CaLMFlow a generator on the synthetic tasks? (a benchmark)

The paper's two synthetic tasks, each with several seeds, in one run with the CFM baselines:
``moons`` (8 Gaussians -> 2 moons, 2-d; paper Table 7) and ``gaussians`` (2 -> 3 and 2 -> 4
Gaussians in 100-d; paper Table 2). For every head in ``--heads`` CaLMFlow is trained with one
trajectory per sequence and with the suite's most trajectories (10 on moons, 8 on gaussians),
the suites' paper architecture (``benchmarks/config.py``) with the package's head width (128)
and ``train()``'s default step budget for one trajectory per sequence, the same for every N
(``--budget suite``: the suites' shorter ``max_epochs``; ``--ema``: an exponential moving
average of the weights); the sampling heads are also scored at every temperature of
``--taus`` (one trajectory). OT-CFM and I-CFM (from noise) are trained
on the same task and seed. Metrics: W2 and MMD of the generated points against a fresh target
sample, and the sampling floor (a second fresh sample). Each (task, seed, method) is one line
of ``generator_toys.jsonl``; the page ``generator_toys.md`` gives mean ± sd over seeds.

    python benchmarks/generator_toys.py                               # both tasks, seeds 0-2
    python benchmarks/generator_toys.py --tasks moons --seeds 0 --heads flow
    python benchmarks/generator_toys.py --report-only
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np
import pandas as pd

if __package__ in (None, ""):  # `python benchmarks/generator_toys.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from benchmarks.records import read_jsonl, run_jsonl, tau_rows

RESULTS = Path(__file__).resolve().parent / "results"
#: task name -> (suite config, split name, the number of modes for gaussians)
TASKS = {
    "moons": ("moons", None),
    "gaussians 2->3": ("gaussians", 3),
    "gaussians 2->4": ("gaussians", 4),
}
CFMS = ("otcfm", "icfm")


def sample_task(task: str, seed: int):
    """The task's points (``benchmarks.tasks.ToySample``) and its full-mode config."""
    from benchmarks.config import get_config
    from benchmarks.tasks import gaussians_sample, moons_sample

    suite, k = TASKS[task]
    cfg = get_config(suite, "full")
    if suite == "moons":
        return moons_sample(cfg.n_train, cfg.n_eval, seed), cfg
    return gaussians_sample(cfg.dim, k, cfg.n_train, cfg.n_eval, seed), cfg


def target_mixture(task: str, cfg, seed: int):
    """The true target mixture of a ``gaussians`` task (``cfg``: its suite config), else None."""
    from benchmarks.tasks import gaussian_task

    k = TASKS[task][1]
    return None if k is None else gaussian_task(cfg.dim, k, seed)[1]


def default_budget(n_train: int) -> dict:
    """``train()``'s default step budget for ``n_train`` one-trajectory sequences.

    :func:`sccalmflow.train.default_max_epochs` at batch 128 (about 1,600 steps for moons'
    2,000 points, 1,400 for the 1,500 of gaussians). The runs use it for every number of
    trajectories: with ``per_trajectory_batch`` an epoch has the same steps for every N, so
    every N gets the same optimiser steps (N > 1 alone would get a smaller default, as it
    has fewer sequences).
    """
    from sccalmflow.train import default_max_epochs

    return {"max_epochs": default_max_epochs(n_train, math.ceil(n_train / 128))}


def default_sequence_targets() -> str:
    """The package's default ``sequence_targets`` (read from the constructor)."""
    import inspect

    from sccalmflow import CaLMFlowModel

    return inspect.signature(CaLMFlowModel).parameters["sequence_targets"].default


#: generated sets and fresh reference samples that the Gaussians' ``sets`` scores average over
N_SETS = 16


def reference_samples(target, n: int, seed: int, stream: int = 11) -> list[np.ndarray]:
    """:data:`N_SETS` fresh samples of ``n`` points of a Gaussian task's true target (float64).

    Independent of the task's ``ref`` and ``fresh`` samples; another ``stream`` gives other
    samples (the ``Reference`` row's sets).
    """
    k = len(target.means)
    return [
        target.sample(n, np.random.default_rng([seed, k, stream, r])).astype(np.float64)
        for r in range(N_SETS)
    ]


def over_sets(
    g: np.ndarray,
    refs: list[np.ndarray],
    means: np.ndarray,
    seed: int,
    n_traj: int = 1,
    train_shares: np.ndarray | None = None,
) -> dict:
    """Scores of ``len(refs)`` generated sets, each against its own fresh reference sample.

    ``g``: the sets one after another (``len(refs[0])`` points each). W2 against one
    1,000-point reference turns on how that sample happens to split over the modes (sd about
    0.13 between references); the mean over 16 sets and references, the same references for
    every method, is the yardstick for differences of about 0.1 (what exact mode shares gain
    over independent cells, ``--floors``: 0.166, paired sd 0.106 on 2->3 seed 0).

    Returns ``w2`` (mean), ``w2_sd`` (sd over sets), ``mmd`` and ``mode_tv`` (means),
    ``pooled_tv`` (the mode shares of all the sets together against equal shares: a
    generator's lasting favour of a mode, where ``mode_tv`` also holds each set's chance
    imbalance) and, for ``n_traj > 1``, the ``mode_dispersion`` of all the sets' whole
    sequences together. With ``train_shares`` (the training targets' mode shares, which the
    generator learned) also ``train_tv``: the pooled shares against those,
    ``set_train_tv``: each set's shares against those (mean over sets; a generator that
    reproduces its training sample's shares in every set has 0, ``n`` independent cells
    about ``sqrt((k - 1) / (2 pi n))`` for ``k`` modes), and for ``n_traj > 1``
    ``first_train_tv``: the pooled shares of the first cell of every sequence against those
    (its mode chosen before any other cell of the sequence).
    """
    from benchmarks.tasks import mode_fit, mode_shares, sequence_fit, total_variation, toy_metrics

    n = len(refs[0])
    sets = [g[i * n : (i + 1) * n] for i in range(len(refs))]
    scores = [toy_metrics(x, r, seed) for x, r in zip(sets, refs, strict=True)]
    w2 = [m[("w2", "data")] for m in scores]
    pooled = mode_shares(g[: len(refs) * n], means)
    out = {
        "w2": float(np.mean(w2)),
        "w2_sd": float(np.std(w2, ddof=1)),
        "mmd": float(np.mean([m[("mmd", "data")] for m in scores])),
        "mode_tv": float(np.mean([mode_fit(x, means)["mode_tv"] for x in sets])),
        "pooled_tv": total_variation(pooled, np.full(len(means), 1 / len(means))),
    }
    if train_shares is not None:
        out["train_tv"] = total_variation(pooled, train_shares)
        set_shares = [mode_shares(x, means) for x in sets]
        out["set_train_tv"] = float(np.mean([total_variation(x, train_shares) for x in set_shares]))
    if n_traj > 1:
        whole = whole_sequences(g, n_traj)
        out["mode_dispersion"] = sequence_fit(whole, means, n_traj)["mode_dispersion"]
        if train_shares is not None:
            out["first_train_tv"] = total_variation(
                mode_shares(whole[::n_traj], means), train_shares
            )
    return out


def whole_sequences(g: np.ndarray, n_traj: int) -> np.ndarray:
    """The rows of ``g`` that make whole sequences of ``n_traj`` (predict's last may be cut)."""
    return g[: len(g) // n_traj * n_traj]


def training_dispersion(
    target: np.ndarray, means: np.ndarray, n_traj: int, stratified: bool, seed: int
) -> float:
    """``mode_dispersion`` of the training targets grouped into sequences as training groups them.

    Consecutive blocks of ``n_traj`` of the target points in the order of
    :func:`sccalmflow.data.stratified_sequences` (``stratified``) or a random order, the
    mean over 5 draws (every epoch draws anew): what the model's context could learn.
    """
    from benchmarks.tasks import sequence_fit
    from sccalmflow.data import stratified_sequences

    m = len(target) // n_traj * n_traj
    values = []
    for d in range(5):
        rng = np.random.default_rng([seed, d])
        order = stratified_sequences(target[:m], n_traj, rng) if stratified else rng.permutation(m)
        values.append(sequence_fit(target[order], means, n_traj)["mode_dispersion"])
    return float(np.mean(values))


#: what a CaLMFlow row says about its model (not its scores): a chain row copies them
MODEL_KEYS = (
    "task", "seed", "head", "n_traj", "train_s", "sequence_targets", "train_mode_dispersion",
    "max_epochs", "head_hidden", "ema", "calibrated", "tau",
)  # fmt: skip


def run_task(
    task: str,
    seed: int,
    heads,
    taus,
    quick: bool = False,
    budget: str = "default",
    head_hidden: int | None = 128,
    ema: float | None = None,
    trajectories: tuple[str, ...] = ("one", "most"),
    calibrate: bool = False,
    sequence_targets: str | None = None,
    calmflow: str | None = None,
    chains: tuple[int, ...] = (),
) -> list[dict]:
    """Every method on one task and seed; one row each (metrics at each τ for sampling heads).

    ``budget="default"``: CaLMFlow trains for ``train()``'s default step budget
    (:func:`default_budget`); ``"suite"``: for the suite's ``max_epochs`` (moons 30,
    gaussians 50: about a third of it, the budget of the runs before 2026-12-02);
    ``"double"``: twice the default (named in the method: ``", 2x budget"``).
    ``head_hidden`` replaces the paper architecture's head width (32, narrower than the
    100 dimensions of gaussians; ``None`` keeps it): 128 is the package's default.
    ``ema``: ``train(ema_decay=ema)`` (generate with the exponential moving average of the
    weights; the runs have no validation split); ``None``: no average.
    ``trajectories``: which models to train, ``"one"`` trajectory per sequence and/or the
    suite's ``"most"`` (10 on moons, 8 on gaussians).
    ``calibrate``: after training, a sampling head's τ is chosen by
    ``model.calibrate_temperature()`` on the training targets (what a user of a model from
    cells would run); the row is scored at the chosen τ, and at τ = 1 under ``"tau=1"``.
    ``sequence_targets``: the models' ``sequence_targets`` (``None``: the package's
    default); ``"stratified"`` is named in the method (``"8 stratified traj."``), so its rows
    stand beside earlier ones, whose sequences were independent draws.
    ``calmflow``: further constructor keywords, ``"ot_coupling=False"`` (named in the method).
    ``chains``: for every model of more than one trajectory, one more row per stride ``h``:
    the same model generating with ``predict(chain=h)`` (named ``", chain=h"``; its sequence
    fit reads the chain's consecutive blocks of ``N`` cells, its ``first_within_sd`` every
    ``N``-th cell).
    """
    from benchmarks.generator import parse_variant
    from benchmarks.methods import (
        fit_toy_calmflow,
        fit_toy_cfm,
        predict_toy_calmflow,
        predict_toy_cfm,
    )
    from benchmarks.tasks import mode_fit, mode_shares, sequence_fit, spread, toy_metrics

    points, cfg = sample_task(task, seed)
    n = cfg.n_eval
    target = target_mixture(task, cfg, seed)
    refs = None if target is None else reference_samples(target, n, seed)
    learned = None if target is None else mode_shares(points.target, target.means)

    def sets(generate, n_traj: int = 1) -> dict:  # gaussians: N_SETS sets, fresh references
        if target is None:
            return {}
        g = generate(N_SETS * n)
        return {"sets": over_sets(g, refs, target.means, seed, n_traj, learned)}

    def fit(g: np.ndarray, n_traj: int = 1) -> dict:  # gaussians: the points on the modes
        if target is None:
            return {}
        return mode_fit(g, target.means) | (
            sequence_fit(whole_sequences(g, n_traj), target.means, n_traj) if n_traj > 1 else {}
        )

    def scores(g: np.ndarray, n_traj: int) -> dict:  # a CaLMFlow model's points
        m = toy_metrics(g, points.ref, seed)
        return {"w2": m[("w2", "data")], "mmd": m[("mmd", "data")], "spread": spread(g)} | fit(
            g, n_traj
        )

    train = {"validation_size": 0.0, **cfg.train}
    if budget in ("default", "double"):
        train |= default_budget(len(points.target))
    if budget == "double":
        train["max_epochs"] *= 2
    # None: no average, as the page's rows without one (train()'s own default is 0.995)
    train["ema_decay"] = ema
    cfm_budget = cfg.cfm
    if quick:
        train["max_epochs"] = 1
        cfm_budget = type(cfg.cfm)(32, 20)
    base = {"task": task, "seed": seed}
    floor = toy_metrics(points.fresh, points.ref, seed)
    rows = [
        {
            **base,
            "method": "Reference",
            "w2": floor[("w2", "data")],
            "mmd": floor[("mmd", "data")],
            **fit(points.fresh),
            **sets(lambda m: np.vstack(reference_samples(target, n, seed, stream=12))),
        }
    ]
    counts = {"one": 1, "most": max(cfg.trajectories)}
    targets = sequence_targets or default_sequence_targets()
    n_trajs = list(dict.fromkeys(counts[k] for k in trajectories))
    for head in heads:
        for n_traj in n_trajs:
            kind = " stratified" if targets == "stratified" and n_traj > 1 else ""
            name = f"CaLMFlow {head} ({n_traj}{kind} traj.)"
            print(f"[{task} s{seed}] {name}", flush=True)
            kwargs = {**cfg.calmflow, "head": head, "n_trajectories": n_traj}
            kwargs["sequence_targets"] = targets
            if calmflow:
                kwargs |= parse_variant(calmflow)
                name = f"{name}, {calmflow}"
            if budget == "double":
                name = f"{name}, 2x budget"
            if head_hidden is not None:
                kwargs["head_hidden"] = head_hidden
            model, t = fit_toy_calmflow(points.source, points.target, kwargs, train, seed)
            row = {**base, "method": name, "head": head, "n_traj": n_traj, "train_s": t}
            row["sequence_targets"] = model.sequence_targets
            if target is not None and n_traj > 1:
                row["train_mode_dispersion"] = training_dispersion(
                    points.target, target.means, n_traj, targets == "stratified", seed
                )
            row |= {"max_epochs": train["max_epochs"], "head_hidden": kwargs["head_hidden"]}
            if ema is not None:
                row |= {"ema": ema, "method": f"{name}, EMA {ema:g}"}
            samples = model.module.samples_latent(1.0)
            sweep = taus if samples and n_traj == 1 else []
            if calibrate and samples:
                model.calibrate_temperature(progress_bar=False)
                row |= {"method": f"{row['method']}, τ calibrated", "calibrated": True}
                sweep = [1.0, *sweep]
            for tau in dict.fromkeys([model.temperature, *sweep]):
                values = scores(predict_toy_calmflow(model, n, seed, temperature=tau)[0], n_traj)
                if tau == model.temperature and "w2" not in row:
                    row |= {**values, "tau": tau}
                row[f"tau={tau:g}"] = values
            row |= sets(
                lambda m, model=model, tau=row["tau"]: predict_toy_calmflow(
                    model, m, seed + 1, temperature=tau
                )[0],
                n_traj,
            )
            rows.append(row)
            for h in chains if n_traj > 1 else ():

                def chained(m, s, model=model, tau=row["tau"], h=h):
                    return predict_toy_calmflow(model, m, s, temperature=tau, chain=h)[0]

                rows.append(
                    {k: row[k] for k in MODEL_KEYS if k in row}
                    | {"method": f"{row['method']}, chain={h}", "chain": h}
                    | scores(chained(n, seed), n_traj)
                    | sets(lambda m, chained=chained: chained(m, seed + 1), n_traj)
                )
    for variant in CFMS:
        print(f"[{task} s{seed}] CFM-{variant}", flush=True)
        cfm, t = fit_toy_cfm(points.target, variant, cfm_budget, seed)
        g, _, nfe = predict_toy_cfm(cfm, n, seed)
        m = toy_metrics(g, points.ref, seed)
        rows.append(
            {
                **base,
                "method": f"CFM-{variant}",
                "w2": m[("w2", "data")],
                "mmd": m[("mmd", "data")],
                "train_s": t,
                "nfe": nfe,
                **fit(g),
                **sets(lambda m, cfm=cfm: predict_toy_cfm(cfm, m, seed + 1)[0]),
            }
        )
    return rows


def mode_share_floors(task: str, seed: int, draws: int = 10) -> list[dict]:
    """Samplers of the true target of a ``gaussians`` task, scored like the models.

    ``"Target, modes i.i.d."``: cells of the true mixture, each mode drawn independently
    (a perfect generator of independent cells); ``"Target, exact mode shares"``: the same
    with every mode given exactly its share of the cells (what generating stratified sets
    can reach). The gap between the two is how much of the W2 the mode proportions alone
    account for. The same two with the mode shares of the task's 1,500 training targets
    instead of equal ones (``"Target, training shares, ..."``): what a generator that
    learns its training sample perfectly reaches, since that sample's own shares differ from
    equal ones by chance (total variation up to about 0.03). W2 and MMD against the task's
    reference sample, means over ``draws`` draws; ``sets``: the first :data:`N_SETS` draws
    scored as the models' ``sets`` (:func:`over_sets`).
    """
    from benchmarks.tasks import mode_shares, toy_metrics

    points, cfg = sample_task(task, seed)
    target = target_mixture(task, cfg, seed)
    if target is None:
        raise ValueError(f"mode_share_floors needs a gaussians task, got {task!r}")
    k = len(target.means)
    refs = reference_samples(target, cfg.n_eval, seed)
    learned = mode_shares(points.target, target.means)

    def draw(shares: np.ndarray | None, exact: bool, d: int) -> np.ndarray:
        rng = np.random.default_rng([seed, k, 7, d])
        n = cfg.n_eval
        if shares is None:  # equal shares
            which = np.arange(n) % k if exact else rng.integers(k, size=n)
        elif exact:  # every mode its share of the cells, rounded by largest remainder
            counts = np.floor(shares * n).astype(int)
            counts[np.argsort(counts - shares * n, kind="stable")[: n - counts.sum()]] += 1
            which = np.repeat(np.arange(k), counts)
        else:
            which = rng.choice(k, size=n, p=shares)
        return target.means[which] + rng.standard_normal((n, cfg.dim)) * target.sd

    samplers = (
        ("Target, modes i.i.d.", None, False),
        ("Target, exact mode shares", None, True),
        ("Target, training shares, modes i.i.d.", learned, False),
        ("Target, exact training shares", learned, True),
    )
    rows = []
    for name, shares, exact in samplers:
        samples = [draw(shares, exact, d) for d in range(max(draws, N_SETS))]
        scores = [toy_metrics(x, points.ref, seed) for x in samples[:draws]]
        rows.append(
            {
                "task": task,
                "seed": seed,
                "method": f"{name} (mean of {draws})",
                "w2": float(np.mean([m[("w2", "data")] for m in scores])),
                "mmd": float(np.mean([m[("mmd", "data")] for m in scores])),
                "sets": over_sets(
                    np.vstack(samples[:N_SETS]), refs, target.means, seed, train_shares=learned
                ),
            }
        )
    return rows


def markdown(rows: list[dict]) -> str:
    """Mean ± sd over seeds per task and method; the τ sweep; the goals, met or not."""
    from benchmarks.report import md_table, mean_sd

    df = pd.DataFrame(rows)
    main = mean_sd(df, ["task", "method"], ["w2", "mmd"], count="seeds")
    sweep = tau_rows(rows, ["task", "method", "seed"])
    lines = [
        "# generator_toys: heads against CFM on the synthetic tasks, several seeds",
        "",
        __doc__.split("\n\n")[1].replace("\n", " "),
        "",
        "## W2 and MMD (mean ± sd over seeds; lower is better)",
        "",
        md_table(main),
        "",
        *goals(df),
    ]
    if sweep:
        sw = pd.DataFrame(sweep)
        sw = sw[sw.method.str.contains("1 traj")]
        lines += best_tau_goals(df, sw)
        lines += [
            "",
            "## Temperature (one trajectory; spread = RMS distance of the generated points to "
            "their mean)",
            "",
            md_table(mean_sd(sw, ["task", "method", "tau"], ["w2", "mmd", "spread"], "seeds")),
        ]
    lines += sets_section(df)
    return "\n".join(lines) + "\n"


#: the columns of :func:`sets_section`, in order
SETS_COLUMNS = (
    "sets_w2",
    "sets_mmd",
    "sets_mode_tv",
    "sets_pooled_tv",
    "sets_train_tv",
    "sets_set_train_tv",
    "sets_first_train_tv",
    "sets_mode_dispersion",
    "train_mode_dispersion",
    "within_sd",
    "first_within_sd",
    "centre_error",
)


def sets_section(df: pd.DataFrame) -> list[str]:
    """The Gaussians' scores over generated sets (:func:`over_sets`), where rows have them.

    Mean ± sd over seeds, then per task every model of more than one trajectory against
    every one-trajectory model of the same head, seed by seed on the same references.
    """
    from benchmarks.report import md_table, mean_sd

    if "sets" not in df:
        return []
    s = df[df.sets.notna()]
    if s.empty:
        return []
    flat = pd.json_normalize(s.sets.tolist()).add_prefix("sets_").set_index(s.index)
    s = s.join(flat).sort_values("task", kind="stable")
    cols = [c for c in SETS_COLUMNS if c in s]
    lines = [
        "",
        f"## Over {N_SETS} generated sets, each against its own fresh sample of the target "
        "(Gaussians)",
        "",
        f"Every method generates {N_SETS} sets of the evaluation size (one `predict`, seed + "
        f"1); set i is scored against fresh target sample i, the same {N_SETS} samples for "
        "every method of a seed (`Reference`: the true target; the floors: their first "
        f"{N_SETS} draws). `sets_*`: means over the sets; `sets_pooled_tv`: the mode shares "
        "of all the sets together against equal shares (a lasting favour of a mode), "
        "`sets_train_tv` against the training targets' shares (what the model learned; "
        "`sets_set_train_tv`: each set's shares against those, `sets_first_train_tv`: the "
        "pooled shares of the first cell of each sequence); "
        "`sets_mode_dispersion`: how the "
        "cells of a sequence share the modes, over all the sets' sequences (1: "
        "independently, 0: every sequence gives every mode the same count); "
        "`train_mode_dispersion`: the same for the training sequences; `within_sd`, "
        "`centre_error`: the mode fit of the row's main points (the true within-mode sd is "
        "0.1); `first_within_sd`: the within-mode sd of the first cell of each of their "
        "sequences. Mean ± sd over seeds:",
        "",
        md_table(mean_sd(s, ["task", "method"], cols, count="seeds")),
        "",
    ]
    one = s.method.str.contains(r"\(1 traj\.\)", regex=True)
    many_traj = s.n_traj.fillna(1) > 1 if "n_traj" in s else pd.Series(False, index=s.index)
    for task in dict.fromkeys(s.task):
        w = s[s.task == task].pivot_table(index="seed", columns="method", values="sets_w2")
        for many in dict.fromkeys(s.method[many_traj & (s.task == task)]):
            head = many.split(" (")[0]
            for single in dict.fromkeys(s.method[one & (s.task == task)]):
                if not single.startswith(head + " ("):
                    continue
                d = (w[many] - w[single]).dropna()
                if d.empty:
                    continue
                lines.append(
                    f"- {task}: {many} vs {single}: lower W2 on {int((d < 0).sum())} of "
                    f"{len(d)} seeds (mean difference {d.mean():+.3f})."
                )
    return lines


def best_tau_goals(df: pd.DataFrame, sweep: pd.DataFrame) -> list[str]:
    """Per task, the swept model at its best τ (mean W2 over seeds) against the best CFM."""
    out = []
    means = sweep.groupby(["task", "method", "tau"], sort=False)[["w2", "mmd"]].mean()
    for task in dict.fromkeys(sweep.task):
        t = df[df.task == task]
        cfm = t[t.method.str.startswith("CFM")].groupby("method")[["w2", "mmd"]].mean()
        if cfm.empty:
            continue
        m = means.loc[task]
        m = m[full_seeds(t, m.index.get_level_values(0))]
        (method, tau), row = m.w2.idxmin(), m.loc[m.w2.idxmin()]
        ok = row.w2 <= cfm.w2.min() and row.mmd <= cfm.mmd.min()
        out.append(
            f"- {task}, best τ: {method} at τ = {tau:g}: W2 {row.w2:.3f}, MMD {row.mmd:.4f} "
            f"-> {'met' if ok else 'not met'} against the best CFM."
        )
    return out


def full_seeds(task_rows: pd.DataFrame, methods) -> np.ndarray:
    """Which of ``methods`` ran on every seed of the task (a mean over fewer is not compared)."""
    n = task_rows.groupby("method").seed.nunique()
    return np.asarray([n.get(m, 0) == task_rows.seed.nunique() for m in methods], dtype=bool)


def goals(df: pd.DataFrame) -> list[str]:
    """Per task: the best CaLMFlow against the best CFM (means over seeds), and N vs 1."""
    out = ["## Goals", ""]
    for task in dict.fromkeys(df.task):
        t = df[df.task == task]
        d = t.groupby("method", sort=False)[["w2", "mmd"]].mean()
        cfm = d[d.index.str.startswith("CFM")]
        calm = d[d.index.str.startswith("CaLMFlow")]
        calm = calm[full_seeds(t, calm.index)]  # means over fewer seeds are not comparable
        if cfm.empty or calm.empty:
            continue
        best = calm.w2.idxmin()
        ok = calm.w2[best] <= cfm.w2.min() and calm.mmd[best] <= cfm.mmd.min()
        out.append(
            f"- {task}: best {best}: W2 {calm.w2[best]:.3f}, MMD {calm.mmd[best]:.4f}; "
            f"best CFM W2 {cfm.w2.min():.3f}, MMD {cfm.mmd.min():.4f} -> "
            f"{'met' if ok else 'not met'} (both at most the best CFM's)."
        )
        out += more_trajectories(calm)
    return out


def more_trajectories(calm: pd.DataFrame) -> list[str]:
    """N trajectories vs 1 for every head and setting (e.g. ", EMA 0.995") run with both.

    Every N > 1 (independent and stratified sequences) is compared with the one-trajectory
    model of the same head and setting.
    """
    pattern = r"^CaLMFlow (\S+) \((\d+)((?: stratified)?) traj\.\)(.*)$"
    parts = calm.index.to_series().str.extract(pattern)
    out = []
    for (head, setting), group in parts.dropna().groupby([0, 3], sort=False):
        n = group[1].astype(int)
        if not (n == 1).any():
            continue
        one = calm.w2[n.index[n == 1][0]]
        for method in n.index[n > 1]:
            many, label = calm.w2[method], f"{n[method]}{group.loc[method, 2]} traj."
            out.append(
                f"  - {head} head{setting}: {label} W2 {many:.3f} vs 1 traj. {one:.3f} "
                f"-> more trajectories {'help' if many < one else 'do not help'}."
            )
    return out


def main(argv: list[str] | None = None) -> None:
    """Run the tasks (appending to ``generator_toys.jsonl``) and write the page."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tasks", nargs="+", default=list(TASKS), choices=list(TASKS))
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--heads", nargs="+", default=["deterministic", "flow"])
    parser.add_argument("--taus", nargs="+", type=float, default=[0.0, 0.25, 0.5, 1.0, 1.5])
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument(
        "--budget",
        choices=["default", "suite", "double"],
        default="default",
        help="CaLMFlow's epochs: train()'s default step budget, the suite's max_epochs, or "
        "twice the default",
    )
    parser.add_argument(
        "--head-hidden",
        type=int,
        default=128,
        help="CaLMFlow's head width (0: the paper architecture's 32)",
    )
    parser.add_argument(
        "--ema",
        type=float,
        default=None,
        help="EMA decay of the weights (default: none, as the page's runs; train()'s is 0.995)",
    )
    parser.add_argument(
        "--trajectories",
        nargs="+",
        choices=["one", "most"],
        default=["one", "most"],
        help="train CaLMFlow with one trajectory per sequence and/or the suite's most",
    )
    parser.add_argument(
        "--calibrate",
        action="store_true",
        help="choose a sampling head's τ with model.calibrate_temperature() on the targets",
    )
    parser.add_argument(
        "--sequence-targets",
        choices=["stratified", "independent"],
        default=None,
        help="CaLMFlow's sequence_targets (default: the package's)",
    )
    parser.add_argument(
        "--calmflow",
        default=None,
        metavar="KEY=VALUE,...",
        help="further CaLMFlow constructor keywords, e.g. ot_coupling=False (named in the method)",
    )
    parser.add_argument(
        "--chain",
        nargs="+",
        type=int,
        default=[],
        metavar="H",
        help="also score every model of more than one trajectory with predict(chain=H)",
    )
    parser.add_argument(
        "--floors",
        action="store_true",
        help="append only the gaussians tasks' mode-share floors (no model is trained)",
    )
    parser.add_argument("--quick", action="store_true", help="one epoch, tiny CFM (a smoke test)")
    parser.add_argument("--report-only", action="store_true")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    jsonl = args.out / "generator_toys.jsonl"
    if args.floors:
        tasks = [t for t in args.tasks if TASKS[t][1] is not None]
        run_jsonl(jsonl, args.seeds, tasks, mode_share_floors)
    elif not args.report_only:

        def run(task, seed):
            return run_task(
                task,
                seed,
                args.heads,
                args.taus,
                args.quick,
                args.budget,
                args.head_hidden or None,
                args.ema,
                tuple(args.trajectories),
                args.calibrate,
                args.sequence_targets,
                args.calmflow,
                tuple(args.chain),
            )

        run_jsonl(jsonl, args.seeds, args.tasks, run)
    notes = args.out / "generator_toys_notes.md"  # hand-written findings, when present
    page = markdown(read_jsonl(jsonl)) + ("\n" + notes.read_text() if notes.exists() else "")
    (args.out / "generator_toys.md").write_text(page)


if __name__ == "__main__":
    main()
