"""Checkpoints during training, resuming from them, and per-epoch torch seeds."""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

import lightning.pytorch as pl
import numpy as np
import torch

#: The file a resumed run starts from (Lightning's ``save_last``).
LAST_CHECKPOINT = "last.ckpt"


class EpochSeed(pl.Callback):
    """Seed torch at the first step of every training epoch from ``(seed, epoch)``.

    Every random draw of an epoch (path noise, a sampling head's noise) then depends only on
    the seed and the epoch, so a run resumed from a checkpoint draws what the uninterrupted
    run drew (Lightning does not restore the torch random state).
    """

    def __init__(self, seed: int):
        super().__init__()
        self.seed = int(seed)

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx: int) -> None:
        # at the epoch's first step rather than at its start: a resumed run does other work
        # with the random state between the two
        if batch_idx == 0:
            state = np.random.SeedSequence([self.seed, int(trainer.current_epoch)])
            torch.manual_seed(int(state.generate_state(1, dtype=np.uint64)[0]))


class EpochCheckpoint(pl.Callback):
    """Write ``last.ckpt`` (Lightning's full checkpoint) to ``checkpoint_dir`` every epoch.

    Saved at the end of each training epoch, after its validation, so the checkpoint holds
    every callback's state for the epoch (early stopping, :class:`BestWeights`). Not a
    ``ModelCheckpoint``: scvi-tools' trainer refuses those unless it adds its own.
    """

    def __init__(self, checkpoint_dir: str | Path):
        super().__init__()
        self.path = Path(checkpoint_dir) / LAST_CHECKPOINT

    def on_train_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        trainer.save_checkpoint(str(self.path))


def checkpoint_callback(checkpoint_dir: str | Path) -> pl.Callback:
    """The callback that writes ``checkpoint_dir/last.ckpt`` after every epoch."""
    return EpochCheckpoint(checkpoint_dir)


def resume_path(checkpoint_dir: str | Path) -> Path | None:
    """``last.ckpt`` of ``checkpoint_dir`` if it exists (``None``: start from scratch)."""
    path = Path(checkpoint_dir) / LAST_CHECKPOINT
    return path if path.is_file() else None


@contextlib.contextmanager
def weights_only_loads():
    """Every ``torch.load`` inside reads tensors and plain values only (no code runs).

    Lightning reads a checkpoint with ``weights_only=False`` unless told otherwise, and
    scvi-tools' runner does not pass the flag; torch's ``TORCH_FORCE_WEIGHTS_ONLY_LOAD``
    overrides it for the duration (the previous value is restored).
    """
    key = "TORCH_FORCE_WEIGHTS_ONLY_LOAD"
    old = os.environ.get(key)
    os.environ[key] = "1"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = old
