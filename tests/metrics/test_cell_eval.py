"""Tests of the export to cell-eval (runs its MetricsEvaluator on toy data)."""

import anndata as ad
import numpy as np
import pytest

from sccalmflow import metrics as scm

# -------------------------------------------------------------------------- cell-eval


def test_to_cell_eval_runs_metrics_evaluator_and_agrees(tmp_path, perturb_data):
    from scipy.stats import pearsonr

    perts = ["A", "B", "C", "D", "E", "F"]
    real = perturb_data(seed=0, perts=perts)
    # a mediocre model: noisy effects, so that not every discrimination score is 1
    pred = perturb_data(seed=1, perts=perts, shift=0.1, effect_noise=1.0)
    pred = pred[pred.obs["pert"] != "ctrl"].copy()  # models predict perturbed cells only
    inputs = scm.to_cell_eval(pred, real, pert_col="pert", control_pert="ctrl", outdir=tmp_path)
    assert inputs.pred_path.exists() and inputs.real_path.exists()
    assert "cell-eval run" in inputs.command()
    back = ad.read_h5ad(inputs.pred_path)
    assert set(back.obs["pert"]) == {*perts, "ctrl"}  # real controls copied in
    res, agg = inputs.run(
        tmp_path / "out", profile="anndata", skip_de=True, skip_metrics=["clustering_agreement"]
    )
    res = res.set_index("perturbation")
    assert sorted(res.index) == perts

    x_real = real.X.toarray()
    x_pred = pred.X.toarray()
    lab_r, lab_p = real.obs["pert"].to_numpy(), pred.obs["pert"].to_numpy()
    ctrl = x_real[lab_r == "ctrl"]
    eff_p = np.vstack([x_pred[lab_p == p].mean(0) - ctrl.mean(0) for p in perts])
    eff_r = np.vstack([x_real[lab_r == p].mean(0) - ctrl.mean(0) for p in perts])
    for i, p in enumerate(perts):
        ours = scm.mean_expression_r2(x_pred[lab_p == p], x_real[lab_r == p], control=ctrl)
        assert ours["pearson_delta"] == pytest.approx(res.loc[p, "pearson_delta"], rel=1e-4)
        for metric in ("l1", "l2"):
            ds = scm.discrimination_score(eff_p, eff_r, metric=metric)[i]
            assert ds == pytest.approx(res.loc[p, f"discrimination_score_{metric}"])
    assert res["discrimination_score_l1"].min() < 1  # the comparison is not trivial
    # cell-eval's pearson_edistance: Pearson over perturbations of E-distance to control
    # (Euclidean, self-pairs included) = our default energy_distance
    e_real = [scm.energy_distance(x_real[lab_r == p], ctrl) for p in perts]
    e_pred = [scm.energy_distance(x_pred[lab_p == p], ctrl) for p in perts]
    assert pearsonr(e_real, e_pred)[0] == pytest.approx(res["pearson_edistance"].iloc[0], rel=1e-4)


def test_to_cell_eval_celltype_split_and_errors(tmp_path, perturb_data):
    real = perturb_data(seed=0, perts=("A", "B"))
    real.obs["ct"] = np.where(np.arange(real.n_obs) % 2 == 0, "x", "y")
    pred = real[real.obs["pert"] == "A"].copy()
    inputs = scm.to_cell_eval(pred, real, pert_col="pert", control_pert="ctrl", celltype_col="ct")
    assert set(inputs.real.obs["pert"]) == {"A", "ctrl"}  # B was not predicted
    for ct in ("x", "y"):
        sub = inputs.pred.obs[inputs.pred.obs["ct"] == ct]
        assert set(sub["pert"]) == {"A", "ctrl"}
    bad = pred.copy()
    bad.X = bad.X * -1.0
    with pytest.raises(ValueError, match="negative"):
        scm.to_cell_eval(bad, real, pert_col="pert", control_pert="ctrl")
    other = pred.copy()
    other.obs["pert"] = "Z"
    with pytest.raises(ValueError, match="absent from real"):
        scm.to_cell_eval(other, real, pert_col="pert", control_pert="ctrl")
