"""Baselines with the main model's ``fit`` / ``predict`` interface.

- :class:`Control`: resampled control cells of the target context ("no change").
- :class:`Additive`: scGen-style vector arithmetic, context-balanced, in PCA space.
- :class:`TrainMean`: control cells plus (mean of perturbed means - mean of control means).
- :class:`CFM`: conditional flow matching (torchcfm I-CFM / OT-CFM / SB-CFM) from N(0, I).

All share :class:`BaselineMethod`: ``fit(adata, *, condition_keys, control, layer=None,
n_pca=50, pca_scaling="global", seed=0)`` and ``predict(conditions, n_cells=100, seed=0)``.
"""

from ._arithmetic import Additive, Control, TrainMean
from ._base import BaselineMethod
from ._cfm import CFM

__all__ = ["CFM", "Additive", "BaselineMethod", "Control", "TrainMean"]
