"""The #12 benchmarks (subsample, screen): their sampling and their tables, on tiny runs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import sccalmflow as scf
from benchmarks import screen, subsample


def test_stratified_subsample_keeps_every_group(kang_small):
    sub = subsample.stratified_subsample(kang_small, 0.25, seed=3)
    full = kang_small.obs.groupby(["cell_type", "condition"], observed=True).size()
    got = sub.obs.groupby(["cell_type", "condition"], observed=True).size()
    assert (got.index == full.index).all()
    np.testing.assert_array_equal(got.to_numpy(), np.maximum(1, np.round(0.25 * full)).astype(int))
    again = subsample.stratified_subsample(kang_small, 0.25, seed=3)
    assert list(sub.obs_names) == list(again.obs_names)
    assert subsample.stratified_subsample(kang_small, 1.0, seed=3).n_obs == kang_small.n_obs


def _records() -> pd.DataFrame:
    rows = []
    for seed in (0, 1):
        for method, r2, e in (
            ("m", 0.9, 1.0),
            ("Additive", 0.8, 2.0),
            (subsample.REPLICATE, 1.0, 0.0),
        ):
            values = dict.fromkeys(subsample.METRICS, r2)
            values.update({"E-distance": e, "MMD": e, "W2": e})
            rows.append({"cell_type": "B", "seed": seed, "fraction": 1.0, "n_train": 10,
                         "epochs": 3, "train_s": 1.0, "method": method, **values})  # fmt: skip
    return pd.DataFrame(rows)


def test_gap_closed_and_wins_on_a_known_case():
    df = _records()
    gaps = subsample.gap_closed(df)
    # half-way from Additive to the replicate on every metric, either direction
    np.testing.assert_allclose(gaps[list(subsample.METRICS)].to_numpy(), 0.5)
    wins = subsample._wins(df)
    assert (wins[list(subsample.METRICS)] == "2/2").all().all()
    page = subsample.markdown(df)
    assert "0.500 ± 0.000" in page and "## Runs (type x seed)" in page


def test_interval_coverage_calibrates_each_type_on_the_others():
    rng = np.random.default_rng(0)
    rows = []
    for ct in ("A", "B", "C"):
        real = rng.normal(size=40)
        center = real + rng.normal(scale=2.0, size=40)  # an error both seeds share
        for seed in (0, 1, 2):
            rows.append({"cell_type": ct, "seed": seed, "fraction": 1.0, "method": "m",
                         "de_pred": (center + rng.normal(size=40)).tolist(),
                         "de_pred_var": np.ones(40).tolist(), "de_real": real.tolist(),
                         "n_real": 50})  # fmt: skip
    df = pd.DataFrame(rows)
    cov = subsample.interval_coverage(df).set_index("cell_type")
    assert (cov.models == 3).all()
    # type A's factor comes from B and C only
    others = df[df.cell_type != "A"].groupby("cell_type")
    expected = scf.tl.interval_scale(
        [np.array(g.de_pred.tolist()) for _, g in others],
        [np.array(g.de_real.iloc[0]) for _, g in others],
        0.9,
        cell_var=[np.array(g.de_pred_var.tolist()) for _, g in others],
        n_observed=[50, 50],
    )
    assert cov.loc["A", "scale"] == pytest.approx(expected)
    assert (cov.scale > 1).all() and (cov.calibrated >= cov.observed).all()
    assert cov.calibrated.mean() > cov.observed.mean()
    assert "calibrated: A" in subsample._coverage_table(df).columns


def test_screen_page_from_records():
    rows = [
        {
            "interaction": i,
            "seed": s,
            "method": m,
            "held_out": h,
            **dict.fromkeys(screen.METRICS, v),
        }
        for i in (0.0, 1.0)
        for s in (0, 1)
        for m, v in (("default", 0.9), ("Additive", 0.8))
        for h in ("type0 x pert0", "type1 x pert1")
    ]
    page = screen.markdown(pd.DataFrame(rows))
    assert "0.900 ± 0.000" in page and "0.800 ± 0.000" in page
