"""What every next-state head is: hidden state of a state -> a draw of the velocity to the next.

A head sits after the causal LM. In training it scores the path's target (``loss_terms``); in
generation it draws the velocity (``sample``). The heads themselves live one per file:
:class:`DeterministicHead` and :class:`VariationalHead` (the paper's),
:class:`ConditionalVAEHead`, :class:`FlowMatchingHead`, :class:`MixtureHead`; :func:`build_head`
picks one by name.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn

#: Range a head's Gaussian log-variances are clamped to (numerical safety).
LOGVAR_RANGE = (-12.0, 8.0)


class HeadLoss(NamedTuple):
    """A head's training terms at every position.

    Attributes
    ----------
    reconstruction
        ``(...,)``: the head's regression loss of the target at each position (squared error
        summed over the D features; the flow-matching head's conditional flow-matching loss).
    kl
        ``(..., latent_dim)``: KL of the latent per dimension (``None`` for heads without one).
    mean_error
        ``(...,)``: squared error (summed over features) of the head's mean velocity, where
        the head's loss is more than that (the flow and mixture heads' regression part);
        ``None``: the reconstruction is that error. Early stopping and the best-epoch choice
        read it, so every head is selected by the same criterion.
    """

    reconstruction: torch.Tensor
    kl: torch.Tensor | None
    mean_error: torch.Tensor | None = None


class NextStateHead(nn.Module):
    """Base class of the next-state heads.

    Attributes
    ----------
    stochastic
        Whether :meth:`sample` draws noise (at ``temperature > 0``).
    noise_dim
        Size of one standard normal draw of :meth:`sample` (0 for a deterministic head).
    """

    stochastic: bool = False
    noise_dim: int = 0

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Training terms of hidden states ``(..., in_features)`` against targets ``(..., D)``."""
        raise NotImplementedError

    def sample(
        self,
        h: torch.Tensor,
        *,
        temperature: float = 1.0,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> torch.Tensor:
        """Draw the velocity ``(..., D)`` for hidden states ``(..., in_features)``.

        Parameters
        ----------
        h
            Hidden states.
        temperature
            τ >= 0: scales the variance of the head's noise (0: no noise).
        noise
            Standard normal draws ``(..., noise_dim)`` (for reproducible, batch-independent
            generation); drawn with ``generator`` when not given.
        generator
            Random generator for ``noise``.
        """
        raise NotImplementedError

    def standard_normal(
        self, h: torch.Tensor, noise: torch.Tensor | None, generator: torch.Generator | None
    ) -> torch.Tensor:
        """``noise`` if given, else a fresh ``(..., noise_dim)`` standard normal draw."""
        if noise is not None:
            return noise.to(h.dtype)
        shape = (*h.shape[:-1], self.noise_dim)
        return torch.randn(shape, generator=generator, dtype=h.dtype, device=h.device)

    def forward(self, h: torch.Tensor, **kwargs) -> torch.Tensor:
        """Alias of :meth:`sample`."""
        return self.sample(h, **kwargs)


def mlp(sizes: list[int]) -> nn.Sequential:
    """``Linear -> GELU -> ... -> Linear`` through ``sizes`` (no activation at the end)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:], strict=True)):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.GELU())
    return nn.Sequential(*layers)


def gaussian_kl(
    mu: torch.Tensor,
    logvar: torch.Tensor,
    prior_mu: torch.Tensor | None = None,
    prior_logvar: torch.Tensor | None = None,
) -> torch.Tensor:
    """``KL(N(mu, exp(logvar)) || prior)`` per dimension; the prior is ``N(0, I)`` by default."""
    if prior_mu is None or prior_logvar is None:
        return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
    return 0.5 * (
        prior_logvar - logvar + (logvar.exp() + (mu - prior_mu).pow(2)) / prior_logvar.exp() - 1.0
    )
