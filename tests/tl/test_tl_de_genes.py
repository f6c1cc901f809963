"""tl.de_genes: top DE genes of real perturbed cells against control cells."""

import pytest

import sccalmflow as scf


@pytest.fixture
def mono(kang_small_shared):
    a = kang_small_shared
    mono = (a.obs.cell_type == "CD14 Mono").to_numpy()
    return a[mono & (a.obs.condition == "IFN-beta").to_numpy()], a[
        mono & (a.obs.condition == "control").to_numpy()
    ]


def test_de_genes_matches_metrics_top_de_genes(mono, kang_small_shared):
    real, ctrl = mono
    genes = scf.tl.de_genes(real, ctrl, 10)
    assert len(genes) == 10 and len(set(genes)) == 10
    assert "ISG15" in genes  # the interferon response
    # the same ranking as metrics.top_de_genes on both sets, real against control
    both = kang_small_shared[kang_small_shared.obs.cell_type == "CD14 Mono"].copy()
    expected = scf.metrics.top_de_genes(both, groupby="condition", group="IFN-beta",
                                        reference="control", n=10)  # fmt: skip
    assert genes == expected


def test_de_genes_dense_and_layer(mono):
    real, ctrl = mono
    r, c = real.copy(), ctrl.copy()
    r.layers["log"], c.layers["log"] = r.X.toarray(), c.X.toarray()
    assert scf.tl.de_genes(r, c, 5, layer="log") == scf.tl.de_genes(real, ctrl, 5)


def test_de_genes_errors(mono):
    real, ctrl = mono
    with pytest.raises(ValueError, match="var_names"):
        scf.tl.de_genes(real, ctrl[:, :50], 5)
    with pytest.raises(KeyError, match="layer"):
        scf.tl.de_genes(real, ctrl, 5, layer="nope")
    with pytest.raises(TypeError, match="AnnData"):
        scf.tl.de_genes(real.X, ctrl, 5)
