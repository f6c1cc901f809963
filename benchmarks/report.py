"""Markdown for the result pages: number formatting, tables, the machine line, the speed section."""

from __future__ import annotations

import os
import platform
from typing import Any

import numpy as np
import pandas as pd

from .records import Recorder


def fmt(x: Any, digits: int = 4) -> str:
    """A table cell: strings as they are, "–" for missing, 4 significant digits."""
    if isinstance(x, str):
        return x
    if x is None or (isinstance(x, float) and not np.isfinite(x)):
        return "–"
    x = float(x)
    if x == 0:
        return "0"
    if abs(x) >= 1000 or abs(x) < 1e-3:
        return f"{x:.{digits - 1}e}"
    return f"{x:.{digits}g}" if abs(x) < 1 else f"{x:.{max(digits - 1, 1)}g}"


def md_table(df: pd.DataFrame) -> str:
    """A markdown table (without pandas' optional ``tabulate``)."""
    cols = [str(c) for c in df.columns]
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join(["---"] * len(cols)) + "|"]
    for _, row in df.iterrows():
        lines.append("| " + " | ".join(fmt(v) for v in row.to_numpy()) + " |")
    return "\n".join(lines)


def mode_tag(mode: str) -> str:
    """Title suffix of a page not made by a full run."""
    return "" if mode == "full" else f" — {mode.upper()} run (small budgets, not the benchmark)"


def machine() -> str:
    """The machine and the torch threads the run used."""
    import torch

    return (
        f"{platform.machine()}, {os.cpu_count()} CPUs visible, torch {torch.__version__} with "
        f"{torch.get_num_threads()} thread(s), OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}"
    )


def speed_section(speed: list[str], runtime: float, figs: list[str]) -> list[str]:
    """The closing lines of every suite page: speed notes, runtime, figures."""
    return [
        "",
        "## Speed",
        "",
        *[f"- {line}" for line in speed],
        f"- Total suite runtime: {runtime / 60:.1f} min on {machine()}.",
        "",
        *[f"![{f}]({f})" for f in figs],
        "",
    ]


def speed_line(rec: Recorder, calm_method: str, cfm_method: str = "CFM-otcfm") -> str:
    """CaLMFlow vs CFM (dopri5) generation time for the same numbers of cells."""
    df = rec.frame().drop_duplicates(["split", "method", "setting"])
    c = df[(df.method == calm_method)]
    f = df[(df.method == cfm_method)]
    if c.empty or f.empty:
        return ""
    merged = c.merge(f, on=["split", "n_generated"], suffixes=("_c", "_f"))
    merged = merged.drop_duplicates(["split", "setting_c"]).drop_duplicates("split")
    if merged.empty:
        return ""
    tc, tf = merged.generate_seconds_c.sum(), merged.generate_seconds_f.sum()
    n = int(merged.n_generated.sum())
    nfe = merged.nfe_f.mean()
    line = (
        f"Generation speed, {n:,} cells in total: {calm_method} {tc:.2f} s "
        f"({n / tc:,.0f} cells/s) vs {cfm_method} dopri5 {tf:.2f} s ({n / tf:,.0f} cells/s, "
        f"mean NFE {nfe:.0f}) -> CaLMFlow is {tf / tc:.2f}x {'faster' if tf > tc else 'as fast (slower)'}"
    )
    print(line, flush=True)
    return line


def mean_sd(df: pd.DataFrame, by: list[str], cols: list[str], count: str = "runs") -> pd.DataFrame:
    """``mean ± sd`` of ``cols`` over the rows of each group of ``by``, and their number.

    A group with one row shows the mean alone; a column with no value shows ``–``.
    """
    g = df.groupby(by, sort=False)[cols]
    mean, sd = g.mean(), g.std()
    out = mean.astype(object)
    for c in cols:
        out[c] = [
            "–"
            if not np.isfinite(a)
            else f"{a:.4g}"
            if not np.isfinite(b)
            else f"{a:.4g} ± {b:.2g}"
            for a, b in zip(mean[c], sd[c], strict=True)
        ]
    out[count] = g.size()
    return out.reset_index()
