"""Warnings that point at the user's line, not at the package's internals."""

from __future__ import annotations

import sys
import warnings

#: Modules whose frames sit between the user and the warning: the package itself and the
#: libraries that wrap its calls (torch's ``inference_mode`` decorator, Lightning's loops).
_INTERNAL = ("sccalmflow", "torch", "lightning", "scvi", "contextlib")


def _internal(frame) -> bool:
    name = frame.f_globals.get("__name__", "")
    return any(name == m or name.startswith(m + ".") for m in _INTERNAL)


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside sccalmflow.

    Frames of sccalmflow and of the libraries it wraps calls in are skipped (by module
    name), so the warning names the user's own line whatever the call path.
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None and _internal(frame):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level + 1)
