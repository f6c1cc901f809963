"""Probability paths on a time grid: states and their regression target."""

from __future__ import annotations

from typing import NamedTuple

import torch

from ..utils import check_choice, check_int, check_number


def time_grid(n_time_points: int, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """The fixed grid ``0 = t_0 < t_1 < ... < t_{T-1} = 1`` (uniform).

    Parameters
    ----------
    n_time_points
        ``T >= 2``.

    Returns
    -------
    Tensor of shape ``(T,)``.
    """
    n_time_points = check_int("n_time_points", n_time_points, minimum=2)
    return torch.linspace(0.0, 1.0, n_time_points, dtype=dtype)


class PathSample(NamedTuple):
    """States of conditional paths on a grid and the target the model regresses on.

    Attributes
    ----------
    t
        The time grid, ``(T,)``.
    states
        ``z_{t_i}``, shape ``(..., T, D)``.
    target
        The velocity between consecutive states, ``(z_{i+1} - z_i) / (t_{i+1} - t_i)``, shape
        ``(..., T - 1, D)``: what the next-state head predicts from the history up to ``z_i``.
    """

    t: torch.Tensor
    states: torch.Tensor
    target: torch.Tensor


def finite_difference_velocity(states: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
    """``(z_{i+1} - z_i) / (t_{i+1} - t_i)`` of states ``(..., T, D)`` on the grid ``t``."""
    dt = (t[1:] - t[:-1]).to(states.dtype).to(states.device).view(-1, 1)
    return (states[..., 1:, :] - states[..., :-1, :]) / dt


def straight_line(
    x0: torch.Tensor, x1: torch.Tensor, t: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(1 - t) x0 + t x1`` on the grid, ``(..., T, D)``, and the grid in ``x0``'s dtype."""
    if x0.shape != x1.shape:
        raise ValueError(f"x0 and x1 must have the same shape, got {x0.shape} and {x1.shape}.")
    t = t.to(x0.dtype).to(x0.device)
    tt = t.view(*([1] * (x0.dim() - 1)), -1, 1)
    return (1 - tt) * x0.unsqueeze(-2) + tt * x1.unsqueeze(-2), t


class StraightPath:
    """Straight-line (optimal-transport) conditional probability path.

    ``z_t = (1 - t) x0 + t x1 + sigma_min * eps`` with ``eps ~ N(0, I)`` drawn independently
    at every interior time point (the end points stay exact: ``z_0 = x0`` is the given source
    and ``z_1 = x1`` is the cell).

    Parameters
    ----------
    sigma_min
        Standard deviation of the Gaussian noise around the straight line. 0 gives
        deterministic straight paths.
    """

    def __init__(self, sigma_min: float = 0.0):
        self.sigma_min = check_number("sigma_min", sigma_min, minimum=0)

    def sample(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> PathSample:
        """States of the path on the grid and their target.

        Parameters
        ----------
        x0, x1
            Source and target, shape ``(..., D)``.
        t
            Time grid, shape ``(T,)``.
        generator
            Random generator for the noise (only used when ``sigma_min > 0``).

        Returns
        -------
        :class:`PathSample` with ``states`` ``(..., T, D)`` and ``target`` ``(..., T - 1, D)``.
        """
        z, t = straight_line(x0, x1, t)
        if self.sigma_min > 0:
            eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
            interior = ((t > 0) & (t < 1)).to(z.dtype).view(*([1] * (x0.dim() - 1)), -1, 1)
            z = z + self.sigma_min * eps * interior
        return PathSample(t, z, finite_difference_velocity(z, t))


class BrownianBridgePath:
    """Straight line plus a Brownian bridge: history that informs without giving the answer.

    ``z_t = (1 - t) x0 + t x1 + sigma * b_t`` where ``b`` is a standard Brownian bridge on the
    grid (``b_0 = b_1 = 0``, ``Var b_t = t (1 - t)``, correlated in time like a random walk
    pinned at both ends). On a straight path the first step reveals ``x1 - x0`` and every
    later state only repeats it; on a bridge each step adds independent noise of variance
    ``sigma^2 dt``, so the endpoint is known only as the history accumulates, and the next
    state given the history is a distribution (mean ``z_i + dt (x1 - z_i) / (1 - t_i)``)
    that a stochastic head can learn to sample.

    Parameters
    ----------
    sigma
        Diffusion coefficient of the bridge (in feature units per unit time); 0 gives the
        straight path.
    """

    def __init__(self, sigma: float = 0.2):
        self.sigma = check_number("sigma", sigma, minimum=0)

    def sample(
        self,
        x0: torch.Tensor,
        x1: torch.Tensor,
        t: torch.Tensor,
        generator: torch.Generator | None = None,
    ) -> PathSample:
        """States of the path on the grid and their target (see :meth:`StraightPath.sample`)."""
        z, t = straight_line(x0, x1, t)
        if self.sigma == 0:
            return PathSample(t, z, finite_difference_velocity(z, t))
        shape = (*z.shape[:-2], z.shape[-2] - 1, z.shape[-1])
        eps = torch.randn(shape, generator=generator, dtype=z.dtype, device=z.device)
        dt = (t[1:] - t[:-1]).view(-1, 1)
        walk = torch.cumsum(eps * dt.sqrt(), dim=-2)
        walk = torch.cat([torch.zeros_like(walk[..., :1, :]), walk], dim=-2)  # W_{t_0} = 0
        bridge = walk - t.view(-1, 1) * walk[..., -1:, :]
        z = z + self.sigma * bridge
        return PathSample(t, z, finite_difference_velocity(z, t))


#: The conditional paths by name.
PATHS = ("straight", "bridge")


def build_path(name: str, sigma: float) -> StraightPath | BrownianBridgePath:
    """``"straight"`` (:class:`StraightPath` with ``sigma_min=sigma``) or ``"bridge"``."""
    check_choice("path", name, PATHS)
    return StraightPath(sigma) if name == "straight" else BrownianBridgePath(sigma)
