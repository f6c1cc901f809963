"""Training of :class:`~sccalmflow.CaLMFlowModel` with Lightning (scvi-tools' TrainRunner)."""

from __future__ import annotations

import contextlib
import logging
import math
import warnings
from collections.abc import Sequence

import pandas as pd
import torch
from lightning.pytorch.callbacks import WeightAveraging
from scvi.train import TrainRunner

from ..data import SequenceDataModule, stratified_split
from ..module import MEAN_ERROR
from ..train import (
    BestWeights,
    CaLMFlowTrainingPlan,
    EpochSeed,
    checkpoint_callback,
    resume_path,
    weights_only_loads,
)
from ..utils import check_int, check_seed, check_sequence, torch_threads
from ._checks import check_train_arguments, resolve_max_epochs, resolve_validation_size

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


#: Separates the model's description from the last training's line in its summary string.
TRAINED_SEPARATOR = "; trained "


def _finite_or(value, default: int) -> int:
    """``value`` if finite (Lightning uses ``inf`` when it does not know), else ``default``."""
    try:
        return int(value) if math.isfinite(value) else int(default)
    except (TypeError, ValueError):
        return int(default)


def training_line(summary: dict) -> str:
    """``"84 of at most 87 epochs (early stopping), weights of epoch 80"``."""
    line = f"{summary['epochs']} of at most {summary['max_epochs']} epochs"
    if summary["early_stopping"]:
        line += " (early stopping)"
    if summary.get("best_epoch") is not None:
        line += f", weights of epoch {summary['best_epoch'] + 1}"
    if summary.get("ema_decay") is not None:
        line += f", EMA of the weights (decay {summary['ema_decay']})"
    return line


def ema_callback(decay: float) -> WeightAveraging:
    """Lightning's weight averaging, after every step: a bias-corrected EMA of the parameters.

    Update ``t`` (1 the first) moves the average towards the weights by
    ``(1 - decay) / (1 - decay**t)``, Adam's bias correction: the average is the
    ``decay``-weighted mean of the steps taken so far, not, as a plain EMA started at the
    first weights (``get_ema_multi_avg_fn``), one that keeps ``decay**t`` of them (half after
    140 steps at 0.995: a short training ended near its random start, below Additive in the
    language tutorial, R² 0.81 instead of 0.91). After a few thousand steps the two agree.
    Not the buffers (the PCA); ``lerp`` leaves a constant exactly as it is (frozen backbone
    weights stay bit for bit).
    """

    @torch.no_grad()
    def update(averaged: list, current: list, n_averaged: torch.Tensor) -> None:
        t = int(n_averaged) + 1
        torch._foreach_lerp_(averaged, current, (1.0 - decay) / (1.0 - decay**t))

    return WeightAveraging(use_buffers=False, multi_avg_fn=update)


def with_callbacks(
    trainer_kwargs: dict,
    seed: int,
    ema_decay: float | None,
    best: BestWeights | None,
    checkpoint_dir: str | None,
    resume: bool,
) -> dict:
    """``trainer_kwargs`` with the user's callbacks, then ours (and a checkpoint to resume)."""
    trainer_kwargs = dict(trainer_kwargs)
    user_callbacks = list(trainer_kwargs.get("callbacks", []))
    if ema_decay is not None and any(isinstance(c, WeightAveraging) for c in user_callbacks):
        raise ValueError(
            "`callbacks` already holds a weight-averaging callback and `ema_decay` adds "
            "another: pass ema_decay=None to use your own."
        )
    # the average before BestWeights: it swaps the average in for validation (BestWeights
    # copies the weights validated) and copies it in at the end (then BestWeights' copy)
    callbacks = [EpochSeed(seed)]
    if ema_decay is not None:
        callbacks.append(ema_callback(ema_decay))
    callbacks += [best] if best is not None else []
    if checkpoint_dir is not None:
        callbacks.append(checkpoint_callback(checkpoint_dir))
        if resume and resume_path(checkpoint_dir) is not None:
            trainer_kwargs["ckpt_path"] = str(resume_path(checkpoint_dir))
    elif resume:
        raise ValueError("resume=True needs `checkpoint_dir`, the folder of the checkpoints.")
    trainer_kwargs["callbacks"] = [*user_callbacks, *callbacks]
    return trainer_kwargs


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
        early_stopping: bool | None = None,
        early_stopping_patience: int = 10,
        restore_best: bool | None = None,
        ema_decay: float | None = 0.995,
        n_steps_kl_warmup: int | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        ot_batch_size: int = 1024,
        train_size: float | None = None,
        n_threads: int | None = None,
        checkpoint_dir: str | None = None,
        resume: bool = False,
        **trainer_kwargs,
    ) -> None:
        """Train with Lightning (scvi-tools' ``TrainRunner`` and ``TrainingPlan``).

        One epoch is one pass over the training cells: every cell is the target of one
        trajectory, with a new source, coupling and grouping each epoch.

        At the end, a model built with ``temperature=None`` (the default) whose head samples
        sets :attr:`temperature` to the τ of
        :data:`~sccalmflow.model.CALIBRATION_TEMPERATURES` whose generated cells have the
        lowest MMD to the validation cells of the conditions it generates (from cells, not
        the control ones; to at most 2,000 training cells without a validation split;
        :meth:`calibrate_temperature`); the choice is in ``temperature_calibration_`` and
        :attr:`training_summary` (``"temperature"``). The indices of the split are
        ``train_indices`` and ``validation_indices``.

        Parameters
        ----------
        max_epochs
            Default: from the data size (:func:`~sccalmflow.train.default_max_epochs`: a
            step budget growing with the square root of the number of training cells,
            about 2,000 steps for 3,000 cells, at most 400 epochs), an upper bound that
            early stopping usually cuts short. From noise (``source="noise"``) twice that
            budget, trained to the end: generating the whole distribution kept improving
            past the budget from cells (unconditional Kang, 3 seeds: PCA W2 10.0 -> below the
            best CFM's; ``benchmarks/results/unconditional_seeds.md``). The per-source
            defaults are in :data:`sccalmflow.model.SOURCE_DEFAULTS`.
        batch_size
            Sequences per step.
        lr
            AdamW learning rate.
        validation_size
            Fraction of each condition's cells held out to compute ``*_validation`` losses
            (0: none). Default 0.1 (or ``1 - train_size``); from noise (``source="noise"``)
            0, so the model trains on every cell for the whole budget: the error of the mean
            velocity, which early stopping reads, says little about a distribution from
            noise (unconditional Kang, seed 1: stopped after 59 of 84 epochs, MMD 0.0023
            and W2 11.0; the whole budget 0.0017 and 10.1).
        early_stopping
            Stop when ``mean_error_validation`` (the squared error of the head's mean
            velocity on the validation cells; the reconstruction loss itself for the
            deterministic head) has not improved for ``early_stopping_patience`` epochs.
            ``None`` (default): on whenever there is a validation split.
        early_stopping_patience
            Epochs without improvement before stopping.
        restore_best
            End with the weights of the epoch with the lowest ``mean_error_validation``
            (:class:`~sccalmflow.train.BestWeights`). ``None`` (default): whenever there is a
            validation split. The epochs run, the best one and the budget are in
            :attr:`training_summary`.
        ema_decay
            Generate with an exponential moving average of the weights (Lightning's
            :class:`~lightning.pytorch.callbacks.WeightAveraging`, updated after every
            step with this decay; 0.995, the default, averages over about the last 200 steps,
            bias-corrected so that a shorter run averages the steps it took instead of
            keeping part of its first weights; the buffers, such as the PCA, are not
            averaged). The average is what is validated, what early stopping and
            ``restore_best`` read, and what the model ends with. ``None``: the weights of the
            last (or best) step. On held-out Kang types (CD14 Mono and B, 3 seeds, the
            deterministic head) it lowered E-distance, MMD and W2; from noise it is what makes
            the flow head match CFM
            (``benchmarks/results/generator.md``, ``unconditional.md``).
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
        checkpoint_dir
            Write a Lightning checkpoint (``last.ckpt``: weights, optimiser, loop and
            callback state) to this folder after every epoch.
        resume
            Continue from ``checkpoint_dir/last.ckpt`` when it exists (else start afresh):
            a run interrupted and resumed with the same arguments and seed ends with the same
            model as one that was not interrupted (every epoch's draws depend only on the
            seed and the epoch). The checkpoint is read with ``torch.load(weights_only=True)``
            (tensors and plain values only: no code in it runs).
        **trainer_kwargs
            Passed to scvi-tools' ``Trainer`` / Lightning's ``Trainer``
            (``enable_progress_bar``, ``log_every_n_steps``, ``strategy``, ``num_nodes``,
            ``precision`` ...). ``precision="bf16-mixed"`` trains under bfloat16 autocast
            (GPUs since Ampere, and CPUs); the weights stay float32 and :meth:`predict`
            generates in float32. :attr:`training_summary` records the precision.

        Notes
        -----
        Several devices: ``train(accelerator="gpu", devices=4, strategy="ddp")`` (or
        ``devices=2, strategy="ddp"`` on CPU, with the gloo backend) runs Lightning's
        distributed data parallel. Every rank draws the same epoch (the same random state)
        and trains on its own share of the sequences (:func:`~sccalmflow.data.shard`), so an
        epoch takes ``1 / n_devices`` of the steps; gradients are averaged over ranks.
        scvi-tools turns early stopping off under DDP (:attr:`training_summary` says so).
        ``strategy="ddp"`` starts the other ranks by running your script again: run it as a
        script (``python train.py``, or ``srun python train.py`` under SLURM with
        ``num_nodes``), not from a notebook.
        """
        validation_size = resolve_validation_size(validation_size, train_size, self.source)
        check_train_arguments(locals())
        dm = self._data_module(batch_size, validation_size, ot_batch_size)
        sequences = dm.train_dataloader().dataset
        steps_per_epoch = max(len(sequences), 1)
        max_epochs = resolve_max_epochs(
            max_epochs, sequences.n_sequences, steps_per_epoch, self.source
        )
        for name, value in (("early_stopping", early_stopping), ("restore_best", restore_best)):
            if value and not dm.n_val:
                raise ValueError(f"{name} needs validation_size > 0.")
        early_stopping = bool(dm.n_val) if early_stopping is None else early_stopping
        restore_best = bool(dm.n_val) if restore_best is None else restore_best
        monitor = f"{MEAN_ERROR}_validation"  # the same criterion for every head
        best = BestWeights(monitor) if restore_best else None
        trainer_kwargs = with_callbacks(
            trainer_kwargs, self.seed, ema_decay, best, checkpoint_dir, resume
        )
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
                early_stopping_monitor=monitor,
                early_stopping_patience=early_stopping_patience,
                **trainer_kwargs,
            )
            self.module.train()  # a loaded or already trained model is in eval mode
            resuming = (
                weights_only_loads() if "ckpt_path" in trainer_kwargs else contextlib.nullcontext()
            )
            with torch.random.fork_rng(), resuming:
                torch.manual_seed(self.seed)
                runner()
        self.module.eval()
        self.history_ = numeric_history(getattr(self, "history_", None))
        trainer = runner.trainer
        self.training_summary_ = {
            "max_epochs": int(max_epochs),
            "epochs": int(trainer.current_epoch),
            # per process: in a distributed run each rank takes its share of the batches
            "steps_per_epoch": int(_finite_or(trainer.num_training_batches, steps_per_epoch)),
            # scvi-tools turns early stopping off under DDP
            "early_stopping": bool(trainer.early_stopping_callback is not None),
            "best_epoch": None if best is None else best.best_epoch,
            "best_validation_loss": None if best is None else best.best_score,
            "precision": str(trainer.precision),
            "ema_decay": ema_decay,
        }
        self._model_summary_string = (
            self._model_summary_string.split(TRAINED_SEPARATOR)[0]
            + TRAINED_SEPARATOR
            + training_line(self.training_summary_)
        )
        cells = self._cell_conditions()
        self.observed_values_ = {k: sorted(set(cells[k].astype(str))) for k in self.condition_keys}
        # scvi-tools' record of the split: positions of the registered cells
        self.train_indices, self.validation_indices = dm.train_idx, dm.val_idx
        self._calibrate_after_training(
            dm.train_idx, dm.val_idx, show=bool(trainer_kwargs.get("enable_progress_bar", True))
        )
        self.training_summary_["temperature"] = self.temperature

    @classmethod
    def train_ensemble(
        cls,
        adata,
        n_models: int = 5,
        seeds: Sequence[int] | None = None,
        train_kwargs: dict | None = None,
        **model_kwargs,
    ) -> list:
        """Train ``n_models`` models that differ only in their seed, in one PCA space.

        The first model fits the PCA; the others reuse it (``features=``), so their
        predictions are directly comparable (:func:`sccalmflow.tl.response_interval`).

        Parameters
        ----------
        adata
            Registered AnnData (``setup_anndata`` first).
        n_models
            Models to train (at least 2).
        seeds
            One seed per model (default ``0 .. n_models - 1``, or ``seed + i`` when
            ``seed`` is among ``model_kwargs``).
        train_kwargs
            Keywords of :meth:`train` (the same for every model).
        **model_kwargs
            Constructor keywords (the same for every model).

        Returns
        -------
        The trained models, in seed order.
        """
        check_int("n_models", n_models, minimum=2)
        start = check_seed("seed", model_kwargs.pop("seed", 0))
        if seeds is None:
            seeds = list(range(start, start + n_models))
        else:
            seeds = check_sequence("seeds", seeds, what="seeds")
            seeds = [check_seed(f"seeds[{i}]", s) for i, s in enumerate(seeds)]
        if len(seeds) != n_models or len(set(seeds)) != n_models:
            raise ValueError(f"`seeds` must be {n_models} distinct integers, got {seeds}.")
        models = []
        for s in seeds:
            shared = {"features": models[0].features_} if models else {}
            model = cls(adata, seed=s, **model_kwargs, **shared)
            model.train(**(train_kwargs or {}))
            models.append(model)
        return models

    @property
    def training_summary(self) -> dict:
        """How the last :meth:`train` went: epochs run and allowed, the best epoch.

        Keys: ``max_epochs`` (the budget), ``epochs`` (run), ``steps_per_epoch``,
        ``early_stopping``, ``best_epoch`` (0-based epoch whose weights the model ends with,
        ``None`` without ``restore_best``), ``best_validation_loss``, ``precision``,
        ``ema_decay`` and ``temperature`` (the τ the model ended with).
        """
        if getattr(self, "training_summary_", None) is None:
            raise RuntimeError("The model is not trained; call `train` first.")
        return dict(self.training_summary_)

    def _data_module(
        self, batch_size: int, validation_size: float, ot_batch_size: int
    ) -> SequenceDataModule:
        """Sequences of the registered cells: groups, prompts, source pools, split."""
        cells = self._cell_conditions()
        groups, group_frame = self.conditions.groups(cells)
        prompt = self.prompt_encoder.encode_conditions(group_frame)
        pools = (
            self.conditions.source_pools(cells, groups, group_frame)
            if self.source != "noise"
            else None
        )
        if self.source == "additive":
            self.additive_shift_ = self._fit_additive_shift()
        shifts = self._source_shifts(group_frame, warn=True)
        train_idx, val_idx = stratified_split(groups, validation_size, self.seed)
        return SequenceDataModule(
            self._registered_features(),
            groups,
            prompt,
            source="noise" if self.source == "noise" else "control",
            source_pools=pools,
            source_shifts=shifts,
            n_trajectories=self.n_trajectories,
            batch_size=batch_size,
            ot_batch_size=ot_batch_size,
            ot_coupling=self.ot_coupling,
            stratified=self.sequence_targets == "stratified",
            train_idx=train_idx,
            val_idx=val_idx,
            seed=self.seed,
        )
