"""Datasets shipped inside the package (no download at run time) and generated ones."""

from ._kang import kang2018, kang2018_setup
from ._synthetic import synthetic_perturbation, synthetic_setup

__all__ = ["kang2018", "kang2018_setup", "synthetic_perturbation", "synthetic_setup"]
