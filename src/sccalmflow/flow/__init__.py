"""Probability paths, couplings and time grids (tensors only: no AnnData, no language model)."""

from ._coupling import ot_permutation
from ._path import StraightPath, time_grid

__all__ = ["StraightPath", "ot_permutation", "time_grid"]
