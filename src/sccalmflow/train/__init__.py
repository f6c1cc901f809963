"""Training: the Lightning plan, callbacks (best weights, epoch seeds, checkpoints), budget.

(The data module lives in :mod:`sccalmflow.data`.)
"""

from ._best_weights import BestWeights
from ._budget import default_max_epochs
from ._checkpoints import (
    LAST_CHECKPOINT,
    EpochCheckpoint,
    EpochSeed,
    checkpoint_callback,
    resume_path,
    weights_only_loads,
)
from ._plan import CaLMFlowTrainingPlan

__all__ = [
    "LAST_CHECKPOINT",
    "BestWeights",
    "CaLMFlowTrainingPlan",
    "EpochCheckpoint",
    "EpochSeed",
    "checkpoint_callback",
    "default_max_epochs",
    "resume_path",
    "weights_only_loads",
]
