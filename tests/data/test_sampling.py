"""Source-cell resampling: each pool element once before any repeats."""

import numpy as np
import pytest

from sccalmflow.data import interpolate_repeats, resample_pool, smooth_repeats, stratified_rows


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
    with pytest.raises(ValueError, match="`n` must be at least 0"):
        resample_pool(np.arange(3), -1, np.random.default_rng(0))


RNG = np.random.default_rng(0)
Z = np.random.default_rng(1).normal(size=(10, 3)).astype(np.float32)
POS = np.arange(25) % 10


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: resample_pool(np.arange(10), 2.5, RNG), TypeError, "`n` must be an integer"),
        (lambda: resample_pool(np.arange(10), "3", RNG), TypeError, "`n` must be an integer"),
        (lambda: resample_pool(np.arange(10), 3, 0), TypeError, "np.random.default_rng"),
        (lambda: smooth_repeats(Z, POS, RNG, bandwidth="1"), TypeError, "`bandwidth` must be a"),
        (lambda: smooth_repeats(Z, POS, RNG, bandwidth=True), TypeError, "`bandwidth` must be a"),
        (lambda: smooth_repeats(Z, POS.astype(float), RNG), TypeError, "integer rows of `z`"),
        (lambda: smooth_repeats(Z, np.array([0, 50]), RNG), ValueError, "from 0 to 9; got"),
        (lambda: smooth_repeats(Z, np.array([-1]), RNG), ValueError, "rows of `z`"),
        (lambda: smooth_repeats(Z.astype(int), POS, RNG), ValueError, "2-d float array"),
        (lambda: smooth_repeats(Z[0], POS, RNG), ValueError, "2-d float array"),
        (lambda: smooth_repeats(Z, POS, None), TypeError, "`rng` must be a numpy"),
        (lambda: interpolate_repeats(Z, POS, RNG, n_neighbors=0), ValueError, "`n_neighbors`"),
        (lambda: interpolate_repeats(Z, POS, RNG, n_neighbors=2.5), TypeError, "`n_neighbors`"),
        (lambda: interpolate_repeats(Z, POS, RNG, n_neighbors="5"), TypeError, "`n_neighbors`"),
        (lambda: interpolate_repeats(Z, POS[:, None], RNG), TypeError, "1-d array"),
        (lambda: stratified_rows(np.array([0, 0, 1]), 2.5, 0), TypeError, "`max_rows`"),
        (lambda: stratified_rows(np.array([0, 0, 1]), 0, 0), ValueError, "`max_rows`"),
        (lambda: stratified_rows(np.array([0, 0, 1]), 2, -1), ValueError, "`seed`"),
    ],
)
def test_bad_draw_arguments(call, error, match):
    """Each argument is checked and named; nothing is cast (a float row, a string count)."""
    with pytest.raises(error, match=match):
        call()


def test_interpolate_repeats_keeps_first_pass_and_moves_later_draws():
    rng = np.random.default_rng(0)
    z = rng.normal(size=(8, 3)).astype(np.float32)
    pos = resample_pool(np.arange(8), 20, np.random.default_rng(1))
    out = interpolate_repeats(z, pos, np.random.default_rng(2), n_neighbors=2)
    assert out.shape == (20, 3) and out.dtype == z.dtype
    np.testing.assert_array_equal(out[:8], z[pos[:8]])  # one pass over the pool, exact
    later = out[8:]
    assert len(np.unique(later.round(6), axis=0)) == 12  # no copies
    # each later draw lies on a segment from its anchor towards one of its 2 nearest rows
    d = np.linalg.norm(z[:, None] - z[None], axis=-1)
    for x, a in zip(later, pos[8:], strict=True):
        nearest = np.argsort(d[a])[1:3]
        assert min(_on_segment(x, z[a], z[j]) for j in nearest) < 1e-5
    # seeded
    again = interpolate_repeats(z, pos, np.random.default_rng(2), n_neighbors=2)
    np.testing.assert_array_equal(out, again)
    # a single-row pool can only repeat
    one = interpolate_repeats(z[:1], np.zeros(4, int), np.random.default_rng(0))
    np.testing.assert_array_equal(one, np.repeat(z[:1], 4, axis=0))


def _on_segment(x, a, b):
    """Distance of x from the segment a-b."""
    ab = b - a
    t = np.clip(np.dot(x - a, ab) / max(np.dot(ab, ab), 1e-12), 0, 1)
    return float(np.linalg.norm(x - (a + t * ab)))


def test_smooth_repeats_keeps_first_pass_mean_and_covariance():
    rng = np.random.default_rng(0)
    z = (rng.normal(size=(40, 3)) @ np.array([[2.0, 0, 0], [1, 0.5, 0], [0, 0, 3]])).astype(
        np.float32
    )
    pos = resample_pool(np.arange(40), 40 + 20000, np.random.default_rng(1))
    out = smooth_repeats(z, pos, np.random.default_rng(2))
    assert out.shape == (20040, 3) and out.dtype == z.dtype
    np.testing.assert_array_equal(out[:40], z[pos[:40]])  # one pass over the pool, exact
    later = out[40:].astype(np.float64)
    assert len(np.unique(later.round(6), axis=0)) == len(later)  # no copies
    # the pool's mean and covariance are kept (interpolation would shrink the covariance)
    np.testing.assert_allclose(later.mean(0), z.mean(0), atol=0.05 * z.std(0).max())
    np.testing.assert_allclose(np.cov(later.T), np.cov(z.T), rtol=0.05, atol=0.05)
    # seeded; bandwidth 0 repeats the pool; one row can only repeat
    np.testing.assert_array_equal(out, smooth_repeats(z, pos, np.random.default_rng(2)))
    np.testing.assert_allclose(
        smooth_repeats(z, pos[:100], rng, bandwidth=0.0), z[pos[:100]], atol=1e-5
    )
    one = smooth_repeats(z[:1], np.zeros(4, int), rng)
    np.testing.assert_array_equal(one, np.repeat(z[:1], 4, axis=0))
    with pytest.raises(ValueError, match="bandwidth"):
        smooth_repeats(z, pos, rng, bandwidth=-1.0)
