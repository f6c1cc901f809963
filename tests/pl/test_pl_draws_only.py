"""pl only draws: no pl module generates cells, scores them or fits an embedding."""

import ast
from pathlib import Path

import pytest

import sccalmflow as scf

PL = Path(scf.pl.__file__).parent

#: Calls that compute (done by sccalmflow.tl): generation, scoring, DE tests, UMAP fits.
FORBIDDEN = {
    "predict",
    "evaluate",
    "joint_umap",
    "UMAP",
    "umap",  # sc.tl.umap
    "fit_transform",
    "rank_genes_groups",
    "top_de_genes",
    "temperature_sweep",
}


def _called_names(tree: ast.AST) -> list[tuple[int, str]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            f = node.func
            name = f.attr if isinstance(f, ast.Attribute) else getattr(f, "id", "")
            out.append((node.lineno, name))
    return out


@pytest.mark.parametrize("path", sorted(PL.glob("*.py")), ids=lambda p: p.name)
def test_pl_module_calls_no_computation(path):
    tree = ast.parse(path.read_text())
    bad = [
        f"{path.name}:{line} {name}()" for line, name in _called_names(tree) if name in FORBIDDEN
    ]
    assert not bad, "pl computes:\n" + "\n".join(bad)


@pytest.mark.parametrize("path", sorted(PL.glob("*.py")), ids=lambda p: p.name)
def test_pl_module_imports_no_umap(path):
    tree = ast.parse(path.read_text())
    imported = [
        a.name
        for node in ast.walk(tree)
        if isinstance(node, ast.Import | ast.ImportFrom)
        for a in node.names
    ] + [node.module or "" for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)]
    assert not [n for n in imported if n.split(".")[0] == "umap" or n in FORBIDDEN]


def test_pl_temperature_scores_is_gone():
    assert not hasattr(scf.pl, "temperature_scores")  # tl.temperature_sweep computes it
