"""Probability paths on a time grid: states and their regression target."""

from __future__ import annotations

from typing import NamedTuple

import torch


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
    if n_time_points < 2:
        raise ValueError(f"n_time_points must be at least 2, got {n_time_points}.")
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
        if sigma_min < 0:
            raise ValueError(f"sigma_min must be >= 0, got {sigma_min}.")
        self.sigma_min = float(sigma_min)

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
        if x0.shape != x1.shape:
            raise ValueError(f"x0 and x1 must have the same shape, got {x0.shape} and {x1.shape}.")
        t = t.to(x0.dtype).to(x0.device)
        tt = t.view(*([1] * (x0.dim() - 1)), -1, 1)
        z = (1 - tt) * x0.unsqueeze(-2) + tt * x1.unsqueeze(-2)
        if self.sigma_min > 0:
            eps = torch.randn(z.shape, generator=generator, dtype=z.dtype, device=z.device)
            interior = ((t > 0) & (t < 1)).to(z.dtype).view(*([1] * (x0.dim() - 1)), -1, 1)
            z = z + self.sigma_min * eps * interior
        return PathSample(t, z, finite_difference_velocity(z, t))
