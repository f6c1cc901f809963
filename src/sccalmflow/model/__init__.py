"""The user's door: :class:`CaLMFlowModel` (a thin class over mixins, one concern per file).

- ``_model.py``: construction, conditions, prompts, features.
- ``_registration.py``: ``setup_anndata`` / ``setup_mudata``.
- ``_training.py``: ``train``.
- ``_generation.py``: ``predict``.
- ``_save_load.py``: ``save`` / ``load`` (safetensors + JSON).
"""

from ._checks import SOURCE_DEFAULTS, SourceDefaults, generator_defaults
from ._model import CaLMFlowModel

__all__ = ["SOURCE_DEFAULTS", "CaLMFlowModel", "SourceDefaults", "generator_defaults"]
