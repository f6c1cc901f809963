"""CaLMFlow as a torch module: tensors in, tensors out (no AnnData)."""

from __future__ import annotations

from typing import Any

import torch
from scvi.module.base import BaseModuleClass, LossOutput, auto_move_data

from ..flow import AutoregressiveSolver, PathSample, build_path, time_grid
from ..nn import (
    StateTokenizer,
    apply_finetune,
    backbone_width,
    build_backbone,
    build_head,
    load_pretrained_backbone,
    run_backbone,
)
from ._constants import BATCH_KEYS, MEAN_ERROR


class CaLMFlowModule(BaseModuleClass):
    """CaLMFlow as a torch module (tensors in, tensors out; no AnnData).

    A sequence is ``[prompt tokens ; trajectory 1 ; ... ; trajectory N]`` where a trajectory is
    ``T`` states of ``K`` spatiotemporal tokens each. The causal LM's hidden states at the K
    tokens of state ``i`` are decoded by the next-state head into the velocity to state
    ``i + 1``: teacher-forced in training (:meth:`inference` samples the path,
    :meth:`generative` runs the LM and the head, :meth:`loss` compares with the path's
    target); one state at a time in generation (:meth:`prefill` and :meth:`step`, driven by
    :class:`~sccalmflow.flow.AutoregressiveSolver` in :meth:`generate`).

    The module is the only holder of the feature space (``pca_mean``, ``pca_components``,
    ``pca_scale`` buffers), so it is saved with the weights.

    Parameters
    ----------
    n_features
        ``D``, dimension of a state (PCA features).
    backbone_config
        Config dict of the Hugging Face model (see
        :func:`~sccalmflow.nn.default_backbone_config`).
    n_time_points
        ``T``.
    n_space_tokens
        ``K``.
    n_trajectories
        ``N`` trajectories per sequence.
    head
        The next-state head: ``"deterministic"``, ``"variational"`` (the paper's), ``"cvae"``,
        ``"flow"`` or ``"gmm"`` (see :func:`~sccalmflow.nn.build_head`).
    head_mean
        The mean network of the flow and gmm heads (``"mlp"`` or ``"bottleneck"``; ``None``:
        ``"mlp"``; see :func:`~sccalmflow.nn.build_head`).
    latent_dim, head_hidden, tokenizer_hidden
        Sizes of the head's latent and of the MLPs.
    path
        The conditional path: ``"straight"`` or ``"bridge"`` (see
        :func:`~sccalmflow.flow.build_path`).
    sigma_min
        The path's noise: σ of the straight path's interior points, or the bridge's
        diffusion coefficient.
    kl_free_bits
        Free bits per latent dimension (nats): the KL of a dimension below this value is not
        penalised, which keeps the latent from collapsing.
    pca_mean, pca_components, pca_scale
        The feature space ``(G,)``, ``(D, G)``, ``(D,)``; used by :meth:`decode_genes`.
    pretrained
        A pretrained LM (hub name or local folder) whose weights the backbone starts from
        (``backbone_config`` is then ignored); ``None``: random weights from the config.
    local_files_only
        Load ``pretrained`` without the network.
    finetune
        Which backbone weights train: ``"full"``, ``"frozen"`` or ``"lora"`` (see
        :func:`~sccalmflow.nn.apply_finetune`).
    lora_rank
        Rank of the LoRA adapters.
    prompt_input
        How the prompt is embedded (a prompt encoder's ``module_input``):
        ``{"kind": "tokens"}`` (default): ids into the backbone's token embeddings;
        ``{"kind": "embedding", "dim": E, "n_tokens": P}``: ``(B, E)`` text embeddings
        through a learned linear map to ``P`` tokens; ``{"kind": "categories",
        "vocab_size": V}``: ids into the module's own table of ``V`` learned tokens.
    """

    def __init__(
        self,
        n_features: int,
        backbone_config: dict[str, Any],
        n_time_points: int = 16,
        n_space_tokens: int = 1,
        n_trajectories: int = 1,
        head: str = "deterministic",
        latent_dim: int = 32,
        head_hidden: int = 128,
        tokenizer_hidden: int = 128,
        path: str = "straight",
        sigma_min: float = 0.0,
        kl_free_bits: float = 0.0,
        pca_mean: torch.Tensor | None = None,
        pca_components: torch.Tensor | None = None,
        pca_scale: torch.Tensor | None = None,
        pretrained: str | None = None,
        local_files_only: bool = False,
        finetune: str = "full",
        lora_rank: int = 8,
        prompt_input: dict[str, Any] | None = None,
        head_mean: str | None = None,
    ):
        super().__init__()
        self.n_features = n_features
        self.n_time_points = n_time_points
        self.n_space_tokens = n_space_tokens
        self.n_trajectories = n_trajectories
        self.kl_free_bits = kl_free_bits
        self.latent_dim = latent_dim
        if pretrained is not None:
            backbone = load_pretrained_backbone(pretrained, local_files_only=local_files_only)
        else:
            backbone = build_backbone(backbone_config)
        self.backbone = apply_finetune(backbone, finetune, lora_rank=lora_rank)
        width = backbone_width(self.backbone)
        self.prompt_input = dict(prompt_input or {"kind": "tokens"})
        kind = self.prompt_input["kind"]
        if kind == "embedding":
            self.n_prompt_tokens = int(self.prompt_input["n_tokens"])
            self.prompt_projection = torch.nn.Linear(
                int(self.prompt_input["dim"]), self.n_prompt_tokens * width
            )
        elif kind == "categories":
            self.condition_embedding = torch.nn.Embedding(
                int(self.prompt_input["vocab_size"]), width
            )
        elif kind != "tokens":
            raise ValueError(f"Unknown prompt input kind {kind!r}.")
        self.state_tokenizer = StateTokenizer(
            n_features, n_space_tokens, width, n_time_points, tokenizer_hidden
        )
        self.head = build_head(
            head,
            n_space_tokens * width,
            n_features,
            latent_dim=latent_dim,
            hidden=head_hidden,
            mean=head_mean,
        )
        self.path = build_path(path, sigma_min)
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
    def embed_prompt(self, prompt: torch.Tensor) -> torch.Tensor:
        """The prompt ``(B, L)`` ids or ``(B, E)`` text embeddings -> ``(B, L', width)``.

        Token ids go through the backbone's token embeddings (``prompt_input`` kind
        ``"tokens"``) or the module's condition tokens (``"categories"``); text embeddings
        through the learned projection to ``n_tokens`` prefix tokens (``"embedding"``).
        """
        kind = self.prompt_input["kind"]
        if kind == "tokens":
            return self.backbone.get_input_embeddings()(prompt)
        if kind == "categories":
            return self.condition_embedding(prompt)
        out = self.prompt_projection(prompt.to(self.prompt_projection.weight.dtype))
        return out.reshape(prompt.shape[0], self.n_prompt_tokens, -1)

    def embed_states(self, z: torch.Tensor, time_index: torch.Tensor) -> torch.Tensor:
        """States ``(B, S, D)`` at grid indices ``(S,)`` -> tokens ``(B, S * K, width)``."""
        return self.state_tokenizer(z, time_index)

    def _hidden(self, inputs_embeds: torch.Tensor, cache=None, use_cache=False):
        return run_backbone(self.backbone, inputs_embeds, cache, use_cache=use_cache)

    # ----------------------------------------------------------------- scvi-tools hooks
    def _get_inference_input(self, tensors: dict[str, torch.Tensor], **kwargs) -> dict:
        return {
            "x0": tensors[BATCH_KEYS.X0],
            "x1": tensors[BATCH_KEYS.X1],
        }

    def _get_generative_input(self, tensors, inference_outputs, **kwargs) -> dict:
        return {
            "prompt": tensors[BATCH_KEYS.PROMPT],
            "states": inference_outputs["path"].states,
            "target": inference_outputs["path"].target,
        }

    @auto_move_data
    def inference(self, x0: torch.Tensor, x1: torch.Tensor) -> dict[str, PathSample]:
        """Sample the conditional paths from sources ``(B, N, D)`` to targets ``(B, N, D)``.

        Returns
        -------
        ``{"path": PathSample}`` with states ``(B, N, T, D)`` and target ``(B, N, T - 1, D)``.
        """
        return {"path": self.path.sample(x0, x1, self.time_grid)}

    @auto_move_data
    def generative(
        self, prompt: torch.Tensor, states: torch.Tensor, target: torch.Tensor
    ) -> dict[str, torch.Tensor | None]:
        """Teacher-forced pass: the head's training terms at every state but the last.

        Parameters
        ----------
        prompt
            ``(B, L)``.
        states
            ``(B, N, T, D)``.
        target
            The path's target ``(B, N, T - 1, D)``.

        Returns
        -------
        dict with ``reconstruction`` ``(B, N, T - 1)``, ``kl`` ``(B, N, T - 1, latent)``
        (``None`` for heads without a latent) and ``mean_error`` ``(B, N, T - 1)``, the squared
        error of the head's mean velocity (see :class:`~sccalmflow.nn.HeadLoss`).
        """
        terms = self.head.loss_terms(self.history_states(prompt, states), target)
        mean_error = terms.reconstruction if terms.mean_error is None else terms.mean_error
        return {"reconstruction": terms.reconstruction, "kl": terms.kl, "mean_error": mean_error}

    def history_states(self, prompt: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        """Run the LM over ``[prompt ; tokens(z)]``: its output at every state but the last.

        Parameters
        ----------
        prompt
            ``(B, L)``.
        z
            States ``(B, N, T, D)``.

        Returns
        -------
        ``(B, N, T - 1, K * width)``: what the head sees to predict state ``i + 1``.
        """
        B, N, T, _ = z.shape
        tokens = self.embed_states(z, torch.arange(T, device=z.device)).reshape(
            B, N * T * self.n_space_tokens, -1
        )
        prompt = self.embed_prompt(prompt)
        hidden, _ = self._hidden(torch.cat([prompt, tokens], dim=1))
        return hidden[:, prompt.shape[1] :].reshape(B, N, T, -1)[:, :, :-1]

    def next_state_velocity(
        self, prompt: torch.Tensor, z: torch.Tensor, *, temperature: float = 0.0
    ) -> torch.Tensor:
        """The head's velocity ``(B, N, T - 1, D)`` at every state of teacher-forced paths."""
        return self.head.sample(self.history_states(prompt, z), temperature=temperature)

    def loss(
        self,
        tensors: dict[str, torch.Tensor],
        inference_outputs: dict,
        generative_outputs: dict,
        kl_weight: float = 1.0,
    ) -> LossOutput:
        """Next-state loss on the velocity scale plus ``kl_weight`` times the KL term.

        ``reconstruction`` is the head's loss of the path's target ``(z_{i+1} - z_i) / dt_i``
        (squared error summed over features; flow matching for the flow head) averaged over
        positions, and ``kl = mean_{n,i} sum_j KL_j`` (dimensions under the free bits are not
        penalised); both are logged per sequence. The squared error of the head's mean
        velocity is logged as ``mean_error`` (the reconstruction itself for the
        deterministic, variational and cvae heads); training monitors it.
        """
        rec = generative_outputs["reconstruction"].mean(dim=(1, 2))
        kl_dims = generative_outputs["kl"]
        if kl_dims is None:
            kl = torch.zeros_like(rec)
        else:
            if self.kl_free_bits > 0:
                # free bits on the batch-averaged KL of each latent dimension
                mean_kl = kl_dims.mean(dim=(0, 1, 2), keepdim=True)
                kl_dims = kl_dims * (mean_kl > self.kl_free_bits).to(kl_dims.dtype)
            kl = kl_dims.sum(-1).mean(dim=(1, 2))
        loss = (rec + kl_weight * kl).mean()
        mean_error = generative_outputs["mean_error"].mean(dim=(1, 2))
        return LossOutput(
            loss=loss,
            reconstruction_loss=rec,
            kl_local=kl,
            n_obs_minibatch=rec.shape[0],
            extra_metrics={MEAN_ERROR: mean_error.detach().mean()},
        )

    # ----------------------------------------------------------------- generation
    @property
    def noise_dim(self) -> int:
        """Size of the head's standard normal draw per generation step."""
        return self.head.noise_dim

    def samples_latent(self, temperature: float) -> bool:
        """Whether generation at ``temperature`` draws noise in the head."""
        return self.head.stochastic and temperature > 0

    def require_temperature(self, task: str) -> None:
        """Refuse ``task`` (e.g. ``"calibrate"``) when the head ignores the temperature.

        The deterministic head decodes its mean at every τ, so a sweep or a calibration
        would compare identical cells.
        """
        if not self.samples_latent(1.0):
            raise ValueError(
                "The deterministic head ignores the temperature (head='deterministic'): every "
                f"temperature gives the same cells, so there is nothing to {task}. Build the "
                "model with a sampling head (head='flow', 'gmm', 'cvae' or 'variational')."
            )

    def prefill(self, prompt: torch.Tensor) -> torch.Tensor:
        """The embeddings that open a generated sequence: the prompt's, ``(B, L, width)``.

        They enter the backbone (and its KV cache) with the first state's tokens in the first
        :meth:`step`.
        """
        return self.embed_prompt(prompt)

    def step(
        self,
        embeds: torch.Tensor,
        cache=None,
        *,
        use_cache: bool = True,
        temperature: float = 1.0,
        noise: torch.Tensor | None = None,
    ) -> tuple[torch.Tensor, Any]:
        """One generation step: new embeddings through the LM, the head on the last state.

        Parameters
        ----------
        embeds
            ``(B, S, width)``: the tokens the backbone has not seen (with ``use_cache``), or
            the whole sequence so far (without).
        cache
            The backbone's key/value cache from the previous step (``None`` at first).
        use_cache
            Keep and return the cache.
        temperature
            Sampling temperature of the head.
        noise
            The head's standard normal draw ``(B, noise_dim)`` when it samples.

        Returns
        -------
        ``(velocity (B, D), cache)``.
        """
        hidden, cache = self._hidden(embeds, cache, use_cache=use_cache)
        h = hidden[:, -self.n_space_tokens :].reshape(hidden.shape[0], -1)
        # every head draws no noise at temperature <= 0 (and the deterministic head never)
        return self.head.sample(h, temperature=temperature, noise=noise), cache

    def generate(
        self, prompt: torch.Tensor, x0: torch.Tensor, **kwargs
    ) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Generate ``N`` trajectories per sequence from sources ``x0`` ``(B, N, D)``.

        Keyword arguments (``temperature``, ``use_cache``, ``return_path``, ``generator``,
        ``noise``, ``context``) are those of :meth:`~sccalmflow.flow.AutoregressiveSolver.sample`.

        Returns
        -------
        ``(x1_hat (B, N, D), path (B, N, T, D) or None)``.
        """
        return AutoregressiveSolver(self).sample(prompt, x0, **kwargs)

    def sample(self, *args, **kwargs):
        """Alias of :meth:`generate` (scvi-tools' module interface)."""
        return self.generate(*args, **kwargs)

    # ----------------------------------------------------------------- feature space
    def feature_state(self) -> dict[str, torch.Tensor]:
        """The feature space's ``{"mean", "components", "scale"}`` (the buffers, on CPU)."""
        return {
            "mean": self.pca_mean.detach().cpu(),
            "components": self.pca_components.detach().cpu(),
            "scale": self.pca_scale.detach().cpu(),
        }

    def decode_genes(self, z: torch.Tensor, clip_negative: bool = True) -> torch.Tensor:
        """Features ``(..., D)`` -> genes ``(..., G)`` with the stored linear decoder."""
        x = (z * self.pca_scale) @ self.pca_components + self.pca_mean
        return x.clamp_min(0) if clip_negative else x
