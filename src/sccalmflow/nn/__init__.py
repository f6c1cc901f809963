"""Small network parts: the state tokenizer, the next-state heads, the backbone builder."""

from ._backbone import (
    FINETUNE_MODES,
    apply_finetune,
    backbone_width,
    build_backbone,
    check_backbone_family,
    check_pretrained_source,
    default_backbone_config,
    load_pretrained_backbone,
    lora_target_modules,
    run_backbone,
)
from ._cvae_head import ConditionalVAEHead
from ._flow_head import FlowMatchingHead
from ._head import HeadLoss, NextStateHead, gaussian_kl
from ._head_choice import HEADS, MEAN_HEADS, build_head
from ._mixture_head import MixtureHead
from ._state_tokenizer import StateTokenizer
from ._variational_head import MEAN_NETWORKS, DeterministicHead, VariationalHead, mean_network

__all__ = [
    "FINETUNE_MODES",
    "HEADS",
    "MEAN_HEADS",
    "MEAN_NETWORKS",
    "ConditionalVAEHead",
    "DeterministicHead",
    "FlowMatchingHead",
    "HeadLoss",
    "MixtureHead",
    "NextStateHead",
    "StateTokenizer",
    "VariationalHead",
    "apply_finetune",
    "backbone_width",
    "build_backbone",
    "build_head",
    "check_backbone_family",
    "check_pretrained_source",
    "default_backbone_config",
    "gaussian_kl",
    "load_pretrained_backbone",
    "lora_target_modules",
    "mean_network",
    "run_backbone",
]
