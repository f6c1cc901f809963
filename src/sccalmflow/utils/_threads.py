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


class _Settings:
    """Package settings (``sccalmflow.settings``).

    Attributes
    ----------
    n_threads
        Torch CPU threads used inside :meth:`~sccalmflow.CaLMFlowModel.train` and
        :meth:`~sccalmflow.CaLMFlowModel.predict` (the caller's setting is restored after
        each call). Default 1: models of this size gain little from intra-op threads, and
        torch's thread pool slows down several-fold when another process holds a core
        (``benchmarks/threads.py`` measures both cases). ``None``: leave torch's setting.
    """

    def __init__(self) -> None:
        self._n_threads: int | None = 1

    @property
    def n_threads(self) -> int | None:
        return self._n_threads

    @n_threads.setter
    def n_threads(self, value: int | None) -> None:
        from ._validation import check_int

        self._n_threads = None if value is None else check_int("n_threads", value, minimum=1)

    def __repr__(self) -> str:
        return f"sccalmflow.settings(n_threads={self._n_threads})"


#: The package settings; ``sccalmflow.settings`` is this object.
settings = _Settings()


@contextmanager
def torch_threads(n: int | None) -> Iterator[None]:
    """Run the block with ``n`` torch CPU threads (``None``: ``settings.n_threads``).

    The caller's thread count is restored afterwards; with ``settings.n_threads = None`` and
    ``n=None`` nothing is changed.
    """
    import torch

    from ._validation import check_int

    n = settings.n_threads if n is None else check_int("n_threads", n, minimum=1)
    before = torch.get_num_threads()
    if n is not None and n != before:
        torch.set_num_threads(n)
    try:
        yield
    finally:
        if torch.get_num_threads() != before:
            torch.set_num_threads(before)
