"""Tests of sccalmflow.baselines (tiny data; the whole file runs in seconds)."""

from __future__ import annotations

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import torch

from sccalmflow.baselines import CFM, Additive, Control, TrainMean

torch.set_num_threads(1)

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}
SHIFT_LATENT = np.array([1.5, -0.5, 0.8, 0.3])


def _toy(
    contexts=("A", "B", "C"),
    perturbed=("A", "B"),
    n_per_group=40,
    n_genes=20,
    only_control_offset: dict | None = None,
    seed=0,
) -> tuple[ad.AnnData, np.ndarray]:
    """Rank-4 log-expression-like data (so 4 PCs reconstruct it exactly), all values > 0.

    Each context has control cells around its own mean; in the contexts ``perturbed``, the
    perturbed cells are exactly the control cells plus a constant gene-space ``shift``.
    Returns the AnnData and the gene-space shift.
    """
    rng = np.random.default_rng(seed)
    basis = rng.normal(size=(4, n_genes)) / 4
    shift = SHIFT_LATENT @ basis
    X, cell_type, condition = [], [], []
    for i, ctx in enumerate(contexts):
        offset = np.zeros(4)
        offset[i % 4] = 2.0 * (i + 1)
        if only_control_offset and ctx in only_control_offset:
            offset = offset + only_control_offset[ctx]
        latent = offset + rng.normal(size=(n_per_group, 4)) * 0.5
        ctrl = 10.0 + latent @ basis
        X.append(ctrl)
        cell_type += [ctx] * n_per_group
        condition += ["control"] * n_per_group
        if ctx in perturbed:
            X.append(ctrl + shift)
            cell_type += [ctx] * n_per_group
            condition += ["stim"] * n_per_group
    X = np.concatenate(X).astype(np.float32)
    assert X.min() > 0
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(cell_type),
            "condition": pd.Categorical(condition, categories=["control", "stim"]),
        },
        index=[f"cell{i}" for i in range(len(X))],
    )
    var = pd.DataFrame(index=[f"g{j}" for j in range(n_genes)])
    return ad.AnnData(X=X, obs=obs, var=var), shift.astype(np.float32)


def _fit(method, adata, **kw):
    return method.fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=4, **kw)


def _tiny_cfm(variant="otcfm", n_steps=150, **kw) -> CFM:
    return CFM(variant, width=32, depth=2, n_steps=n_steps, batch_size=64, lr=3e-3, **kw)


@pytest.fixture(scope="module")
def toy():
    return _toy()


# ---------------------------------------------------------------- interface
@pytest.mark.parametrize("cls", [Control, Additive, TrainMean])
def test_prediction_layout(toy, cls):
    adata, _ = toy
    method = _fit(cls(), adata)
    conds = {"cell_type": ["C", "A"], "condition": ["stim", "control"]}
    pred = method.predict(conds, n_cells=[7, 5], seed=1)
    assert pred.shape == (12, adata.n_vars)
    assert pred.X.dtype == np.float32 and isinstance(pred.X, np.ndarray)
    assert list(pred.var_names) == list(adata.var_names)
    assert list(pred.obs.columns) == KEYS
    for k in KEYS:
        assert isinstance(pred.obs[k].dtype, pd.CategoricalDtype)
        assert list(pred.obs[k].cat.categories) == list(adata.obs[k].cat.categories)
    assert list(pred.obs["cell_type"]) == ["C"] * 7 + ["A"] * 5
    assert list(pred.obs["condition"]) == ["stim"] * 7 + ["control"] * 5
    assert pred.obsm["X_pca"].shape == (12, method.pca.n_components)
    # X_pca is the unscaled PCA score of the generated features, and X decodes it
    z = pred.obsm["X_pca"] / method.pca.scale_
    np.testing.assert_allclose(pred.X, method.pca.inverse_transform(z), atol=1e-4)
    assert pred.uns["baseline"]["method"] == cls.__name__
    assert method.training_summary["seconds"] > 0
    # a DataFrame works as well, n_cells as one number
    pred2 = method.predict(pd.DataFrame(conds), n_cells=3)
    assert pred2.n_obs == 6


def test_same_pca_space_as_pcafeatures(toy):
    from sccalmflow.data import PCAFeatures

    adata, _ = toy
    method = _fit(Control(), adata, pca_scaling="component")
    ref = PCAFeatures(4, "component").fit(adata.X)
    np.testing.assert_allclose(method.pca.components_, ref.components_, atol=1e-6)
    np.testing.assert_allclose(method.pca.scale_, ref.scale_, rtol=1e-6)


def test_layer_is_used(toy):
    adata, _ = toy
    adata = adata.copy()
    adata.layers["double"] = adata.X * 2
    method = _fit(Control(), adata, layer="double")
    np.testing.assert_allclose(method.pca.mean_, 2 * adata.X.mean(0), rtol=1e-5)


# ---------------------------------------------------------------- Control
def test_control_resamples_control_cells_of_context(toy):
    adata, _ = toy
    method = _fit(Control(), adata)
    pred = method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=400)
    mask = (adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "control")
    real = method.pca.pca_scores(method.pca.transform(adata.X[mask.to_numpy()]))
    # every generated cell is one of B's control cells...
    d = np.abs(pred.obsm["X_pca"][:, None, :] - real[None, :, :]).max(-1).min(1)
    assert d.max() < 1e-4
    # ...and the control distribution is reproduced (means close)
    np.testing.assert_allclose(pred.obsm["X_pca"].mean(0), real.mean(0), atol=0.15)
    np.testing.assert_allclose(pred.X.mean(0), adata.X[mask.to_numpy()].mean(0), atol=0.05)


def test_seed_reproducible(toy):
    adata, _ = toy
    method = _fit(Additive(), adata)
    conds = {"cell_type": ["C"], "condition": ["stim"]}
    a = method.predict(conds, n_cells=20, seed=3).X
    b = method.predict(conds, n_cells=20, seed=3).X
    c = method.predict(conds, n_cells=20, seed=4).X
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


# ---------------------------------------------------------------- Additive
def test_additive_recovers_constant_shift(toy):
    adata, shift = toy
    additive = _fit(Additive(), adata)
    control = _fit(Control(), adata)
    conds = {"cell_type": ["C"], "condition": ["stim"]}
    pred = additive.predict(conds, n_cells=300, seed=0)
    base = control.predict(conds, n_cells=300, seed=0)
    # the same resampled control cells, each moved by exactly the shift
    np.testing.assert_allclose(pred.X - base.X, np.broadcast_to(shift, pred.shape), atol=1e-4)
    np.testing.assert_allclose(pred.X.mean(0), base.X.mean(0) + shift, atol=1e-4)
    # the shift in PCA space maps back to the gene-space shift
    pca = additive.pca
    delta = pca.pca_scores(additive.shift({"cell_type": "C", "condition": "stim"}))
    np.testing.assert_allclose(delta @ pca.components_, shift, atol=1e-4)
    # control requested -> no shift
    assert np.abs(additive.shift({"cell_type": "C", "condition": "control"})).max() == 0


def test_additive_is_context_balanced():
    """Per-context deltas are averaged with equal weight, whatever the cell counts."""
    adata, _ = _toy(contexts=("A", "B", "C"), perturbed=("A", "B"))
    X = adata.X.copy()
    # make B's perturbation twice as strong as A's, and give A many more cells
    is_b_stim = ((adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "stim")).to_numpy()
    is_b_ctrl = ((adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "control")).to_numpy()
    X[is_b_stim] = X[is_b_ctrl] + 2 * (X[is_b_stim] - X[is_b_ctrl])
    a_rows = np.flatnonzero((adata.obs["cell_type"] == "A").to_numpy())
    adata = ad.concat(
        [ad.AnnData(X, obs=adata.obs, var=adata.var), adata[a_rows].copy()], index_unique="-"
    )
    method = _fit(Additive(), adata)

    def gmean(ct, cond):
        m = ((adata.obs["cell_type"] == ct) & (adata.obs["condition"] == cond)).to_numpy()
        return adata.X[m].mean(0)

    expected = 0.5 * (
        (gmean("A", "stim") - gmean("A", "control")) + (gmean("B", "stim") - gmean("B", "control"))
    )
    delta = method.pca.pca_scores(method.shift({"cell_type": "C", "condition": "stim"}))
    np.testing.assert_allclose(delta @ method.pca.components_, expected, atol=1e-4)


def test_additive_several_perturbation_keys():
    """Two perturbation keys: the prediction adds the two single-key shifts."""
    rng = np.random.default_rng(0)
    n_genes, n = 12, 30
    basis = rng.normal(size=(3, n_genes)) / 3
    s_drug, s_time = np.array([1.0, 0, 0]) @ basis, np.array([0, 1.0, 0.5]) @ basis
    rows, obs = [], []
    for ctx, off in [("A", 0.0), ("B", 1.0), ("C", -1.0)]:
        ctrl = 8 + (off + rng.normal(size=(n, 3)) * 0.3) @ basis
        groups = {("none", "0h"): ctrl}
        if ctx != "C":
            groups[("drug", "0h")] = ctrl + s_drug
            groups[("none", "6h")] = ctrl + s_time
        for (drug, time_), x in groups.items():
            rows.append(x)
            obs += [(ctx, drug, time_)] * n
    obs = pd.DataFrame(obs, columns=["cell_type", "drug", "time"]).astype("category")
    obs.index = obs.index.astype(str)
    adata = ad.AnnData(np.concatenate(rows).astype(np.float32), obs=obs)
    keys = ["cell_type", "drug", "time"]
    method = Additive().fit(
        adata, condition_keys=keys, control={"drug": "none", "time": "0h"}, n_pca=3
    )
    base = Control().fit(
        adata, condition_keys=keys, control={"drug": "none", "time": "0h"}, n_pca=3
    )
    cond = {"cell_type": ["C"], "drug": ["drug"], "time": ["6h"]}
    pred = method.predict(cond, n_cells=50)
    ref = base.predict(cond, n_cells=50)
    np.testing.assert_allclose(
        pred.X - ref.X, np.broadcast_to(s_drug + s_time, pred.shape), atol=1e-4
    )


# ---------------------------------------------------------------- TrainMean
def test_trainmean_differs_from_additive_when_unbalanced():
    # D has control cells only, far away: TrainMean's control term moves, Additive's does not
    adata, shift = _toy(
        contexts=("A", "B", "C", "D"),
        perturbed=("A", "B"),
        only_control_offset={"D": np.array([0, 0, 0, 6.0])},
    )
    additive, trainmean = _fit(Additive(), adata), _fit(TrainMean(), adata)
    cond = {"cell_type": "C", "condition": "stim"}
    pca = additive.pca

    def gmean(ct, cond):
        m = ((adata.obs["cell_type"] == ct) & (adata.obs["condition"] == cond)).to_numpy()
        return adata.X[m].mean(0)

    expected_tm = np.mean([gmean(c, "stim") for c in "AB"], axis=0) - np.mean(
        [gmean(c, "control") for c in "ABCD"], axis=0
    )
    add_delta = pca.pca_scores(additive.shift(cond)) @ pca.components_
    tm_delta = pca.pca_scores(trainmean.shift(cond)) @ pca.components_
    np.testing.assert_allclose(add_delta, shift, atol=1e-4)
    np.testing.assert_allclose(tm_delta, expected_tm, atol=1e-4)
    assert np.abs(tm_delta - add_delta).max() > 0.5
    preds = [
        m.predict({k: [v] for k, v in cond.items()}, n_cells=50).X for m in (additive, trainmean)
    ]
    assert np.abs(preds[0].mean(0) - preds[1].mean(0)).max() > 0.5


# ---------------------------------------------------------------- CFM
def _cfm_toy() -> ad.AnnData:
    """Four well-separated Gaussian blobs in a 2-D subspace of 6 genes."""
    rng = np.random.default_rng(1)
    basis = np.linalg.qr(rng.normal(size=(6, 2)))[0].T
    centers = {("A", "control"): (-3, 0), ("A", "stim"): (3, 0)}
    centers |= {("B", "control"): (0, -3), ("B", "stim"): (0, 3)}
    X, obs = [], []
    for (ct, cond), c in centers.items():
        X.append(5 + (np.array(c) + 0.3 * rng.normal(size=(60, 2))) @ basis)
        obs += [(ct, cond)] * 60
    obs = pd.DataFrame(obs, columns=KEYS).astype("category")
    obs.index = obs.index.astype(str)
    return ad.AnnData(np.concatenate(X).astype(np.float32), obs=obs)


@pytest.fixture(scope="module")
def cfm_toy():
    adata = _cfm_toy()
    method = _tiny_cfm().fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2, seed=0)
    return adata, method


def test_cfm_trains_and_generates(cfm_toy):
    adata, method = cfm_toy
    summary = method.training_summary
    assert summary["final_loss"] < 0.7 * summary["initial_loss"]
    assert len(method.loss_history) == 150
    conds = {"cell_type": ["A", "B"], "condition": ["stim", "control"]}
    pred = method.predict(conds, n_cells=100, seed=0)
    assert pred.shape == (200, adata.n_vars)
    assert pred.X.dtype == np.float32
    assert list(pred.var_names) == list(adata.var_names)
    assert pred.uns["cfm"]["nfe"] > 0 and method.nfe_ == pred.uns["cfm"]["nfe"]
    # generated means land nearer their own condition's blob than any other
    real = {
        key: method.pca.pca_scores(method.pca.transform(adata.X[idx]))
        for key, idx in adata.obs.groupby(KEYS, observed=True).indices.items()
    }
    for rows, key in [(slice(0, 100), ("A", "stim")), (slice(100, 200), ("B", "control"))]:
        gen_mean = pred.obsm["X_pca"][rows].mean(0)
        dists = {k: np.linalg.norm(gen_mean - v.mean(0)) for k, v in real.items()}
        assert min(dists, key=dists.get) == key


def test_cfm_deterministic(cfm_toy):
    adata, method = cfm_toy
    conds = {"cell_type": ["A"], "condition": ["stim"]}
    a = method.predict(conds, n_cells=30, seed=5).X
    b = method.predict(conds, n_cells=30, seed=5).X
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, method.predict(conds, n_cells=30, seed=6).X)
    again = _tiny_cfm().fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2, seed=0)
    np.testing.assert_array_equal(again.loss_history, method.loss_history)
    np.testing.assert_array_equal(again.predict(conds, n_cells=30, seed=5).X, a)


@pytest.mark.parametrize("variant", ["icfm", "sbcfm"])
def test_cfm_variants_run(variant):
    adata = _cfm_toy()
    method = _tiny_cfm(variant, n_steps=5)
    method.fit(adata, condition_keys=KEYS, control=CONTROL, n_pca=2)
    pred = method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=10)
    assert pred.shape == (10, adata.n_vars) and np.isfinite(pred.X).all()
    assert pred.uns["cfm"]["variant"] == variant and pred.uns["cfm"]["nfe"] > 0


def test_cfm_ot_pairs_within_condition():
    from torchcfm.optimal_transport import OTPlanSampler

    gen = torch.Generator().manual_seed(0)
    x0, x1 = torch.randn(40, 3, generator=gen), torch.randn(40, 3, generator=gen)
    labels = np.repeat([0, 1, 2, 3], 10)
    i, j = CFM._pair_within(OTPlanSampler("exact"), x0, x1, labels, np.random.default_rng(0))
    np.testing.assert_array_equal(labels[i], labels[j])


def test_cfm_bad_arguments():
    with pytest.raises(ValueError, match="variant"):
        CFM("ddpm")
    with pytest.raises(ValueError, match="activation"):
        CFM(activation="relu")


# ---------------------------------------------------------------- errors
def test_unknown_category(toy):
    adata, _ = toy
    method = _fit(Control(), adata)
    with pytest.raises(ValueError, match="Unknown value"):
        method.predict({"cell_type": ["Z"], "condition": ["stim"]})


def test_missing_key(toy):
    adata, _ = toy
    method = _fit(Additive(), adata)
    with pytest.raises(KeyError, match="condition_keys"):
        method.predict({"cell_type": ["A"]})
    with pytest.raises(KeyError, match="not columns"):
        Control().fit(adata, condition_keys=["cell_type", "dose"], control=CONTROL)
    with pytest.raises(KeyError, match="not among"):
        Control().fit(adata, condition_keys=["cell_type"], control=CONTROL)
    with pytest.raises(ValueError, match="does not occur"):
        Control().fit(adata, condition_keys=KEYS, control={"condition": "ctrl"})
    with pytest.raises(ValueError, match="non-empty"):
        Control().fit(adata, condition_keys=KEYS, control={})


@pytest.mark.parametrize("cls", [Control, Additive, TrainMean])
def test_context_without_controls(cls):
    adata, _ = _toy(contexts=("A", "B", "C"), perturbed=("A", "B", "C"))
    keep = ~((adata.obs["cell_type"] == "C") & (adata.obs["condition"] == "control")).to_numpy()
    method = _fit(cls(), adata[keep].copy())
    with pytest.raises(ValueError, match="no control cells"):
        method.predict({"cell_type": ["C"], "condition": ["stim"]})


def test_additive_without_other_context():
    adata, _ = _toy(contexts=("A", "B"), perturbed=("A",))
    method = _fit(Additive(), adata)
    with pytest.raises(ValueError, match="no context other than"):
        method.predict({"cell_type": ["A"], "condition": ["stim"]})
    assert method.predict({"cell_type": ["B"], "condition": ["stim"]}, n_cells=2).n_obs == 2


def test_not_fitted():
    with pytest.raises(RuntimeError, match="not fitted"):
        Additive().predict({"cell_type": ["A"], "condition": ["stim"]})


@pytest.mark.parametrize(
    "make", [Control, Additive, TrainMean, lambda: _tiny_cfm(n_steps=3)], ids=str
)
def test_input_not_mutated(make):
    adata, _ = _toy()
    adata.obs["condition"] = adata.obs["condition"].astype(str)  # non-categorical column
    before = adata.copy()
    method = _fit(make(), adata)
    method.predict({"cell_type": ["C"], "condition": ["stim"]}, n_cells=3)
    np.testing.assert_array_equal(adata.X, before.X)
    pd.testing.assert_frame_equal(adata.obs, before.obs)
    pd.testing.assert_frame_equal(adata.var, before.var)
    assert list(adata.obsm) == list(before.obsm) and list(adata.uns) == list(before.uns)
    assert list(adata.layers) == list(before.layers)


def test_kang_smoke():
    from sccalmflow.datasets import kang2018

    adata = kang2018()
    held_out = (adata.obs["cell_type"] == "B") & (adata.obs["condition"] == "IFN-beta")
    train = adata[~held_out.to_numpy()].copy()
    method = Additive().fit(train, condition_keys=KEYS, control=CONTROL, n_pca=10)
    pred = method.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=50)
    assert pred.shape == (50, 2000)
    assert (pred.var_names == adata.var_names).all()
    assert (pred.X >= 0).all()
