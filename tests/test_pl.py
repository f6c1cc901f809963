"""Tests of sccalmflow.pl: what is drawn (points, labels, legends, panels), returns, errors."""

import matplotlib

matplotlib.use("Agg")

import anndata as ad
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib.collections import LineCollection, PolyCollection
from matplotlib.text import Text

import sccalmflow.pl as pl
from conftest import TINY, quiet_train, small_kang
from sccalmflow import CaLMFlowModel
from sccalmflow.metrics import mean_expression_r2

torch.set_num_threads(1)

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}
HELD = ("CD14 Mono", "IFN-beta")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def _pca(X, k=10):
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    Xc = X - X.mean(0)
    _, _, vt = np.linalg.svd(Xc, full_matrices=False)
    return vt[:k], X.mean(0)


@pytest.fixture(scope="module")
def cells(kang_full):
    """Real cells (small Kang, with PCA) and 'predicted' cells: jittered real perturbed cells
    of two conditions, with different sizes so counts identify the sets."""
    real = small_kang(kang_full)
    comps, mean = _pca(real.X)
    X = real.X.toarray()
    real.obsm["X_pca"] = (X - mean) @ comps.T
    rng = np.random.default_rng(0)
    parts = []
    for ct, n in (("CD14 Mono", 30), ("B", 20)):
        idx = np.flatnonzero((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta"))
        pick = rng.choice(idx, n)
        Xp = np.clip(X[pick] + rng.normal(0, 0.2, (n, X.shape[1])), 0, None).astype(np.float32)
        obs = pd.DataFrame(
            {"cell_type": [ct] * n, "condition": ["IFN-beta"] * n},
            index=[f"{ct}{i}" for i in range(n)],
        )
        parts.append(ad.AnnData(Xp, obs=obs))
    pred = ad.concat(parts, index_unique=None)
    pred.obs_names = [f"gen{i}" for i in range(pred.n_obs)]
    pred.var_names = real.var_names
    pred.obs["prompt"] = "a prompt"  # as the model writes it: not a condition key
    pred.obsm["X_pca"] = (pred.X - mean) @ comps.T
    return pred, real


def _one(cells, ct="CD14 Mono"):
    pred, real = cells
    p = pred[(pred.obs.cell_type == ct).to_numpy()]
    r = real[((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta")).to_numpy()]
    c = real[((real.obs.cell_type == ct) & (real.obs.condition == "control")).to_numpy()]
    return p, r, c


@pytest.fixture(scope="module")
def model(kang_full):
    adata = small_kang(kang_full)
    mask = ((adata.obs.cell_type == HELD[0]) & (adata.obs.condition == HELD[1])).to_numpy()
    train = adata[~mask].copy()
    CaLMFlowModel.setup_anndata(train, condition_keys=KEYS, control=CONTROL)
    m = CaLMFlowModel(train, **{**TINY, "variational": True})  # the temperature matters
    quiet_train(m, max_epochs=2, batch_size=64)
    return m, adata


def _n(collection) -> int:
    return len(collection.get_offsets())


def _legend_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.get_legend().get_texts())


# ---------------------------------------------------------------------- embedding_overlay
def test_embedding_overlay_pca_one_panel_per_condition(cells):
    pred, real = cells
    axes = pl.embedding_overlay(pred, real, basis="pca", control=CONTROL, show=False)
    assert isinstance(axes, list) and len(axes) == 2
    assert [a.get_title() for a in axes] == ["CD14 Mono · IFN-beta", "B · IFN-beta"]
    for a, ct, n_pred in zip(axes, ["CD14 Mono", "B"], [30, 20], strict=True):
        n_real = ((real.obs.cell_type == ct) & (real.obs.condition == "IFN-beta")).sum()
        n_ctrl = ((real.obs.cell_type == ct) & (real.obs.condition == "control")).sum()
        control, real_c, gen = a.collections
        assert (_n(control), _n(real_c), _n(gen)) == (n_ctrl, n_real, n_pred)
        assert gen.get_label() == f"generated (n={n_pred})"
        assert f"real (n={n_real})" in _legend_text(a)
        assert (a.get_xlabel(), a.get_ylabel()) == ("PC1", "PC2")
    # the generated points are the first two PCs of pred's X_pca
    np.testing.assert_allclose(axes[1].collections[2].get_offsets(), pred.obsm["X_pca"][30:, :2])


def test_embedding_overlay_umap_and_single_axes(cells):
    pred, real = cells
    p = pred[pred.obs.cell_type == "B"]
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = pl.embedding_overlay(p, real, basis="umap", ax=ax, umap_kwargs={"n_epochs": 50})
    assert out is ax and len(plt.get_fignums()) == n_figs  # drew into ax, no new figure
    assert ax.get_xlabel() == "UMAP1" and len(ax.collections) == 2  # no control requested
    assert _n(ax.collections[1]) == 20 and np.isfinite(ax.collections[1].get_offsets()).all()


def test_embedding_overlay_color_by_gene(cells):
    pred, real = cells
    fig = pl.embedding_overlay(
        pred, real, basis="pca", color="ISG15", control=CONTROL, return_fig=True
    )
    assert isinstance(fig, plt.Figure)
    panels = [a for a in fig.axes if a.get_title()]
    assert len(panels) == 4  # real and generated for each of the 2 conditions
    assert panels[1].get_title() == "CD14 Mono · IFN-beta\ngenerated"
    gen = panels[1].collections[1]
    expected = np.sort(pred[:30, "ISG15"].X.ravel())
    np.testing.assert_allclose(np.asarray(gen.get_array()), expected, rtol=1e-6)
    assert any(a.get_ylabel() == "ISG15" for a in fig.axes)  # the colour bar


def test_embedding_overlay_errors(cells):
    pred, real = cells
    bare = real.copy()
    del bare.obsm["X_pca"]
    with pytest.raises(KeyError, match="get_pca"):
        pl.embedding_overlay(pred, bare, basis="pca")
    with pytest.raises(ValueError, match="basis"):
        pl.embedding_overlay(pred, real, basis="tsne")
    with pytest.raises(KeyError, match="condition key"):
        pl.embedding_overlay(pred, real, condition_keys=["dose"])
    _, ax = plt.subplots()
    with pytest.raises(ValueError, match="2 panel"):
        pl.embedding_overlay(pred, real, basis="pca", ax=ax)
    with pytest.raises(KeyError, match="neither"):
        pl.embedding_overlay(pred, real, basis="pca", color="not_a_gene")


# ------------------------------------------------------------------------ mean_expression
def test_mean_expression_points_legend_and_labels(cells):
    p, r, _ = _one(cells)
    genes = list(r.var_names[[5, 1, 9, 30, 2, 7]])
    ax = pl.mean_expression(p, r, genes=genes, n_label=4, show=False)
    others, highlighted, outlined = ax.collections[:3]
    assert (_n(others), _n(highlighted), _n(outlined)) == (r.n_vars - 6, 6, 4)
    mu_r = np.asarray(r.X.mean(0)).ravel()
    mu_p = np.asarray(p.X.mean(0)).ravel()
    pos = r.var_names.get_indexer(genes)
    np.testing.assert_allclose(highlighted.get_offsets(), np.column_stack([mu_r, mu_p])[pos])
    assert ax.get_xlabel() == "mean expression, real cells"
    assert ax.get_ylabel() == "mean expression, predicted cells"
    # both R² conventions, on all genes and on the highlighted genes
    text = _legend_text(ax)
    for res in (mean_expression_r2(p, r), mean_expression_r2(p, r, genes=genes)):
        assert f"R² Pearson = {res['r2_pearson']:.3f}" in text
        assert f"R² sklearn = {res['r2_sklearn']:.3f}" in text
    assert "y = x" in text
    # the first n_label genes are labelled, and no two labels overlap
    labels = [t for t in ax.texts if t.get_text() in genes]
    assert sorted(t.get_text() for t in labels) == sorted(genes[:4])
    renderer = ax.figure.canvas.get_renderer()
    for t in labels:
        t.update_positions(renderer)
    boxes = [Text.get_window_extent(t, renderer) for t in labels]  # text only, no connector
    for i in range(len(boxes)):
        for j in range(i + 1, len(boxes)):
            assert not boxes[i].overlaps(boxes[j]), (labels[i].get_text(), labels[j].get_text())


def test_mean_expression_de_genes_ax_save_return_fig(cells, tmp_path):
    p, r, c = _one(cells)
    fig, ax = plt.subplots()
    n_figs = len(plt.get_fignums())
    out = pl.mean_expression(p, r, control=c, n_de=15, n_label=3, ax=ax, save=tmp_path / "reg")
    assert out is ax and len(plt.get_fignums()) == n_figs
    assert (tmp_path / "reg.png").stat().st_size > 0  # suffix added
    assert _n(ax.collections[1]) == 15 and "DE genes (n=15)" in _legend_text(ax)
    assert isinstance(pl.mean_expression(p, r, return_fig=True), plt.Figure)


def test_mean_expression_errors(cells):
    p, r, _ = _one(cells)
    with pytest.raises(ValueError, match="var_names"):
        pl.mean_expression(p[:, :50], r)
    with pytest.raises(KeyError, match="not in real.var_names"):
        pl.mean_expression(p, r, genes=["NOT_A_GENE"])
    with pytest.raises(TypeError, match="AnnData"):
        pl.mean_expression(p.X, r)


# ------------------------------------------------------------------------------- de_genes
def test_de_genes_violin(cells):
    p, r, c = _one(cells)
    genes = list(r.var_names[:4])
    ax = pl.de_genes(p, r, c, genes=genes, show=False)
    bodies = [x for x in ax.collections if isinstance(x, PolyCollection)]
    assert len(bodies) == 3 * 4
    assert [t.get_text() for t in ax.get_xticklabels()] == genes
    assert _legend_text(ax).split("\n") == ["control", "real", "predicted"]


def test_de_genes_dot_top_n(cells):
    p, r, c = _one(cells)
    ax = pl.de_genes(p, r, c, genes=5, kind="dot", show=False)
    genes = [t.get_text() for t in ax.get_xticklabels()]
    assert len(genes) == 5
    dots = ax.collections[0]
    assert _n(dots) == 15
    means = np.vstack([np.asarray(a[:, genes].X.mean(0)).ravel() for a in (c, r, p)])
    np.testing.assert_allclose(np.asarray(dots.get_array()), means.ravel(), rtol=1e-5)
    assert [t.get_text() for t in ax.get_yticklabels()] == ["control", "real", "predicted"]


def test_de_genes_errors(cells):
    p, r, c = _one(cells)
    with pytest.raises(ValueError, match="kind"):
        pl.de_genes(p, r, c, genes=["ISG15"], kind="box")
    with pytest.raises(KeyError, match="NOPE"):
        pl.de_genes(p, r, c, genes=["ISG15", "NOPE"])


# -------------------------------------------------------------------------------- metrics
@pytest.fixture
def table():
    rows = []
    for method, base in (("CaLMFlow", 0.9), ("Additive", 0.7), ("Control", 0.3)):
        for i, ct in enumerate(["B", "NK"]):
            rows.append((ct, "IFN-beta", "r2_pearson", "genes", base - 0.1 * i, method))
            rows.append((ct, "IFN-beta", "mmd", "pca", 1 - base + 0.01 * i, method))
            rows.append((ct, "IFN-beta", "mmd", "umap10", 2 - base, method))
    return pd.DataFrame(rows, columns=[*KEYS, "metric", "space", "value", "method"])


def test_metrics_bar(table):
    axes = pl.metrics(table, metric=["r2_pearson", "mmd"], show=False)
    assert len(axes) == 3  # r2 (genes), mmd (pca), mmd (umap10)
    assert axes[0].get_title() == "r2_pearson (genes)\nhigher is better"
    assert axes[1].get_title() == "mmd (pca)\nlower is better"
    bars = axes[0].patches
    assert len(bars) == 3 * 2
    assert [t.get_text() for t in axes[0].get_xticklabels()] == ["CaLMFlow", "Additive", "Control"]
    # first hue (B · IFN-beta) over the three methods, then NK
    np.testing.assert_allclose([b.get_height() for b in bars], [0.9, 0.7, 0.3, 0.8, 0.6, 0.2])
    assert "B · IFN-beta" in _legend_text(axes[-1])


def test_metrics_heatmap_and_space_filter(table):
    ax = pl.metrics(table, metric="mmd", space="pca", kind="heatmap", show=False)
    img = ax.images[0].get_array()
    np.testing.assert_allclose(img, [[0.1, 0.3, 0.7], [0.11, 0.31, 0.71]])
    assert {t.get_text() for t in ax.texts} == {"0.1", "0.3", "0.7", "0.11", "0.31", "0.71"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B · IFN-beta", "NK · IFN-beta"]


def test_metrics_averages_repeats(table):
    twice = pd.concat([table, table.assign(value=table["value"] + 0.1)])
    ax = pl.metrics(twice, metric="r2_pearson", show=False)
    np.testing.assert_allclose(ax.patches[0].get_height(), 0.95)
    assert _n(ax.collections[0]) == 2  # the single values as dots


def test_metrics_errors(table):
    with pytest.raises(ValueError, match="Unknown metric"):
        pl.metrics(table, metric="accuracy")
    with pytest.raises(KeyError, match="method"):
        pl.metrics(table.drop(columns="method"), metric="mmd")
    with pytest.raises(KeyError, match="value"):
        pl.metrics(table.drop(columns="value"), metric="mmd")
    with pytest.raises(ValueError, match="kind"):
        pl.metrics(table, metric="mmd", kind="pie")
    with pytest.raises(ValueError, match="No rows"):
        pl.metrics(table, metric="r2_pearson", space="pca")


# --------------------------------------------------------------------------- model plots
def test_trajectories(model):
    m, adata = model
    conds = {"cell_type": [HELD[0], "B"], "condition": [HELD[1], HELD[1]]}
    axes = pl.trajectories(m, conds, n_cells=7, real=adata, show=False)
    assert len(axes) == 2 and axes[0].get_title() == "CD14 Mono · IFN-beta"
    T = TINY["n_time_points"]
    for a in axes:
        lines = [c for c in a.collections if isinstance(c, LineCollection)]
        assert len(lines) == 1 and len(lines[0].get_segments()) == 7 * (T - 1)
        # segment colours run over the time grid
        t = np.asarray(lines[0].get_array())
        assert t.min() > 0 and t.max() < 1
        background = a.collections[0]
        assert _n(background) == adata.n_obs
        assert (a.get_xlabel(), a.get_ylabel()) == ("PC1", "PC2")
    # the end points are the generated cells
    pred = m.predict(conds, n_cells=7, seed=0, return_trajectories=True)
    gen = [c for c in axes[1].collections if c.get_label() == "generated (t = 1)"][0]
    np.testing.assert_allclose(gen.get_offsets(), pred.obsm["X_pca"][7:, :2], atol=1e-4)
    target = axes[0].collections[1]  # real held-out cells, passed in `real`
    assert _n(target) == ((adata.obs.cell_type == HELD[0]) & (adata.obs.condition == HELD[1])).sum()


def test_history(model, tmp_path):
    m, _ = model
    axes = pl.history(m, show=False, save=tmp_path / "h.pdf")
    assert (tmp_path / "h.pdf").exists()
    assert [a.get_title() for a in axes] == ["total loss", "reconstruction loss", "KL divergence"]
    rec = axes[1].get_lines()
    assert [ln.get_label() for ln in rec] == ["train", "validation"]
    np.testing.assert_allclose(
        rec[0].get_ydata(), m.history["reconstruction_loss_train"].iloc[:, 0].to_numpy(float)
    )
    assert all(a.get_xlabel() == "epoch" for a in axes)
    ax = pl.history(m.history, panels=["kl"], show=False)  # a history dict, one panel
    assert ax.get_title() == "KL divergence"
    # the deterministic head logs KL = 0: that panel is left out
    zero_kl = {k: (v * 0 if k.startswith("kl_local") else v) for k, v in m.history.items()}
    axes = pl.history(zero_kl, show=False)
    assert [a.get_title() for a in axes] == ["total loss", "reconstruction loss"]
    with pytest.raises(ValueError, match="Unknown panel"):
        pl.history(m, panels=["accuracy"])
    with pytest.raises(ValueError, match="No training history"):
        pl.history({})


def test_temperature(model):
    m, adata = model
    conds = {"cell_type": ["B"], "condition": ["IFN-beta"]}
    ax = pl.temperature(m, conds, adata, temperatures=(0, 1), n_cells=30, show=False)
    (line,) = ax.get_lines()
    np.testing.assert_allclose(line.get_xdata(), [0, 1])
    real = adata[((adata.obs.cell_type == "B") & (adata.obs.condition == "IFN-beta")).to_numpy()]
    expected = [
        mean_expression_r2(m.predict(conds, n_cells=30, seed=0, temperature=t), real)["r2_pearson"]
        for t in (0, 1)
    ]
    np.testing.assert_allclose(line.get_ydata(), expected, rtol=1e-6)
    assert ax.get_xlabel() == "sampling temperature τ"
    assert ax.get_ylabel() == "r2_pearson (genes), higher is better"
    ax = pl.temperature(m, conds, adata, temperatures=(0, 0.5), metric="mmd", n_cells=30,
                        show=False)  # fmt: skip
    assert ax.get_ylabel() == "mmd (pca), lower is better"
    assert np.all(np.asarray(ax.get_lines()[0].get_ydata()) >= 0)
    with pytest.raises(ValueError, match="Unknown metric"):
        pl.temperature(m, conds, adata, metric="accuracy")


def test_temperature_warns_for_deterministic_head(model):
    m, adata = model
    det = CaLMFlowModel(m.adata, **{**TINY, "variational": False})
    det.is_trained_ = True  # only the warning is checked here
    with pytest.warns(UserWarning, match="deterministic"):
        pl.temperature(det, {"cell_type": ["B"], "condition": ["IFN-beta"]}, adata,
                       temperatures=(0, 1), n_cells=5, show=False)  # fmt: skip


# ------------------------------------------------------------------------------ showing
def test_show_only_without_ax(cells, monkeypatch):
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    p, r, _ = _one(cells)
    _, ax = plt.subplots()
    pl.mean_expression(p, r, ax=ax, show=True)  # never shows a figure it did not create
    pl.mean_expression(p, r)  # Agg: not interactive, not shown by default
    assert calls == []
    pl.mean_expression(p, r, show=True)
    assert calls == [1]
