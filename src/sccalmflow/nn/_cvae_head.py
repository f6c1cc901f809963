"""Conditional VAE head: a posterior that sees the target, a prior learned from the history."""

from __future__ import annotations

import torch
from torch import nn

from ._head import LOGVAR_RANGE, HeadLoss, NextStateHead, gaussian_kl, mlp


class ConditionalVAEHead(NextStateHead):
    """``p(v | h) = ∫ p(v | h, u) p(u | h) du`` with a learned prior (a conditional VAE).

    Training: ``u ~ q(u | h, v)`` (the posterior sees the target velocity ``v``), the decoder
    ``dec(h, u)`` reconstructs ``v`` (squared error), and ``KL(q(u | h, v) || p(u | h))`` keeps
    the prior close to the posteriors. Generation samples the prior: ``u ~ N(mu_p, tau
    sigma_p^2)``. Unlike the paper's head, the latent can carry what the history does not
    determine, so a KL above zero (logged as ``kl_local``) measures the information it carries.

    Parameters
    ----------
    in_features
        ``K * width``.
    n_features
        ``D``.
    latent_dim
        Dimension of ``u``.
    hidden
        Hidden width of the MLPs.
    """

    stochastic = True

    def __init__(self, in_features: int, n_features: int, latent_dim: int, hidden: int):
        super().__init__()
        self.latent_dim = self.noise_dim = latent_dim
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU())
        self.prior = mlp([hidden, hidden, 2 * latent_dim])
        self.posterior = mlp([hidden + n_features, hidden, hidden, 2 * latent_dim])
        self.decoder = mlp([hidden + latent_dim, hidden, hidden, n_features])

    @staticmethod
    def _split(stats: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = stats.chunk(2, dim=-1)
        return mu, logvar.clamp(*LOGVAR_RANGE)

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Squared error of ``dec(h, u)``, ``u ~ q(u | h, v)``, and ``KL(q || p(u | h))``."""
        e = self.encoder(h)
        mu_p, logvar_p = self._split(self.prior(e))
        mu_q, logvar_q = self._split(self.posterior(torch.cat([e, target], dim=-1)))
        u = mu_q + torch.exp(0.5 * logvar_q) * torch.randn_like(mu_q)
        rec = (self.decoder(torch.cat([e, u], dim=-1)) - target).pow(2).sum(-1)
        return HeadLoss(rec, gaussian_kl(mu_q, logvar_q, mu_p, logvar_p))

    def sample(self, h, *, temperature=1.0, noise=None, generator=None) -> torch.Tensor:
        """Decode a draw of the prior ``u ~ N(mu_p(h), tau sigma_p^2(h))``."""
        e = self.encoder(h)
        mu, logvar = self._split(self.prior(e))
        u = mu
        if temperature > 0:
            eps = self.standard_normal(h, noise, generator)
            u = mu + (temperature**0.5) * torch.exp(0.5 * logvar) * eps
        return self.decoder(torch.cat([e, u], dim=-1))
