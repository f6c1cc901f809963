import numpy as np
import pandas as pd
import pytest
import torch

from sccalmflow import CaLMFlowModel
from sccalmflow.data import PCA_KEY
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
HELD = ("CD14 Mono", "IFN-beta")


def _held_out(ad):
    mask = (ad.obs["cell_type"] == HELD[0]) & (ad.obs["condition"] == HELD[1])
    train = ad[~mask.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(train, **KEYS)
    return train


@pytest.fixture
def held_out(kang_small):
    return _held_out(kang_small)


@pytest.fixture(scope="module")
def trained(tiny_config, quiet_train, kang_small_shared):
    """One small model trained once for the tests that only read from it."""
    model = CaLMFlowModel(_held_out(kang_small_shared.copy()), **tiny_config)
    quiet_train(model, max_epochs=3, batch_size=64)
    return model


def test_held_out_combination_absent_from_training(held_out, trained):
    seen = trained.training_conditions
    assert not ((seen["cell_type"] == HELD[0]) & (seen["condition"] == HELD[1])).any()
    # both values are known separately, so the combination can be asked for
    assert HELD[0] in trained.categories["cell_type"]
    assert HELD[1] in trained.categories["condition"]
    assert seen["n_cells"].sum() == held_out.n_obs


def test_history_and_loss_falls(held_out, tiny, quiet_train):
    # from the control cells themselves: the whole response is to learn
    model = CaLMFlowModel(held_out, **{**tiny, "source": "control"})
    quiet_train(model, max_epochs=6, batch_size=32)
    h = model.history
    for key in ["reconstruction_loss_train", "kl_local_train", "reconstruction_loss_validation"]:
        assert key in h and len(h[key]) == 6
    rec = h["reconstruction_loss_train"].iloc[:, 0].to_numpy()
    assert rec[-1] < 0.8 * rec[0]
    assert model.is_trained_


def test_predict_unseen_combination(trained, tiny):
    cond = pd.DataFrame({"cell_type": [HELD[0], "B"], "condition": [HELD[1], "control"]})
    before = cond.copy()
    pred = trained.predict(cond, n_cells=40, seed=1)
    pd.testing.assert_frame_equal(cond, before)  # input not mutated
    assert pred.shape == (80, trained.adata.n_vars)
    assert list(pred.var_names) == list(trained.adata.var_names)
    assert pred.obsm["X_calmflow_pca"].shape == (80, tiny["n_pca"])
    assert list(pred.obs["cell_type"][:40].unique()) == [HELD[0]]
    assert list(pred.obs["condition"][40:].unique()) == ["control"]
    assert pred.obs["prompt"].iloc[0] == "Generate a CD14 Mono cell stimulated with IFN-beta:"
    assert pred.obs["prompt"].iloc[-1] == "Generate a B cell with no stimulation:"
    # the flow starts at control cells of the requested context
    src = trained.adata[pred.obs["source_cell"][:40]].obs
    assert (src["cell_type"] == HELD[0]).all() and (src["condition"] == "control").all()
    # every control cell of the context is used once before any is used again
    ad_obs = trained.adata.obs
    n_ctrl = int(((ad_obs["cell_type"] == HELD[0]) & (ad_obs["condition"] == "control")).sum())
    assert pred.obs["source_cell"][:40].nunique() == min(40, n_ctrl)
    assert (pred.X >= 0).all() and np.isfinite(pred.X).all()
    # dict input gives the same cells
    pred2 = trained.predict({"cell_type": [HELD[0]], "condition": [HELD[1]]}, n_cells=40, seed=1)
    np.testing.assert_allclose(pred2.X, pred.X[:40], atol=1e-5)


def test_predict_trajectories_and_determinism(trained, tiny):
    cond = {"cell_type": ["NK"], "condition": ["IFN-beta"]}
    a = trained.predict(cond, n_cells=10, seed=3, return_trajectories=True)
    b = trained.predict(cond, n_cells=10, seed=3)
    c = trained.predict(cond, n_cells=10, seed=4)
    np.testing.assert_array_equal(a.X, b.X)
    assert not np.allclose(a.X, c.X)
    traj = a.obsm["X_trajectory"]
    assert traj.shape == (10, tiny["n_time_points"], tiny["n_pca"])
    np.testing.assert_allclose(traj[:, -1], a.obsm["X_calmflow_pca"], atol=1e-5)
    shift, _ = trained.additive_shift.shift(("NK",), ("IFN-beta",))
    np.testing.assert_allclose(  # paths start at their control cell plus the additive shift
        traj[:, 0],
        trained.get_pca()[trained.adata.obs_names.get_indexer(a.obs["source_cell"])]
        + trained.features_.pca_scores(shift),
        atol=1e-4,
    )
    assert len(a.uns["calmflow"]["time_grid"]) == tiny["n_time_points"]
    nocache = trained.predict(cond, n_cells=10, seed=3, use_cache=False)
    np.testing.assert_allclose(nocache.X, a.X, atol=1e-4)
    small_batches = trained.predict(cond, n_cells=10, seed=3, batch_size=3)
    np.testing.assert_allclose(
        small_batches.obsm["X_calmflow_pca"], a.obsm["X_calmflow_pca"], atol=1e-4
    )


def test_predict_errors(trained):
    with pytest.raises(ValueError, match="Unknown value"):
        trained.predict({"cell_type": ["Neuron"], "condition": ["IFN-beta"]})
    with pytest.raises(KeyError, match="lack column"):
        trained.predict({"cell_type": ["B"]})
    with pytest.raises(ValueError, match="same length"):
        trained.predict({"cell_type": ["B", "NK"], "condition": ["IFN-beta"]})
    with pytest.raises(ValueError, match="n_cells"):
        trained.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=0)


def test_context_without_controls(kang_small, tiny, quiet_train):
    mask = (kang_small.obs["cell_type"] == "NK") & (kang_small.obs["condition"] == "control")
    ad = kang_small[~mask.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(ad, **KEYS)
    model = CaLMFlowModel(ad, **tiny)
    with pytest.raises(ValueError, match="No control cells for context"):
        model.predict({"cell_type": ["NK"], "condition": ["IFN-beta"]})
    with pytest.warns(UserWarning, match="no control cells in their context"):
        quiet_train(model, max_epochs=1)


def test_training_is_deterministic(held_out, tiny, quiet_train):
    a = CaLMFlowModel(held_out, **tiny)
    quiet_train(a, max_epochs=2, batch_size=64)
    b = CaLMFlowModel(held_out, **tiny)
    quiet_train(b, max_epochs=2, batch_size=64)
    for (k, va), vb in zip(
        a.module.state_dict().items(), b.module.state_dict().values(), strict=True
    ):
        assert torch.equal(va, vb), k


def test_ot_coupling_within_sequences_trains_and_reloads(held_out, tiny, quiet_train, tmp_path):
    """``ot_coupling="sequence"`` (OT within each sequence's trajectories) trains, differs
    from both other couplings, and is kept by save / load."""
    kw = dict(tiny, n_trajectories=2, sequence_targets="stratified")
    weights = {}
    for coupling in (True, "sequence", False):
        model = CaLMFlowModel(held_out, **kw, ot_coupling=coupling)
        quiet_train(model, max_epochs=1, batch_size=32)
        weights[coupling] = torch.cat([p.detach().ravel() for p in model.module.parameters()])
    assert model.ot_coupling is False
    assert not torch.equal(weights["sequence"], weights[True])
    assert not torch.equal(weights["sequence"], weights[False])
    model = CaLMFlowModel(held_out, **kw, ot_coupling="sequence")
    quiet_train(model, max_epochs=1, batch_size=32)
    model.save(tmp_path / "m")
    loaded = CaLMFlowModel.load(tmp_path / "m", adata=held_out)
    assert loaded.ot_coupling == "sequence"
    cond = {"cell_type": [HELD[0]], "condition": [HELD[1]]}
    np.testing.assert_array_equal(
        loaded.predict(cond, n_cells=8, seed=1).X, model.predict(cond, n_cells=8, seed=1).X
    )


def test_save_load_round_trip(trained, tmp_path):
    held_out = trained.adata
    cond = {"cell_type": [HELD[0]], "condition": [HELD[1]]}
    before = trained.predict(cond, n_cells=30, seed=7)
    trained.save(tmp_path / "m")
    files = sorted(p.name for p in (tmp_path / "m").iterdir())
    assert files == ["config.json", "model.safetensors", "tokenizer"]
    with pytest.raises(FileExistsError):
        trained.save(tmp_path / "m")
    loaded = CaLMFlowModel.load(tmp_path / "m", adata=held_out)
    for k, v in trained.module.state_dict().items():
        assert torch.equal(v, loaded.module.state_dict()[k]), k
    after = loaded.predict(cond, n_cells=30, seed=7)
    np.testing.assert_array_equal(before.X, after.X)
    assert loaded.prompts(cond) == trained.prompts(cond)
    assert (
        loaded.history["reconstruction_loss_train"].shape
        == trained.history["reconstruction_loss_train"].shape
    )
    # loading onto other cells keeps the saved PCA and vocabulary (nothing is refitted)
    # loading onto other cells keeps the saved PCA, its cross-fitting and the vocabulary
    subset = held_out[held_out.obs["cell_type"] == HELD[0]].copy()
    on_subset = CaLMFlowModel.load(tmp_path / "m", adata=subset)
    np.testing.assert_array_equal(on_subset.features_.components_, trained.features_.components_)
    assert on_subset.prompt_encoder.vocab_size == trained.prompt_encoder.vocab_size
    np.testing.assert_array_equal(on_subset.get_pca(), trained.get_pca(subset))
    np.testing.assert_array_equal(on_subset.predict(cond, n_cells=30, seed=7).X, before.X)
    # wrong genes are refused
    with pytest.raises(ValueError, match="genes differ"):
        CaLMFlowModel.load(tmp_path / "m", adata=held_out[:, ::-1].copy())


def test_save_load_with_anndata(trained, tmp_path):
    trained.save(tmp_path / "m2", save_anndata=True)
    loaded = CaLMFlowModel.load(tmp_path / "m2")
    assert loaded.adata.n_obs == trained.adata.n_obs


def test_unconditional_noise_model(kang_small, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(kang_small)
    model = CaLMFlowModel(kang_small, source="noise", **tiny)
    assert model.prompts(None) == ["Generate a cell:"]
    quiet_train(model, max_epochs=1)
    pred = model.predict(n_cells=25, seed=0)
    assert pred.shape == (25, kang_small.n_vars)
    assert "source_cell" not in pred.obs
    # every cell is generated (no uninitialised rows) and the seed fixes them
    assert np.isfinite(pred.X).all() and np.isfinite(pred.obsm["X_calmflow_pca"]).all()
    assert np.abs(pred.obsm["X_calmflow_pca"]).max() < 1e3
    again = model.predict(n_cells=25, seed=0)
    np.testing.assert_array_equal(pred.X, again.X)
    other = model.predict(n_cells=25, seed=1)
    assert not np.allclose(pred.obsm["X_calmflow_pca"], other.obsm["X_calmflow_pca"])


@pytest.mark.parametrize(
    ("source", "given", "expected"),
    [
        ("noise", {}, ("flow", "bridge", 1.0, "mlp")),
        ("additive", {}, ("flow", "straight", 0.0, "bottleneck")),
        ("control", {}, ("flow", "straight", 0.0, "bottleneck")),
        (
            "noise",
            {"head": "deterministic", "path": "straight"},
            ("deterministic", "straight", 0.0, None),
        ),
        ("additive", {"path": "bridge"}, ("flow", "bridge", 1.0, "bottleneck")),
        ("control", {"head": "deterministic"}, ("deterministic", "straight", 0.0, None)),
        ("noise", {"sigma_min": 0.3}, ("flow", "bridge", 0.3, "mlp")),
        ("control", {"head": "flow"}, ("flow", "straight", 0.0, "bottleneck")),
        ("additive", {"head": "gmm"}, ("gmm", "straight", 0.0, "bottleneck")),
        ("control", {"head": "flow", "head_mean": "mlp"}, ("flow", "straight", 0.0, "mlp")),
        ("noise", {"head_mean": "bottleneck"}, ("flow", "bridge", 1.0, "bottleneck")),
    ],
)
def test_head_and_path_defaults_follow_the_source(kang_small, tiny, source, given, expected):
    """From noise the flow head with an MLP mean on bridge paths, from cells the flow head
    with the bottleneck mean on straight ones; what is given wins; the resolved values are
    what a saved model stores."""
    from sccalmflow.nn import DeterministicHead

    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    model = CaLMFlowModel(kang_small, source=source, **tiny, **given)
    head, path, sigma, mean = expected
    names = {"flow": "flowmatching", "deterministic": "deterministic", "gmm": "mixture"}
    assert type(model.module.head).__name__.lower().startswith(names[head])
    assert (
        type(model.module.path)
        .__name__.lower()
        .startswith({"bridge": "brownianbridge", "straight": "straight"}[path])
    )
    path_noise = model.module.path
    assert getattr(path_noise, "sigma", getattr(path_noise, "sigma_min", None)) == sigma
    if mean is not None:
        is_bottleneck = isinstance(model.module.head.mean, DeterministicHead)
        assert is_bottleneck == (mean == "bottleneck")
    stored = model.init_params_["non_kwargs"]
    assert tuple(stored[k] for k in ("head", "path", "sigma_min", "head_mean")) == expected
    summary = f"{head} head ({mean} mean)" if mean else f"{head} head"
    assert f"{summary}, {path} path" in model._model_summary_string


@pytest.mark.parametrize("head", ["deterministic", "variational", "cvae"])
def test_head_mean_is_refused_by_heads_without_a_mean(kang_small, tiny, head):
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    with pytest.raises(ValueError, match="no separate mean"):
        CaLMFlowModel(kang_small, source="control", head=head, head_mean="mlp", **tiny)
    with pytest.raises(ValueError, match="head_mean"):
        CaLMFlowModel(kang_small, source="control", head="flow", head_mean="wide", **tiny)


def test_multi_trajectory_and_space_tokens(held_out, tiny, quiet_train):
    model = CaLMFlowModel(held_out, n_trajectories=3, n_space_tokens=2, **tiny)
    quiet_train(model, max_epochs=1)
    pred = model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=7, seed=0)
    assert pred.n_obs == 7


def test_chained_sequences(held_out, tiny, quiet_train):
    """predict(chain=h): the requested cells from their control cells, whatever batch_size,
    with or without the cache (1,002 cells: two chains of 501); chains read their context
    (the cells differ from independent sequences' and between strides)."""
    model = CaLMFlowModel(held_out, n_trajectories=3, head="flow", **tiny)
    quiet_train(model, max_epochs=1)
    cond = {"cell_type": ["B"], "condition": ["IFN-beta"]}
    kw = dict(n_cells=1002, seed=0, decode=False, chain=2)
    a = model.predict(cond, return_trajectories=True, **kw)
    assert a.n_obs == 1002 and a.obsm["X_trajectory"].shape[:2] == (1002, tiny["n_time_points"])
    np.testing.assert_allclose(a.obsm["X_trajectory"][:, -1], a.obsm[PCA_KEY], atol=1e-5)
    controls = held_out.obs_names[
        (held_out.obs["cell_type"] == "B").to_numpy()
        & (held_out.obs["condition"] == "control").to_numpy()
    ]
    assert a.obs["source_cell"].isin(controls).all()
    for other in (dict(batch_size=1), dict(batch_size=1, use_cache=False)):
        b = model.predict(cond, **kw, **other)
        np.testing.assert_allclose(a.obsm[PCA_KEY], b.obsm[PCA_KEY], atol=1e-4)
    few = dict(n_cells=25, seed=0, decode=False)
    c = model.predict(cond, chain=1, **few).obsm[PCA_KEY]
    for other in (dict(chain=2), dict(chain=None), dict(chain=1, seed=1)):
        assert not np.allclose(c, model.predict(cond, **{**few, **other}).obsm[PCA_KEY])
    with pytest.raises(ValueError, match="`chain` must be at most 2, got 3"):
        model.predict(cond, chain=3)


def test_features_key(held_out, tiny, quiet_train):
    import scanpy as sc

    sc.pp.pca(held_out, n_comps=8)
    ad = held_out.copy()
    CaLMFlowModel.setup_anndata(ad, features_key="X_pca", **KEYS)
    model = CaLMFlowModel(ad, **{**tiny, "n_pca": 999})
    assert model.features_.n_components == 8
    np.testing.assert_allclose(model.get_pca(), ad.obsm["X_pca"], atol=1e-4)
    quiet_train(model, max_epochs=1)
    pred = model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=5)
    assert pred.shape == (5, ad.n_vars) and pred.obsm["X_calmflow_pca"].shape == (5, 8)


def test_early_stopping_and_no_validation(held_out, tiny, quiet_train):
    model = CaLMFlowModel(held_out, **tiny)
    quiet_train(model, max_epochs=30, early_stopping=True, early_stopping_patience=1, lr=1e-1)
    assert len(model.history["reconstruction_loss_validation"]) < 30
    with pytest.raises(ValueError, match="validation_size > 0"):
        quiet_train(CaLMFlowModel(held_out, **tiny), validation_size=0, early_stopping=True)


def test_load_refuses_unknown_category(trained, tmp_path):
    trained.save(tmp_path / "m")
    other = trained.adata.copy()
    other.obs["cell_type"] = other.obs["cell_type"].cat.rename_categories({"NK": "Neuron"})
    with pytest.raises(ValueError, match="Neuron"):
        CaLMFlowModel.load(tmp_path / "m", adata=other)


def test_predict_from_given_source_cells(trained):
    reg = trained.adata
    ctrl_mask = ((reg.obs["cell_type"] == HELD[0]) & (reg.obs["condition"] == "control")).to_numpy()
    ctrl = reg[ctrl_mask].copy()
    before = ctrl.copy()
    cond = {"cell_type": [HELD[0]], "condition": [HELD[1]]}
    # the registered control cells of the context, passed explicitly, give the same cells
    a = trained.predict(cond, n_cells=30, seed=2)
    b = trained.predict(cond, n_cells=30, seed=2, source_cells=ctrl)
    np.testing.assert_allclose(a.obsm["X_calmflow_pca"], b.obsm["X_calmflow_pca"], atol=1e-4)
    assert list(a.obs["source_cell"]) == list(b.obs["source_cell"])
    assert (ctrl.X != before.X).nnz == 0 and ctrl.obs.equals(before.obs)  # not mutated
    # cells of another context (here: B controls) are used for every requested condition
    other = reg[((reg.obs["cell_type"] == "B") & (reg.obs["condition"] == "control")).to_numpy()]
    two = {"cell_type": [HELD[0], "NK"], "condition": [HELD[1], HELD[1]]}
    c = trained.predict(two, n_cells=12, seed=2, source_cells=other)
    assert set(c.obs["source_cell"]) <= set(other.obs_names)
    assert c.obs["source_cell"].iloc[:12].nunique() == min(12, other.n_obs)
    # bad input
    with pytest.raises(ValueError, match="genes in the same order"):
        trained.predict(cond, n_cells=3, source_cells=ctrl[:, ::-1].copy())
    with pytest.raises(ValueError, match="oversample"):
        trained.predict(cond, n_cells=3, oversample="smote")
    nan = ctrl.copy()
    nan.X = nan.X.toarray()
    nan.X[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        trained.predict(cond, n_cells=3, source_cells=nan)


def test_oversample_modes_and_the_default(held_out, tiny, quiet_train):
    """``oversample`` (for the deterministic head): repeat, interpolate and the default,
    a smoothed bootstrap."""
    trained = CaLMFlowModel(held_out, **{**tiny, "head": "deterministic"})
    quiet_train(trained, max_epochs=3, batch_size=64)
    reg = trained.adata
    ctrl = reg[((reg.obs["cell_type"] == "NK") & (reg.obs["condition"] == "control")).to_numpy()]
    cond = {"cell_type": ["NK"], "condition": [HELD[1]]}
    n = 3 * ctrl.n_obs
    rep = trained.predict(cond, n_cells=n, seed=0, oversample="repeat")
    itp = trained.predict(cond, n_cells=n, seed=0, oversample="interpolate")
    assert len(np.unique(rep.obsm["X_calmflow_pca"].round(4), axis=0)) == ctrl.n_obs
    assert len(np.unique(itp.obsm["X_calmflow_pca"].round(4), axis=0)) == n
    # the first pass over the control cells is the same in both modes
    k = ctrl.n_obs
    np.testing.assert_allclose(
        itp.obsm["X_calmflow_pca"][:k], rep.obsm["X_calmflow_pca"][:k], atol=1e-5
    )
    assert list(itp.obs["source_cell"]) == list(rep.obs["source_cell"])
    # the smoothed bootstrap: distinct cells, same first pass, seeded, a spread like repeat's
    smo = trained.predict(cond, n_cells=n, seed=0, oversample="smooth")
    x = smo.obsm["X_calmflow_pca"]
    assert len(np.unique(x.round(4), axis=0)) == n
    np.testing.assert_allclose(x[:k], rep.obsm["X_calmflow_pca"][:k], atol=1e-5)
    again = trained.predict(cond, n_cells=n, seed=0, oversample="smooth")
    np.testing.assert_array_equal(x, again.obsm["X_calmflow_pca"])
    # the default for the deterministic head
    default = trained.predict(cond, n_cells=n, seed=0)
    np.testing.assert_array_equal(x, default.obsm["X_calmflow_pca"])
    spread = {
        name: np.sqrt(
            ((p.obsm["X_calmflow_pca"] - p.obsm["X_calmflow_pca"].mean(0)) ** 2).sum(1).mean()
        )
        for name, p in (("repeat", rep), ("interpolate", itp), ("smooth", smo))
    }
    assert spread["smooth"] > spread["interpolate"]
    assert abs(spread["smooth"] / spread["repeat"] - 1) < 0.25


def test_source_cells_needs_control_model(kang_small, tiny):
    CaLMFlowModel.setup_anndata(kang_small)
    model = CaLMFlowModel(kang_small, source="noise", **tiny)
    with pytest.raises(ValueError, match="source='control'"):
        model.predict(n_cells=3, source_cells=kang_small[:5].copy())


def _drug_dose_data(seed=0):
    """Simulated screen: 2 cell lines x (DMSO at dose 0, 2 drugs x 2 doses)."""
    import anndata as ad

    rng = np.random.default_rng(seed)
    rows = []
    for line in ["A549", "MCF7"]:
        rows += [(line, "DMSO", "0")] * 40
        rows += [(line, d, z) for d in ("dex", "SAHA") for z in ("10", "100") for _ in range(20)]
    obs = pd.DataFrame(rows, columns=["cell_line", "drug", "dose"]).astype("category")
    obs.index = [f"c{i}" for i in range(len(obs))]
    x = np.log1p(rng.gamma(2.0, 1.0, size=(len(obs), 30))).astype(np.float32)
    x[(obs["drug"] == "SAHA").to_numpy(), :5] += 1.0
    return ad.AnnData(x, obs=obs)


def test_multi_key_perturbation_and_control_hint(tiny, quiet_train):
    keys = ["cell_line", "drug", "dose"]
    small = dict(tiny, n_pca=5)
    a = _drug_dose_data()
    held = (a.obs["cell_line"] == "MCF7") & (a.obs["drug"] == "SAHA") & (a.obs["dose"] == "100")
    train = a[~held.to_numpy()].copy()
    # dose left out of `control`: no condition has control cells with the same dose
    CaLMFlowModel.setup_anndata(train, condition_keys=keys, control={"drug": "DMSO"})
    model = CaLMFlowModel(train, **small)
    with pytest.raises(
        ValueError, match=r"Nothing to train on.*control=\{'drug': 'DMSO', 'dose': '0'\}"
    ):
        quiet_train(model, max_epochs=1)
    cond = {"cell_line": ["MCF7"], "drug": ["SAHA"], "dose": ["100"]}
    with (
        pytest.warns(UserWarning, match="not trained"),
        pytest.raises(ValueError, match=r"No control cells .*add it to `control`"),
    ):
        model.predict(cond, n_cells=2)
    # with dose in `control` the unseen combination is generated from MCF7's DMSO cells
    CaLMFlowModel.setup_anndata(train, condition_keys=keys, control={"drug": "DMSO", "dose": "0"})
    model = CaLMFlowModel(train, **small)
    quiet_train(model, max_epochs=1, batch_size=32)
    pred = model.predict(cond, n_cells=8, seed=0)
    src = train[pred.obs["source_cell"]].obs
    assert (src["cell_line"] == "MCF7").all() and (src["drug"] == "DMSO").all()
    assert model.prompts(cond) == ["Generate a MCF7 cell stimulated with SAHA and dose 100:"]


def test_source_defaults_table_covers_every_source_and_is_read_only():
    """One table holds every source-dependent default (``train()``'s use of it is tested in
    ``test_training.py``); nobody can change it by accident."""
    from sccalmflow.model import SOURCE_DEFAULTS, SourceDefaults, generator_defaults

    assert set(SOURCE_DEFAULTS) == {"control", "additive", "noise"}
    for source, d in SOURCE_DEFAULTS.items():
        assert isinstance(d, SourceDefaults)
        assert generator_defaults(source)[:2] == (d.head, d.path)
        assert generator_defaults(source, head="flow")[3] == d.head_mean
    assert SOURCE_DEFAULTS["noise"].validation_size == 0.0
    assert SOURCE_DEFAULTS["control"].validation_size == 0.1
    with pytest.raises(TypeError):
        SOURCE_DEFAULTS["noise"] = SOURCE_DEFAULTS["control"]  # type: ignore[index]
    with pytest.raises(AttributeError):
        SOURCE_DEFAULTS["noise"].step_scale = 1.0  # type: ignore[misc]
