"""Keep torch's CPU thread count across calls into numba-based libraries."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def keep_torch_threads() -> Iterator[None]:
    """Restore ``torch.get_num_threads()`` after the block.

    numba's parallel code (scanpy's Wilcoxon test, neighbours via pynndescent, umap-learn)
    shares the OpenMP runtime with torch and sets its thread count to numba's own (all
    cores), which silently undoes a user's ``torch.set_num_threads`` and can make a later
    training in the same process oversubscribe the CPU.
    """
    import torch

    n = torch.get_num_threads()
    try:
        yield
    finally:
        if torch.get_num_threads() != n:
            torch.set_num_threads(n)
