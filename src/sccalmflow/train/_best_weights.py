"""Keep the weights of the best validation epoch and put them back when training ends."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import torch


class BestWeights(pl.Callback):
    """Restore the module's weights from the epoch with the lowest ``monitor`` value.

    The weights are copied (to the CPU) when each validation epoch starts, so the copy is of
    the weights that are validated: with a weight-averaging callback placed before this one
    (Lightning's :class:`~lightning.pytorch.callbacks.WeightAveraging`, which swaps the
    averaged weights in for validation; ``train(ema_decay=...)`` adds one), the averaged ones.
    The copy is kept when the validation improves on the best value so far; at the end of
    training it is loaded back, so an early-stopped run (or one that over-fitted in its last
    epochs) ends at its best validation epoch.

    Parameters
    ----------
    monitor
        The validation metric to minimise (a key of ``trainer.callback_metrics``).

    Attributes
    ----------
    best_epoch
        The (0-based) epoch of the restored weights, ``None`` before any validation.
    best_score
        Its ``monitor`` value.
    """

    def __init__(self, monitor: str = "mean_error_validation"):
        super().__init__()
        self.monitor = monitor
        self.best_epoch: int | None = None
        self.best_score = math.inf
        self._state: dict[str, torch.Tensor] | None = None
        self._validated: dict[str, torch.Tensor] | None = None

    def on_validation_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if trainer.sanity_checking:
            return
        self._validated = {
            k: v.detach().to("cpu", copy=True) for k, v in pl_module.module.state_dict().items()
        }

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        validated, self._validated = self._validated, None
        if trainer.sanity_checking or self.monitor not in trainer.callback_metrics:
            return
        score = float(trainer.callback_metrics[self.monitor])
        if validated is not None and math.isfinite(score) and score < self.best_score:
            self.best_score = score
            self.best_epoch = int(trainer.current_epoch)
            self._state = validated

    def state_dict(self) -> dict:
        """The best epoch, score and weights (kept in a checkpoint, so a resumed run has them)."""
        return {"best_epoch": self.best_epoch, "best_score": self.best_score, "state": self._state}

    def load_state_dict(self, state_dict: dict) -> None:
        """Take back what :meth:`state_dict` gave (when Lightning resumes from a checkpoint)."""
        self.best_epoch = state_dict["best_epoch"]
        self.best_score = float(state_dict["best_score"])
        self._state = state_dict["state"]

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        if self._state is not None:
            pl_module.module.load_state_dict(self._state)
