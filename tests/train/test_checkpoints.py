"""Checkpoints: a run interrupted and resumed equals an uninterrupted one; no code runs."""

from __future__ import annotations

import pickle  # noqa: TID251  (only to plant a payload that must never be unpickled)

import numpy as np
import pytest
import torch

from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
TRAIN = dict(batch_size=64, n_steps_kl_warmup=20, enable_progress_bar=False, accelerator="cpu")


@pytest.fixture
def adata(kang_small):
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    return kang_small


def _weights(model):
    return {k: v.detach().clone() for k, v in model.module.state_dict().items()}


@pytest.mark.parametrize("extra", [{}, {"head": "flow", "path": "bridge", "sigma_min": 0.2}])
def test_resumed_run_equals_an_uninterrupted_one(adata, tiny, tmp_path, extra):
    whole = CaLMFlowModel(adata, **tiny, **extra)
    whole.train(max_epochs=4, checkpoint_dir=str(tmp_path / "a"), **TRAIN)
    assert (tmp_path / "a" / "last.ckpt").is_file()
    first = CaLMFlowModel(adata, **tiny, **extra)
    first.train(max_epochs=2, checkpoint_dir=str(tmp_path / "b"), **TRAIN)  # "interrupted"
    resumed = CaLMFlowModel(adata, **tiny, **extra)
    resumed.train(max_epochs=4, checkpoint_dir=str(tmp_path / "b"), resume=True, **TRAIN)
    a, b = _weights(whole), _weights(resumed)
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    assert resumed.training_summary["epochs"] == 4
    assert resumed.training_summary["best_epoch"] == whole.training_summary["best_epoch"]
    request = {"cell_type": ["B"], "condition": ["IFN-beta"]}
    np.testing.assert_allclose(
        whole.predict(request, n_cells=10).X, resumed.predict(request, n_cells=10).X, atol=1e-5
    )


def test_resume_without_a_checkpoint_starts_afresh_and_needs_a_folder(adata, tiny, tmp_path):
    model = CaLMFlowModel(adata, **tiny)
    model.train(max_epochs=1, checkpoint_dir=str(tmp_path / "new"), resume=True, **TRAIN)
    assert model.training_summary["epochs"] == 1
    with pytest.raises(ValueError, match="resume=True needs `checkpoint_dir`"):
        model.train(max_epochs=1, resume=True, **TRAIN)
    with pytest.raises(TypeError, match="`checkpoint_dir` must be a folder path"):
        model.train(max_epochs=1, checkpoint_dir=3, **TRAIN)


def test_a_planted_checkpoint_runs_no_code(adata, tiny, tmp_path):
    marker = tmp_path / "pwned"

    class _Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    folder = tmp_path / "ckpt"
    folder.mkdir()
    (folder / "last.ckpt").write_bytes(pickle.dumps({"state_dict": _Payload()}))
    model = CaLMFlowModel(adata, **tiny)
    with pytest.raises(Exception):  # noqa: B017  (refused: the unpickler allows no callables)
        model.train(max_epochs=1, checkpoint_dir=str(folder), resume=True, **TRAIN)
    assert not marker.exists()
