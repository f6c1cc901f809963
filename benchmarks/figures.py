"""Every figure of the suites (PNG, Agg backend); each function returns the file names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

#: Method order of the kang-loo tables and bar chart.
KANG_ORDER = ["CaLMFlow", "Additive", "TrainMean", "Control", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"]


def _plt():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _savefig(fig, path: Path) -> None:
    fig.savefig(path, dpi=90)
    import matplotlib.pyplot as plt

    plt.close(fig)


def _clean(ax) -> None:
    ax.set_xticks([])
    ax.set_yticks([])


# ====================================================================== kang-loo
def kang_loo_r2(df: pd.DataFrame, out: Path) -> str:
    """Bars: top-100-DE R² (Pearson²) per held-out type and method."""
    plt = _plt()
    sel = df[(df.metric == "r2_pearson") & (df.space == "top100_de")]
    table = sel.pivot_table(index="split", columns="method", values="value", sort=False)
    table = table[[m for m in KANG_ORDER if m in table.columns]]
    fig, ax = plt.subplots(figsize=(9, 3.6))
    n_m = table.shape[1]
    w = 0.8 / n_m
    x = np.arange(len(table))
    for i, m in enumerate(table.columns):
        ax.bar(x + (i - (n_m - 1) / 2) * w, table[m].to_numpy(), w, label=m)
    ax.set_xticks(x, table.index, rotation=20, ha="right", fontsize=8)
    ax.set_ylabel("R² (Pearson²), top-100 DE")
    ax.set_ylim(0, 1)
    ax.set_title("Held-out IFN-beta cell types (Kang 2018)", fontsize=10)
    ax.legend(fontsize=7, ncol=4, loc="lower left")
    fig.tight_layout()
    name = "kang-loo_r2.png"
    _savefig(fig, out / name)
    return name


def kang_loo_pca(points: dict[str, dict[str, np.ndarray]], out: Path) -> str:
    """PC1/PC2 of generated vs real cells of one held-out type (CD14 Mono if it ran).

    ``points``: held-out type -> {"control", "real IFN-beta", method: 2-d points}.
    """
    plt = _plt()
    ct = "CD14 Mono" if "CD14 Mono" in points else next(iter(points))
    d = points[ct]
    panels = [k for k in ("CaLMFlow", "Additive", "CFM-otcfm") if k in d]
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.2 * len(panels), 3.1), sharex=True, sharey=True
    )
    for a, k in zip(np.atleast_1d(axes), panels):
        a.scatter(*d["control"].T, s=3, c="0.75", label="control", rasterized=True)
        a.scatter(*d["real IFN-beta"].T, s=3, c="tab:blue", label="real IFN-beta", rasterized=True)
        a.scatter(*d[k].T, s=3, c="tab:orange", alpha=0.5, label=k, rasterized=True)
        a.set_title(f"{k}: {ct}", fontsize=9)
        a.set_xlabel("PC1")
        a.legend(fontsize=6, markerscale=3)
    np.atleast_1d(axes)[0].set_ylabel("PC2")
    fig.tight_layout()
    name = "kang-loo_pca.png"
    _savefig(fig, out / name)
    return name


# ====================================================================== unconditional
def unconditional_pca(ref: np.ndarray, generated: dict[str, np.ndarray], out: Path) -> str:
    """PC1/PC2 of each method's generated cells over the real reference cells."""
    plt = _plt()
    names = list(generated)
    fig, axes = plt.subplots(
        1, len(names), figsize=(2.4 * len(names), 2.6), sharex=True, sharey=True
    )
    for a, name in zip(np.atleast_1d(axes), names):
        a.scatter(*ref[:, :2].T, s=2, c="0.7", rasterized=True)
        a.scatter(*generated[name][:, :2].T, s=2, c="tab:orange", alpha=0.5, rasterized=True)
        a.set_title(name, fontsize=8)
        _clean(a)
    np.atleast_1d(axes)[0].set_ylabel("PC2 (grey: real)")
    fig.tight_layout()
    name = "unconditional_pca.png"
    _savefig(fig, out / name)
    return name


# ====================================================================== gaussians
def gaussians_samples(split: str, dim: int, pts: dict[str, np.ndarray], out: Path) -> str:
    """One task's points on the plane of the two leading target PCs (``pts["source"]`` not shown)."""
    plt = _plt()
    mu = pts["target (real)"].mean(0)
    _, _, vt = np.linalg.svd(pts["target (real)"] - mu, full_matrices=False)
    show = [n for n in pts if n != "source"]
    fig, axes = plt.subplots(1, len(show), figsize=(2.3 * len(show), 2.5), sharex=True, sharey=True)
    for a, n in zip(np.atleast_1d(axes), show):
        p = (pts[n] - mu) @ vt[:2].T
        r = (pts["target (real)"] - mu) @ vt[:2].T
        a.scatter(*r.T, s=2, c="0.7", rasterized=True)
        if n != "target (real)":
            a.scatter(*p.T, s=2, c="tab:orange", alpha=0.5, rasterized=True)
        a.set_title(n, fontsize=8)
        _clean(a)
    fig.suptitle(f"{split} Gaussians in {dim}-d, 2 leading target PCs", fontsize=9)
    fig.tight_layout()
    name = "gaussians_samples.png"
    _savefig(fig, out / name)
    return name


# ====================================================================== moons
def moons_samples(source: np.ndarray, pts: dict[str, np.ndarray], out: Path) -> str:
    """Generated points of each model (not the T sweep) over the source points."""
    plt = _plt()
    show = [k for k in pts if "T=" not in k]
    fig, axes = plt.subplots(1, len(show), figsize=(2.2 * len(show), 2.4), sharex=True, sharey=True)
    for a, k in zip(np.atleast_1d(axes), show):
        a.scatter(*source.T, s=1, c="0.85", rasterized=True)
        a.scatter(
            *pts[k].T, s=1, c="tab:blue" if k == "target (real)" else "tab:orange", rasterized=True
        )
        a.set_title(k.replace("CaLMFlow ", "CaLMFlow\n"), fontsize=7)
        _clean(a)
    fig.tight_layout()
    name = "moons_samples.png"
    _savefig(fig, out / name)
    return name


def moons_sweeps(sweeps: pd.DataFrame, out: Path) -> str:
    """W2 and MMD against the temperature and against the number of time points."""
    plt = _plt()
    fig, axes = plt.subplots(1, 4, figsize=(11, 2.6))
    for j, metric in enumerate(("w2", "mmd")):
        a = axes[j]
        for model, d in sweeps[sweeps.sweep == "temperature"].groupby("model", sort=False):
            a.plot(d.x, d[metric], "o-", ms=3, label=model)
        a.set_xlabel("temperature τ")
        a.set_title(f"{metric.upper()} vs temperature", fontsize=8)
        a.legend(fontsize=6)
        a = axes[2 + j]
        d = sweeps[sweeps.sweep == "time points"]
        a.plot(d.x, d[metric], "o-", ms=3)
        a.set_xscale("log", base=2)
        a.set_xlabel("time points T")
        a.set_title(f"{metric.upper()} vs T (N=1)", fontsize=8)
    fig.tight_layout()
    name = "moons_sweeps.png"
    _savefig(fig, out / name)
    return name
