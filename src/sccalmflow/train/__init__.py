"""Training: the Lightning training plan, the best-weights callback and the default budget.

(The data module lives in :mod:`sccalmflow.data`.)
"""

from ._best_weights import BestWeights
from ._budget import default_max_epochs
from ._plan import CaLMFlowTrainingPlan

__all__ = ["BestWeights", "CaLMFlowTrainingPlan", "default_max_epochs"]
