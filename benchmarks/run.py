"""The benchmarks' old front door: ``python benchmarks/run.py --suite NAME [--quick]``.

The same as ``python -m benchmarks`` (see :mod:`benchmarks`).
"""

from __future__ import annotations

import sys
from pathlib import Path


def use_repository_root() -> None:
    """Run as ``python benchmarks/X.py``: import ``benchmarks`` from the repository root.

    Python put ``benchmarks/`` itself first on ``sys.path``; the repository root takes its
    place, so the package's modules (``config``, ``tasks``, ...) do not shadow top-level
    names.
    """
    here = Path(__file__).resolve().parent
    if sys.path and Path(sys.path[0] or ".").resolve() == here:
        sys.path[0] = str(here.parent)
    elif str(here.parent) not in sys.path:
        sys.path.insert(0, str(here.parent))


if __name__ == "__main__":
    use_repository_root()
    from benchmarks.__main__ import main, one_thread_env

    one_thread_env()  # before torch / numba load
    main()
