"""Pick a next-state head by name."""

from __future__ import annotations

from ._cvae_head import ConditionalVAEHead
from ._flow_head import FlowMatchingHead
from ._head import NextStateHead
from ._mixture_head import MixtureHead
from ._variational_head import DeterministicHead, VariationalHead

#: The heads by name, in the order the docs list them.
HEADS = ("deterministic", "variational", "cvae", "flow", "gmm")


def build_head(
    name: str, in_features: int, n_features: int, *, latent_dim: int, hidden: int
) -> NextStateHead:
    """The next-state head ``name`` (one of :data:`HEADS`).

    Parameters
    ----------
    name
        ``"deterministic"`` (:class:`DeterministicHead`), ``"variational"`` (the paper's,
        :class:`VariationalHead`), ``"cvae"`` (:class:`ConditionalVAEHead`), ``"flow"``
        (:class:`FlowMatchingHead`) or ``"gmm"`` (:class:`MixtureHead`).
    in_features
        ``K * width``.
    n_features
        ``D``.
    latent_dim
        Latent size of the deterministic, variational and cvae heads (unused by ``"flow"``
        and ``"gmm"``).
    hidden
        Hidden width of the head's MLPs.
    """
    if name == "deterministic":
        return DeterministicHead(in_features, n_features, latent_dim, hidden)
    if name == "variational":
        return VariationalHead(in_features, n_features, latent_dim, hidden)
    if name == "cvae":
        return ConditionalVAEHead(in_features, n_features, latent_dim, hidden)
    if name == "flow":
        return FlowMatchingHead(in_features, n_features, hidden)
    if name == "gmm":
        return MixtureHead(in_features, n_features, hidden)
    raise ValueError(f"head must be one of {', '.join(map(repr, HEADS))}; got {name!r}.")
