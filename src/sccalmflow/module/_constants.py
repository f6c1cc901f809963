"""Keys of the batches the data module yields and the module reads."""

from typing import NamedTuple


class _BatchKeys(NamedTuple):
    PROMPT: str = "prompt"
    X0: str = "x0"
    X1: str = "x1"


#: Batch keys: ``PROMPT`` ``(B, L)``, ``X0`` sources and ``X1`` targets ``(B, N, D)``.
BATCH_KEYS = _BatchKeys()
