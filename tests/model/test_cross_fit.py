"""The cells of the PCA's fit enter the flow cross-fitted (``pca_folds``), wherever they enter."""

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


def test_registered_cells_get_their_cross_fitted_coordinates(kang_small, tiny):
    model = _model(kang_small, tiny)
    assert model.pca_folds == 5
    features = model.features_
    projected = features.pca_scores(features.transform(kang_small.X))
    cross = features.pca_scores(features.cross_fit_transform(kang_small.X, 5, model.seed))
    np.testing.assert_allclose(model.get_pca(), cross, atol=1e-5)
    assert not np.allclose(cross, projected, atol=1e-2)
    # the same cells passed back in (a subset, reordered) get the same coordinates ...
    rows = np.arange(kang_small.n_obs)[::-7]
    np.testing.assert_allclose(model.get_pca(kang_small[rows].copy()), cross[rows], atol=1e-5)
    # ... cells with other values under a registered name, and new names, are projected
    changed = kang_small[rows].copy()
    changed.X = changed.X * 1.5
    expected = features.pca_scores(features.transform(changed.X))
    np.testing.assert_allclose(model.get_pca(changed), expected, atol=1e-5)
    renamed = kang_small[rows].copy()
    renamed.obs_names = [f"new_{i}" for i in range(renamed.n_obs)]
    np.testing.assert_allclose(model.get_pca(renamed), projected[rows], atol=1e-5)


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
    now = CaLMFlowModel.load(tmp_path / "m", adata=kang_small)
    assert now.pca_folds == 5
    np.testing.assert_allclose(now.get_pca(), model.get_pca(), atol=1e-6)
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    params = config["init_params"]
    params.get("non_kwargs", {}).pop("pca_folds", None)
    params.get("kwargs", {}).get("kwargs", {}).pop("pca_folds", None)
    config.pop("pca_cells")
    (tmp_path / "m" / "config.json").write_text(json.dumps(config))
    old = CaLMFlowModel.load(tmp_path / "m", adata=kang_small)
    assert old.pca_folds is None
    features = old.features_
    np.testing.assert_allclose(
        old.get_pca(), features.pca_scores(features.transform(kang_small.X)), atol=1e-5
    )
