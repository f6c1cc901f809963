"""Parameter docs shared by the plotting functions, written once (scanpy's ``_doc_params``).

A function's docstring holds ``{ax}``, ``{show_save_return}`` and ``{returns}`` on lines of
their own, under its parameters and its returns section, and the function is decorated
with ``@doc_params(**COMMON)`` (one panel) or ``@doc_params(**COMMON_PANELS)`` (several),
which fills the paragraphs in.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import TypeVar

F = TypeVar("F", bound=Callable)

doc_ax = """\
ax : matplotlib.axes.Axes, optional
    Axes to draw into (default: a new figure). A figure drawn into ``ax`` is never shown."""

doc_ax_panels = """\
ax : matplotlib.axes.Axes or sequence of Axes, optional
    Axes to draw into, one per panel (default: a new figure). A figure drawn into ``ax``
    is never shown."""

doc_show_save_return = """\
show : bool, optional
    Show the figure (``None``: when no ``ax`` is given, ``return_fig`` is False and the
    backend is interactive).
save : bool or str or pathlib.Path, optional
    Save the figure: to this path (``.png`` added if no suffix), or with ``True`` to
    scanpy's ``settings.figdir`` (file named after the function, scanpy's format).
return_fig : bool
    Return the :class:`~matplotlib.figure.Figure` instead of the Axes."""

doc_returns = """\
matplotlib.axes.Axes or matplotlib.figure.Figure
    The Axes, or the Figure with ``return_fig=True``."""

doc_returns_panels = """\
matplotlib.axes.Axes or list of Axes or matplotlib.figure.Figure
    One Axes (one panel), a list of Axes (several panels), or the Figure with
    ``return_fig=True``."""

#: The paragraphs every figure takes (``ax`` for one panel).
COMMON = {"ax": doc_ax, "show_save_return": doc_show_save_return, "returns": doc_returns}

#: The same for figures with several panels.
COMMON_PANELS = {
    "ax": doc_ax_panels,
    "show_save_return": doc_show_save_return,
    "returns": doc_returns_panels,
}


def doc_params(**kwargs: str) -> Callable[[F], F]:
    """Fill ``{name}`` placeholders of the decorated object's docstring with ``kwargs``.

    Only the given names are replaced (other braces, e.g. ``{"pca", "umap"}``, are left
    alone); a name without its placeholder is an error, so a paragraph cannot be lost
    silently. The docstring is dedented first so the paragraphs line up.

    Parameters
    ----------
    **kwargs
        ``name=paragraph``: the text that replaces ``{name}``.

    Returns
    -------
    The decorator.
    """

    def decorate(obj: F) -> F:
        doc = inspect.cleandoc(obj.__doc__ or "")
        for name, text in kwargs.items():
            placeholder = "{" + name + "}"
            if placeholder not in doc:
                raise ValueError(f"{obj.__qualname__}: docstring has no {placeholder}.")
            doc = doc.replace(placeholder, text)
        obj.__doc__ = doc
        return obj

    return decorate
