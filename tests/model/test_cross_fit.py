"""The cells of the PCA's fit enter the flow cross-fitted (``pca_folds``), wherever they enter."""

import hashlib
import json

import numpy as np
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.data import PCA_KEY
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
COND = {"cell_type": ["B"], "condition": ["IFN-beta"]}


def _model(adata, tiny, **kwargs):
    CaLMFlowModel.setup_anndata(adata, **KEYS)
    return CaLMFlowModel(adata, **tiny, **kwargs)


def _tail_variance(z, types, n_head=5):
    """Variance in the trailing components, summed, averaged over cell types."""
    return np.mean([z[types == t, n_head:].var(0).sum() for t in np.unique(types)])


def test_cells_of_the_fit_get_the_spread_of_new_cells(kang_full, kang_small, tiny):
    model = _model(kang_small, {**tiny, "n_pca": 30})
    assert model.pca_folds == 5
    features = model.features_
    projected = features.pca_scores(features.transform(kang_small.X))
    # new cells: the same types and genes, cells the PCA never saw
    pool = kang_full[kang_full.obs.cell_type.isin(kang_small.obs.cell_type.unique())]
    new = pool[~pool.obs_names.isin(kang_small.obs_names), kang_small.var_names].copy()
    new = new[np.random.default_rng(0).choice(new.n_obs, 600, replace=False)].copy()
    types, new_types = kang_small.obs.cell_type.to_numpy(), new.obs.cell_type.to_numpy()
    fresh = _tail_variance(model.get_pca(new), new_types)
    in_sample = _tail_variance(projected, types) / fresh
    cross = _tail_variance(model.get_pca(), types) / fresh
    assert in_sample > 1.25 and 0.85 < cross < 1.1
    # new cells are simply projected
    np.testing.assert_allclose(
        model.get_pca(new), features.pca_scores(features.transform(new.X)), atol=1e-5
    )


def test_the_same_cells_passed_back_get_the_same_coordinates(kang_small, tiny):
    model = _model(kang_small, tiny)
    features = model.features_
    registered = model.get_pca()
    rows = np.arange(kang_small.n_obs)[::-7]  # a subset, reordered
    np.testing.assert_allclose(model.get_pca(kang_small[rows].copy()), registered[rows], atol=1e-5)
    renamed = kang_small[rows].copy()  # the same values under new names: projected
    renamed.obs_names = [f"new_{i}" for i in range(renamed.n_obs)]
    expected = features.pca_scores(features.transform(renamed.X))
    np.testing.assert_allclose(model.get_pca(renamed), expected, atol=1e-5)
    assert not np.allclose(expected, registered[rows], atol=1e-2)


def test_without_folds_the_cells_enter_as_projected(kang_small, tiny):
    model = _model(kang_small, tiny, pca_folds=None)
    features = model.features_
    np.testing.assert_allclose(
        model.get_pca(), features.pca_scores(features.transform(kang_small.X)), atol=1e-5
    )


def test_cross_fitted_sources_are_narrower_in_the_trailing_components(
    kang_small, tiny, quiet_train
):
    """Generated cells follow their sources: the cross-fitted model's are narrower there."""
    spread = {}
    for folds in (None, 5):
        model = _model(kang_small.copy(), tiny, pca_folds=folds, head="deterministic")
        quiet_train(model, max_epochs=1, batch_size=64)
        z = model.predict(COND, n_cells=200, seed=0).obsm[PCA_KEY]
        spread[folds] = z[:, 5:].var(0).sum()
    assert spread[5] < 0.9 * spread[None]


@pytest.mark.parametrize(
    ("folds", "error", "match"),
    [(1, ValueError, "at least 2"), (2.5, TypeError, "integer"), (True, TypeError, "integer")],
)
def test_bad_pca_folds_are_refused(kang_small, tiny, folds, error, match):
    with pytest.raises(error, match=match):
        _model(kang_small, tiny, pca_folds=folds)


def test_too_many_folds_for_the_cells_name_the_fix(kang_small, tiny):
    few = kang_small[:3].copy()
    with pytest.raises(ValueError, match="pca_folds=None"):
        _model(few, {**tiny, "n_pca": 2}, pca_folds=2)


def test_saved_without_pca_folds_loads_as_projected(kang_small, tiny, tmp_path):
    """A model saved before cross-fitting existed keeps the coordinates it trained on."""
    model = _model(kang_small, tiny)
    model.save(tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    params = config["init_params"]
    params.get("non_kwargs", {}).pop("pca_folds", None)
    params.get("kwargs", {}).get("kwargs", {}).pop("pca_folds", None)
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    old = CaLMFlowModel.load(tmp_path / "m", adata=kang_small)
    assert old.pca_folds is None
    features = old.features_
    np.testing.assert_allclose(
        old.get_pca(), features.pca_scores(features.transform(kang_small.X)), atol=1e-5
    )


def test_cross_fitting_arrays_that_do_not_fit_are_refused(kang_small, tiny, tmp_path):
    """A weights file whose fold maps do not fit the model is refused by name, not used."""
    import torch
    from safetensors.torch import load_file, save_file

    model = _model(kang_small, tiny)
    model.save(tmp_path / "m")
    weights = tmp_path / "m" / "model.safetensors"
    state = load_file(str(weights))
    assert state["cross_fit.maps"].shape == (5, kang_small.n_vars, tiny["n_pca"])
    state["cross_fit.maps"] = torch.zeros(5, 3, tiny["n_pca"])
    save_file(state, str(weights))
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    # the file was changed on purpose: its checksum too, so the arrays themselves are checked
    config["checksums"]["model.safetensors"] = hashlib.sha256(weights.read_bytes()).hexdigest()
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    with pytest.raises(ValueError, match="cross-fitting arrays that do not fit"):
        CaLMFlowModel.load(tmp_path / "m", adata=kang_small)


def test_a_shared_pca_of_the_same_cells_cross_fits_as_its_own(kang_small, tiny):
    """``features=`` another model's PCA of the same cells: the same cross-fitted coordinates."""
    first = _model(kang_small, tiny)
    second = CaLMFlowModel(kang_small, **tiny, features=first.features_)
    np.testing.assert_allclose(second.get_pca(), first.get_pca(), atol=1e-5)


def test_a_pca_of_other_cells_is_not_cross_fitted_silently(kang_small, tiny):
    """A PCA fitted on other cells cannot cross-fit these: an error names ``pca_folds=None``."""
    other = _model(kang_small[: kang_small.n_obs // 2].copy(), tiny)
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    model = CaLMFlowModel(kang_small, **tiny, features=other.features_)
    with pytest.raises(ValueError, match="not fitted on its cells.*pca_folds=None"):
        model.get_pca()
    projected = CaLMFlowModel(kang_small, **tiny, features=other.features_, pca_folds=None)
    features = other.features_
    np.testing.assert_allclose(
        projected.get_pca(), features.pca_scores(features.transform(kang_small.X)), atol=1e-5
    )
