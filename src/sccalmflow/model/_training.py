"""Training of :class:`~sccalmflow.CaLMFlowModel` with Lightning (scvi-tools' TrainRunner)."""

from __future__ import annotations

import contextlib
import logging
import math
import warnings

import pandas as pd
import torch
from scvi.train import TrainRunner

from ..data import SequenceDataModule, stratified_split
from ..train import CaLMFlowTrainingPlan
from ..utils import torch_threads
from ._checks import check_train_arguments, resolve_validation_size

#: Lightning's INFO lines (accelerator availability, a logger advertisement) go to this logger.
_LIGHTNING_INFO_LOGGER = "lightning.pytorch.utilities.rank_zero"


@contextlib.contextmanager
def quiet_lightning():
    """Silence Lightning's third-party noise inside our ``train`` only.

    Its accelerator and logger-advertisement INFO lines, the deprecation of ``LeafSpec``
    (Lightning's code against current torch) and its note that an ``IterableDataset`` with
    ``__len__`` may be inaccurate with several workers (ours is used with one process).
    Everything else, and everything outside the block, is left as it is.
    """
    logger = logging.getLogger(_LIGHTNING_INFO_LOGGER)
    level = logger.level
    logger.setLevel(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*LeafSpec.*", category=FutureWarning)
            warnings.filterwarnings(
                "ignore",
                message=r"Your `IterableDataset` has `__len__` defined",
                category=UserWarning,
            )
            yield
    finally:
        logger.setLevel(level)


def numeric_history(history: dict[str, pd.DataFrame] | None) -> dict[str, pd.DataFrame]:
    """Training history frames with numeric columns (scvi-tools' logger stores objects)."""
    return {k: v.apply(pd.to_numeric, errors="coerce") for k, v in (history or {}).items()}


class TrainingMixin:
    """:meth:`train` of :class:`~sccalmflow.CaLMFlowModel`."""

    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_size: float | None = None,
        early_stopping: bool = False,
        early_stopping_patience: int = 10,
        n_steps_kl_warmup: int | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        ot_batch_size: int = 1024,
        train_size: float | None = None,
        n_threads: int | None = None,
        **trainer_kwargs,
    ) -> None:
        """Train with Lightning (scvi-tools' ``TrainRunner`` and ``TrainingPlan``).

        One epoch is one pass over the training cells: every cell is the target of one
        trajectory, with a new source, coupling and grouping each epoch.

        Parameters
        ----------
        max_epochs
            Default: enough epochs for about 2,000 optimiser steps (at least 20, at most 400).
        batch_size
            Sequences per step.
        lr
            AdamW learning rate.
        validation_size
            Fraction of each condition's cells held out to compute ``*_validation`` losses
            (0: none). Default 0.1 (or ``1 - train_size``).
        early_stopping
            Stop when ``reconstruction_loss_validation`` has not improved for
            ``early_stopping_patience`` epochs.
        early_stopping_patience
            Epochs without improvement before stopping.
        n_steps_kl_warmup
            Steps over which the KL weight rises linearly to ``kl_weight`` (default: a fifth
            of the training steps).
        accelerator, devices
            Passed to Lightning (``"cpu"``, ``"gpu"``, ``devices=2`` ...).
        plan_kwargs
            Extra arguments of :class:`~sccalmflow.train.CaLMFlowTrainingPlan`.
        ot_batch_size
            Cells per exact OT problem when ``ot_coupling`` is on.
        train_size
            scvi-tools' spelling: the fraction of each condition's cells trained on, i.e.
            ``validation_size = 1 - train_size`` (give one of the two).
        n_threads
            Torch CPU threads during training (default: ``sccalmflow.settings.n_threads``,
            1); your own setting is restored afterwards.
        **trainer_kwargs
            Passed to scvi-tools' ``Trainer`` / Lightning's ``Trainer``
            (``enable_progress_bar``, ``log_every_n_steps`` ...).
        """
        validation_size = resolve_validation_size(validation_size, train_size)
        check_train_arguments(locals())
        dm = self._data_module(batch_size, validation_size, ot_batch_size)
        steps_per_epoch = max(len(dm.train_dataloader().dataset), 1)
        if max_epochs is None:
            max_epochs = int(min(400, max(20, math.ceil(2000 / steps_per_epoch))))
        if n_steps_kl_warmup is None:
            n_steps_kl_warmup = max(1, (max_epochs * steps_per_epoch) // 5)
        plan_kwargs = {
            "lr": lr,
            "max_kl_weight": self.kl_weight,
            "n_steps_kl_warmup": n_steps_kl_warmup,
            **(plan_kwargs or {}),
        }
        plan = CaLMFlowTrainingPlan(self.module, **plan_kwargs)
        if dm.n_val:
            trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
        elif early_stopping:
            raise ValueError("early_stopping needs validation_size > 0.")
        trainer_kwargs.setdefault("log_every_n_steps", max(1, min(50, steps_per_epoch)))
        with quiet_lightning(), torch_threads(n_threads):
            runner = TrainRunner(
                self,
                training_plan=plan,
                data_splitter=dm,
                max_epochs=max_epochs,
                accelerator=accelerator,
                devices=devices,
                early_stopping=early_stopping,
                early_stopping_monitor="reconstruction_loss_validation",
                early_stopping_patience=early_stopping_patience,
                **trainer_kwargs,
            )
            self.module.train()  # a loaded or already trained model is in eval mode
            with torch.random.fork_rng():
                torch.manual_seed(self.seed)
                runner()
        self.module.eval()
        self.history_ = numeric_history(getattr(self, "history_", None))
        cells = self._cell_conditions()
        self.observed_values_ = {k: sorted(set(cells[k].astype(str))) for k in self.condition_keys}

    def _data_module(
        self, batch_size: int, validation_size: float, ot_batch_size: int
    ) -> SequenceDataModule:
        """Sequences of the registered cells: groups, prompts, source pools, split."""
        cells = self._cell_conditions()
        groups, group_frame = self.conditions.groups(cells)
        prompt_ids = self.prompt_encoder.encode(self.prompt_encoder.prompts(group_frame))
        pools = (
            self.conditions.source_pools(cells, groups, group_frame)
            if self.source == "control"
            else None
        )
        train_idx, val_idx = stratified_split(groups, validation_size, self.seed)
        return SequenceDataModule(
            self._registered_features(),
            groups,
            prompt_ids,
            source=self.source,
            source_pools=pools,
            n_trajectories=self.n_trajectories,
            batch_size=batch_size,
            ot_batch_size=ot_batch_size,
            ot_coupling=self.ot_coupling,
            train_idx=train_idx,
            val_idx=val_idx,
            seed=self.seed,
        )
