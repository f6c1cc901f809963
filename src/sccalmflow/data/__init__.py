"""Data layer: registration fields, prompt templates, PCA features."""

from ._conditions import as_condition_frame
from ._pca import PCAFeatures
from ._sampling import interpolate_repeats, resample_pool

__all__ = ["PCAFeatures", "as_condition_frame", "interpolate_repeats", "resample_pool"]
