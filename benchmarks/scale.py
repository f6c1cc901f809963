"""Scale: set-up, PCA, training and generation from 10k to 1M synthetic cells on disk.

For each size a synthetic screen (``scf.datasets.synthetic_perturbation(path=...)``, 6 cell
types x 2 perturbations x 2 doses, 2,000 genes, CSR ``.h5ad``) is written once to
``--data-dir`` (a separate process: its memory does not count), then one child process per
size opens it backed (``X`` stays on disk), registers it, builds the default model (PCA fitted
on a stratified subsample of at most ``pca_max_cells`` cells, every cell projected in row
blocks), trains one epoch (more at small sizes, until the timed window of steps is covered)
and predicts ``--predict`` cells straight to an ``.h5ad`` (``predict(out=...)``). The child
reports the time of each phase and the peak resident memory of the whole process
(``ru_maxrss``) after each.

Training throughput is measured over a fixed window of steps (``--warmup`` steps skipped,
then ``--steps`` timed), so it compares the cost of a step at every size; the whole epoch's
cells/s (with the epoch's draws, OT coupling and validation) is reported beside it.

    python benchmarks/scale.py                                # 10k, 100k, 1M (about 40 min)
    python benchmarks/scale.py --sizes 10000 100000 --out -   # quicker, print only
"""

from __future__ import annotations

import argparse
import json
import math
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

DEFAULT_SIZES = (10_000, 100_000, 1_000_000)
RESULTS = Path(__file__).parent / "results"
SCREEN = dict(n_genes=2000, n_cell_types=6, n_perturbations=2, doses=(0.1, 1.0), seed=0)


def _peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def data_path(data_dir: Path, n_cells: int) -> Path:
    """Where the screen of ``n_cells`` cells is (or will be) stored."""
    return data_dir / f"screen_{n_cells}x{SCREEN['n_genes']}.h5ad"


def write_screen(path: Path, n_cells: int) -> dict:
    """Write the screen (child process); return its timing and size."""
    import sccalmflow as scf

    t0 = time.perf_counter()
    adata = scf.datasets.synthetic_perturbation(
        n_cells=n_cells, **SCREEN, library_size=1000.0, keep_counts=False, path=path
    )
    seconds = time.perf_counter() - t0
    nnz = int(adata.X.group["data"].shape[0])
    adata.file.close()
    info = {"write_s": seconds, "nnz": nnz, "file_gib": path.stat().st_size / 2**30}
    path.with_suffix(".json").write_text(json.dumps(info))
    return info


class _StepTimer:
    """A Lightning callback timing steps ``warmup`` to ``warmup + steps`` (and the epochs)."""

    def __init__(self, warmup: int, steps: int):
        import lightning.pytorch as pl

        class Timer(pl.Callback):
            def __init__(cb):
                cb.step, cb.t_start, cb.t_stop, cb.epoch_s = 0, None, None, []
                cb._epoch_t0 = None

            def on_train_epoch_start(cb, trainer, module):
                cb._epoch_t0 = time.perf_counter()

            def on_train_epoch_end(cb, trainer, module):
                cb.epoch_s.append(time.perf_counter() - cb._epoch_t0)

            def on_train_batch_start(cb, trainer, module, batch, batch_idx):
                if cb.step == warmup:
                    cb.t_start = time.perf_counter()

            def on_train_batch_end(cb, trainer, module, outputs, batch, batch_idx):
                cb.step += 1
                if cb.step == warmup + steps:
                    cb.t_stop = time.perf_counter()

        self.callback = Timer()


def run_size(path: Path, n_cells: int, args) -> dict:
    """Child process: set up, PCA, train, predict to disk; times and peak memory."""
    import warnings

    import numpy as np

    import sccalmflow as scf

    warnings.filterwarnings("ignore")
    t0 = time.perf_counter()
    _ = scf.CaLMFlowModel  # the lazy imports (torch, scvi-tools, Lightning) are not set-up
    out: dict = {"n_cells": n_cells, "import_s": time.perf_counter() - t0}
    out["rss_start_mib"] = _peak_mib()
    t0 = time.perf_counter()
    adata = scf.data.read_backed(path)
    scf.CaLMFlowModel.setup_anndata(adata, **scf.datasets.synthetic_setup(doses=True))
    out.update(setup_s=time.perf_counter() - t0, rss_setup_mib=_peak_mib())
    t0 = time.perf_counter()
    model = scf.CaLMFlowModel(adata, seed=0)
    model.get_pca()  # every cell's features (the data module's input), computed once
    out.update(pca_s=time.perf_counter() - t0, rss_pca_mib=_peak_mib())
    batch = args.batch_size
    n_train = round(n_cells * 0.9)
    steps_per_epoch = math.ceil(n_train / batch)
    epochs = max(1, math.ceil((args.warmup + args.steps) / steps_per_epoch))
    timer = _StepTimer(args.warmup, args.steps).callback
    t0 = time.perf_counter()
    model.train(
        max_epochs=epochs,
        batch_size=batch,
        early_stopping=False,
        enable_progress_bar=False,
        accelerator="cpu",
        callbacks=[timer],
    )
    train_s = time.perf_counter() - t0
    cells_per_step = batch * model.n_trajectories
    out.update(
        train_s=train_s,
        epochs=epochs,
        steps=timer.step,
        train_cells_per_s=cells_per_step * args.steps / (timer.t_stop - timer.t_start),
        epoch_cells_per_s=n_train / timer.epoch_s[0],
        first_epoch_s=timer.epoch_s[0],
        rss_train_mib=_peak_mib(),
    )
    obs = adata.obs[["cell_type", "perturbation", "dose"]].astype(str).drop_duplicates()
    obs = obs[obs.perturbation != "control"].reset_index(drop=True)
    conditions = {k: obs[k].tolist() for k in obs}
    per = math.ceil(args.predict / len(obs))
    target = Path(args.tmp) / f"pred_{n_cells}.h5ad"
    target.unlink(missing_ok=True)
    t0 = time.perf_counter()
    pred = model.predict(conditions, n_cells=per, out=target)
    predict_s = time.perf_counter() - t0
    out.update(
        predict_cells=int(pred.n_obs),
        predict_s=predict_s,
        predict_cells_per_s=pred.n_obs / predict_s,
        rss_predict_mib=_peak_mib(),
        pred_finite=bool(np.isfinite(pred.X[:1000]).all()),
    )
    pred.file.close()
    target.unlink(missing_ok=True)
    out["peak_rss_mib"] = _peak_mib()
    return out


def _child(cmd: list[str]) -> dict:
    env = {**os.environ, "PYTHONWARNINGS": "ignore"}
    res = subprocess.run(
        [sys.executable, __file__, *cmd], capture_output=True, text=True, env=env, check=False
    )
    if res.returncode:
        raise RuntimeError(f"{cmd} failed:\n{res.stderr[-4000:]}")
    return json.loads(res.stdout.strip().splitlines()[-1])


def table(rows: list[dict]) -> str:
    """The markdown table of the results, with the 1M / 10k throughput ratios."""
    head = (
        "| cells | nnz | write s | set-up s | PCA s | train cells/s (steps) | epoch cells/s | "
        "first epoch s | predict cells/s | peak RSS MiB (set-up / PCA / train / predict) |"
    )
    lines = [head, "|" + "---|" * 10]
    for r in rows:
        lines.append(
            f"| {r['n_cells']:,} | {r.get('nnz', 0):,} | {r.get('write_s', float('nan')):.0f} | "
            f"{r['setup_s']:.1f} | {r['pca_s']:.1f} | {r['train_cells_per_s']:,.0f} | "
            f"{r['epoch_cells_per_s']:,.0f} | {r['first_epoch_s']:.0f} | "
            f"{r['predict_cells_per_s']:,.0f} | {r['rss_setup_mib']:,.0f} / "
            f"{r['rss_pca_mib']:,.0f} / {r['rss_train_mib']:,.0f} / {r['rss_predict_mib']:,.0f} |"
        )
    if len(rows) > 1:
        small, big = rows[0], rows[-1]
        lines.append("")
        for key, name in (
            ("train_cells_per_s", "training (timed steps)"),
            ("epoch_cells_per_s", "training (whole first epoch)"),
            ("predict_cells_per_s", "generation"),
        ):
            lines.append(
                f"- {name} throughput at {big['n_cells']:,} / at {small['n_cells']:,} cells: "
                f"{big[key] / small[key]:.2f}"
            )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    """Run the sizes (one child process each) and write the table."""
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", type=int, nargs="+", default=list(DEFAULT_SIZES))
    p.add_argument("--data-dir", default="/tmp/sccalmflow_scale")
    p.add_argument("--tmp", default=None, help="where predictions are written (default: data-dir)")
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--steps", type=int, default=200)
    p.add_argument("--predict", type=int, default=100_000)
    p.add_argument("--out", default=str(RESULTS / "scale.md"), help="'-': print only")
    p.add_argument("--_write", type=int, help=argparse.SUPPRESS)
    p.add_argument("--_run", type=int, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    data_dir = Path(args.data_dir)
    args.tmp = args.tmp or str(data_dir)
    if args._write is not None:
        print(json.dumps(write_screen(data_path(data_dir, args._write), args._write)))
        return
    if args._run is not None:
        print(json.dumps(run_size(data_path(data_dir, args._run), args._run, args)))
        return
    data_dir.mkdir(parents=True, exist_ok=True)
    common = ["--data-dir", str(data_dir), "--tmp", args.tmp, "--batch-size", str(args.batch_size)]
    common += ["--warmup", str(args.warmup), "--steps", str(args.steps)]
    common += ["--predict", str(args.predict)]
    rows = []
    for n in args.sizes:
        written = {}
        if not data_path(data_dir, n).exists():
            written = _child(["--_write", str(n), *common])
            print(f"wrote {n:,} cells: {written}", flush=True)
        else:  # written by an earlier run
            written = json.loads(data_path(data_dir, n).with_suffix(".json").read_text())
        row = {**written, **_child(["--_run", str(n), *common])}
        print(json.dumps(row), flush=True)
        rows.append(row)
    import torch

    header = (
        f"# benchmarks/scale.py ({time.strftime('%Y-%m-%d')}, {os.cpu_count()} CPU cores, "
        f"torch {torch.__version__}, 1 torch thread, default model, batch {args.batch_size}, "
        f"timed steps {args.warmup}..{args.warmup + args.steps}, {args.predict:,} cells "
        "predicted to .h5ad)\n\n"
    )
    text = header + table(rows) + "\n"
    print(text)
    if args.out != "-":
        Path(args.out).write_text(text)
        with open(Path(args.out).with_suffix(".jsonl"), "a") as fh:
            for row in rows:
                fh.write(json.dumps(row) + "\n")


if __name__ == "__main__":
    main()
