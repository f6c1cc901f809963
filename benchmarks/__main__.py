"""``python -m benchmarks --suite NAME [--quick] [--out DIR] [--seed N] [--calmflow ...] [--train ...] [--cfm ...]``."""

from __future__ import annotations

import argparse
import os

import benchmarks
from benchmarks.config import RESULTS, SUITES

#: Thread settings of a benchmark run; they must be set before torch / numba load.
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")


def one_thread_env() -> None:
    """One thread for every numerical library (numba's OpenMP layer would reset torch's)."""
    for var in THREAD_VARS:
        os.environ.setdefault(var, "1")


def parser() -> argparse.ArgumentParser:
    """The command line of ``python -m benchmarks`` (and ``benchmarks/run.py``)."""
    p = argparse.ArgumentParser(
        prog="python -m benchmarks", description=benchmarks.__doc__.split("\n")[0]
    )
    p.add_argument("--suite", required=True, choices=[*SUITES, "all"])
    p.add_argument("--quick", action="store_true", help="small budgets (< 5 min per suite)")
    p.add_argument("--out", default=str(RESULTS), help="default: benchmarks/results")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--calmflow",
        default=None,
        metavar="KEY=VALUE,...",
        help="CaLMFlow constructor keywords on top of the suite's, e.g. head=gmm",
    )
    p.add_argument(
        "--train",
        default=None,
        metavar="KEY=VALUE,...",
        help="CaLMFlow train() keywords on top of the suite's, e.g. ema_decay=0.995",
    )
    p.add_argument(
        "--cfm",
        default=None,
        metavar="KEY=VALUE,...",
        help="the CFM baselines' budget on top of the suite's, e.g. n_steps=3000 (CFMBudget fields)",
    )
    return p


def suite_overrides(args: argparse.Namespace, suite: str, mode: str) -> dict | None:
    """The suite's CaLMFlow keywords, ``train()`` keywords and CFM budget, the command line's on top."""
    import dataclasses

    from benchmarks.config import get_config
    from benchmarks.generator import parse_variant

    config = get_config(suite, mode)
    overrides = {}
    for name in ("calmflow", "train"):
        if getattr(args, name):
            given = parse_variant(getattr(args, name))
            overrides[name] = {**getattr(config, name), **given}
    if args.cfm:
        budget = config.cfm
        fields = {f.name for f in dataclasses.fields(budget)}
        given = parse_variant(args.cfm)
        if unknown := sorted(set(given) - fields):
            raise SystemExit(f"--cfm: unknown field(s) {unknown}; choose from {sorted(fields)}")
        overrides["cfm"] = dataclasses.replace(budget, **given)
    return overrides or None


def main(argv: list[str] | None = None) -> None:
    """Run the suites the command line asks for."""
    args = parser().parse_args(argv)
    # the heavy imports (torch, scanpy) come after the command line is read
    from benchmarks.methods import configure_runtime
    from benchmarks.suites import run_suite

    configure_runtime()
    mode = "quick" if args.quick else "full"
    for suite in SUITES if args.suite == "all" else [args.suite]:
        run_suite(suite, mode, args.out, args.seed, suite_overrides(args, suite, mode))


if __name__ == "__main__":
    one_thread_env()
    main()
