"""Small utilities shared by several packages."""

from ._threads import keep_torch_threads

__all__ = ["keep_torch_threads"]
