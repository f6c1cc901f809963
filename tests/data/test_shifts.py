"""AdditiveShift: the shift vector arithmetic predicts, on cases where it is known by hand."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sccalmflow.data import AdditiveShift, ConditionSpec


def _cells(rows: list[tuple[str, ...]], keys: list[str]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=keys).astype("category")


def _spec(cells, control):
    return ConditionSpec.from_obs(cells, list(cells.columns), control)


def test_leave_the_target_context_out_and_balance_contexts():
    # contexts A, B, C; every group's features are constant, so each mean is known
    rows = [("A", "ctrl"), ("A", "stim"), ("B", "ctrl"), ("B", "stim"), ("C", "ctrl")]
    value = {("A", "ctrl"): 0.0, ("A", "stim"): 2.0, ("B", "ctrl"): 10.0, ("B", "stim"): 16.0,
             ("C", "ctrl"): 5.0}  # fmt: skip
    counts = {("A", "stim"): 3, ("B", "stim"): 7}  # unequal sizes must not weigh in
    cells = _cells([r for r in rows for _ in range(counts.get(r, 2))], ["type", "cond"])
    z = np.array([[value[r], -value[r]] for r in cells.astype(str).itertuples(index=False)])
    shift = AdditiveShift.fit(_spec(cells, {"cond": "ctrl"}), cells, z)
    # C is not in any delta: the mean of A's (+2) and B's (+6) responses
    np.testing.assert_allclose(shift.shift(("C",), ("stim",))[0], [4.0, -4.0])
    # A itself is left out: only B's response
    np.testing.assert_allclose(shift.shift(("A",), ("stim",))[0], [6.0, -6.0])
    np.testing.assert_allclose(shift.shift(("B",), ("ctrl",))[0], [0.0, 0.0])
    frame = _cells([("C", "stim"), ("A", "ctrl")], ["type", "cond"])
    out, missing = shift.shifts(frame)
    assert out.dtype == np.float32 and missing == [[], []]
    np.testing.assert_allclose(out, [[4.0, -4.0], [0.0, 0.0]])


def test_several_perturbation_keys_add_and_missing_keys_are_named():
    keys = ["type", "drug", "dose"]
    rows = [("A", "none", "0"), ("A", "x", "0"), ("A", "none", "1"), ("B", "none", "0"),
            ("B", "x", "0"), ("B", "none", "1"), ("B", "x", "1"), ("C", "none", "0"),
            ("C", "y", "0")]  # fmt: skip
    cells = _cells(rows, keys)
    rng = np.random.default_rng(0)
    z = rng.normal(size=(len(rows), 3))
    shift = AdditiveShift.fit(_spec(cells, {"drug": "none", "dose": "0"}), cells, z)
    mean = {r: z[i] for i, r in enumerate(rows)}
    drug = (mean[("A", "x", "0")] - mean[("A", "none", "0")]
            + mean[("B", "x", "0")] - mean[("B", "none", "0")]) / 2  # fmt: skip
    dose = (mean[("A", "none", "1")] - mean[("A", "none", "0")]
            + mean[("B", "none", "1")] - mean[("B", "none", "0")]) / 2  # fmt: skip
    # x at dose 1 was measured in B: its own shift there
    got, missing = shift.shift(("C",), ("x", "1"))
    np.testing.assert_allclose(got, mean[("B", "x", "1")] - mean[("B", "none", "0")])
    assert missing == []
    # without that measurement the per-key shifts add
    keep = [i for i, r in enumerate(rows) if r != ("B", "x", "1")]
    cells2 = cells.iloc[keep].reset_index(drop=True)
    shift2 = AdditiveShift.fit(_spec(cells2, {"drug": "none", "dose": "0"}), cells2, z[keep])
    got, missing = shift2.shift(("C",), ("x", "1"))
    np.testing.assert_allclose(got, drug + dose)
    assert missing == []
    # y only occurs in C: from C's own point of view no other context has it
    got, missing = shift.shift(("C",), ("y", "1"))
    assert missing == ["drug"]
    np.testing.assert_allclose(got, dose)


def test_round_trip_and_no_context_keys():
    cells = _cells([("ctrl",), ("ctrl",), ("stim",)], ["cond"])
    z = np.array([[0.0], [2.0], [5.0]])
    spec = ConditionSpec.from_obs(cells, ["cond"], {"cond": "ctrl"}, require_context=False)
    shift = AdditiveShift.fit(spec, cells, z)
    np.testing.assert_allclose(shift.shift((), ("stim",))[0], [4.0])  # its own context
    again = AdditiveShift.from_dict(spec, shift.to_dict())
    np.testing.assert_array_equal(again.means, shift.means)
    with pytest.raises(ValueError, match="control"):
        AdditiveShift(ConditionSpec(("cond",), None, {"cond": ("a",)}), cells, z[:1])


def test_equals_the_additive_baseline(kang_small, kang_setup):
    from sccalmflow.baselines import Additive

    held = (kang_small.obs.cell_type == "B") & (kang_small.obs.condition == "IFN-beta")
    train = kang_small[~held.to_numpy()].copy()
    method = Additive().fit(train, n_pca=10, **kang_setup)
    cells = train.obs[kang_setup["condition_keys"]]
    shift = AdditiveShift.fit(method.condition_spec, cells, method.pca.transform(train.X))
    for ct in ("B", "NK"):
        expected = method.shift({"cell_type": ct, "condition": "IFN-beta"})
        np.testing.assert_allclose(shift.shift((ct,), ("IFN-beta",))[0], expected, atol=1e-5)
