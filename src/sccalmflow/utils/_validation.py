"""Argument checks shared by the model, the baselines and the metrics.

Each check raises a :class:`TypeError` (wrong kind of value) or a :class:`ValueError`
(right kind, wrong value) that names the argument, what it got and what it needs, and
returns the value unchanged: nothing is coerced silently (``2.7`` is not an integer,
``"5"`` is not a number).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Iterable, Mapping
from typing import Any


def _describe(value: Any) -> str:
    return f"{value!r} ({type(value).__name__})"


def check_int(
    name: str, value: Any, *, minimum: int | None = None, maximum: int | None = None
) -> int:
    """An integer (``bool`` and floats refused, numpy integers accepted) within bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer, got {_describe(value)}.")
    value = int(value)
    if minimum is not None and value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}, got {value}.")
    if maximum is not None and value > maximum:
        raise ValueError(f"`{name}` must be at most {maximum}, got {value}.")
    return value


def check_number(
    name: str,
    value: Any,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    exclusive_minimum: bool = False,
    exclusive_maximum: bool = False,
) -> float:
    """A finite real number (``bool`` and strings refused) within bounds."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number, got {_describe(value)}.")
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"`{name}` must be finite, got {value}.")
    if minimum is not None and (value <= minimum if exclusive_minimum else value < minimum):
        word = "greater than" if exclusive_minimum else "at least"
        raise ValueError(f"`{name}` must be {word} {minimum}, got {value}.")
    if maximum is not None and (value >= maximum if exclusive_maximum else value > maximum):
        word = "less than" if exclusive_maximum else "at most"
        raise ValueError(f"`{name}` must be {word} {maximum}, got {value}.")
    return value


def check_bool(name: str, value: Any) -> bool:
    """``True`` or ``False`` (numpy booleans accepted; ``0``/``1``/strings refused)."""
    if not isinstance(value, bool) and type(value).__name__ != "bool_":
        raise TypeError(f"`{name}` must be True or False, got {_describe(value)}.")
    return bool(value)


def check_choice(name: str, value: Any, choices: Iterable[Any]) -> Any:
    """One of ``choices``."""
    choices = list(choices)
    if not isinstance(value, str | int | float | type(None)) or value not in choices:
        raise ValueError(f"`{name}` must be one of {choices}, got {_describe(value)}.")
    return value


def check_seed(name: str, value: Any) -> int:
    """A seed: an integer from 0 to 2**32 - 1 (what numpy and torch accept)."""
    if value is None:
        raise TypeError(
            f"`{name}` must be an integer from 0 to 2**32 - 1, got None: pass a number so "
            "that results are reproducible."
        )
    return check_int(name, value, minimum=0, maximum=2**32 - 1)


def check_sequence(name: str, values: Any, *, what: str = "values") -> list:
    """A non-empty list, tuple, array or other iterable of ``what`` as a list.

    Strings, bytes, mappings and single values are refused (``"0.5"`` is not a list of
    numbers, and iterating it would give its characters); a single number gets a hint to
    wrap it in a list.
    """
    if isinstance(values, str | bytes | Mapping) or not isinstance(values, Iterable):
        hint = f"; for one value pass [{values!r}]" if isinstance(values, numbers.Number) else ""
        raise TypeError(f"`{name}` must be a sequence of {what}, got {_describe(values)}{hint}.")
    if getattr(values, "ndim", 1) != 1:
        raise ValueError(f"`{name}` must be 1-dimensional, got shape {values.shape}.")
    out = list(values)
    if not out:
        raise ValueError(f"`{name}` must be a non-empty sequence of {what}, got an empty one.")
    return out


def check_numbers(
    name: str,
    values: Any,
    *,
    minimum: float | None = None,
    exclusive_minimum: bool = False,
    distinct: bool = False,
) -> tuple[float, ...]:
    """A non-empty sequence of finite real numbers within bounds, as a tuple of floats.

    Each element is checked as :func:`check_number` checks one (``bool`` and strings
    refused) and named by its position (``gammas[1]``); ``distinct=True`` also refuses a
    value given twice.
    """
    items = check_sequence(name, values, what="numbers")
    out = tuple(
        check_number(f"{name}[{i}]", v, minimum=minimum, exclusive_minimum=exclusive_minimum)
        for i, v in enumerate(items)
    )
    if distinct and len(set(out)) < len(out):
        twice = sorted({v for v in out if out.count(v) > 1})
        raise ValueError(f"`{name}` must not repeat a value; {twice} appear more than once.")
    return out
