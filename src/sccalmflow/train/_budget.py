"""The default training length: from the data size, with validation deciding when to stop."""

from __future__ import annotations

import math

from ..utils import check_int, check_number

#: Optimiser steps for a data set of :data:`REFERENCE_SEQUENCES` training sequences.
REFERENCE_STEPS = 2000
REFERENCE_SEQUENCES = 3000
#: Bounds of the step budget and of the epochs.
MIN_STEPS, MAX_STEPS = 500, 20_000
MAX_EPOCHS = 400


def default_max_epochs(n_sequences: int, steps_per_epoch: int, scale: float = 1.0) -> int:
    """Epochs for a step budget that grows with the square root of the data size.

    ``steps = scale * 2000 * sqrt(n_sequences / 3000)``, within [500, 20,000]: about 2,000
    steps for the bundled Kang data, fewer for a small data set (which over-fits sooner),
    more but fewer epochs for a large one. The epochs are ``ceil(steps / steps_per_epoch)``,
    at most 400 and at least 1. It is an upper bound: early stopping on the validation loss
    (on by default) usually ends training sooner.

    Parameters
    ----------
    n_sequences
        Training sequences per epoch.
    steps_per_epoch
        Optimiser steps per epoch.
    scale
        Multiplies the step budget (``CaLMFlowModel.train`` uses 2 from noise, where there
        is no early stopping and the whole distribution is learned).
    """
    n_sequences = check_int("n_sequences", n_sequences, minimum=0)
    steps_per_epoch = check_int("steps_per_epoch", steps_per_epoch, minimum=1)
    scale = check_number("scale", scale, minimum=0, exclusive_minimum=True)
    steps = scale * REFERENCE_STEPS * math.sqrt(max(n_sequences, 1) / REFERENCE_SEQUENCES)
    steps = min(MAX_STEPS, max(MIN_STEPS, steps))
    return int(min(MAX_EPOCHS, max(1, math.ceil(steps / steps_per_epoch))))
