"""The user's door: :class:`CaLMFlowModel` (a thin class over mixins, one concern per file).

- ``_model.py``: construction, conditions, prompts, features.
- ``_registration.py``: ``setup_anndata`` / ``setup_mudata``.
- ``_training.py``: ``train``.
- ``_calibration.py``: ``calibrate_temperature`` (τ from the cells; ``train`` calls it).
- ``_generation.py``: ``predict``.
- ``_save_load.py``: ``save`` / ``load`` (safetensors + JSON).
"""

from ._calibration import CALIBRATION_TEMPERATURES
from ._checks import SOURCE_DEFAULTS, SourceDefaults, generator_defaults
from ._model import CaLMFlowModel

__all__ = [
    "CALIBRATION_TEMPERATURES",
    "SOURCE_DEFAULTS",
    "CaLMFlowModel",
    "SourceDefaults",
    "generator_defaults",
]
