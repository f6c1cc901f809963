"""Which torch thread count to use inside ``train`` and ``predict`` (a benchmark, not a test).

Trains the default CaLMFlow model on the bundled Kang data for a fixed number of epochs and
generates 5,000 cells, once per thread setting (``n_threads`` = 1 and 2, and torch's own
default), alone and while a second CPU-bound process runs (a Python busy loop, as another
user's job on a shared machine). Each run is a fresh subprocess. Prints seconds and the ratio
to the best setting of the same condition; the package default (``sccalmflow.settings``)
should stay within 1.5x of the best in both.

    python benchmarks/threads.py [--epochs 3] [--n-cells 5000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/threads.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"


def _child(n_threads: str, epochs: int, n_cells: int) -> None:
    """Time one training and one generation with ``n_threads`` ("torch": torch's default)."""
    import sccalmflow as scf

    scf.settings.n_threads = None if n_threads == "torch" else int(n_threads)
    adata = scf.datasets.kang2018()
    scf.CaLMFlowModel.setup_anndata(adata, **scf.datasets.kang2018_setup())
    model = scf.CaLMFlowModel(adata)
    t0 = time.perf_counter()
    model.train(max_epochs=epochs, enable_progress_bar=False, accelerator="cpu")
    train_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=n_cells)
    predict_s = time.perf_counter() - t0
    print(json.dumps({"train_s": train_s, "predict_s": predict_s}))


def _run(n_threads: str, epochs: int, n_cells: int) -> dict:
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    out = subprocess.run(
        [sys.executable, __file__, "--child", n_threads, str(epochs), str(n_cells)],
        capture_output=True,
        text=True,
        check=True,
        env=env,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def _busy() -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-c", "while True: pass"])


def main(argv: list[str] | None = None) -> None:
    """Measure every thread setting alone and beside a busy process; print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--n-cells", type=int, default=5000)
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child:
        _child(args.child[0], int(args.child[1]), int(args.child[2]))
        return
    import pandas as pd

    from benchmarks.report import md_table

    rows = []
    for load in ("alone", "busy"):
        busy = _busy() if load == "busy" else None
        try:
            for setting in ("1", "2", "torch"):
                res = _run(setting, args.epochs, args.n_cells)
                rows.append({"machine": load, "n_threads": setting, **res})
                print(rows[-1], flush=True)
        finally:
            if busy is not None:
                busy.kill()
    df = pd.DataFrame(rows)
    for col in ("train_s", "predict_s"):
        best = df.groupby("machine")[col].transform("min")
        df[col.replace("_s", "_vs_best")] = df[col] / best
    text = (
        f"# Thread count inside train/predict ({os.cpu_count()} CPUs visible, "
        f"{args.epochs} training epochs on Kang, {args.n_cells} cells generated)\n\n"
        + md_table(df.round(2))
        + "\n\n`torch` = torch's default thread count (all cores). `busy` = a second process "
        "runs a Python busy loop on one core throughout.\n"
    )
    print(text)
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "threads.md").write_text(text)


if __name__ == "__main__":
    main()
