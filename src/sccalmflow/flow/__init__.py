"""Flow matching pieces (tensors only: no AnnData, no language model).

- :class:`StraightPath` and :class:`BrownianBridgePath` return a :class:`PathSample`: the
  states on the time grid and the regression target (the velocity between consecutive
  states); :func:`build_path` picks one by name.
- :func:`ot_permutation`: exact OT pairing of sources and targets.
- :class:`AutoregressiveSolver`: drives a next-state module (prefill, then one step per
  state with the KV cache) and integrates with Euler updates.
"""

from ._coupling import ot_permutation
from ._path import (
    PATHS,
    BrownianBridgePath,
    PathSample,
    StraightPath,
    build_path,
    finite_difference_velocity,
    time_grid,
)
from ._solver import AutoregressiveSolver, NextStateModel

__all__ = [
    "PATHS",
    "AutoregressiveSolver",
    "BrownianBridgePath",
    "NextStateModel",
    "PathSample",
    "StraightPath",
    "build_path",
    "finite_difference_velocity",
    "ot_permutation",
    "time_grid",
]
