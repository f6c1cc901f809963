"""Intervals of the mean response over an ensemble; condition support (extrapolation flag)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

import sccalmflow as scf
from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
B_STIM = {"cell_type": ["B"], "condition": ["IFN-beta"]}


def test_mean_interval_known_values_and_coverage():
    means = np.array([[1.0, 0.0], [3.0, 0.0]])
    res = scf.tl.mean_interval(means, level=0.9)
    half = stats.t.ppf(0.95, df=1) * np.sqrt(2.0) * np.sqrt(1.5)
    np.testing.assert_allclose(res["mean"], [2.0, 0.0])
    np.testing.assert_allclose(res["upper"] - res["mean"], [half, 0.0])
    # models scattered around the truth: the interval covers it about 90% of the time
    rng = np.random.default_rng(0)
    draws = rng.normal(size=(4000, 5, 1))
    truth = rng.normal(size=(4000, 1))
    inside = [
        (lambda r: (r["lower"] <= t) & (t <= r["upper"]))(scf.tl.mean_interval(d, 0.9))
        for d, t in zip(draws, truth, strict=True)
    ]
    assert 0.87 < np.mean(inside) < 0.93
    with pytest.raises(ValueError, match="at least two models"):
        scf.tl.mean_interval(means[:1])
    with pytest.raises(ValueError, match="`level` must be less than 1"):
        scf.tl.mean_interval(means, level=1.0)
    with pytest.raises(ValueError, match="`means` must be finite; it holds 1 NaN"):
        scf.tl.mean_interval(np.array([[1.0, np.nan], [3.0, 0.0]]))
    with pytest.raises(ValueError, match="`cell_var` must be finite"):
        scf.tl.mean_interval(means, cell_var=np.full((2, 2), np.inf), n_observed=5)


def _train(kang_small):
    mask = (kang_small.obs["cell_type"] == "B") & (kang_small.obs["condition"] == "IFN-beta")
    train = kang_small[~mask.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(train, **KEYS)
    return train


def test_ensemble_shares_one_pca_and_gives_intervals(kang_small, tiny, quiet_train):
    train = _train(kang_small)
    models = CaLMFlowModel.train_ensemble(
        train, n_models=2, train_kwargs={"max_epochs": 1, "enable_progress_bar": False}, **tiny
    )
    assert [m.seed for m in models] == [0, 1]
    assert models[0].features_.fingerprint() == models[1].features_.fingerprint()
    table = scf.tl.response_interval(models, B_STIM, n_cells=30, level=0.8)
    assert len(table) == train.n_vars and (table.n_models == 2).all()
    assert list(table.columns[:3]) == ["cell_type", "condition", "gene"]
    assert (table.lower <= table["mean"]).all() and (table["mean"] <= table.upper).all()
    assert (table.upper - table.lower).max() > 0  # two seeds do not agree exactly
    observed = scf.tl.response_interval(models, B_STIM, n_cells=30, level=0.8, n_observed=20)
    np.testing.assert_allclose(observed["mean"], table["mean"])
    assert ((observed.upper - observed.lower) >= (table.upper - table.lower) - 1e-12).all()
    assert ((observed.upper - observed.lower) > (table.upper - table.lower)).any()
    with pytest.raises(ValueError, match="at least two models"):
        scf.tl.response_interval(models[:1], B_STIM)
    with pytest.raises(ValueError, match="distinct"):
        CaLMFlowModel.train_ensemble(train, n_models=2, seeds=[3, 3], **tiny)
    with pytest.raises(TypeError, match=r"`seeds` must be a sequence of seeds.*\[3\]"):
        CaLMFlowModel.train_ensemble(train, n_models=2, seeds=3, **tiny)
    with pytest.raises(TypeError, match=r"`seeds\[1\]` must be an integer"):
        CaLMFlowModel.train_ensemble(train, n_models=2, seeds=[3, "4"], **tiny)
    with pytest.raises(TypeError, match="`seed` must be an integer"):
        CaLMFlowModel.train_ensemble(train, n_models=2, seed=2.5, **tiny)
    with pytest.raises(ValueError, match="not trained"):
        scf.tl.response_interval([models[0], CaLMFlowModel(train, **tiny)], B_STIM)

    # calibrated on the held-out combination: the scaled interval holds >= 80 % of its top
    # DE genes' real means (the conformal quantile on the calibration genes themselves)
    scale = scf.tl.calibrate_interval(models, kang_small, B_STIM, n_genes=20, n_cells=30, level=0.8)
    assert np.isfinite(scale) and scale > 0
    is_b = (kang_small.obs.cell_type == "B").to_numpy()
    stim = kang_small[is_b & (kang_small.obs.condition == "IFN-beta").to_numpy()]
    genes = scf.tl.de_genes(
        stim, kang_small[is_b & (kang_small.obs.condition == "control").to_numpy()], 20
    )
    scaled = (
        scf.tl.response_interval(
            models, B_STIM, n_cells=30, level=0.8, n_observed=stim.n_obs, scale=scale
        )
        .set_index("gene")
        .loc[genes]
    )
    real = np.asarray(stim[:, genes].X.mean(0)).ravel()
    assert np.mean((scaled.lower.to_numpy() <= real) & (real <= scaled.upper.to_numpy())) >= 0.8
    wider = scf.tl.response_interval(models, B_STIM, n_cells=30, level=0.8, scale=2.0)
    np.testing.assert_allclose(wider.upper - wider["mean"], 2 * (table.upper - table["mean"]))
    with pytest.raises(ValueError, match="held out of the models' training"):
        scf.tl.calibrate_interval(
            models, kang_small, {"cell_type": ["NK"], "condition": ["IFN-beta"]}
        )
    with pytest.raises(ValueError, match="lacks 1 of the models' genes"):
        scf.tl.calibrate_interval(models, kang_small[:, 1:], B_STIM)
    no_stim = kang_small[~(is_b & (kang_small.obs.condition == "IFN-beta").to_numpy())]
    with pytest.raises(ValueError, match="0 measured cells"):
        scf.tl.calibrate_interval(models, no_stim, B_STIM)


def test_condition_support_flags_what_training_does_not_cover(kang_small, tiny):
    train = _train(kang_small)
    model = CaLMFlowModel(train, **tiny)
    support = model.condition_support(
        {"cell_type": ["B", "NK", "B"], "condition": ["IFN-beta", "IFN-beta", "control"]}
    )
    n_types = train.obs.cell_type.nunique()
    assert support.seen.tolist() == [False, True, True]
    assert support.perturbation_contexts.tolist()[0] == n_types - 1
    assert (support.context_distance >= 0).all()
    assert not support.extrapolation.any()
    # B's controls moved far away from every other type: a guess, flagged
    far = train.copy()
    far.X = far.X.toarray() if hasattr(far.X, "toarray") else far.X.copy()
    is_b = (far.obs.cell_type == "B").to_numpy()
    far.X[is_b, :50] += 6.0
    CaLMFlowModel.setup_anndata(far, **KEYS)
    flagged = CaLMFlowModel(far, **tiny).condition_support(B_STIM)
    assert flagged.context_distance.iloc[0] > 1 and flagged.extrapolation.iloc[0]


def test_mean_interval_for_an_observed_mean_adds_its_sampling_error():
    means = np.array([[1.0, 0.0], [3.0, 0.0]])
    cell_var = np.array([[4.0, 1.0], [4.0, 3.0]])
    res = scf.tl.mean_interval(means, 0.9, cell_var=cell_var, n_observed=8)
    h_models = stats.t.ppf(0.95, df=1) * np.sqrt([2.0 * 1.5, 0.0])
    h_cells = stats.norm.ppf(0.95) * np.sqrt([4 / 8, 2 / 8])
    np.testing.assert_allclose(res["upper"] - res["mean"], np.hypot(h_models, h_cells))
    # models agree exactly but the observed mean of n cells scatters: covered ~90%
    rng = np.random.default_rng(1)
    inside = []
    for _ in range(3000):
        truth = rng.normal()
        models = np.full((5, 1), truth) + rng.normal(scale=0.05, size=(5, 1))
        observed = truth + rng.normal(scale=1.0, size=25).mean()
        r = scf.tl.mean_interval(models, 0.9, cell_var=np.ones((5, 1)), n_observed=25)
        inside.append(r["lower"][0] <= observed <= r["upper"][0])
    assert 0.87 < np.mean(inside) < 0.93
    without = scf.tl.mean_interval(models, 0.9)
    assert (without["upper"] - without["lower"])[0] < (r["upper"] - r["lower"])[0] / 2
    with pytest.raises(ValueError, match="needs `cell_var`"):
        scf.tl.mean_interval(means, n_observed=8)
    with pytest.raises(ValueError, match="pass both or neither"):
        scf.tl.mean_interval(means, cell_var=cell_var)
    with pytest.raises(ValueError, match="non-negative and of the shape"):
        scf.tl.mean_interval(means, cell_var=cell_var[:, :1], n_observed=8)
    with pytest.raises(ValueError, match="n_observed"):
        scf.tl.mean_interval(means, cell_var=cell_var, n_observed=0)


def test_interval_scale_is_the_conformal_quantile_of_the_misses():
    means = np.array([[0.0] * 19, [2.0] * 19])
    half = stats.t.ppf(0.95, df=1) * np.sqrt(2.0) * np.sqrt(1.5)
    c = np.arange(1, 20) / 4  # the real mean sits c half-widths from the ensemble's mean
    observed = 1.0 + c * half * np.where(np.arange(19) % 2, 1, -1)
    # 19 genes, level 0.9: the ceil(20 * 0.9) = 18th smallest factor
    assert scf.tl.interval_scale([means], [observed], 0.9) == pytest.approx(c[17])
    # split over two conditions: the same pooled quantile
    split = scf.tl.interval_scale([means[:, :9], means[:, 9:]], [observed[:9], observed[9:]])
    assert split == pytest.approx(c[17])
    # a miss within the observed mean's sampling error needs no widening
    cell_var = np.full_like(means, 1e6)
    assert (
        scf.tl.interval_scale([means], [observed], 0.9, cell_var=[cell_var], n_observed=[10]) == 0.0
    )
    for bad, match in [
        (([means], [observed[:3]]), "n_models >= 2"),
        (([means], []), "one entry per calibration condition"),
        (([means[:, :5]], [observed[:5]]), "too few"),
        (([means], [observed * np.nan]), "finite"),
        (([np.ones((2, 19))], [observed]), "agree exactly"),
    ]:
        with pytest.raises(ValueError, match=match):
            scf.tl.interval_scale(*bad)
    with pytest.raises(ValueError, match="together"):
        scf.tl.interval_scale([means], [observed], cell_var=[cell_var])


def test_calibrated_intervals_cover_new_conditions_when_all_models_share_a_bias():
    """Ensembles whose models share a per-gene bias 3x their spread: raw intervals miss most
    real means; scaled by the factor calibrated on other conditions they hold about 90 %."""
    rng = np.random.default_rng(0)

    def condition(n_genes=200, k=5):
        truth = rng.normal(size=n_genes)
        center = truth + rng.normal(scale=3.0, size=n_genes)  # the shared error
        return center + rng.normal(size=(k, n_genes)), truth

    calib = [condition() for _ in range(10)]
    scale = scf.tl.interval_scale([m for m, _ in calib], [t for _, t in calib], 0.9)
    assert 1.5 < scale < 3.5
    raw, scaled = [], []
    for _ in range(20):
        means, truth = condition()
        for out, f in ((raw, 1.0), (scaled, scale)):
            r = scf.tl.mean_interval(means, 0.9, scale=f)
            out.append(np.mean((r["lower"] <= truth) & (truth <= r["upper"])))
    assert np.mean(raw) < 0.75
    assert 0.86 < np.mean(scaled) < 0.94
    with pytest.raises(ValueError, match="scale"):
        scf.tl.mean_interval(calib[0][0], scale=-1.0)
