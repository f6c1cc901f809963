"""Source-cell resampling: each pool element once before any repeats."""

import numpy as np
import pytest

from sccalmflow.data import resample_pool


def test_no_repeats_up_to_pool_size():
    pool = np.arange(10, 20)
    draw = resample_pool(pool, 10, np.random.default_rng(0))
    assert sorted(draw) == list(pool)
    draw = resample_pool(pool, 7, np.random.default_rng(1))
    assert len(set(draw)) == 7 and set(draw) <= set(pool)


def test_balanced_counts_beyond_pool_size():
    pool = np.array([3, 5, 8])
    draw = resample_pool(pool, 10, np.random.default_rng(0))
    counts = np.bincount(draw, minlength=9)[pool]
    assert counts.sum() == 10 and counts.min() == 3 and counts.max() == 4


def test_seeded_and_random():
    pool = np.arange(50)
    a = resample_pool(pool, 30, np.random.default_rng(5))
    b = resample_pool(pool, 30, np.random.default_rng(5))
    c = resample_pool(pool, 30, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)
    assert resample_pool(pool, 0, np.random.default_rng(0)).shape == (0,)


def test_bad_input():
    with pytest.raises(ValueError, match="non-empty"):
        resample_pool(np.array([]), 3, np.random.default_rng(0))
    with pytest.raises(ValueError, match="n must be"):
        resample_pool(np.arange(3), -1, np.random.default_rng(0))
