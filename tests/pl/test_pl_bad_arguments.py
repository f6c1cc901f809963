"""Every figure checks its arguments, names the one that is wrong and draws nothing then.

One class of checks for all of ``pl``: ``ax`` / ``show`` / ``save`` / ``return_fig`` (shared
by every function), integers (``ncols``, counts) and numbers (sizes, cut-offs) that are not
cast from strings, floats or bools, and gene lists (one name, or distinct names).
"""

from types import SimpleNamespace

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sccalmflow as scf

KEYS = ["cell_type", "condition"]


def _sweep():
    rows = [(ct, "IFN-beta", t, "mmd", "pca", t) for ct in ("B", "NK") for t in (0.0, 1.0)]
    return pd.DataFrame(rows, columns=[*KEYS, "temperature", "metric", "space", "value"])


def _table():
    rows = [
        ("B", "IFN-beta", "mmd", "pca", v, m) for m, v in (("CaLMFlow", 0.1), ("Additive", 0.3))
    ]
    return pd.DataFrame(rows, columns=[*KEYS, "metric", "space", "value", "method"])


def _history():
    idx = pd.Index(np.arange(3), name="epoch")
    return SimpleNamespace(history={"train_loss": pd.DataFrame({"train_loss": [3.0, 2, 1]}, idx)})


def _trajectories():
    rng = np.random.default_rng(0)
    obs = pd.DataFrame([("B", "IFN-beta")] * 3, columns=KEYS, index=["g0", "g1", "g2"])
    return scf.tl.Trajectories(
        paths=rng.normal(size=(3, 4, 2)),
        time_grid=np.linspace(0, 1, 4),
        prediction=ad.AnnData(obs=obs),
        conditions=[("B", "IFN-beta")],
        condition_keys=KEYS,
        background=rng.normal(size=(10, 2)),
        background_obs=pd.DataFrame([("B", "control")] * 10, columns=KEYS),
        basis="pca",
        axis_labels=("PC1", "PC2"),
    )


@pytest.fixture
def draw(one_condition, cells):
    """``draw(name, **kwargs)``: call ``scf.pl.<name>`` on valid inputs plus ``kwargs``."""
    p, r, c = one_condition
    pred, real = cells
    inputs = {
        "de_genes": lambda **kw: scf.pl.de_genes(p, r, c, **{"genes": 2, **kw}),
        "mean_expression": lambda **kw: scf.pl.mean_expression(p, r, **kw),
        "embedding_overlay": lambda **kw: scf.pl.embedding_overlay(
            scf.tl.embedding(pred, real, basis="pca"), **kw
        ),
        "history": lambda **kw: scf.pl.history(_history(), **kw),
        "metrics": lambda **kw: scf.pl.metrics(_table(), **kw),
        "temperature": lambda **kw: scf.pl.temperature(_sweep(), **kw),
        "trajectories": lambda **kw: scf.pl.trajectories(_trajectories(), **kw),
    }
    return lambda name, **kw: inputs[name](**kw)


FUNCTIONS = (
    "de_genes",
    "mean_expression",
    "embedding_overlay",
    "history",
    "metrics",
    "temperature",
    "trajectories",
)


@pytest.mark.parametrize("name", FUNCTIONS)
@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"ax": "ax"}, TypeError, "`ax` must be a matplotlib Axes"),
        ({"show": "no"}, TypeError, "`show` must be True or False"),
        ({"return_fig": 1}, TypeError, "`return_fig` must be True or False"),
        ({"save": 3}, TypeError, "`save` must be True, False, a file name"),
    ],
)
def test_figure_arguments(draw, name, kwargs, error, match):
    """Refused before anything is drawn: no figure is left open."""
    plt.close("all")
    with pytest.raises(error, match=match):
        draw(name, **kwargs)
    assert plt.get_fignums() == []


@pytest.mark.parametrize(
    ("name", "kwargs", "error", "match"),
    [
        ("de_genes", {"genes": 2.0}, TypeError, "`genes` must be an integer, got 2.0"),
        ("de_genes", {"genes": True}, TypeError, "`genes` must be an integer, got True"),
        ("de_genes", {"genes": 0}, ValueError, "`genes` must be at least 1"),
        ("de_genes", {"genes": []}, ValueError, "non-empty sequence of gene names"),
        ("de_genes", {"genes": ["ISG15", "ISG15"]}, ValueError, r"\['ISG15'\] more than once"),
        ("de_genes", {"genes": [1, 2]}, TypeError, "must be gene names"),
        ("de_genes", {"labels": "abc"}, TypeError, "`labels` must be a list of 3 names"),
        ("de_genes", {"labels": ("a", "b")}, ValueError, "`labels` must be 3 names"),
        ("de_genes", {"expression_cutoff": "0"}, TypeError, "`expression_cutoff` must be a"),
        ("mean_expression", {"n_label": 2.5}, TypeError, "`n_label` must be an integer"),
        ("mean_expression", {"n_label": -1}, ValueError, "`n_label` must be at least 0"),
        ("mean_expression", {"n_de": 0}, ValueError, "`n_de` must be at least 1"),
        ("mean_expression", {"title": 3}, TypeError, "`title` must be a string"),
        ("embedding_overlay", {"ncols": 0}, ValueError, "`ncols` must be at least 1"),
        ("embedding_overlay", {"ncols": 1.5}, TypeError, "`ncols` must be an integer"),
        ("embedding_overlay", {"alpha": 2}, ValueError, "`alpha` must be at most 1"),
        ("embedding_overlay", {"size": -1}, ValueError, "`size` must be greater than 0"),
        ("embedding_overlay", {"share_axes": "yes"}, TypeError, "`share_axes` must be True"),
        ("history", {"logy": "yes"}, TypeError, "`logy` must be True or False"),
        ("history", {"ncols": "3"}, TypeError, "`ncols` must be an integer"),
        ("metrics", {"ncols": 0}, ValueError, "`ncols` must be at least 1"),
        ("metrics", {"kind": "heatmap", "fmt": "%%"}, ValueError, "`fmt` must be a format"),
        ("metrics", {"kind": "heatmap", "fmt": 3}, TypeError, "`fmt` must be a format"),
        ("trajectories", {"linewidth": -1}, ValueError, "`linewidth` must be greater than 0"),
        ("trajectories", {"ncols": 0}, ValueError, "`ncols` must be at least 1"),
    ],
)
def test_function_arguments(draw, name, kwargs, error, match):
    plt.close("all")
    with pytest.raises(error, match=match):
        draw(name, **kwargs)
    assert plt.get_fignums() == []


def test_one_gene_name_is_a_list_of_one(draw, one_condition):
    """A single name is one gene (scanpy's convention), not its letters."""
    gene = str(one_condition[0].var_names[0])
    ax = draw("de_genes", genes=gene, show=False)
    assert [t.get_text() for t in ax.get_xticklabels()] == [gene]
    assert draw("mean_expression", genes=gene, show=False) is not None
