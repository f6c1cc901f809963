"""Datasets shipped inside the package (no download at run time)."""

from ._kang import kang2018, kang2018_setup

__all__ = ["kang2018", "kang2018_setup"]
