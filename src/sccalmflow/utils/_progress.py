"""Progress bars: one tqdm constructor for every bar the package shows."""

from __future__ import annotations

from collections.abc import Iterable


def progress_bar(iterable: Iterable | None = None, *, total: int | None = None, **kwargs):
    """A tqdm bar: a notebook widget where ``ipywidgets`` is installed, else text.

    ``tqdm.auto`` warns ("IProgress not found") in a notebook without ``ipywidgets``; this
    picks the text bar there instead. ``kwargs`` go to tqdm (``desc``, ``unit``,
    ``disable`` ...). A bar only counts: it draws no random number.
    """
    try:
        import ipywidgets  # noqa: F401
        from tqdm.auto import tqdm
    except ImportError:
        from tqdm.std import tqdm
    return tqdm(iterable, total=total, **kwargs)
