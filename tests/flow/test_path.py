import numpy as np
import pytest
import torch

from sccalmflow.flow import BrownianBridgePath, StraightPath, build_path, ot_permutation, time_grid


def test_time_grid_and_straight_path():
    t = time_grid(5)
    assert torch.allclose(t, torch.tensor([0, 0.25, 0.5, 0.75, 1.0]))
    x0, x1 = torch.zeros(2, 3), torch.ones(2, 3)
    path = StraightPath().sample(x0, x1, t)
    z = path.states
    assert z.shape == (2, 5, 3)
    # the path returns its regression target: the velocity between grid points
    assert path.target.shape == (2, 4, 3)
    assert torch.allclose(path.target, torch.ones(2, 4, 3))
    assert torch.allclose(z[:, 2], torch.full((2, 3), 0.5))
    noisy = StraightPath(0.1).sample(x0, x1, t, generator=torch.Generator().manual_seed(0))
    zn = noisy.states
    assert torch.allclose(noisy.target, (zn[:, 1:] - zn[:, :-1]) * 4)
    assert torch.equal(zn[:, 0], x0) and torch.equal(zn[:, -1], x1)
    assert not torch.allclose(zn[:, 2], z[:, 2])
    with pytest.raises(ValueError):
        time_grid(1)


def test_brownian_bridge_path_statistics():
    """Pinned ends, variance sigma^2 t (1 - t), covariance of a bridge, target = next state."""
    t = time_grid(6)
    n, d, sigma = 20_000, 3, 0.5
    x0, x1 = torch.zeros(n, d), torch.ones(n, d)
    path = BrownianBridgePath(sigma).sample(x0, x1, t, generator=torch.Generator().manual_seed(0))
    z = path.states
    assert z.shape == (n, 6, d) and path.target.shape == (n, 5, d)
    assert torch.allclose(z[:, 0], x0, atol=1e-6) and torch.allclose(z[:, -1], x1, atol=1e-6)
    assert torch.allclose(path.target, (z[:, 1:] - z[:, :-1]) * 5, atol=1e-5)
    dev = z - t.view(1, -1, 1)  # minus the straight line
    assert torch.allclose(dev.mean(0), torch.zeros(6, d), atol=0.02)
    var = dev.var(0).mean(-1)
    assert torch.allclose(var, sigma**2 * t * (1 - t), atol=0.005)
    # Cov(b_s, b_t) = s (1 - t) for s <= t: later states carry information about earlier noise
    cov = (dev[:, 1] * dev[:, 3]).mean()
    assert abs(float(cov) - sigma**2 * 0.2 * (1 - 0.6)) < 0.005
    # sigma = 0 is the straight path; the noise is reproducible under a generator
    assert torch.equal(
        BrownianBridgePath(0.0).sample(x0[:5], x1[:5], t).states,
        StraightPath().sample(x0[:5], x1[:5], t).states,
    )
    a = BrownianBridgePath(0.3).sample(x0[:5], x1[:5], t, torch.Generator().manual_seed(1))
    b = BrownianBridgePath(0.3).sample(x0[:5], x1[:5], t, torch.Generator().manual_seed(1))
    assert torch.equal(a.states, b.states)


def test_build_path_and_bad_values():
    assert isinstance(build_path("bridge", 0.1), BrownianBridgePath)
    assert build_path("straight", 0.2).sigma_min == 0.2
    with pytest.raises(ValueError, match=r"`path` must be one of \['straight', 'bridge'\]"):
        build_path("curved", 0.1)
    with pytest.raises(ValueError, match="`sigma` must be at least 0"):
        BrownianBridgePath(-1.0)
    with pytest.raises(TypeError, match="`sigma` must be a number, got '0.2'"):
        BrownianBridgePath("0.2")
    with pytest.raises(TypeError, match="`sigma_min` must be a number, got True"):
        StraightPath(True)
    with pytest.raises(TypeError, match="`n_time_points` must be an integer, got 8.0"):
        time_grid(8.0)
    with pytest.raises(ValueError, match="`n_time_points` must be at least 2"):
        time_grid(1)


def test_ot_permutation_recovers_matching():
    rng = np.random.default_rng(0)
    x1 = rng.normal(size=(30, 4)) * 10
    perm_true = rng.permutation(30)
    x0 = x1[np.argsort(perm_true)] + 0.01  # x0[perm_true[j]] is x1[j]'s partner
    perm = ot_permutation(x0, x1)
    assert np.array_equal(perm, perm_true)
