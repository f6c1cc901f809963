"""The torch module: path -> state tokens -> causal LM -> next-state head; loss; steps."""

from ._constants import BATCH_KEYS, MEAN_ERROR
from ._module import CaLMFlowModule

__all__ = ["BATCH_KEYS", "MEAN_ERROR", "CaLMFlowModule"]
