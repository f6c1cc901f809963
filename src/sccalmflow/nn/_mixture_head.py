"""Gaussian-mixture head: the next velocity as a mixture of diagonal Gaussians."""

from __future__ import annotations

import math

import torch

from ._head import LOGVAR_RANGE, HeadLoss, NextStateHead, mlp
from ._variational_head import mean_network


class MixtureHead(NextStateHead):
    """``p(v | h)`` as a regression of the mean plus a Gaussian mixture for the rest.

    A mixture density network: a network (``mean``: a small MLP or the deterministic head's
    bottleneck) regresses the conditional mean ``m(h)`` of the velocity (squared error, as
    the deterministic head, and the only part of the loss that reaches the LM), and ``K``
    diagonal Gaussians model the residual ``r = v - m(h)`` (its
    negative log-likelihood, with ``m(h)`` and the hidden state read without gradient):
    ``p(r | h) = sum_k pi_k(h) N(r; mu_k(h), diag sigma_k(h)^2)``. Generation draws a
    component ``k ~ pi(h)`` and ``v = m(h) + mu_k + sqrt(tau) sigma_k e``: τ scales the
    variance within a component (τ = 0: the mean of the most probable component, no noise).

    Parameters
    ----------
    in_features
        ``K * width`` (of the LM).
    n_features
        ``D``.
    hidden
        Width of the MLPs.
    n_components
        ``K``, the number of Gaussians.
    mean, latent_dim
        The mean's network and its bottleneck width (:func:`mean_network`: ``"mlp"`` or
        ``"bottleneck"``, the deterministic head's network).
    """

    stochastic = True

    def __init__(
        self,
        in_features: int,
        n_features: int,
        hidden: int,
        n_components: int = 8,
        mean: str = "mlp",
        latent_dim: int = 32,
    ):
        super().__init__()
        self.n_features = n_features
        self.n_components = n_components
        # one standard normal per feature, and one more that picks the component
        self.noise_dim = n_features + 1
        self.mean = mean_network(
            mean, in_features, n_features, latent_dim=latent_dim, hidden=hidden
        )
        self.mixture = mlp([in_features, hidden, n_components * (1 + 2 * n_features)])

    def components(self, h: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Log-weights ``(..., K)``, means and log-variances ``(..., K, D)`` of the residual."""
        out = self.mixture(h)
        K, D = self.n_components, self.n_features
        logits, rest = out[..., :K], out[..., K:].reshape(*out.shape[:-1], K, 2 * D)
        mu, logvar = rest[..., :D], rest[..., D:].clamp(*LOGVAR_RANGE)
        return torch.log_softmax(logits, dim=-1), mu, logvar

    def loss_terms(self, h: torch.Tensor, target: torch.Tensor) -> HeadLoss:
        """Squared error of the mean plus the mixture's negative log-likelihood of the rest."""
        m = self.mean(h)
        mean_loss = (m - target).pow(2).sum(-1)
        r = (target - m.detach()).unsqueeze(-2)
        log_w, mu, logvar = self.components(h.detach())
        log_normal = -0.5 * ((r - mu).pow(2) / logvar.exp() + logvar + math.log(2 * math.pi)).sum(
            -1
        )
        nll = -torch.logsumexp(log_w + log_normal, dim=-1)
        return HeadLoss(mean_loss + nll, None, mean_loss.detach())

    def sample(self, h, *, temperature=1.0, noise=None, generator=None) -> torch.Tensor:
        """A component by its weight, then a Gaussian draw with variance scaled by τ."""
        log_w, mu, logvar = self.components(h)
        m = self.mean(h)
        if temperature <= 0:
            k = log_w.argmax(-1)
            return m + torch.gather(mu, -2, _index(k, mu)).squeeze(-2)
        e = self.standard_normal(h, noise, generator)
        # the last normal picks the component: u = Phi(e_last) is uniform on (0, 1)
        u = 0.5 * (1 + torch.erf(e[..., -1:] / math.sqrt(2)))
        k = (log_w.exp().cumsum(-1) < u).sum(-1).clamp_max(self.n_components - 1)
        mu_k = torch.gather(mu, -2, _index(k, mu)).squeeze(-2)
        std_k = torch.gather(logvar, -2, _index(k, logvar)).squeeze(-2).mul(0.5).exp()
        return m + mu_k + (temperature**0.5) * std_k * e[..., :-1]


def _index(k: torch.Tensor, like: torch.Tensor) -> torch.Tensor:
    """``k`` ``(...)`` as a gather index ``(..., 1, D)`` into ``like`` ``(..., K, D)``."""
    return k[..., None, None].expand(*k.shape, 1, like.shape[-1])
