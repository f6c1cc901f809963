"""The public names of tl and pl: complete ``__all__``, reachable from ``sccalmflow``."""

import pytest

import sccalmflow as scf


@pytest.mark.parametrize("pkg", ["tl", "pl"])
def test_all_is_complete(pkg):
    mod = getattr(scf, pkg)
    public = {
        n
        for n, obj in vars(mod).items()
        if not n.startswith("_")
        and callable(obj)
        and getattr(obj, "__module__", "").startswith("sccalmflow")
    }
    assert public <= set(mod.__all__), public - set(mod.__all__)
    assert len(mod.__all__) == len(set(mod.__all__))
    for name in mod.__all__:
        assert getattr(mod, name) is not None


def test_tl_names():
    assert sorted(scf.tl.__all__) == [
        "EmbeddingOverlay", "OverlayPanel", "Trajectories", "calibrate_interval", "de_genes",
        "embedding", "interval_scale", "mean_interval", "response_interval",
        "temperature_sweep", "trajectories",
    ]  # fmt: skip
    assert "temperature_scores" not in scf.pl.__all__
