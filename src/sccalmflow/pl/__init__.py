"""Plotting (scanpy-style, matplotlib only): figures draw, :mod:`sccalmflow.tl` computes.

Every function takes its data first and keyword-only options after, draws into ``ax``
when given (never calling ``plt.show()`` then), saves with ``save=`` (a path, or ``True``
for scanpy's ``settings.figdir``) and returns the Axes (one, or a list for several
panels) or, with ``return_fig=True``, the Figure. Colours come from the colour-blind-safe
Okabe-Ito palette (cell sets: control grey, real blue, generated orange) and viridis.
No figure generates cells, scores them or fits an embedding: what needs a model or a fit
comes from :mod:`sccalmflow.tl`.

- :func:`embedding_overlay`: generated over real (and control) cells, joint UMAP or PCA
  (from :func:`sccalmflow.tl.embedding`).
- :func:`mean_expression`: scGen's regression plot of per-gene means, with both R².
- :func:`de_genes`: DE genes across control / real / predicted cells (violin or dot).
- :func:`metrics`: methods x conditions from :func:`sccalmflow.metrics.evaluate`.
- :func:`trajectories`: the generated flow from source to cell over the time grid
  (from :func:`sccalmflow.tl.trajectories`).
- :func:`history`: training and validation loss, reconstruction and KL.
- :func:`temperature`: a metric against the sampling temperature
  (from :func:`sccalmflow.tl.temperature_sweep`).
"""

from ._de_genes import de_genes
from ._embedding import embedding_overlay
from ._history import history
from ._mean_expression import mean_expression
from ._metrics import metrics
from ._temperature import temperature
from ._trajectories import trajectories
from ._utils import OKABE_ITO

__all__ = [
    "OKABE_ITO",
    "de_genes",
    "embedding_overlay",
    "history",
    "mean_expression",
    "metrics",
    "temperature",
    "trajectories",
]
