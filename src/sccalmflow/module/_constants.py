"""Keys of the batches the data module yields and the module reads."""

from typing import NamedTuple


class _BatchKeys(NamedTuple):
    PROMPT: str = "prompt"
    X0: str = "x0"
    X1: str = "x1"


#: Batch keys: ``PROMPT`` ``(B, L)``, ``X0`` sources and ``X1`` targets ``(B, N, D)``.
BATCH_KEYS = _BatchKeys()

#: Name of the logged squared error of the head's mean velocity (``mean_error_train``,
#: ``mean_error_validation`` in ``model.history``); early stopping and the best epoch use it.
MEAN_ERROR = "mean_error"
