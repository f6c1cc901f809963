"""Typed records of what a suite measured, and the :class:`Recorder` that collects them.

A suite scores one method on one split at a time (:class:`Measurement`: several metric
values, one cost); the recorder turns each into tidy :class:`Row` s, one per metric, which
are the lines of ``<suite>.csv``.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import KW_ONLY, asdict, dataclass, fields
from pathlib import Path
from typing import Any

import pandas as pd


@dataclass(frozen=True)
class Row:
    """One line of ``<suite>.csv``: one metric of one method on one split."""

    suite: str
    split: str
    method: str
    setting: str
    metric: str
    space: str
    value: float
    train_seconds: float
    generate_seconds: float
    n_generated: int
    nfe: float
    seed: int


#: The CSV columns, in order.
COLUMNS = [f.name for f in fields(Row)]


@dataclass(frozen=True)
class Measurement:
    """What a suite measured for one method on one split.

    ``values``: ``(metric, space) -> value``; the cost fields are shared by all of them.
    """

    split: str
    method: str
    values: Mapping[tuple[str, str], float]
    _: KW_ONLY
    setting: str = ""
    train_s: float = math.nan
    gen_s: float = math.nan
    n_gen: int = 0
    nfe: float = math.nan


class Recorder:
    """Collects the rows of one suite (in the order they were measured)."""

    def __init__(self, suite: str, seed: int):
        self.suite = suite
        self.seed = seed
        self.rows: list[Row] = []

    def add(self, m: Measurement) -> None:
        """One row per metric of ``m``."""
        for (metric, space), value in m.values.items():
            self.rows.append(
                Row(
                    suite=self.suite,
                    split=m.split,
                    method=m.method,
                    setting=m.setting,
                    metric=metric,
                    space=space,
                    value=float(value),
                    train_seconds=float(m.train_s),
                    generate_seconds=float(m.gen_s),
                    n_generated=int(m.n_gen),
                    nfe=float(m.nfe),
                    seed=self.seed,
                )
            )

    def frame(self) -> pd.DataFrame:
        """The rows as a table with the CSV's columns."""
        return pd.DataFrame([asdict(r) for r in self.rows], columns=COLUMNS)


@dataclass
class SuiteResult:
    """What a suite hands to its markdown writer: the rows, the figures, its notes.

    ``notes`` is the suite's own typed record (e.g. the held-out types and the PCA check of
    ``kang-loo``).
    """

    recorder: Recorder
    figures: list[str]
    notes: Any = None

    def frame(self) -> pd.DataFrame:
        """The recorded rows as a table."""
        return self.recorder.frame()


def append_jsonl(path: Path, rows: list[dict]) -> None:
    """Append ``rows`` to a JSON-lines file (one run's records survive a later crash)."""
    with Path(path).open("a") as fh:
        for row in rows:
            fh.write(json.dumps(row) + "\n")


def read_jsonl(path: Path) -> list[dict]:
    """The records of a JSON-lines file (blank lines skipped)."""
    return [json.loads(line) for line in Path(path).read_text().splitlines() if line.strip()]


def add_run_arguments(parser, variants: list[str], out: Path) -> None:
    """The options every JSON-lines benchmark shares: seeds, variants, output, report only."""
    parser.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    parser.add_argument("--variants", nargs="+", default=variants)
    parser.add_argument("--out", type=Path, default=out)
    parser.add_argument("--report-only", action="store_true")


def scored_taus(row: dict) -> dict[float, dict]:
    """The ``"tau=<τ>"`` entries of one record as ``{τ: values}``, in the record's order."""
    return {float(key[4:]): val for key, val in row.items() if key.startswith("tau=")}


def tau_rows(rows: list[dict], keys: list[str]) -> list[dict]:
    """One flat row per ``"tau=<τ>"`` entry of each record: ``keys`` copied, ``tau``, values."""
    return [
        {**{k: r.get(k, float("nan")) for k in keys}, "tau": tau, **val}
        for r in rows
        for tau, val in scored_taus(r).items()
    ]


SOFTWARE = (
    "sccalmflow", "torch", "numpy", "scipy", "scikit-learn", "anndata", "scanpy", "scvi-tools",
    "lightning", "transformers", "POT", "torchcfm",
)  # fmt: skip


def software() -> dict[str, str]:
    """The versions of :data:`SOFTWARE` installed (``""``: not installed) and the git commit.

    Every JSON-lines row records them (``"software"``), so a number that moves between two
    runs can be traced to a release.
    """
    import subprocess
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for name in SOFTWARE:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = ""
    git = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"],
        capture_output=True, text=True, cwd=Path(__file__).parent, check=False,
    )  # fmt: skip
    found["commit"] = git.stdout.strip()
    return found


def run_jsonl(jsonl: Path, seeds, items, run) -> None:
    """``run(item, seed)`` for every seed and item, each result's rows appended to ``jsonl``.

    One torch thread, quiet Lightning (``configure_runtime``); prints each result and the
    minutes it all took. Each row also records :func:`software` (``"software"``).
    """
    import time

    from benchmarks.methods import configure_runtime

    configure_runtime()
    env = software()
    t0 = time.perf_counter()
    for seed in seeds:
        for item in items:
            rows = [{**row, "software": env} for row in run(item, seed)]
            append_jsonl(jsonl, rows)
            print(json.dumps(rows), flush=True)
    print(f"{(time.perf_counter() - t0) / 60:.1f} min", flush=True)
