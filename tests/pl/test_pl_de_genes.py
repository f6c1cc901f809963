"""pl.de_genes: violins and dots of control / real / predicted cells."""

import numpy as np
import pytest
from matplotlib.collections import PolyCollection

import sccalmflow as scf


def _legend_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.get_legend().get_texts())


def test_de_genes_violin(one_condition):
    p, r, c = one_condition
    genes = list(r.var_names[:4])
    ax = scf.pl.de_genes(p, r, c, genes=genes, show=False)
    bodies = [x for x in ax.collections if isinstance(x, PolyCollection)]
    assert len(bodies) == 3 * 4
    assert [t.get_text() for t in ax.get_xticklabels()] == genes
    assert _legend_text(ax).split("\n") == ["control", "real", "predicted"]


def test_de_genes_dot_top_n(one_condition):
    p, r, c = one_condition
    ax = scf.pl.de_genes(p, r, c, genes=5, kind="dot", show=False)
    genes = [t.get_text() for t in ax.get_xticklabels()]
    assert len(genes) == 5
    assert genes == scf.tl.de_genes(r, c, 5)  # the top genes come from tl
    dots = ax.collections[0]
    assert len(dots.get_offsets()) == 15
    means = np.vstack([np.asarray(a[:, genes].X.mean(0)).ravel() for a in (c, r, p)])
    np.testing.assert_allclose(np.asarray(dots.get_array()), means.ravel(), rtol=1e-5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["control", "real", "predicted"]


def test_de_genes_errors(one_condition):
    p, r, c = one_condition
    with pytest.raises(ValueError, match="kind"):
        scf.pl.de_genes(p, r, c, genes=["ISG15"], kind="box")
    with pytest.raises(KeyError, match="NOPE"):
        scf.pl.de_genes(p, r, c, genes=["ISG15", "NOPE"])
    with pytest.raises(ValueError, match="labels"):
        scf.pl.de_genes(p, r, c, genes=["ISG15"], labels=("a", "b"))
    with pytest.raises(ValueError, match="empty"):
        scf.pl.de_genes(p, r, c, genes=[])
