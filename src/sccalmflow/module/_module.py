from __future__ import annotations

from typing import Any

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data

from ..flow import StraightPath, time_grid
from ..nn import SpatiotemporalTokenizer, VariationalHead
from ..nn._head import gaussian_kl
from ._backbone import backbone_width, build_backbone


class CaLMFlowModule(BaseModuleClass):
    """CaLMFlow as a torch module (tensors in, tensors out; no AnnData).

    A sequence is ``[prompt tokens ; trajectory 1 ; ... ; trajectory N]`` where a trajectory is
    ``T`` states of ``K`` spatiotemporal tokens each. The causal LM's hidden states at the K
    tokens of state ``i`` are decoded by the variational head into the next state ``i + 1``
    (teacher forcing in training; autoregressive with a KV cache in :meth:`generate`).

    Parameters
    ----------
    n_features
        ``D``, dimension of a state (PCA features).
    backbone_config
        Config dict of the Hugging Face model (see :func:`default_backbone_config`).
    n_time_points
        ``T``.
    n_space_tokens
        ``K``.
    n_trajectories
        ``N`` trajectories per sequence.
    variational
        Variational (True) or deterministic (False) decoding head.
    latent_dim, head_hidden, tokenizer_hidden
        Sizes of the head's latent and of the MLPs.
    sigma_min
        Noise of the straight conditional path.
    kl_free_bits
        Free bits per latent dimension (nats): the KL of a dimension below this value is not
        penalised, which keeps the latent from collapsing.
    pca_mean, pca_components, pca_scale
        The feature space (registered buffers, so they are saved with the weights); used by
        :meth:`decode_genes`.
    """

    def __init__(
        self,
        n_features: int,
        backbone_config: dict[str, Any],
        n_time_points: int = 16,
        n_space_tokens: int = 1,
        n_trajectories: int = 1,
        variational: bool = True,
        latent_dim: int = 16,
        head_hidden: int = 128,
        tokenizer_hidden: int = 128,
        sigma_min: float = 0.0,
        kl_free_bits: float = 0.0,
        pca_mean: torch.Tensor | None = None,
        pca_components: torch.Tensor | None = None,
        pca_scale: torch.Tensor | None = None,
    ):
        super().__init__()
        self.n_features = n_features
        self.n_time_points = n_time_points
        self.n_space_tokens = n_space_tokens
        self.n_trajectories = n_trajectories
        self.kl_free_bits = kl_free_bits
        self.latent_dim = latent_dim
        self.backbone = build_backbone(backbone_config)
        width = backbone_width(self.backbone)
        self.tokenizer = SpatiotemporalTokenizer(
            n_features, n_space_tokens, width, n_time_points, tokenizer_hidden
        )
        self.head = VariationalHead(
            n_space_tokens * width, n_features, latent_dim, head_hidden, variational
        )
        self.path = StraightPath(sigma_min)
        self.register_buffer("time_grid", time_grid(n_time_points))
        n_genes = 0 if pca_components is None else pca_components.shape[1]
        self.register_buffer(
            "pca_mean", torch.zeros(n_genes) if pca_mean is None else pca_mean.float()
        )
        self.register_buffer(
            "pca_components",
            torch.zeros(n_features, n_genes) if pca_components is None else pca_components.float(),
        )
        self.register_buffer(
            "pca_scale", torch.ones(n_features) if pca_scale is None else pca_scale.float()
        )

    # ----------------------------------------------------------------- sequence pieces
    def embed_prompt(self, prompt_ids: torch.Tensor) -> torch.Tensor:
        """``(B, L)`` token ids -> ``(B, L, width)`` embeddings of the backbone."""
        return self.backbone.get_input_embeddings()(prompt_ids)

    def _hidden(self, inputs_embeds: torch.Tensor, past_key_values=None, use_cache=False):
        out = self.backbone(
            inputs_embeds=inputs_embeds, past_key_values=past_key_values, use_cache=use_cache
        )
        return out.last_hidden_state, (out.past_key_values if use_cache else None)

    # ----------------------------------------------------------------- scvi-tools hooks
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {"prompt_ids": tensors["prompt_ids"], "x0": tensors["x0"], "x1": tensors["x1"]}

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict:
        return {}

    @auto_move_data
    def inference(self, prompt_ids: torch.Tensor, x0: torch.Tensor, x1: torch.Tensor) -> dict:
        """Teacher-forced pass over ground-truth paths.

        Parameters
        ----------
        prompt_ids
            ``(B, L)``.
        x0, x1
            Sources and targets, ``(B, N, D)``.

        Returns
        -------
        dict with ``z`` ``(B, N, T, D)`` (the path), ``velocity`` ``(B, N, T-1, D)`` (head
        output), ``mu``/``logvar`` ``(B, N, T-1, latent)``.
        """
        z = self.path.sample(x0, x1, self.time_grid)
        out = self.next_state_head(prompt_ids, z, sample=self.training)
        return {"z": z, "velocity": out.velocity, "mu": out.mu, "logvar": out.logvar}

    def next_state_head(self, prompt_ids: torch.Tensor, z: torch.Tensor, *, sample: bool):
        """Run the LM over ``[prompt ; tokens(z)]`` and decode every state but the last.

        Parameters
        ----------
        prompt_ids
            ``(B, L)``.
        z
            States ``(B, N, T, D)``.

        Returns
        -------
        :class:`~sccalmflow.nn._head.HeadOutput` with velocity ``(B, N, T-1, D)``.
        """
        B, N, T, _ = z.shape
        tokens = self.tokenizer(z, torch.arange(T, device=z.device)).reshape(
            B, N * T * self.n_space_tokens, -1
        )
        prompt = self.embed_prompt(prompt_ids)
        hidden, _ = self._hidden(torch.cat([prompt, tokens], dim=1))
        hidden = hidden[:, prompt.shape[1] :].reshape(B, N, T, -1)[:, :, :-1]
        return self.head(hidden, sample=sample)

    def generative(self, **kwargs) -> dict:
        return {}

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Next-state loss on the velocity scale plus ``kl_weight`` times the KL term.

        ``reconstruction = mean_{n,i} sum_d (v_hat - (z_{i+1} - z_i) / dt_i)^2`` per sequence and
        ``kl = mean_{n,i} sum_j max(KL_j, free_bits)``; both are logged per sequence.
        """
        z = inference_outputs["z"]
        dt = (self.time_grid[1:] - self.time_grid[:-1]).view(1, 1, -1, 1)
        target = (z[:, :, 1:] - z[:, :, :-1]) / dt
        rec = (inference_outputs["velocity"] - target).pow(2).sum(-1).mean(dim=(1, 2))
        if inference_outputs["logvar"] is None:
            kl = torch.zeros_like(rec)
        else:
            kl_dims = gaussian_kl(inference_outputs["mu"], inference_outputs["logvar"])
            if self.kl_free_bits > 0:
                # free bits on the batch-averaged KL of each latent dimension
                mean_kl = kl_dims.mean(dim=(0, 1, 2), keepdim=True)
                kl_dims = kl_dims * (mean_kl > self.kl_free_bits).to(kl_dims.dtype)
            kl = kl_dims.sum(-1).mean(dim=(1, 2))
        loss = (rec + kl_weight * kl).mean()
        return LossOutput(
            loss=loss,
            reconstruction_loss=rec,
            kl_local=kl,
            n_obs_minibatch=rec.shape[0],
        )

    # ----------------------------------------------------------------- generation
    @torch.inference_mode()
    def generate(
        self,
        prompt_ids: torch.Tensor,
        x0: torch.Tensor,
        *,
        temperature: float = 1.0,
        use_cache: bool = True,
        return_path: bool = False,
        generator: torch.Generator | None = None,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Autoregressive generation of N trajectories per sequence.

        Parameters
        ----------
        prompt_ids
            ``(B, L)`` token ids.
        x0
            Sources, ``(B, N, D)``.
        temperature
            Posterior variance scale of the variational head (0: use the mean).
        use_cache
            Reuse the backbone's key/value cache (one forward pass of K new tokens per state)
            instead of re-running the whole sequence at every step.
        return_path
            Also return every state on the grid.
        generator
            Random generator for the head's samples (when ``noise`` is not given).
        noise
            Standard normal draws of the head, ``(B, N, T - 1, latent_dim)``; fixing them
            makes a sequence's result independent of the batch it is generated in.

        Returns
        -------
        ``(x1_hat (B, N, D), path (B, N, T, D) or None)``.
        """
        B, N, D = x0.shape
        T, K = self.n_time_points, self.n_space_tokens
        grid = self.time_grid
        prompt = self.embed_prompt(prompt_ids)
        states = torch.empty(B, N, T, D, dtype=x0.dtype, device=x0.device)
        sample = self.head.variational and temperature > 0
        cache = None
        seq = None  # the whole sequence so far (uncached generation only)
        pending = prompt  # embeddings the backbone has not seen yet
        for n in range(N):
            states[:, n, 0] = x0[:, n]
            for i in range(T - 1):
                new = self.tokenizer(states[:, n, i : i + 1], torch.tensor([i], device=x0.device))
                pending = new if pending is None else torch.cat([pending, new], dim=1)
                if use_cache:
                    hidden, cache = self._hidden(pending, past_key_values=cache, use_cache=True)
                else:
                    seq = pending if seq is None else torch.cat([seq, pending], dim=1)
                    hidden, _ = self._hidden(seq)
                pending = None
                h = hidden[:, -K:].reshape(B, -1)
                eps = None
                if sample:
                    eps = (
                        noise[:, n, i]
                        if noise is not None
                        else torch.randn(B, self.latent_dim, generator=generator, device=x0.device)
                    )
                v = self.head(h, sample=sample, temperature=temperature, noise=eps).velocity
                states[:, n, i + 1] = states[:, n, i] + (grid[i + 1] - grid[i]) * v
            if n + 1 < N:
                # the last state of this trajectory enters the context before the next source
                pending = self.tokenizer(
                    states[:, n, T - 1 : T], torch.tensor([T - 1], device=x0.device)
                )
        return states[:, :, -1], (states if return_path else None)

    def sample(self, *args, **kwargs):
        """Alias of :meth:`generate` (scvi-tools' module interface)."""
        return self.generate(*args, **kwargs)

    # ----------------------------------------------------------------- decoding
    def decode_genes(self, z: torch.Tensor, clip_negative: bool = True) -> torch.Tensor:
        """Features ``(..., D)`` -> genes ``(..., G)`` with the stored linear decoder."""
        x = (z * self.pca_scale) @ self.pca_components + self.pca_mean
        return x.clamp_min(0) if clip_negative else x
