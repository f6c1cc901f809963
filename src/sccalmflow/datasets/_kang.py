from __future__ import annotations

from importlib.resources import as_file, files

import anndata as ad


def kang2018() -> ad.AnnData:
    """IFN-beta stimulated human PBMCs (Kang et al. 2018), a 3,474-cell subset.

    The data ship inside the package, so this works offline. Cells were cultured for 6 h
    without (``"control"``) or with IFN-beta (``"IFN-beta"``); cell types are the Seurat
    ``ifnb`` annotations (13 types).

    Returns
    -------
    :class:`~anndata.AnnData` with 3,474 cells x 2,000 highly variable genes.

    - ``X``: ``log1p(counts / library_size * 1e4)`` (float32, sparse CSR)
    - ``layers["counts"]``: raw UMI counts
    - ``obs["cell_type"]``: 13 cell types; ``obs["condition"]``: ``control`` / ``IFN-beta``
    - ``obs["library_size"]``, ``obs["n_genes"]``: per-cell QC values

    Notes
    -----
    Kang HM, Subramaniam M, Targ S, et al. *Multiplexed droplet single-cell RNA-sequencing
    using natural genetic variation.* Nat Biotechnol 36, 89-94 (2018), GEO GSE96583.
    Every call returns a fresh object: modifying it does not affect later calls.
    """
    with as_file(files("sccalmflow.datasets").joinpath("_data/kang2018_pbmc_ifnb.h5ad")) as path:
        adata = ad.read_h5ad(path)
    return adata


def kang2018_setup() -> dict:
    """The registration keywords of :func:`kang2018` (a new dict on every call).

    ``{"condition_keys": ["cell_type", "condition"], "control": {"condition": "control"}}``:
    the same keywords work for :meth:`~sccalmflow.CaLMFlowModel.setup_anndata` and for the
    baselines' ``fit``.

    Examples
    --------
    >>> adata = scf.datasets.kang2018()
    >>> scf.CaLMFlowModel.setup_anndata(adata, **scf.datasets.kang2018_setup())
    """
    return {"condition_keys": ["cell_type", "condition"], "control": {"condition": "control"}}
