"""Hugging Face causal language models used as the Volterra solver."""

from __future__ import annotations

import functools
import inspect
from typing import Any

from torch import nn

# keyword names of each supported family, so users can say width/n_layers/... once
_NAMES = {
    "gpt_neox": {
        "width": "hidden_size",
        "n_layers": "num_hidden_layers",
        "n_heads": "num_attention_heads",
        "ffn": "intermediate_size",
        "max_positions": "max_position_embeddings",
    },
    "gpt2": {
        "width": "n_embd",
        "n_layers": "n_layer",
        "n_heads": "n_head",
        "ffn": "n_inner",
        "max_positions": "n_positions",
    },
}


def default_backbone_config(
    family: str = "gpt_neox",
    *,
    width: int = 64,
    n_layers: int = 2,
    n_heads: int = 4,
    ffn: int = 256,
    vocab_size: int = 64,
    max_positions: int = 2048,
) -> dict[str, Any]:
    """A small random-weight backbone config, as a plain JSON-able dict.

    The defaults are the paper's single-cell size (width 64, FFN 256, 4 heads, 2 blocks);
    ``family`` is ``"gpt_neox"`` (Pythia-style) or ``"gpt2"``.
    """
    if family not in _NAMES:
        raise ValueError(f"Unknown backbone family {family!r}; use one of {sorted(_NAMES)}.")
    names = _NAMES[family]
    cfg: dict[str, Any] = {
        "model_type": family,
        names["width"]: width,
        names["n_layers"]: n_layers,
        names["n_heads"]: n_heads,
        names["ffn"]: ffn,
        names["max_positions"]: max_positions,
        "vocab_size": vocab_size,
        "use_cache": True,
    }
    # the families' default special ids (GPT-NeoX 0/2, GPT-2 50256) can lie outside a small
    # vocabulary; the backbone never uses them (it reads embeddings), and transformers warns
    cfg.update(bos_token_id=None, eos_token_id=None)
    if family == "gpt_neox":
        cfg.update(attention_dropout=0.0, hidden_dropout=0.0, rotary_pct=0.25)
    else:
        cfg.update(resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    return cfg


def build_backbone(config: dict[str, Any]) -> nn.Module:
    """Build the base transformer (no LM head) with random weights from a config dict.

    The returned module takes ``inputs_embeds`` and returns ``last_hidden_state`` and
    its key/value cache; its input embedding turns prompt token ids into vectors. Only the
    supported families are built, never with remote code (an ``auto_map`` entry is dropped).
    """
    from transformers import AutoConfig, AutoModel

    config = dict(config)
    model_type = config.pop("model_type", None)
    if model_type is None:
        raise ValueError("The backbone config needs a 'model_type' (e.g. 'gpt_neox', 'gpt2').")
    check_backbone_family(model_type, "config")
    config.pop("auto_map", None)
    hf_config = AutoConfig.for_model(model_type, **config)
    hf_config._attn_implementation = "sdpa"
    return AutoModel.from_config(hf_config, trust_remote_code=False)


#: How a backbone's weights are trained: every weight, none (only the flow layers around
#: it), or low-rank adapters (LoRA, through ``peft``) on its attention projections.
FINETUNE_MODES = ("full", "frozen", "lora")


def load_pretrained_backbone(name_or_path: str, *, local_files_only: bool = False) -> nn.Module:
    """A pretrained base transformer (no LM head) from the hub or a local folder.

    Loads with :meth:`transformers.AutoModel.from_pretrained`, ``trust_remote_code=False``
    (only model classes that ship with transformers) and ``use_safetensors=True`` (weights
    in ``.bin`` pickles are refused: they can execute code when read).

    Parameters
    ----------
    name_or_path
        A hub name (``"EleutherAI/pythia-160m"``, downloaded once into the Hugging Face
        cache) or a folder written by ``save_pretrained``.
    local_files_only
        Never use the network: a hub name must already be in the local cache.
    """
    from transformers import AutoModel

    check_pretrained_source(name_or_path)
    try:
        model = AutoModel.from_pretrained(
            name_or_path,
            local_files_only=local_files_only,
            trust_remote_code=False,
            use_safetensors=True,
            attn_implementation="sdpa",
        )
    except (OSError, ValueError) as err:
        raise OSError(
            f"Could not load the pretrained backbone {name_or_path!r}: {err}\nPass a hub name "
            "on a machine with internet (or with it in the Hugging Face cache), or a local "
            "folder written by `save_pretrained` holding config.json and model.safetensors "
            "(convert .bin weights with `model.save_pretrained(folder, "
            "safe_serialization=True)`)."
        ) from err
    check_backbone_family(model.config.model_type, name_or_path)
    return model


def check_pretrained_source(name_or_path: str) -> None:
    """A name that looks like a path (``/``, ``./``, ``~``) must be an existing folder."""
    from pathlib import Path

    text = str(name_or_path)
    looks_like_path = text.startswith(("/", ".", "~", "\\")) or text.count("/") > 1
    if looks_like_path and not Path(text).expanduser().is_dir():
        raise FileNotFoundError(
            f"Could not load the pretrained backbone {text!r}: no such folder. Pass a folder "
            "written by `save_pretrained` (config.json, model.safetensors, tokenizer files) or "
            "a hub name such as 'EleutherAI/pythia-160m'."
        )


def check_backbone_family(model_type: str, name: str) -> None:
    """Refuse a model family sccalmflow does not run (GPT-NeoX and GPT-2 are supported)."""
    if model_type not in _NAMES:
        raise ValueError(
            f"The backbone {name!r} is a {model_type!r} model; sccalmflow runs the "
            f"{sorted(_NAMES)} families (Pythia, GPT-2 and models of the same architecture)."
        )


def lora_target_modules(model_type: str) -> list[str]:
    """The attention projections LoRA adapts in each family (peft's defaults)."""
    return {"gpt_neox": ["query_key_value"], "gpt2": ["c_attn"]}[model_type]


def apply_finetune(backbone: nn.Module, mode: str, *, lora_rank: int = 8) -> nn.Module:
    """Set which backbone weights train: ``"full"``, ``"frozen"`` or ``"lora"``.

    ``"lora"`` injects rank-``lora_rank`` adapters (``lora_alpha = 2 * rank``, no dropout)
    into the attention projections with ``peft`` (``pip install peft``), in place: the module
    keeps its class, and its state dict gains the ``lora_A``/``lora_B`` weights. Everything
    but the adapters is frozen.
    """
    if mode not in FINETUNE_MODES:
        raise ValueError(f"`finetune` must be one of {list(FINETUNE_MODES)}, got {mode!r}.")
    if mode == "lora":
        try:
            from peft import LoraConfig, inject_adapter_in_model
        except ImportError as err:
            raise ImportError(
                "finetune='lora' needs peft: `pip install peft` (or sccalmflow[language])."
            ) from err
        config = LoraConfig(
            r=lora_rank,
            lora_alpha=2 * lora_rank,
            lora_dropout=0.0,
            target_modules=lora_target_modules(backbone.config.model_type),
            fan_in_fan_out=backbone.config.model_type == "gpt2",  # GPT-2's Conv1D layers
        )
        backbone = inject_adapter_in_model(config, backbone)
    for name, param in backbone.named_parameters():
        param.requires_grad_(mode == "full" or (mode == "lora" and "lora_" in name))
    return backbone


@functools.cache
def _cache_argument(model_class: type) -> str:
    """The forward keyword (and output field) of the key/value cache of a model class.

    ``cache`` in current transformers; ``past_key_values`` in releases before it (there it
    is deprecated and slated for removal).
    """
    params = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in params else "past_key_values"


def run_backbone(backbone: nn.Module, inputs_embeds, cache=None, *, use_cache: bool = False):
    """Run a Hugging Face base model on embeddings with the current cache API.

    Parameters
    ----------
    backbone
        A model from :func:`build_backbone`.
    inputs_embeds
        ``(B, S, width)``.
    cache
        The cache returned by the previous call (``None``: start a new one).
    use_cache
        Keep and return the key/value cache.

    Returns
    -------
    ``(last_hidden_state (B, S, width), cache or None)``.
    """
    name = _cache_argument(type(backbone))
    out = backbone(inputs_embeds=inputs_embeds, use_cache=use_cache, **{name: cache})
    if not use_cache:
        return out.last_hidden_state, None
    return out.last_hidden_state, getattr(out, name)


def backbone_width(backbone: nn.Module) -> int:
    """Hidden size of a built backbone (GPT-NeoX's ``hidden_size``, GPT-2's ``n_embd``)."""
    cfg = backbone.config
    return int(getattr(cfg, "hidden_size", None) or cfg.n_embd)
