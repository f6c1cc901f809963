"""The suites, one module each.

Every suite module has ``run(cfg, out, seed) -> SuiteResult`` and
``markdown(result, cfg, mode, runtime) -> str``; :func:`run_suite` runs one and writes its
files.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import pandas as pd

from ..config import RESULTS, get_config
from . import gaussians, kang_loo, moons, unconditional

#: Suite name -> its module.
SUITE_MODULES: dict[str, ModuleType] = {
    "kang-loo": kang_loo,
    "unconditional": unconditional,
    "gaussians": gaussians,
    "moons": moons,
}


def run_suite(
    suite: str,
    mode: str = "quick",
    out: str | Path = RESULTS,
    seed: int = 0,
    overrides: Mapping[str, Any] | None = None,
) -> pd.DataFrame:
    """Run one suite and write ``<out>/<suite>.csv``, ``.md`` and figures.

    ``mode``: ``"full"``, ``"quick"`` (< 5 min on 2 cores) or ``"tiny"`` (seconds; for the
    tests). ``overrides`` replace fields of the mode's configuration
    (:mod:`benchmarks.config`).
    """
    cfg = get_config(suite, mode, overrides)
    module = SUITE_MODULES[suite]
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    result = module.run(cfg, out, seed)
    runtime = time.perf_counter() - t0
    df = result.frame()
    df.to_csv(out / f"{suite}.csv", index=False)
    (out / f"{suite}.md").write_text(module.markdown(result, cfg, mode, runtime))
    print(
        f"[{suite}] {mode} run done in {runtime / 60:.1f} min -> {out / suite}.csv/.md", flush=True
    )
    return df
