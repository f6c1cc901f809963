"""Do two result folders hold the same numbers?

    python -m benchmarks.compare DIR_A DIR_B [--rtol 1e-9]

Compares every ``*.csv`` of ``DIR_A`` with the file of the same name in ``DIR_B``, row by
row: text columns must be equal, numeric columns equal within ``rtol`` (relative; NaN equals
NaN), except the time columns (``*seconds*``, ``*_s``, ``time``, ``runtime``...), which
differ between any two runs. Prints the differing rows; the exit code is 1 on any
difference (a value, a column, a row count, a file missing from ``DIR_B``), else 0.
"""

from __future__ import annotations

import argparse
import re
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

#: Column names that hold timings (compared by nobody).
TIME_COLUMN = re.compile(r"seconds?|runtime|minutes|duration|(^|_)(s|time)$", re.IGNORECASE)


@dataclass(frozen=True)
class Difference:
    """One difference between two result files."""

    file: str
    what: str

    def __str__(self) -> str:
        return f"{self.file}: {self.what}"


def is_time_column(name: str) -> bool:
    """Whether a column holds a timing (not compared)."""
    return bool(TIME_COLUMN.search(name))


def close(a: np.ndarray, b: np.ndarray, rtol: float) -> np.ndarray:
    """Elementwise: equal, both NaN, or within ``rtol`` of the larger magnitude."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    with np.errstate(invalid="ignore"):
        within = np.abs(a - b) <= rtol * np.maximum(np.abs(a), np.abs(b))
    return (a == b) | (np.isnan(a) & np.isnan(b)) | within


def compare_frames(a: pd.DataFrame, b: pd.DataFrame, name: str, rtol: float) -> list[Difference]:
    """Differences of two tables with the same layout (rows compared in order)."""
    if list(a.columns) != list(b.columns):
        return [Difference(name, f"columns differ: {list(a.columns)} vs {list(b.columns)}")]
    if len(a) != len(b):
        return [Difference(name, f"{len(a)} rows vs {len(b)} rows")]
    bad = np.zeros(len(a), dtype=bool)
    cols = []
    for col in a.columns:
        if is_time_column(str(col)):
            continue
        numeric = pd.api.types.is_numeric_dtype(a[col]) and pd.api.types.is_numeric_dtype(b[col])
        if numeric:
            diff = ~close(a[col].to_numpy(), b[col].to_numpy(), rtol)
        else:
            diff = (a[col].astype(str) != b[col].astype(str)).to_numpy()
        if diff.any():
            cols.append(str(col))
            bad |= diff
    text = [str(c) for c in a.columns if not pd.api.types.is_numeric_dtype(a[c])]
    out = []
    for i in np.flatnonzero(bad):
        row_a, row_b = a.iloc[i], b.iloc[i]
        changed = [c for c in cols if not _same(row_a[c], row_b[c], rtol)]
        key = ", ".join(f"{c}={row_a[c]}" for c in text if c not in changed)
        what = "; ".join(f"{c}: {_py(row_a[c])!r} -> {_py(row_b[c])!r}" for c in changed)
        out.append(Difference(name, f"row {i} ({key}): {what}"))
    return out


def _py(x):
    """A plain Python value (``0.5``, not ``np.float64(0.5)``)."""
    return x.item() if isinstance(x, np.generic) else x


def _same(x, y, rtol: float) -> bool:
    if isinstance(x, int | float | np.number) and isinstance(y, int | float | np.number):
        return bool(close(np.array([x]), np.array([y]), rtol)[0])
    return str(x) == str(y)


def compare_dirs(dir_a: Path, dir_b: Path, rtol: float = 1e-9) -> list[Difference]:
    """Differences between every CSV of ``dir_a`` and its namesake in ``dir_b``."""
    files = sorted(Path(dir_a).glob("*.csv"))
    if not files:
        return [Difference(str(dir_a), "no CSV files")]
    out: list[Difference] = []
    for fa in files:
        fb = Path(dir_b) / fa.name
        if not fb.exists():
            out.append(Difference(fa.name, f"missing from {dir_b}"))
            continue
        out += compare_frames(pd.read_csv(fa), pd.read_csv(fb), fa.name, rtol)
    for fb in sorted(Path(dir_b).glob("*.csv")):
        if not (Path(dir_a) / fb.name).exists():
            out.append(Difference(fb.name, f"missing from {dir_a}"))
    return out


def main(argv: list[str] | None = None) -> int:
    """Compare two result folders; 1 on a difference, else 0."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.compare", description=__doc__.split("\n")[0]
    )
    parser.add_argument("dir_a", type=Path)
    parser.add_argument("dir_b", type=Path)
    parser.add_argument("--rtol", type=float, default=1e-9, help="relative tolerance")
    args = parser.parse_args(argv)
    diffs = compare_dirs(args.dir_a, args.dir_b, args.rtol)
    for d in diffs:
        print(d)
    n = len(list(args.dir_a.glob("*.csv")))
    verdict = f"{len(diffs)} difference(s)" if diffs else "identical"
    print(
        f"{verdict}: {n} CSV file(s) of {args.dir_a} vs {args.dir_b} (rtol {args.rtol:g}, "
        "time columns excluded)"
    )
    return 1 if diffs else 0


if __name__ == "__main__":
    sys.exit(main())
