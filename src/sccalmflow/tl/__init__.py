"""Tools: the computations figures need (scanpy's ``tl``), kept out of :mod:`sccalmflow.pl`.

Each tool computes what one figure of :mod:`sccalmflow.pl` draws; the figure then only
draws it (scanpy's rule: ``tl`` computes, ``pl`` draws).

- :func:`embedding`: generated and real cells of each condition in one 2-d embedding
  (joint UMAP or PCA) -> :func:`sccalmflow.pl.embedding_overlay`.
- :func:`trajectories`: generated paths and real cells in 2-d ->
  :func:`sccalmflow.pl.trajectories`.
- :func:`temperature_sweep`: a metric at several sampling temperatures ->
  :func:`sccalmflow.pl.temperature`.
- :func:`response_interval` (and :func:`mean_interval`): the mean response of each
  condition per gene with an interval over an ensemble of models trained over seeds;
  :func:`calibrate_interval` (and :func:`interval_scale`) measures on held-out conditions
  how much to widen it.
- :func:`de_genes`: top DE genes of real perturbed against control cells ->
  :func:`sccalmflow.pl.de_genes` and :func:`sccalmflow.pl.mean_expression`.
"""

from ._de import de_genes
from ._embedding import EmbeddingOverlay, OverlayPanel, embedding
from ._ensemble import calibrate_interval, interval_scale, mean_interval, response_interval
from ._temperature import temperature_sweep
from ._trajectories import Trajectories, trajectories

__all__ = [
    "EmbeddingOverlay",
    "OverlayPanel",
    "Trajectories",
    "calibrate_interval",
    "de_genes",
    "embedding",
    "interval_scale",
    "mean_interval",
    "response_interval",
    "temperature_sweep",
    "trajectories",
]
