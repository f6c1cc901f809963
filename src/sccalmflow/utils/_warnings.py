"""Warnings that point at the user's line, not at the package's internals."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

_PACKAGE = str(Path(__file__).resolve().parents[1])
#: Frames of these libraries sit between the user and the package (decorators, loops).
_SKIP = ("torch", "lightning", "scvi", "contextlib")


def _outside(filename: str) -> bool:
    if filename.startswith(_PACKAGE):
        return False
    return not any(f"{part}" in Path(filename).parts for part in _SKIP) and not filename.endswith(
        "contextlib.py"
    )


def warn_user(message: str, category: type[Warning] = UserWarning) -> None:
    """``warnings.warn`` with the stack level of the first caller outside sccalmflow.

    Frames of sccalmflow and of the libraries it wraps calls in (torch's ``inference_mode``
    decorator, Lightning's loops) are skipped, so the warning names the user's own line
    whatever the call path.
    """
    level, frame = 1, sys._getframe(1)
    while frame is not None and not _outside(frame.f_code.co_filename):
        frame = frame.f_back
        level += 1
    warnings.warn(message, category, stacklevel=level + 1)
