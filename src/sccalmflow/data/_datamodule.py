"""The data module: condition-grouped sequences of trajectories, new draws every epoch."""

from __future__ import annotations

import math

import lightning.pytorch as pl
import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset

from ..flow import ot_permutation
from ..module import BATCH_KEYS

_VALIDATION_EPOCH = 2**31 - 1  # the random state of the (fixed) validation batches


def stratified_split(
    groups: np.ndarray, validation_size: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Split cell positions into train/validation, the same fraction within every group.

    A group keeps at least one training cell; a group of one cell goes to training.
    """
    rng = np.random.default_rng(seed)
    train, val = [], []
    for g in np.unique(groups):
        idx = np.flatnonzero(groups == g)
        idx = idx[rng.permutation(len(idx))]
        n_val = min(int(round(validation_size * len(idx))), len(idx) - 1)
        val.append(idx[:n_val])
        train.append(idx[n_val:])
    return np.sort(np.concatenate(train)), np.sort(np.concatenate(val)) if val else np.array(
        [], int
    )


def principal_strata(x: np.ndarray, n_strata: int) -> list[np.ndarray]:
    """Split the rows of ``x`` into ``n_strata`` groups of neighbouring rows, of equal size.

    Recursive median splits along the principal axis (a k-d tree on principal axes): a
    group of ``m`` strata is cut at ``floor(m / 2) / m`` of its rows, ordered by their
    projection on the group's first principal component. With ``len(x)`` a multiple of
    ``n_strata`` every stratum has ``len(x) / n_strata`` rows.

    Returns
    -------
    ``n_strata`` arrays of row positions.
    """

    def split(idx: np.ndarray, m: int) -> list[np.ndarray]:
        if m == 1 or len(idx) <= 1:
            return [idx] + [idx[:0]] * (m - 1)
        sub = x[idx] - x[idx].mean(axis=0)
        # the top right singular vector: the direction of largest spread
        axis = np.linalg.svd(sub, full_matrices=False)[2][0]
        ordered = idx[np.argsort(sub @ axis, kind="stable")]
        a = m // 2
        cut = round(len(idx) * a / m)
        return split(ordered[:cut], a) + split(ordered[cut:], m - a)

    return split(np.arange(len(x)), int(n_strata))


def stratified_sequences(
    x: np.ndarray, n_trajectories: int, rng: np.random.Generator
) -> np.ndarray:
    """An order of the rows of ``x`` whose consecutive blocks of ``N`` cover its distribution.

    The rows are cut into ``N`` strata of neighbouring rows (:func:`principal_strata`); block
    ``j`` holds one random row of every stratum, in random order. Every row appears once, so
    each position of a block is still a uniform draw of the rows, while a block spreads over
    the distribution like a stratified sample. ``len(x)`` must be a multiple of ``N``.

    Trained on such sequences (``CaLMFlowModel(sequence_targets="stratified")``), the model
    can read where the earlier trajectories of a sequence went, but only if the target is not
    already tied to the source: with OT coupling over the condition the model follows its
    source and stratifying changes little; with ``ot_coupling=False`` or ``"sequence"`` the
    second of two trajectories goes to the other of two modes in 98 % of sequences (51 %
    independent; a slow test). On the 100-d Gaussian mixtures none made 8 trajectories
    reliably better than one (W2 lower in 3 of 6, 3 of 6 and 5 of 10 runs; MMD higher
    without OT coupling over the condition; over 16 generated sets with OT within
    sequences, lower on 4 of 6 but within noise; ``benchmarks/results/sequences/``), hence
    not the default.
    """
    N = int(n_trajectories)
    n_seq = len(x) // N
    if N == 1 or n_seq * N != len(x):
        raise ValueError(f"stratified sequences need N > 1 and a multiple of N rows, got {len(x)}")
    strata = np.stack([s[rng.permutation(len(s))] for s in principal_strata(x, N)])  # (N, n_seq)
    within = rng.permuted(np.tile(np.arange(N), (n_seq, 1)), axis=1)  # (n_seq, N)
    return strata[within, np.arange(n_seq)[:, None]].ravel()


def distributed_rank() -> tuple[int, int]:
    """``(rank, world_size)`` of this process (``(0, 1)`` outside a distributed run)."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def shard(order: np.ndarray, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s share of ``order``: every ``world_size``-th item from ``rank``.

    The order is first padded by wrapping around to a multiple of ``world_size``, so every
    rank gets the same number of items (DDP needs the same number of steps on every rank).
    """
    if world_size <= 1:
        return order
    n = len(order)
    total = math.ceil(n / world_size) * world_size
    padded = np.concatenate([order, order[: total - n]]) if total > n and n else order
    return padded[rank::world_size]


class _EpochSequences(IterableDataset):
    """Yields ready batches; every pass (epoch) draws new sources, couplings and groupings.

    The random state of pass ``e`` is ``numpy.random.default_rng([seed, e])``, so training is
    reproducible under a seed; ``e`` is the trainer's current epoch when the data module is
    attached to one (so a run resumed from a checkpoint draws what the uninterrupted run
    drew), else a count of passes. A fixed ``epoch`` gives the same batches on every pass
    (validation). In a distributed run each rank yields its own share of the sequences
    (:func:`shard`), the same number of batches on every rank.
    """

    def __init__(self, dm: SequenceDataModule, cells: np.ndarray, fixed_epoch: int | None):
        self.dm = dm
        self.cells = cells
        self.fixed_epoch = fixed_epoch
        self._epoch = 0
        _, counts = np.unique(dm.groups[dm.usable(cells)], return_counts=True)
        n_seq = int(np.ceil(counts / dm.n_trajectories).sum())
        self.n_sequences = n_seq

    def __len__(self) -> int:
        _, world = self.dm.rank_and_world()
        per_rank = math.ceil(self.n_sequences / world)
        return math.ceil(per_rank / self.dm.batch_size) if per_rank else 0

    def __iter__(self):
        if self.fixed_epoch is not None:
            epoch = self.fixed_epoch
        else:
            trainer = self.dm.trainer
            epoch = trainer.current_epoch if trainer is not None else self._epoch
            self._epoch += 1
        yield from self.dm.batches(self.cells, epoch)


class SequenceDataModule(pl.LightningDataModule):
    """Condition-grouped sequences of N trajectories for CaLMFlow.

    Parameters
    ----------
    features
        ``(n_cells, D)`` states of every registered cell (targets ``x1``).
    groups
        ``(n_cells,)`` integer id of each cell's condition (all condition keys together);
        the N trajectories of one sequence share it, and OT coupling stays within it.
    prompt
        What each condition's sequences open with: ``(n_groups, L)`` token ids, or
        ``(n_groups, E)`` text embeddings (``prompt_encoder="sentence"``).
    source
        ``"noise"`` (``x0 ~ N(0, I)``) or ``"control"`` (``x0`` drawn from ``source_pools``).
    source_pools
        For ``source="control"``: a list (one entry per group) of arrays of cell positions
        whose features are the sources of that group (control cells of the same context).
    source_shifts
        For ``source="control"``: an optional ``(n_groups, D)`` vector added to every source
        of the group (the additive shift of its condition).
    n_trajectories, batch_size
        ``N`` and the number of sequences per batch.
    ot_coupling
        Pair sources and targets of a condition by exact OT (POT): ``True`` in chunks of
        ``ot_batch_size`` cells, ``"sequence"`` within each sequence's ``N`` trajectories,
        ``False`` not at all.
    stratified
        With ``N > 1``: the ``N`` targets of a sequence are one cell of each of ``N`` strata
        of the condition's cells (:func:`stratified_sequences`), not a random draw.
    train_idx, val_idx
        Cell positions of the two splits.
    seed
        Seed of every random draw.
    rank, world_size
        This process's share of the sequences in a distributed run (``None``: read from
        ``torch.distributed`` when it is initialised, else one process).
    """

    def __init__(
        self,
        features: np.ndarray,
        groups: np.ndarray,
        prompt: np.ndarray,
        *,
        source: str,
        source_pools: list[np.ndarray] | None,
        n_trajectories: int,
        batch_size: int,
        ot_coupling: bool | str,
        train_idx: np.ndarray,
        val_idx: np.ndarray,
        seed: int,
        ot_batch_size: int = 1024,
        source_shifts: np.ndarray | None = None,
        stratified: bool = False,
        rank: int | None = None,
        world_size: int | None = None,
    ):
        super().__init__()
        self.rank, self.world_size = rank, world_size
        self.features = np.ascontiguousarray(features, dtype=np.float32)
        self.groups = np.asarray(groups)
        prompt = np.asarray(prompt)
        self.prompt = prompt.astype(
            np.float32 if np.issubdtype(prompt.dtype, np.floating) else np.int64
        )
        self.source = source
        self.source_pools = source_pools
        self.source_shifts = (
            None if source_shifts is None else np.asarray(source_shifts, dtype=np.float32)
        )
        self.n_trajectories = int(n_trajectories)
        self.batch_size = int(batch_size)
        if isinstance(ot_coupling, str) and ot_coupling != "sequence":
            raise ValueError(f"ot_coupling must be True, False or 'sequence', got {ot_coupling!r}.")
        self.ot_coupling = ot_coupling if isinstance(ot_coupling, str) else bool(ot_coupling)
        self.stratified = bool(stratified)
        self.ot_batch_size = int(ot_batch_size)
        self.train_idx = np.asarray(train_idx)
        self.val_idx = np.asarray(val_idx)
        self.test_idx = np.array([], dtype=int)
        self.seed = int(seed)
        self.n_train = len(self.train_idx)
        self.n_val = len(self.val_idx)

    def rank_and_world(self) -> tuple[int, int]:
        """``(rank, world_size)``: as given, or of the running distributed job."""
        if self.rank is not None and self.world_size is not None:
            return self.rank, self.world_size
        return distributed_rank()

    def usable(self, cells: np.ndarray) -> np.ndarray:
        """The cells that can be trained on (with control sources: those with a pool)."""
        if self.source != "control":
            return cells
        ok = np.array([len(self.source_pools[g]) > 0 for g in self.groups[cells]], dtype=bool)
        return cells[ok]

    def batches(self, cells: np.ndarray, epoch: int):
        """Yield the batches of one pass over ``cells``; the draws depend on ``(seed, epoch)``.

        Per condition: shuffled (or stratified) targets, sources (noise or control cells of the context,
        plus the condition's shift if given),
        OT pairing within chunks of ``ot_batch_size`` (or within each sequence), sequences of
        ``N`` trajectories.
        Batches are dicts of tensors under :data:`~sccalmflow.module.BATCH_KEYS`. Every rank
        draws the same sequences (same random state) and keeps its share (:func:`shard`).
        """
        rng = np.random.default_rng([self.seed, epoch])
        cells = self.usable(cells)
        N, D = self.n_trajectories, self.features.shape[1]
        seq_group, seq_x0, seq_x1 = [], [], []
        for g in np.unique(self.groups[cells]):
            members = cells[self.groups[cells] == g]
            members = members[rng.permutation(len(members))]
            n_seq = math.ceil(len(members) / N)
            extra = n_seq * N - len(members)
            if extra:  # complete the last sequence with other cells of the condition
                members = np.concatenate([members, rng.choice(members, extra)])
            if self.stratified and N > 1:
                members = members[stratified_sequences(self.features[members], N, rng)]
            x1 = self.features[members]
            if self.source == "noise":
                x0 = rng.standard_normal((len(members), D)).astype(np.float32)
            else:
                x0 = self.features[rng.choice(self.source_pools[g], len(members))]
                if self.source_shifts is not None:
                    x0 += self.source_shifts[g]
            step = N if self.ot_coupling == "sequence" else self.ot_batch_size
            if self.ot_coupling is not False and step > 1:
                for s in range(0, len(members), step):
                    sl = slice(s, s + step)
                    x0[sl] = x0[sl][ot_permutation(x0[sl], x1[sl])]
            seq_group.append(np.full(n_seq, g))
            seq_x0.append(x0.reshape(n_seq, N, D))
            seq_x1.append(x1.reshape(n_seq, N, D))
        if not seq_group:
            return
        seq_group = np.concatenate(seq_group)
        seq_x0 = np.concatenate(seq_x0)
        seq_x1 = np.concatenate(seq_x1)
        order = shard(rng.permutation(len(seq_group)), *self.rank_and_world())
        for s in range(0, len(order), self.batch_size):
            b = order[s : s + self.batch_size]
            yield {
                BATCH_KEYS.PROMPT: torch.from_numpy(self.prompt[seq_group[b]]),
                BATCH_KEYS.X0: torch.from_numpy(seq_x0[b]),
                BATCH_KEYS.X1: torch.from_numpy(seq_x1[b]),
            }

    def train_dataloader(self) -> DataLoader:
        """One pass over the training cells per epoch, new draws each epoch."""
        return DataLoader(_EpochSequences(self, self.train_idx, None), batch_size=None)

    def val_dataloader(self) -> DataLoader | list:
        """The validation cells, the same draws every epoch (none without a split)."""
        if self.n_val == 0:
            return []
        return DataLoader(
            _EpochSequences(self, self.val_idx, fixed_epoch=_VALIDATION_EPOCH), batch_size=None
        )
