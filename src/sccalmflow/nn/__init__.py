"""Small network parts: the state tokenizer, the next-state heads, the backbone builder."""

from ._backbone import backbone_width, build_backbone, default_backbone_config, run_backbone
from ._cvae_head import ConditionalVAEHead
from ._flow_head import FlowMatchingHead
from ._head import HeadLoss, NextStateHead, gaussian_kl
from ._head_choice import HEADS, build_head
from ._state_tokenizer import StateTokenizer
from ._variational_head import DeterministicHead, VariationalHead

__all__ = [
    "HEADS",
    "ConditionalVAEHead",
    "DeterministicHead",
    "FlowMatchingHead",
    "HeadLoss",
    "NextStateHead",
    "StateTokenizer",
    "VariationalHead",
    "backbone_width",
    "build_backbone",
    "build_head",
    "default_backbone_config",
    "gaussian_kl",
    "run_backbone",
]
