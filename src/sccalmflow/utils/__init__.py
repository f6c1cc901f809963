"""Small utilities shared by several packages: thread handling and argument checks."""

from ._threads import keep_torch_threads, settings, torch_threads
from ._validation import check_bool, check_choice, check_int, check_number, check_seed

__all__ = [
    "check_bool",
    "check_choice",
    "check_int",
    "check_number",
    "check_seed",
    "keep_torch_threads",
    "settings",
    "torch_threads",
]
