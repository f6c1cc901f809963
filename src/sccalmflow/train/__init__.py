"""Training: the Lightning training plan (the data module lives in :mod:`sccalmflow.data`)."""

from ._plan import CaLMFlowTrainingPlan

__all__ = ["CaLMFlowTrainingPlan"]
