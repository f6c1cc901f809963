"""Distributed data-parallel training on CPU (gloo): two processes against one (slow).

Lightning's ``strategy="ddp"`` launches the other rank by running the script again, so the
training runs in a script of its own, in a subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent(
    """
    import json, os, sys
    import numpy as np
    import sccalmflow as scf
    from sccalmflow import CaLMFlowModel

    out, devices = sys.argv[1], int(sys.argv[2])
    adata = scf.datasets.synthetic_perturbation(
        n_cells=1400, n_genes=200, n_cell_types=4, n_perturbations=1, interaction=1.0, seed=0
    )
    held = ((adata.obs.cell_type == "type0") & (adata.obs.perturbation == "pert0")).to_numpy()
    train = adata[~held].copy()
    CaLMFlowModel.setup_anndata(train, **scf.datasets.synthetic_setup())
    model = CaLMFlowModel(
        train, n_pca=10, width=32, n_layers=1, n_heads=2, ffn=64, n_time_points=6,
        head_hidden=32, tokenizer_hidden=32,
    )
    seen = []
    inference = model.module.inference

    def spy(x0, x1):
        seen.append(x1[:, 0].detach().numpy().copy())
        return inference(x0, x1)

    model.module.inference = spy
    model.train(
        max_epochs=30, batch_size=32, validation_size=0, accelerator="cpu", devices=devices,
        strategy="ddp" if devices > 1 else "auto", enable_progress_bar=False,
    )
    rank = int(os.environ.get("LOCAL_RANK", 0))
    first_epoch = np.concatenate(seen[: model.training_summary["steps_per_epoch"]])
    np.save(f"{out}/seen_{devices}_{rank}.npy", first_epoch)
    if rank == 0:
        pred = model.predict({"cell_type": ["type0"], "perturbation": ["pert0"]}, n_cells=300)
        real = adata[held]
        ctrl = adata[((adata.obs.cell_type == "type0") & (adata.obs.perturbation == "control")).to_numpy()]
        delta_real = np.asarray(real.X.mean(0)).ravel() - np.asarray(ctrl.X.mean(0)).ravel()
        delta_pred = np.asarray(pred.X.mean(0)).ravel() - np.asarray(ctrl.X.mean(0)).ravel()
        top = np.argsort(-np.abs(delta_real))[:50]
        r = float(np.corrcoef(delta_real[top], delta_pred[top])[0, 1])
        json.dump({"pearson_delta_top50": r, **model.training_summary},
                  open(f"{out}/result_{devices}.json", "w"))
    """
)


def _run(tmp_path, devices: int) -> dict:
    script = tmp_path / "train_ddp.py"
    script.write_text(SCRIPT)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    done = subprocess.run(
        [sys.executable, str(script), str(tmp_path), str(devices)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert done.returncode == 0, f"{devices} process(es) failed:\n{done.stderr[-4000:]}"
    return json.loads((tmp_path / f"result_{devices}.json").read_text())


@pytest.mark.slow
def test_two_processes_share_the_epoch_and_learn_as_well_as_one(tmp_path):
    one = _run(tmp_path, 1)
    two = _run(tmp_path, 2)
    a, b = (np.load(tmp_path / f"seen_2_{r}.npy") for r in (0, 1))
    whole = np.load(tmp_path / "seen_1_0.npy")
    # each rank trained on its own half of the epoch's sequences (overlap: padding only)
    assert len(a) == len(b) and abs(len(a) + len(b) - len(whole)) <= 1
    rows = lambda x: {tuple(np.round(v, 5)) for v in x}  # noqa: E731
    identical_cells = len(whole) - len(rows(whole))  # e.g. cells with no counts
    assert len(rows(a) & rows(b)) <= 1 + identical_cells
    assert rows(a) | rows(b) == rows(whole)
    assert two["steps_per_epoch"] < one["steps_per_epoch"]
    assert two["epochs"] == one["epochs"] == 30
    assert two["pearson_delta_top50"] > 0.8
    assert two["pearson_delta_top50"] >= one["pearson_delta_top50"] - 0.05
