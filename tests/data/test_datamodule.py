"""The data module: per-epoch draws and each rank's share of the sequences."""

from __future__ import annotations

import numpy as np
import pytest

from sccalmflow.data import SequenceDataModule, shard


def _dm(rank=None, world_size=None, n=103, batch_size=8):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, 3)).astype(np.float32)
    groups = np.arange(n) % 4
    return SequenceDataModule(
        features,
        groups,
        np.arange(4)[:, None],
        source="noise",
        source_pools=None,
        n_trajectories=1,
        batch_size=batch_size,
        ot_coupling=False,
        train_idx=np.arange(n),
        val_idx=np.array([], int),
        seed=7,
        rank=rank,
        world_size=world_size,
    )


def _targets(dm, epoch):
    return np.concatenate([b["x1"][:, 0].numpy() for b in dm.batches(dm.train_idx, epoch)])


def test_shard_pads_to_equal_shares():
    order = np.arange(10)
    shares = [shard(order, r, 3) for r in range(3)]
    assert [len(s) for s in shares] == [4, 4, 4]
    assert set(np.concatenate(shares)) == set(order)
    np.testing.assert_array_equal(shard(order, 0, 1), order)
    assert len(shard(np.array([], int), 1, 2)) == 0


@pytest.mark.parametrize("world_size", [2, 3])
def test_ranks_see_disjoint_shares_of_the_same_draw(world_size):
    whole = _targets(_dm(), epoch=2)
    parts = [_targets(_dm(r, world_size), epoch=2) for r in range(world_size)]
    # every rank has as many batches (DDP steps in lockstep) and the shares cover the epoch
    loaders = [_dm(r, world_size).train_dataloader() for r in range(world_size)]
    assert len({len(dl) for dl in loaders}) == 1
    assert len({len(p) for p in parts}) == 1
    rows = {tuple(np.round(x, 6)) for x in whole}
    seen = [{tuple(np.round(x, 6)) for x in p} for p in parts]
    assert set().union(*seen) == rows
    padding = world_size * len(parts[0]) - len(whole)
    assert sum(len(s) for s in seen) - len(rows) <= padding  # overlap only by the padding
    assert not np.array_equal(parts[0][: len(parts[1])], parts[1])


def test_epochs_follow_the_trainer_when_attached():
    dm = _dm()

    class _Trainer:
        current_epoch = 5

    first = next(iter(dm.train_dataloader()))["x1"].numpy()
    dm.trainer = _Trainer()
    fifth = next(iter(dm.train_dataloader()))["x1"].numpy()
    np.testing.assert_array_equal(fifth, _targets(dm, 5)[: len(fifth)][:, None])
    assert not np.array_equal(first, fifth)
