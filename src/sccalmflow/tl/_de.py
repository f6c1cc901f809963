"""Top DE genes of real perturbed cells against their control cells.

Highlighted by :func:`sccalmflow.pl.mean_expression`, drawn by :func:`sccalmflow.pl.de_genes`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import check_anndata, get_matrix
from ..metrics import top_de_genes


def de_genes(
    real,
    control,
    n: int = 100,
    *,
    layer: str | None = None,
    method: str = "wilcoxon",
) -> list[str]:
    """The top ``n`` DE genes of ``real`` cells against ``control`` cells.

    Stacks both sets into one AnnData and ranks the genes with
    :func:`sccalmflow.metrics.top_de_genes` (:func:`scanpy.tl.rank_genes_groups`, up-regulated
    genes first). Neither input is modified.

    Parameters
    ----------
    real : anndata.AnnData
        Real perturbed cells of one condition.
    control : anndata.AnnData
        Real control cells of the same context, with the same genes in the same order.
    n : int
        Number of genes.
    layer : str, optional
        Expression layer of both instead of ``X``.
    method : str
        Test of :func:`scanpy.tl.rank_genes_groups`.

    Returns
    -------
    list of str
        Gene names, most significant first.

    Examples
    --------
    >>> genes = sccalmflow.tl.de_genes(real_mono, ctrl_mono, 8)
    >>> sccalmflow.pl.de_genes(pred_mono, real_mono, ctrl_mono, genes=genes)
    """
    import anndata as ad

    check_anndata(real, "real")
    check_anndata(control, "control")
    if control.n_vars != real.n_vars or not np.array_equal(
        np.asarray(control.var_names), np.asarray(real.var_names)
    ):
        raise ValueError("control must have the same var_names as real.")
    xr = get_matrix(real, layer=layer, name="real")
    xc = get_matrix(control, layer=layer, name="control")
    stacked = (
        sp.vstack([sp.csr_matrix(xr), sp.csr_matrix(xc)]).tocsr()
        if sp.issparse(xr) or sp.issparse(xc)
        else np.vstack([np.asarray(xr), np.asarray(xc)])
    )
    tmp = ad.AnnData(
        X=stacked,
        obs=pd.DataFrame(
            {"_set": ["real"] * real.n_obs + ["control"] * control.n_obs},
            index=[f"c{i}" for i in range(real.n_obs + control.n_obs)],
        ),
        var=pd.DataFrame(index=np.asarray(real.var_names)),
    )
    return top_de_genes(tmp, groupby="_set", group="real", reference="control", n=n, method=method)
