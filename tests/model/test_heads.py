"""The sampling heads through the model: seeds, batches, the cache, few sources, save/load."""

import json

import numpy as np
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.data import PCA_KEY
from sccalmflow.datasets import kang2018_setup

COND = {"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}


@pytest.fixture(scope="module", params=["flow", "cvae", "gmm"])
def sampler(request, kang_small_shared, tiny_config, quiet_train):
    """A tiny model with a sampling head on bridge paths, trained 2 epochs (do not modify)."""
    ad = kang_small_shared.copy()
    held = (ad.obs["cell_type"] == "CD14 Mono") & (ad.obs["condition"] == "IFN-beta")
    train = ad[~held.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(train, **kang2018_setup())
    model = CaLMFlowModel(
        train, **{**tiny_config, "head": request.param, "path": "bridge", "sigma_min": 0.2}
    )
    quiet_train(model, max_epochs=2, batch_size=64)
    return model


def test_seeded_batch_independent_and_cached(sampler):
    a = sampler.predict(COND, n_cells=24, seed=5, decode=False).obsm[PCA_KEY]
    b = sampler.predict(COND, n_cells=24, seed=5, decode=False, batch_size=5).obsm[PCA_KEY]
    c = sampler.predict(COND, n_cells=24, seed=5, decode=False, use_cache=False).obsm[PCA_KEY]
    d = sampler.predict(COND, n_cells=24, seed=6, decode=False).obsm[PCA_KEY]
    np.testing.assert_allclose(a, b, atol=1e-4)
    np.testing.assert_allclose(a, c, atol=1e-4)
    assert not np.allclose(a, d)


def test_many_distinct_cells_from_few_sources(sampler):
    """Reusing a source draws a new cell: 60 distinct cells from 6 control cells."""
    ctrl = sampler.adata[
        (sampler.adata.obs["cell_type"] == "CD14 Mono").to_numpy()
        & (sampler.adata.obs["condition"] == "control").to_numpy()
    ][:6]
    pred = sampler.predict(COND, n_cells=60, seed=0, source_cells=ctrl, decode=False)
    assert pred.obs["source_cell"].nunique() == 6
    assert len(np.unique(pred.obsm[PCA_KEY].round(5), axis=0)) == 60


def test_temperature_scales_the_spread(sampler):
    """Same sources, same noise: τ = 0 draws no noise, and the spread grows with τ."""
    spread = []
    for tau in (0.0, 1.0, 4.0):
        z = sampler.predict(COND, n_cells=80, seed=1, temperature=tau, decode=False).obsm[PCA_KEY]
        spread.append(float(np.linalg.norm(z - z.mean(0), axis=1).mean()))
    if sampler.module.head.__class__.__name__ == "FlowMatchingHead":
        assert spread[0] < spread[1] < spread[2]
    else:  # a cvae trained 2 epochs has a narrow prior: τ changes the cells, little the spread
        assert len(set(np.round(spread, 6))) == 3
    again = sampler.predict(COND, n_cells=80, seed=2, temperature=0.0, decode=False)
    first = sampler.predict(COND, n_cells=80, seed=1, temperature=0.0, decode=False)
    # at τ = 0 the head adds no noise: only the sources differ between seeds
    same_src = again.obs["source_cell"].to_numpy() == first.obs["source_cell"].to_numpy()
    if same_src.any():
        np.testing.assert_allclose(
            again.obsm[PCA_KEY][same_src], first.obsm[PCA_KEY][same_src], atol=1e-4
        )


def test_save_load_keeps_the_head(sampler, tmp_path):
    sampler.save(tmp_path / "m")
    loaded = CaLMFlowModel.load(tmp_path / "m", adata=sampler.adata)
    assert type(loaded.module.head) is type(sampler.module.head)
    assert loaded.init_params_["non_kwargs"]["head"] == sampler.init_params_["non_kwargs"]["head"]
    a = sampler.predict(COND, n_cells=10, seed=3, decode=False).obsm[PCA_KEY]
    b = loaded.predict(COND, n_cells=10, seed=3, decode=False).obsm[PCA_KEY]
    np.testing.assert_allclose(a, b, atol=1e-5)
    # from cells (the sampler's source is the default, additive) the bottleneck mean
    expected = "bottleneck" if sampler.init_params_["non_kwargs"]["head"] != "cvae" else None
    assert sampler.init_params_["non_kwargs"]["head_mean"] == expected
    assert loaded.init_params_["non_kwargs"]["head_mean"] == expected


def _strip_head_mean(folder):
    """``folder``'s config as written before ``head_mean`` existed."""
    config = json.loads((folder / "config.json").read_text())
    del config["init_params"]["non_kwargs"]["head_mean"]
    (folder / "config.json").write_text(json.dumps(config))


def test_a_file_saved_before_head_mean_loads_with_the_mlp_mean(
    kang_small_shared, tiny_config, tmp_path
):
    """Flow-head files saved before ``head_mean`` existed had the MLP mean: they still load
    (same predictions); a bottleneck model's file without it is refused with a clear error."""
    ad = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(ad, **kang2018_setup())
    old = CaLMFlowModel(ad, **{**tiny_config, "head": "flow", "head_mean": "mlp"})
    old.save(tmp_path / "old")
    _strip_head_mean(tmp_path / "old")
    loaded = CaLMFlowModel.load(tmp_path / "old", adata=ad)
    assert loaded.init_params_["non_kwargs"]["head_mean"] == "mlp"
    a = old.predict(COND, n_cells=8, seed=1, decode=False).obsm[PCA_KEY]
    b = loaded.predict(COND, n_cells=8, seed=1, decode=False).obsm[PCA_KEY]
    np.testing.assert_allclose(a, b, atol=1e-5)
    new = CaLMFlowModel(ad, **{**tiny_config, "head": "flow"})
    new.save(tmp_path / "new")
    _strip_head_mean(tmp_path / "new")
    with pytest.raises(ValueError, match="do not describe a model"):
        CaLMFlowModel.load(tmp_path / "new", adata=ad)
