"""The solver: integrate the Volterra equation by autoregressive next-state prediction."""

from __future__ import annotations

from typing import Protocol

import torch


class NextStateModel(Protocol):
    """What :class:`AutoregressiveSolver` needs from a module (see ``CaLMFlowModule``)."""

    n_time_points: int
    n_space_tokens: int
    noise_dim: int
    time_grid: torch.Tensor

    def prefill(self, prompt: torch.Tensor) -> torch.Tensor: ...

    def embed_states(self, z: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor: ...

    def step(
        self, embeds: torch.Tensor, cache=None, *, use_cache: bool, temperature: float, noise=None
    ) -> tuple[torch.Tensor, object]: ...

    def samples_latent(self, temperature: float) -> bool: ...


class AutoregressiveSolver:
    """Generate trajectories with a next-state model and an explicit Euler update.

    For each of the ``N`` trajectories of a sequence, state ``z_i`` is tokenized and appended
    to the context (``[prompt ; earlier states]``), the model's :meth:`step` predicts the
    velocity to the next grid point, and ``z_{i+1} = z_i + (t_{i+1} - t_i) v``. With
    ``use_cache`` the backbone's key/value cache holds the context, so each step runs only the
    ``K`` new tokens; without it the whole sequence is re-run (the reference for tests).
    The last state of a trajectory joins the context before the next trajectory's source.

    Parameters
    ----------
    model
        The module (:class:`~sccalmflow.module.CaLMFlowModule`).
    """

    def __init__(self, model: NextStateModel):
        self.model = model

    @torch.inference_mode()
    def sample(
        self,
        prompt: torch.Tensor,
        x0: torch.Tensor,
        *,
        temperature: float = 1.0,
        use_cache: bool = True,
        return_path: bool = False,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
        context: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate ``N`` trajectories per sequence from their sources.

        Parameters
        ----------
        prompt
            ``(B, L)`` token ids or ``(B, E)`` text embeddings (what the model's
            :meth:`prefill` reads).
        x0
            Sources, ``(B, N, D)``.
        temperature
            Sampling temperature of the head (0: its mean).
        use_cache
            Reuse the backbone's key/value cache.
        return_path
            Also return every state on the grid.
        generator
            Random generator for the head's samples (when ``noise`` is not given).
        noise
            Standard normal draws of the head, ``(B, N, T - 1, noise_dim)``; fixing them
            makes a sequence's result independent of the batch it is generated in.
        context
            Whole paths ``(B, M, T, D)`` of earlier trajectories of each sequence, read after
            the prompt and before the new ones exactly as the model's own earlier trajectories
            would be (``predict(chain=h)``); ``M + N`` must not exceed the model's
            ``n_trajectories``.

        Returns
        -------
        ``(x1_hat (B, N, D), path (B, N, T, D) or None)``.
        """
        model = self.model
        B, N, D = x0.shape
        T = model.n_time_points
        grid = model.time_grid
        states = torch.empty(B, N, T, D, dtype=x0.dtype, device=x0.device)
        sample = model.samples_latent(temperature)
        cache = None
        seq = None  # the whole sequence so far (uncached generation only)
        pending = model.prefill(prompt)  # embeddings the backbone has not seen yet
        if context is not None:  # earlier trajectories of the sequence, (B, M, T, D)
            M = context.shape[1]
            idx = torch.arange(T, device=x0.device).repeat(M)
            known = model.embed_states(context.reshape(B, M * T, D), idx)
            pending = torch.cat([pending, known], dim=1)
        for n in range(N):
            states[:, n, 0] = x0[:, n]
            for i in range(T - 1):
                new = model.embed_states(
                    states[:, n, i : i + 1], torch.tensor([i], device=x0.device)
                )
                pending = new if pending is None else torch.cat([pending, new], dim=1)
                if not use_cache:
                    seq = pending if seq is None else torch.cat([seq, pending], dim=1)
                eps = None
                if sample:
                    eps = (
                        noise[:, n, i]
                        if noise is not None
                        else torch.randn(B, model.noise_dim, generator=generator, device=x0.device)
                    )
                v, cache = model.step(
                    pending if use_cache else seq,
                    cache,
                    use_cache=use_cache,
                    temperature=temperature,
                    noise=eps,
                )
                pending = None
                states[:, n, i + 1] = states[:, n, i] + (grid[i + 1] - grid[i]) * v
            if n + 1 < N:
                pending = model.embed_states(
                    states[:, n, T - 1 : T], torch.tensor([T - 1], device=x0.device)
                )
        return states[:, :, -1], (states if return_path else None)
