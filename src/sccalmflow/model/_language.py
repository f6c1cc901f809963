"""The language side of :class:`~sccalmflow.CaLMFlowModel`: backbone, fine-tuning, prompts."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..data import PromptEncoder, build_prompt_encoder
from ..nn import check_pretrained_source, default_backbone_config
from ._registration import registry_phrases


class LanguageMixin:
    """Which language model reads which prompt (``backbone``, ``finetune``, prompts)."""

    def _language_parts(
        self,
        templates: dict[str, str],
        *,
        backbone: str | None,
        finetune: str,
        pretrained_config: dict[str, Any] | None,
        prompt_encoder: str | PromptEncoder | None,
        local_files_only: bool,
        prompt_tokens: int,
        random_backbone: tuple,
        sequence: tuple[int, int],
    ) -> dict[str, Any] | None:
        """Set the prompt encoder; the backbone config to build (``None``: load pretrained).

        ``random_backbone`` is ``(backbone_config, architecture, width, n_layers, n_heads,
        ffn)``; ``sequence`` is ``(n_time_points, n_space_tokens)``.
        """
        self.backbone_name = None if backbone is None else str(backbone)
        self.finetune = finetune
        pretrained = self.backbone_name is not None or pretrained_config is not None
        if self.backbone_name is not None and pretrained_config is None:
            check_pretrained_source(self.backbone_name)
        if not isinstance(prompt_encoder, PromptEncoder):
            prompt_encoder = build_prompt_encoder(
                prompt_encoder or ("lm" if pretrained else "words"),
                templates,
                self.control,
                self.categories,
                phrases=registry_phrases(self.adata_manager.registry),
                backbone=self.backbone_name,
                local_files_only=local_files_only,
                n_tokens=prompt_tokens,
            )
        self.prompt_encoder = prompt_encoder
        self._warn_shared_prompts()
        if pretrained_config is not None:
            return dict(pretrained_config)
        if pretrained:
            return None
        return self._backbone_config(*random_backbone, *sequence)

    def _warn_shared_prompts(self) -> None:
        """Warn when registered conditions share one prompt text: the LM cannot tell them apart."""
        if self.prompt_encoder.kind == "none" or not self.condition_keys:
            return
        frame = self._cell_conditions().drop_duplicates().reset_index(drop=True)
        text = pd.Series(self.prompt_encoder.prompts(frame))
        shared = text[text.duplicated(keep=False)]
        if shared.empty:
            return
        examples = [
            f"{prompt!r} <- {frame.loc[idx].astype(str).to_dict('records')}"
            for prompt, idx in list(shared.groupby(shared).groups.items())[:3]
        ]
        warnings.warn(
            f"{shared.nunique()} prompt(s) are shared by different registered conditions, so "
            f"the model cannot tell those conditions apart: {'; '.join(examples)}. Name every "
            "condition key in the templates (`prompt_template=`) and give distinct `phrases=`.",
            UserWarning,
            stacklevel=4,
        )

    def _finish_backbone(
        self, cfg: dict[str, Any] | None, n_time_points: int, n_space_tokens: int
    ) -> dict[str, Any]:
        """The built backbone's config (a pretrained one's, saved to rebuild it offline)."""
        if cfg is None:
            cfg = self.module.backbone.config.to_dict()
        self.backbone_config_ = cfg
        self._check_positions(n_time_points, n_space_tokens)
        return cfg

    def _backbone_summary(self) -> str:
        """``gpt_neox`` (random weights) or ``<name>, <finetune>`` (pretrained)."""
        cfg = self.backbone_config_
        if self.backbone_name is None:
            return str(cfg["model_type"])
        return f"{self.backbone_name}, {self.finetune}"

    def _check_positions(self, n_time_points: int, n_space_tokens: int) -> None:
        """A sequence fits the backbone's position embeddings."""
        cfg = self.module.backbone.config
        limit = getattr(cfg, "max_position_embeddings", None) or getattr(cfg, "n_positions", None)
        seq_len = self.prompt_length + self.n_trajectories * n_time_points * n_space_tokens
        if limit is not None and seq_len > limit:
            raise ValueError(
                f"A sequence has {seq_len} tokens (prompt {self.prompt_length} + N x T x K = "
                f"{self.n_trajectories} x {n_time_points} x {n_space_tokens}), more than the "
                f"backbone's {limit} positions: lower n_trajectories, n_time_points or "
                "n_space_tokens."
            )

    def _backbone_config(
        self, config, family, width, n_layers, n_heads, ffn, n_time_points, n_space_tokens
    ) -> dict[str, Any]:
        """The backbone's config with the prompt vocabulary and enough positions."""
        if config is None:
            cfg = default_backbone_config(
                family, width=width, n_layers=n_layers, n_heads=n_heads, ffn=ffn
            )
        else:
            cfg = dict(config)
        cfg["vocab_size"] = self.prompt_encoder.vocab_size
        seq_len = self.prompt_length + self.n_trajectories * n_time_points * n_space_tokens
        pos_key = "n_positions" if cfg.get("model_type") == "gpt2" else "max_position_embeddings"
        cfg[pos_key] = max(int(cfg.get(pos_key, 0)), seq_len + 8)
        return cfg

    # ================================================================== prompts
    @property
    def templates(self) -> dict[str, str]:
        """The prompt templates (``"perturbed"`` and, with a control, ``"control"``)."""
        return dict(self.prompt_encoder.templates)

    @property
    def prompt_length(self) -> int:
        """Tokens of every (left-padded) prompt."""
        return self.prompt_encoder.prompt_length

    def prompts(self, conditions: pd.DataFrame | Mapping[str, Sequence] | None = None) -> list[str]:
        """The prompt of each requested condition (``None``: one per registered cell).

        Examples
        --------
        >>> model.prompts({"cell_type": ["B"], "condition": ["IFN-beta"]})
        ['Generate a B cell stimulated with IFN-beta:']
        """
        if conditions is None and self.condition_keys:
            frame = self._cell_conditions()
        else:
            frame = self.conditions.validate(conditions)
        return self.prompt_encoder.prompts(frame)
