"""The user's door: :class:`CaLMFlowModel` (a thin class over mixins, one concern per file).

- ``_model.py``: construction, conditions, prompts, features.
- ``_registration.py``: ``setup_anndata`` / ``setup_mudata``.
- ``_training.py``: ``train``.
- ``_generation.py``: ``predict``.
- ``_save_load.py``: ``save`` / ``load`` (safetensors + JSON).
"""

from ._checks import GENERATOR_DEFAULTS, NOISE_STEP_SCALE, generator_defaults
from ._model import CaLMFlowModel

__all__ = ["GENERATOR_DEFAULTS", "NOISE_STEP_SCALE", "CaLMFlowModel", "generator_defaults"]
