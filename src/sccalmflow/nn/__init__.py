"""Small network parts: the state tokenizer, the next-state head, the backbone builder."""

from ._backbone import backbone_width, build_backbone, default_backbone_config, run_backbone
from ._head import HeadOutput, VariationalHead, gaussian_kl
from ._state_tokenizer import StateTokenizer

__all__ = [
    "HeadOutput",
    "StateTokenizer",
    "VariationalHead",
    "backbone_width",
    "build_backbone",
    "default_backbone_config",
    "gaussian_kl",
    "run_backbone",
]
