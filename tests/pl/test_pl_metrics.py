"""pl.metrics: methods x conditions as bars or a heatmap."""

import numpy as np
import pandas as pd
import pytest

import sccalmflow as scf

KEYS = ["cell_type", "condition"]


def _legend_text(ax) -> str:
    return "\n".join(t.get_text() for t in ax.get_legend().get_texts())


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
    axes = scf.pl.metrics(table, metric=["r2_pearson", "mmd"], show=False)
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
    ax = scf.pl.metrics(table, metric="mmd", space="pca", kind="heatmap", show=False)
    img = ax.images[0].get_array()
    np.testing.assert_allclose(img, [[0.1, 0.3, 0.7], [0.11, 0.31, 0.71]])
    assert {t.get_text() for t in ax.texts} == {"0.1", "0.3", "0.7", "0.11", "0.31", "0.71"}
    assert [t.get_text() for t in ax.get_yticklabels()] == ["B · IFN-beta", "NK · IFN-beta"]


def test_metrics_heatmap_rows_labelled_once(table):
    axes = scf.pl.metrics(table, metric="mmd", kind="heatmap", ncols=2, show=False)
    assert len(axes) == 2
    assert [t.get_text() for t in axes[0].get_yticklabels()] == ["B · IFN-beta", "NK · IFN-beta"]
    assert not any(t.get_text() for t in axes[1].get_yticklabels())


def test_metrics_averages_repeats(table):
    twice = pd.concat([table, table.assign(value=table["value"] + 0.1)])
    ax = scf.pl.metrics(twice, metric="r2_pearson", show=False)
    np.testing.assert_allclose(ax.patches[0].get_height(), 0.95)
    assert len(ax.collections[0].get_offsets()) == 2  # the single values as dots


def test_metrics_hue_column(table):
    ax = scf.pl.metrics(table, metric="r2_pearson", hue="cell_type", show=False)
    assert ax.get_legend().get_title().get_text() == "cell_type"


def test_metrics_errors(table):
    with pytest.raises(ValueError, match="Unknown metric"):
        scf.pl.metrics(table, metric="accuracy")
    with pytest.raises(KeyError, match="method"):
        scf.pl.metrics(table.drop(columns="method"), metric="mmd")
    with pytest.raises(KeyError, match="value"):
        scf.pl.metrics(table.drop(columns="value"), metric="mmd")
    with pytest.raises(ValueError, match="kind"):
        scf.pl.metrics(table, metric="mmd", kind="pie")
    with pytest.raises(ValueError, match="No rows"):
        scf.pl.metrics(table, metric="r2_pearson", space="pca")
    with pytest.raises(KeyError, match="hue"):
        scf.pl.metrics(table, hue="dose")
    with pytest.raises(TypeError, match="DataFrame"):
        scf.pl.metrics(table.to_dict())
