"""Showing and saving: never show a figure drawn into given axes; save=True uses figdir."""

import matplotlib.pyplot as plt

import sccalmflow as scf


def test_show_only_without_ax(one_condition, monkeypatch):
    calls = []
    monkeypatch.setattr(plt, "show", lambda *a, **k: calls.append(1))
    p, r, _ = one_condition
    _, ax = plt.subplots()
    scf.pl.mean_expression(p, r, ax=ax, show=True)  # never shows a figure it did not create
    scf.pl.mean_expression(p, r)  # Agg: not interactive, not shown by default
    assert calls == []
    scf.pl.mean_expression(p, r, show=True)
    assert calls == [1]


def test_save_true_writes_to_scanpy_figdir(one_condition, tmp_path):
    import scanpy as sc

    before = sc.settings.figdir, sc.settings.file_format_figs
    sc.settings.figdir, sc.settings.file_format_figs = tmp_path, "png"
    try:
        p, r, _ = one_condition
        scf.pl.mean_expression(p, r, save=True, show=False)
    finally:
        sc.settings.figdir, sc.settings.file_format_figs = before
    assert (tmp_path / "mean_expression.png").stat().st_size > 0
