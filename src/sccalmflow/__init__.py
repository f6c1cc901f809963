"""sccalmflow: CaLMFlow (flow matching with a causal language model) for single-cell data.

Subpackages and :class:`CaLMFlowModel` load on first use (PEP 562), so ``import sccalmflow``
is quick and ``scf.pl.history``, ``scf.CaLMFlowModel`` ... work after it; the heavy
dependencies (Lightning, scvi-tools, transformers) load with the first object that needs
them.
"""

from importlib import import_module
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING, Any

try:
    __version__ = version("sccalmflow")
except PackageNotFoundError:  # pragma: no cover
    __version__ = "0.0.0"

if TYPE_CHECKING:  # for type checkers and IDEs; at run time these load lazily
    from . import baselines, data, datasets, metrics, pl, tl
    from .model import CaLMFlowModel
    from .utils import settings

_SUBPACKAGES = (
    "baselines",
    "data",
    "datasets",
    "flow",
    "metrics",
    "model",
    "module",
    "nn",
    "pl",
    "tl",
    "train",
    "utils",
)
_OBJECTS = {"CaLMFlowModel": "model", "settings": "utils"}

__all__ = ["CaLMFlowModel", "baselines", "data", "datasets", "metrics", "pl", "settings", "tl"]


def __getattr__(name: str) -> Any:
    if name in _SUBPACKAGES:
        return import_module(f".{name}", __name__)
    if name in _OBJECTS:
        return getattr(import_module(f".{_OBJECTS[name]}", __name__), name)
    raise AttributeError(f"module 'sccalmflow' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_SUBPACKAGES, *_OBJECTS})
