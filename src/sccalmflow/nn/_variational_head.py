"""The paper's heads: deterministic (``u = mu(h)``) and variational (``u ~ q(u | h)``)."""

from __future__ import annotations

import torch
from torch import nn

from ._head import LOGVAR_RANGE, HeadLoss, NextStateHead, gaussian_kl, mlp

#: The mean networks of the heads that regress a mean and sample the rest (flow, gmm).
MEAN_NETWORKS = ("mlp", "bottleneck")


class DeterministicHead(NextStateHead):
    """``h -> mu(h) -> v``: a regression of the velocity on the history (its conditional mean).

    One generated cell per source: the temperature has no effect. The decoder predicts the
    velocity ``v = (z_{i+1} - z_i) / (t_{i+1} - t_i)``, so the next state is ``z_i + dt v`` on
    a scale that does not depend on the number of time points.

    Parameters
    ----------
    in_features
        ``K * width`` (the K hidden states of one state, concatenated).
    n_features
        ``D``.
    latent_dim
        Width of the bottleneck ``mu``.
    hidden
        Hidden width of the MLPs.
    """

    def __init__(self, in_features: int, n_features: int, latent_dim: int, hidden: int):
        super().__init__()
        self.latent_dim = latent_dim
        self.encoder = nn.Sequential(nn.Linear(in_features, hidden), nn.GELU())
        self.mu = nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))
        # built between mu and the decoder: the order in which weights draw their initial values
        self.logvar = self.posterior_logvar(hidden, latent_dim)
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.GELU(), nn.Linear(hidden, n_features)
        )

    def posterior_logvar(self, hidden: int, latent_dim: int) -> nn.Module | None:
        """The posterior's log-variance network (none: the deterministic head has no spread)."""
        return None

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Squared error of ``decoder(mu(h))``, summed over features."""
        return HeadLoss((self.sample(h) - target).pow(2).sum(-1), None)

    def sample(self, h, *, temperature=1.0, noise=None, generator=None) -> torch.Tensor:
        """``decoder(mu(h))`` (no noise whatever the temperature)."""
        return self.decoder(self.mu(self.encoder(h)))


class VariationalHead(DeterministicHead):
    """The paper's variational decoding: ``q(u | h) = N(mu(h), diag sigma^2(h))`` -> ``v``.

    Training draws ``u`` from ``q`` (reparameterised) and adds ``KL(q || N(0, I))``; generation
    draws ``u ~ N(mu, tau sigma^2)``. The posterior sees only the history, never the target,
    so under squared error + KL the decoder can learn to ignore ``u`` (measured: the
    temperature then barely changes the samples; see ``benchmarks/results/``).
    """

    stochastic = True

    def __init__(self, in_features: int, n_features: int, latent_dim: int, hidden: int):
        super().__init__(in_features, n_features, latent_dim, hidden)
        self.noise_dim = latent_dim

    def posterior_logvar(self, hidden: int, latent_dim: int) -> nn.Module:
        """``log sigma^2(h)``: a 2-layer MLP on the shared encoding."""
        return nn.Sequential(nn.Linear(hidden, hidden), nn.GELU(), nn.Linear(hidden, latent_dim))

    def posterior(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(mu, logvar)`` of ``q(u | h)``."""
        e = self.encoder(h)
        return self.mu(e), self.logvar(e).clamp(*LOGVAR_RANGE)

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Squared error of the decoded posterior sample and ``KL(q(u | h) || N(0, I))``.

        In eval mode (validation) the posterior mean is decoded instead of a sample.
        """
        mu, logvar = self.posterior(h)
        u = mu + torch.exp(0.5 * logvar) * torch.randn_like(mu) if self.training else mu
        rec = (self.decoder(u) - target).pow(2).sum(-1)
        return HeadLoss(rec, gaussian_kl(mu, logvar))

    def sample(self, h, *, temperature=1.0, noise=None, generator=None) -> torch.Tensor:
        """Decode ``u ~ N(mu, tau sigma^2)`` (``u = mu`` at ``tau = 0``)."""
        mu, logvar = self.posterior(h)
        if temperature <= 0:
            return self.decoder(mu)
        eps = self.standard_normal(h, noise, generator)
        return self.decoder(mu + (temperature**0.5) * torch.exp(0.5 * logvar) * eps)

    def decode_prior(self, shape: tuple[int, ...], generator=None, device=None) -> torch.Tensor:
        """Decode ``u ~ N(0, I)`` (what the head emits when the latent carries no information)."""
        u = torch.randn(*shape, self.latent_dim, generator=generator, device=device)
        return self.decoder(u)


def mean_network(
    kind: str, in_features: int, n_features: int, *, latent_dim: int, hidden: int
) -> nn.Module:
    """The network that regresses a sampling head's mean velocity ``m(h)``.

    Parameters
    ----------
    kind
        ``"mlp"``: ``Linear -> GELU -> Linear`` through ``hidden``; ``"bottleneck"``: the
        deterministic head's network (:class:`DeterministicHead`: an encoder, a
        ``latent_dim``-wide bottleneck and a decoder; calling it gives ``decoder(mu(h))``).
        From cells the bottleneck was the better mean (held-out Kang types: higher R²,
        lower E-distance and no failed split), from noise the MLP (unconditional Kang; see
        ``benchmarks/results/generator_notes.md``).
    in_features, n_features
        ``K * width`` and ``D``.
    latent_dim
        Width of the bottleneck (``"bottleneck"`` only).
    hidden
        Hidden width.
    """
    if kind == "mlp":
        return mlp([in_features, hidden, n_features])
    if kind == "bottleneck":
        return DeterministicHead(in_features, n_features, latent_dim, hidden)
    raise ValueError(f"mean must be one of {', '.join(map(repr, MEAN_NETWORKS))}; got {kind!r}.")
