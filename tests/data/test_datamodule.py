"""The data module: per-epoch draws and each rank's share of the sequences."""

from __future__ import annotations

import numpy as np
import pytest

from sccalmflow.data import SequenceDataModule, principal_strata, shard, stratified_sequences


def _module(features, groups, **kwargs):
    """A data module from noise over all of ``features`` (one prompt row per group)."""
    kwargs = dict(n_trajectories=1, batch_size=8, ot_coupling=False, seed=7) | kwargs
    return SequenceDataModule(
        features,
        groups,
        np.arange(groups.max() + 1)[:, None],
        source="noise",
        source_pools=None,
        train_idx=np.arange(len(features)),
        val_idx=np.array([], int),
        **kwargs,
    )


def _dm(rank=None, world_size=None, n=103, batch_size=8):
    rng = np.random.default_rng(0)
    features = rng.normal(size=(n, 3)).astype(np.float32)
    return _module(
        features, np.arange(n) % 4, batch_size=batch_size, rank=rank, world_size=world_size
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


def _clusters(n_per=40, k=4, d=6, seed=0):
    rng = np.random.default_rng(seed)
    centres = rng.normal(scale=10, size=(k, d))
    x = np.concatenate([c + rng.normal(scale=0.1, size=(n_per, d)) for c in centres])
    return x.astype(np.float32), np.repeat(np.arange(k), n_per)


@pytest.mark.parametrize("n_strata", [2, 3, 4, 5, 8])
def test_principal_strata_are_equal_and_cover_the_rows(n_strata):
    x, _ = _clusters(n_per=30, k=4)
    x = x[: (len(x) // n_strata) * n_strata]
    strata = principal_strata(x, n_strata)
    assert len(strata) == n_strata
    assert {len(s) for s in strata} == {len(x) // n_strata}
    np.testing.assert_array_equal(np.sort(np.concatenate(strata)), np.arange(len(x)))


def test_principal_strata_follow_well_separated_clusters():
    x, label = _clusters(n_per=40, k=4)
    # four equal clusters, four strata: each stratum is one cluster
    for s in principal_strata(x, 4):
        assert len(np.unique(label[s])) == 1


def test_stratified_sequences_put_every_cluster_in_every_sequence():
    x, label = _clusters(n_per=40, k=4)
    order = stratified_sequences(x, 4, np.random.default_rng(1))
    np.testing.assert_array_equal(np.sort(order), np.arange(len(x)))  # each row once
    blocks = label[order].reshape(-1, 4)
    assert all(len(np.unique(b)) == 4 for b in blocks)
    # the position of a cluster within a sequence is random, not fixed by the stratum
    assert all(len(np.unique(blocks[:, j])) == 4 for j in range(4))
    # seeded
    np.testing.assert_array_equal(order, stratified_sequences(x, 4, np.random.default_rng(1)))
    # an independent draw mixes clusters only by chance
    rng = np.random.default_rng(1)
    indep = label[rng.permutation(len(x))].reshape(-1, 4)
    assert sum(len(np.unique(b)) == 4 for b in indep) < len(blocks) / 2


def test_stratified_sequences_refuse_what_they_cannot_split():
    x, _ = _clusters(n_per=5, k=2)
    with pytest.raises(ValueError, match="multiple of N"):
        stratified_sequences(x[:7], 2, np.random.default_rng(0))
    with pytest.raises(ValueError, match="N > 1"):
        stratified_sequences(x, 1, np.random.default_rng(0))


@pytest.mark.parametrize("stratified", [True, False])
def test_data_module_sequences_spread_over_the_condition(stratified):
    x, label = _clusters(n_per=30, k=3, d=4)  # one condition of 90 cells, 3 clusters
    dm = _module(
        x, np.zeros(len(x), int), n_trajectories=3, batch_size=64, seed=3, stratified=stratified
    )
    x1 = np.concatenate([b["x1"].numpy() for b in dm.batches(dm.train_idx, 0)])  # (30, 3, 4)
    assert x1.shape == (30, 3, 4)
    nearest = ((x1[:, :, None, :] - x[None, None]) ** 2).sum(-1).argmin(-1)
    np.testing.assert_array_equal(np.sort(nearest.ravel()), np.arange(len(x)))  # all once
    full = np.mean([len(np.unique(label[s])) == 3 for s in nearest])
    if stratified:
        assert full == 1.0
    else:
        assert full < 0.5  # (3! / 27 = 0.22 expected)


def _coupled(ot_coupling, n_trajectories=4, n=96, ot_batch_size=1024):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(n, 2)).astype(np.float32) * 3
    dm = _module(
        x, np.zeros(n, int), n_trajectories=n_trajectories, batch_size=n,
        ot_coupling=ot_coupling, seed=11, ot_batch_size=ot_batch_size, stratified=True,
    )  # fmt: skip
    (batch,) = list(dm.batches(dm.train_idx, 0))
    return batch["x0"].numpy(), batch["x1"].numpy()  # (n_seq, N, D) each


def test_ot_coupling_within_sequences_pairs_each_sequence_optimally():
    from itertools import permutations

    x0, x1 = _coupled("sequence")
    x0_free, x1_free = _coupled(False)
    np.testing.assert_array_equal(x1, x1_free)  # same targets, same sequences
    # the same sources in every sequence, only their order within it changed
    np.testing.assert_allclose(np.sort(x0, axis=1), np.sort(x0_free, axis=1))
    N = x0.shape[1]
    for a, b in zip(x0, x1, strict=True):  # every sequence: the cheapest of its N! pairings
        cost = ((a - b) ** 2).sum()
        best = min(((a[list(p)] - b) ** 2).sum() for p in permutations(range(N)))
        assert cost == pytest.approx(best, rel=1e-6)
    assert ((x0 - x1) ** 2).sum() < 0.8 * ((x0_free - x1_free) ** 2).sum()
    # OT over the whole condition ties the sources tighter still (it is a larger problem)
    x0_all, x1_all = _coupled(True)
    assert ((x0_all - x1_all) ** 2).sum() < ((x0 - x1) ** 2).sum()


def test_ot_coupling_refuses_unknown_modes():
    with pytest.raises(ValueError, match="ot_coupling must be True, False or 'sequence'"):
        _coupled("batch")
