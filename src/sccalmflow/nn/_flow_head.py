"""Flow-matching head: a small conditional flow that samples the next velocity.

The "diffusion loss" of autoregressive models with continuous tokens (Li et al., 2024,
"Autoregressive image generation without vector quantization"), with flow matching in place
of the diffusion: a small residual MLP, modulated by the LM's hidden state, transports
``N(0, tau I)`` to ``p(v | history)``. It models the whole conditional distribution, so it
has no latent to collapse.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from torchdiffeq import odeint

from ._head import HeadLoss, NextStateHead
from ._variational_head import mean_network


def time_features(s: torch.Tensor, dim: int) -> torch.Tensor:
    """Sinusoidal features ``(..., dim)`` of flow times ``s`` ``(...)`` in [0, 1]."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, device=s.device) / half)
    angles = 1000.0 * s.unsqueeze(-1) * freqs
    return torch.cat([angles.sin(), angles.cos()], dim=-1).to(s.dtype)


class AdaLNBlock(nn.Module):
    """Residual MLP block whose LayerNorm shift/scale and output gate come from a condition."""

    def __init__(self, hidden: int):
        super().__init__()
        self.norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.mlp = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(hidden, 3 * hidden))
        nn.init.zeros_(self.modulation[1].weight)
        nn.init.zeros_(self.modulation[1].bias)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """``x + gate(c) * mlp(norm(x) * (1 + scale(c)) + shift(c))``."""
        shift, scale, gate = self.modulation(c).chunk(3, dim=-1)
        return x + gate * self.mlp(self.norm(x) * (1 + scale) + shift)


class FlowMatchingHead(NextStateHead):
    """``p(v | h)`` as a regression of the mean plus a conditional flow for the rest.

    By default (``residual=True``) a network (``mean``: a small MLP or the deterministic
    head's bottleneck) regresses the conditional mean ``m(h)`` of the velocity (squared
    error, as the deterministic head) and a flow, trained by flow matching, samples the
    residual ``r = v - m(h)``: per position ``s ~ U(0, 1)``,
    ``e ~ N(0, I)``, ``y_s = (1 - s) e + s r`` and the loss ``|| f(y_s, s, h) - (r - e) ||^2``
    (summed over features, averaged over ``n_train_draws`` draws; the residual's target uses
    ``m(h)`` without gradient). Generation: ``v = m(h) + y_1`` where ``y_0 = sqrt(tau) e`` is
    integrated to ``s = 1`` with ``n_steps`` midpoint steps (torchdiffeq); τ scales the
    variance of the start and so the spread of the draws (τ = 1: the learned distribution;
    τ = 0: one deterministic draw). With ``residual=False`` the flow models ``v`` itself.

    Parameters
    ----------
    in_features
        ``K * width``.
    n_features
        ``D``.
    hidden
        Width of the residual blocks.
    n_blocks
        Number of residual blocks.
    n_steps
        Midpoint steps of the sampler (2 evaluations each). 4 by default (8 until
        2026-12-03): from cells on held-out Kang types (27 runs) and from noise on all Kang
        cells (3 seeds) four steps gave the eight steps' E-distance and MMD (from cells also
        R²) to within seed noise in 0.51-0.62x the time; two steps were worse from noise
        (``benchmarks/results/generator_notes.md``, ``flow_head_steps/``).
    n_train_draws
        Flow-matching draws per position in training (the LM runs once for all of them).
    residual
        Also regress the conditional mean ``m(h)`` (squared error, as the deterministic
        head) and let the flow sample only the residual ``v - m(h)`` (its target uses
        ``m(h)`` without gradient): the mean is learned as fast as by a regression, the flow
        adds the spread around it. The flow's loss then reaches the LM only through the
        mean: the flow reads the hidden state without gradient, so its noisy loss cannot
        slow the LM's learning of the mean (measured: without this, one of four Kang runs
        stalled far from the target).
    mean, latent_dim
        The mean's network and its bottleneck width (:func:`mean_network`: ``"mlp"`` or
        ``"bottleneck"``, the deterministic head's network); with ``residual=True`` only.
    """

    stochastic = True

    def __init__(
        self,
        in_features: int,
        n_features: int,
        hidden: int,
        n_blocks: int = 3,
        n_steps: int = 4,
        n_train_draws: int = 1,
        residual: bool = True,
        mean: str = "mlp",
        latent_dim: int = 32,
    ):
        super().__init__()
        self.noise_dim = n_features
        self.n_steps = n_steps
        self.n_train_draws = n_train_draws
        self.mean = (
            mean_network(mean, in_features, n_features, latent_dim=latent_dim, hidden=hidden)
            if residual
            else None
        )
        self.condition = nn.Linear(in_features, hidden)
        self.time = nn.Sequential(nn.Linear(hidden, hidden), nn.SiLU(), nn.Linear(hidden, hidden))
        self.input = nn.Linear(n_features, hidden)
        self.blocks = nn.ModuleList(AdaLNBlock(hidden) for _ in range(n_blocks))
        self.out_norm = nn.LayerNorm(hidden, elementwise_affine=False)
        self.output = nn.Linear(hidden, n_features)

    def field(self, y: torch.Tensor, s: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Velocity of the head's flow at ``y`` ``(..., D)``, times ``s`` ``(...)``, condition ``c``."""
        cond = c + self.time(time_features(s, c.shape[-1]))
        x = self.input(y)
        for block in self.blocks:
            x = block(x, cond)
        return self.output(self.out_norm(x))

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Conditional flow-matching loss of the straight path from noise to the target."""
        mean_loss = None
        if self.mean is not None:
            m = self.mean(h)
            mean_loss = (m - target).pow(2).sum(-1)
            target = target - m.detach()
            h = h.detach()
        c = self.condition(h).unsqueeze(0).expand(self.n_train_draws, *h.shape[:-1], -1)
        v = target.unsqueeze(0).expand(self.n_train_draws, *target.shape)
        e = torch.randn_like(v)
        s = torch.rand(v.shape[:-1], dtype=v.dtype, device=v.device)
        y = (1 - s.unsqueeze(-1)) * e + s.unsqueeze(-1) * v
        loss = (self.field(y, s, c) - (v - e)).pow(2).sum(-1).mean(0)
        if mean_loss is None:
            return HeadLoss(loss, None)
        return HeadLoss(loss + mean_loss, None, mean_loss.detach())

    def sample(self, h, *, temperature=1.0, noise=None, generator=None) -> torch.Tensor:
        """Integrate the head's flow from ``sqrt(tau) e`` (``e ~ N(0, I)``) to ``s = 1``."""
        c = self.condition(h)
        if temperature > 0:
            y0 = (temperature**0.5) * self.standard_normal(h, noise, generator)
        else:
            y0 = torch.zeros(*h.shape[:-1], self.noise_dim, dtype=h.dtype, device=h.device)
        grid = torch.linspace(0.0, 1.0, self.n_steps + 1, dtype=h.dtype, device=h.device)

        def f(s: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
            return self.field(y, s.expand(y.shape[:-1]), c)

        y = odeint(f, y0, grid, method="midpoint")[-1]
        return y if self.mean is None else y + self.mean(h)
