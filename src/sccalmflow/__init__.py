"""sccalmflow: CaLMFlow (flow matching with a causal language model) for single-cell data."""

from importlib.metadata import PackageNotFoundError, version

from . import datasets

try:
    __version__ = version("sccalmflow")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0.0.0"

__all__ = ["datasets"]
