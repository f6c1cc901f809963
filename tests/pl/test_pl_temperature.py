"""pl.temperature draws a tl.temperature_sweep table: one line per condition."""

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest

import sccalmflow as scf


@pytest.fixture
def sweep():
    rows = [
        (ct, "IFN-beta", t, "mmd", "pca", v + t)
        for ct, v in (("B", 0.2), ("NK", 0.5))
        for t in (1.0, 0.0, 0.5)  # unsorted on purpose
    ]
    cols = ["cell_type", "condition", "temperature", "metric", "space", "value"]
    return pd.DataFrame(rows, columns=cols)


def test_temperature_lines(sweep):
    ax = scf.pl.temperature(sweep, show=False)
    lines = ax.get_lines()
    assert [ln.get_label() for ln in lines] == ["B · IFN-beta", "NK · IFN-beta"]
    np.testing.assert_allclose(lines[0].get_xdata(), [0, 0.5, 1])
    np.testing.assert_allclose(lines[1].get_ydata(), [0.5, 1.0, 1.5])
    np.testing.assert_allclose(ax.get_xticks(), [0, 0.5, 1])
    assert ax.get_xlabel() == "sampling temperature τ"
    assert ax.get_ylabel() == "mmd (pca), lower is better"
    assert ax.get_legend() is not None


def test_temperature_one_unconditional_line(sweep):
    plain = sweep[sweep.cell_type == "B"].drop(columns=["cell_type", "condition"])
    plain = plain.assign(metric="r2_pearson", space="genes")
    fig, ax = plt.subplots()
    assert scf.pl.temperature(plain, ax=ax) is ax
    assert len(ax.get_lines()) == 1 and ax.get_legend() is None
    assert ax.get_ylabel() == "r2_pearson (genes), higher is better"


def test_temperature_errors(sweep):
    with pytest.raises(ValueError, match="several metrics"):
        scf.pl.temperature(pd.concat([sweep, sweep.assign(metric="w2")]))
    with pytest.raises(KeyError, match="temperature"):
        scf.pl.temperature(sweep.drop(columns="temperature"))
    with pytest.raises(ValueError, match="no rows"):
        scf.pl.temperature(sweep.iloc[:0])
    # pl does not generate or score: a model instead of the table says what to call
    with pytest.raises(TypeError, match="tl.temperature_sweep"):
        scf.pl.temperature(object())


def test_temperature_marks_the_chosen_tau():
    """A calibration table (with ``chosen``): one line and a dashed line at the chosen τ."""
    table = pd.DataFrame(
        {
            "temperature": [0.5, 1.0, 1.5],
            "metric": "mmd",
            "space": "pca",
            "value": [0.3, 0.1, 0.2],
            "chosen": [False, True, False],
        }
    )
    ax = scf.pl.temperature(table, show=False)
    lines = ax.get_lines()
    assert len(lines) == 2  # the curve (not split by `chosen`) and the marker
    np.testing.assert_allclose(lines[0].get_ydata(), [0.3, 0.1, 0.2])
    assert lines[1].get_label() == "chosen τ = 1"
    np.testing.assert_allclose(lines[1].get_xdata(), [1.0, 1.0])
    assert ax.get_legend() is not None
