"""The user's door: :class:`CaLMFlowModel`."""

from ._model import CaLMFlowModel

__all__ = ["CaLMFlowModel"]
