"""Training: a LightningDataModule that builds condition-grouped sequences, and the plan."""

from ._datamodule import SequenceDataModule, stratified_split
from ._plan import CaLMFlowTrainingPlan

__all__ = ["CaLMFlowTrainingPlan", "SequenceDataModule", "stratified_split"]
