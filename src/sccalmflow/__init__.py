"""sccalmflow: CaLMFlow (flow matching with a causal language model) for single-cell data."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("sccalmflow")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0.0.0"

from . import baselines, data, datasets, metrics, pl, tl
from .model import CaLMFlowModel
from .utils import settings

__all__ = ["CaLMFlowModel", "baselines", "data", "datasets", "metrics", "pl", "settings", "tl"]
