"""The state tokenizer: each state of a path -> K spatiotemporal tokens."""

from __future__ import annotations

import torch
from torch import nn


class StateTokenizer(nn.Module):
    """Maps each state ``z_t in R^D`` to ``K`` spatial tokens of the model width.

    A 2-layer MLP ``D -> hidden -> K * width``; learned embeddings of the time index and the
    space-token index are added so the language model knows where on the grid a token is,
    also across several trajectories in one sequence.

    Parameters
    ----------
    n_features
        ``D``.
    n_space_tokens
        ``K``.
    width
        Hidden size of the language model.
    n_time_points
        ``T`` (size of the time-index embedding).
    hidden
        Hidden width of the MLP.
    """

    def __init__(
        self, n_features: int, n_space_tokens: int, width: int, n_time_points: int, hidden: int
    ):
        super().__init__()
        self.n_space_tokens = n_space_tokens
        self.width = width
        self.mlp = nn.Sequential(
            nn.Linear(n_features, hidden), nn.GELU(), nn.Linear(hidden, n_space_tokens * width)
        )
        self.time_embedding = nn.Embedding(n_time_points, width)
        self.space_embedding = nn.Embedding(n_space_tokens, width)

    def forward(self, z: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor:
        """Tokenize states.

        Parameters
        ----------
        z
            States, shape ``(..., S, D)`` (``S`` states).
        time_index
            Long tensor of shape ``(S,)``: the grid index of each state.

        Returns
        -------
        Tokens of shape ``(..., S * K, width)``, ordered state-major
        (``z_{0,1} ... z_{0,K}, z_{1,1}, ...``).
        """
        tokens = self.mlp(z).unflatten(-1, (self.n_space_tokens, self.width))
        tokens = tokens + self.time_embedding(time_index).unsqueeze(-2)
        tokens = tokens + self.space_embedding.weight
        return tokens.flatten(-3, -2)
