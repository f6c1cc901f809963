"""Next-state heads: hidden states of the LM -> the velocity to the next grid point."""

from __future__ import annotations

from typing import NamedTuple

import torch
from torch import nn


class HeadOutput(NamedTuple):
    """What a head returns: the velocity and its latent's posterior.

    ``logvar`` is ``None`` when the head is deterministic.
    """

    velocity: torch.Tensor
    mu: torch.Tensor
    logvar: torch.Tensor | None


class VariationalHead(nn.Module):
    """Variational decoding head: hidden states of a state's K tokens -> next increment.

    ``q(u | h) = N(mu(h), diag sigma^2(h))`` (2-layer MLPs), a reparameterised sample ``u``,
    and a 2-layer MLP decoder ``u -> v``. The decoder predicts the velocity
    ``v = (z_{i+1} - z_i) / (t_{i+1} - t_i)``, so the next state is ``z_i + dt * v``: the
    head works on a scale that does not depend on the number of time points.
    At inference the temperature ``tau`` scales the posterior variance: ``u ~ N(mu, tau sigma^2)``.
    With ``variational=False`` the head is deterministic (``u = mu``, no KL term).

    Parameters
    ----------
    in_features
        ``K * width`` (the K hidden states of one state, concatenated).
    n_features
        ``D``.
    latent_dim
        Dimension of ``u``.
    hidden
        Hidden width of the MLPs.
    variational
        Whether ``u`` is sampled.
    """

    def __init__(
        self, in_features: int, n_features: int, latent_dim: int, hidden: int, variational: bool
    ):
        super().__init__()
        self.variational = variational
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU())
        self.mu = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))
        self.logvar = (
            nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))
            if variational
            else None
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.GELU(), nn.Linear(hidden, n_features)
        )

    def forward(
        self,
        h: torch.Tensor,
        *,
        sample: bool = True,
        temperature: float = 1.0,
        noise: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
    ) -> HeadOutput:
        """Decode hidden states.

        Parameters
        ----------
        h
            Shape ``(..., in_features)``.
        sample
            Draw ``u`` from the posterior (training, generation) or take ``u = mu``.
        temperature
            Scales the posterior variance when sampling.
        noise
            Optional standard normal noise of shape ``(..., latent_dim)`` (for reproducible
            comparisons); drawn with ``generator`` otherwise.

        Returns
        -------
        ``HeadOutput(velocity (..., D), mu (..., latent), logvar (..., latent) or None)``.
        """
        e = self.encoder(h)
        mu = self.mu(e)
        if self.logvar is None:
            return HeadOutput(self.decoder(mu), mu, None)
        logvar = self.logvar(e).clamp(-12.0, 8.0)
        u = mu
        if sample and temperature > 0:
            if noise is None:
                noise = torch.randn(mu.shape, generator=generator, dtype=mu.dtype, device=mu.device)
            u = mu + (temperature**0.5) * torch.exp(0.5 * logvar) * noise
        return HeadOutput(self.decoder(u), mu, logvar)

    def decode_prior(self, shape: tuple[int, ...], generator=None, device=None) -> torch.Tensor:
        """Decode ``u ~ N(0, I)`` (what the head emits when the latent carries no information)."""
        u = torch.randn(*shape, self.mu[-1].out_features, generator=generator, device=device)
        return self.decoder(u)


def gaussian_kl(mu: torch.Tensor, logvar: torch.Tensor) -> torch.Tensor:
    """``KL(N(mu, diag exp(logvar)) || N(0, I))`` per latent dimension (same shape as mu)."""
    return 0.5 * (mu.pow(2) + logvar.exp() - 1.0 - logvar)
