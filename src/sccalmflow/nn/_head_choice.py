"""Pick a next-state head by name."""

from __future__ import annotations

import warnings

from ._cvae_head import ConditionalVAEHead
from ._flow_head import FlowMatchingHead
from ._head import NextStateHead
from ._mixture_head import MixtureHead
from ._variational_head import DeterministicHead, VariationalHead

#: The heads by name, in the order the docs list them.
HEADS = ("deterministic", "variational", "cvae", "flow", "gmm")

#: The heads that regress a mean velocity and sample the rest (they take ``mean``).
MEAN_HEADS = ("flow", "gmm")


def build_head(
    name: str,
    in_features: int,
    n_features: int,
    *,
    latent_dim: int,
    hidden: int,
    mean: str | None = None,
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
        Latent size of the deterministic, variational and cvae heads, and of the
        ``"bottleneck"`` mean of the flow and gmm heads.
    hidden
        Hidden width of the head's MLPs. The flow head warns when it is below ``n_features``:
        its draws are then confined to a ``hidden``-dimensional family (measured on the
        100-d Gaussians task: W2 2.04 with 32, 1.46 with 128; ``benchmarks/results/
        generator_toys.md``).
    mean
        The mean network of the heads in :data:`MEAN_HEADS` (``"mlp"``, the default, or
        ``"bottleneck"``; see :func:`~sccalmflow.nn.mean_network`); the other heads have none
        and refuse it.
    """
    if mean is not None and name not in MEAN_HEADS:
        raise ValueError(
            f"The {name!r} head has no separate mean network; `mean` applies to the "
            f"{' and '.join(map(repr, MEAN_HEADS))} heads. Leave it None."
        )
    kwargs = {"mean": mean or "mlp", "latent_dim": latent_dim}
    if name == "deterministic":
        return DeterministicHead(in_features, n_features, latent_dim, hidden)
    if name == "variational":
        return VariationalHead(in_features, n_features, latent_dim, hidden)
    if name == "cvae":
        return ConditionalVAEHead(in_features, n_features, latent_dim, hidden)
    if name == "flow":
        if hidden < n_features:
            warnings.warn(
                f"The flow head's hidden width ({hidden}) is below the {n_features} features it "
                "samples, which confines its draws to a narrower family; pass "
                f"head_hidden >= {n_features}.",
                UserWarning,
                stacklevel=2,
            )
        return FlowMatchingHead(in_features, n_features, hidden, **kwargs)
    if name == "gmm":
        return MixtureHead(in_features, n_features, hidden, **kwargs)
    raise ValueError(f"head must be one of {', '.join(map(repr, HEADS))}; got {name!r}.")
