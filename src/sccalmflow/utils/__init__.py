"""Small utilities shared by several packages: threads, argument checks, progress bars."""

from ._progress import progress_bar
from ._threads import keep_torch_threads, settings, torch_threads
from ._validation import (
    check_bool,
    check_choice,
    check_int,
    check_number,
    check_numbers,
    check_seed,
    check_sequence,
)
from ._warnings import warn_user

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_numbers",
    "check_seed",
    "check_sequence",
    "keep_torch_threads",
    "progress_bar",
    "settings",
    "torch_threads",
    "warn_user",
]
