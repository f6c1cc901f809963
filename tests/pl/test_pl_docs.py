"""Shared parameter docs: written once (pl/_docs.py) and filled into every figure."""

import inspect

import pytest

import sccalmflow as scf

FIGURES = [getattr(scf.pl, n) for n in scf.pl.__all__ if callable(getattr(scf.pl, n))]


@pytest.mark.parametrize("func", FIGURES, ids=lambda f: f.__name__)
def test_every_figure_documents_the_shared_parameters(func):
    doc = func.__doc__
    assert "{ax}" not in doc and "{show_save_return}" not in doc and "{returns}" not in doc
    assert "\nax : matplotlib.axes.Axes" in doc
    assert "\nshow : bool, optional\n" in doc and "\nsave : bool or str" in doc
    assert "\nreturn_fig : bool\n    Return the :class:`~matplotlib.figure.Figure`" in doc
    assert "\nReturns\n-------\nmatplotlib.axes.Axes" in doc
    # every parameter is documented
    for p in inspect.signature(func).parameters:
        assert f"\n{p} : " in doc, (func.__name__, p)


def test_shared_paragraphs_are_the_same_text_everywhere():
    def paragraph(doc: str, name: str) -> str:
        start = doc.index(f"\n{name} : ")
        end = doc.index("\n", doc.index("\n", start + 1) + 1)
        return doc[start:end]

    assert len({paragraph(f.__doc__, "save") for f in FIGURES}) == 1
    assert len({paragraph(f.__doc__, "show") for f in FIGURES}) == 1


def test_other_braces_are_left_alone():
    assert 'kind : {"violin", "dot"}' in scf.pl.de_genes.__doc__
    assert 'kind : {"bar", "heatmap"}' in scf.pl.metrics.__doc__
