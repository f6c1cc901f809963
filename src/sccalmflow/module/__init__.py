"""The torch module: path -> tokens -> causal LM -> variational head; loss; generate()."""

from ._backbone import build_backbone, default_backbone_config
from ._module import CaLMFlowModule

__all__ = ["CaLMFlowModule", "build_backbone", "default_backbone_config"]
