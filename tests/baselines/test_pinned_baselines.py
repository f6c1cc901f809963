"""Baseline predictions pinned before the "One house" restructure of ``sccalmflow.baselines``.

``pinned_baselines.npz`` was written by this file's ``__main__`` with the code as it was
before the restructure (``PYTHONPATH=<pre-restructure checkout>/src python
tests/baselines/test_pinned_baselines.py``), on the ``synthetic`` fixture's data. A change
that moves code without meaning to change behaviour must keep these predictions. Regenerate
only when a change is meant to alter predictions, and say so in CHANGELOG.md.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

HERE = Path(__file__).parent
STORED = HERE / "pinned_baselines.npz"
KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}
CONDITIONS = {"cell_type": ["C", "A", "B"], "condition": ["drug", "control", "drug"]}
#: name -> (method factory name, fit keywords, held-out (cell type, condition) or None)
CASES = {
    "Control": ("Control", {}, None),
    "Additive": ("Additive", {}, None),
    "Additive_heldout_component_layer": (
        "Additive",
        {"pca_scaling": "component", "layer": "half"},
        ("C", "drug"),
    ),
    "TrainMean_heldout": ("TrainMean", {}, ("C", "drug")),
    "CFM": ("CFM", {"seed": 3}, None),
    # keys in another order, two perturbation keys (time is "6h" for every third cell)
    "Additive_two_keys": ("Additive", {}, "time"),
    "TrainMean_two_keys": ("TrainMean", {}, "time"),
    # only a perturbation key: one context (all cells)
    "Additive_no_context": ("Additive", {}, "no context"),
    "Control_no_context": ("Control", {}, "no context"),
}
TIME_KEYS = ["time", "cell_type", "condition"]
TIME_CONTROL = {"condition": "control", "time": "0h"}
TIME_CONDITIONS = {
    "time": ["6h", "0h", "6h"],
    "cell_type": ["C", "A", "B"],
    "condition": ["drug", "drug", "control"],
}


def _method(name: str):
    from sccalmflow import baselines

    if name == "CFM":
        return baselines.CFM("otcfm", width=16, depth=2, n_steps=12, batch_size=32, lr=3e-3)
    return getattr(baselines, name)()


def pinned_predictions(case: str, adata) -> dict[str, np.ndarray]:
    """Fit the case's baseline on ``adata`` (one torch thread) and predict 3 conditions."""
    import torch

    name, fit_kwargs, held_out = CASES[case]
    adata = adata.copy()
    adata.layers["half"] = adata.X * 0.5
    keys, control, conditions = KEYS, CONTROL, CONDITIONS
    if held_out == "time":
        adata.obs["time"] = np.where(np.arange(adata.n_obs) % 3 == 0, "6h", "0h")
        keys, control, conditions = TIME_KEYS, TIME_CONTROL, TIME_CONDITIONS
    elif held_out == "no context":
        keys, conditions = ["condition"], {"condition": ["drug", "control", "drug"]}
    elif held_out is not None:
        ct, cond = held_out
        adata = adata[
            ~((adata.obs["cell_type"] == ct) & (adata.obs["condition"] == cond)).to_numpy()
        ].copy()
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        method = _method(name).fit(
            adata, condition_keys=keys, control=control, n_pca=6, **fit_kwargs
        )
        pred = method.predict(conditions, n_cells=[9, 5, 4], seed=2)
    finally:
        torch.set_num_threads(n)
    out = {
        "X": np.asarray(pred.X),
        "X_pca": np.asarray(pred.obsm["X_calmflow_pca"]),
        "obs": pred.obs[keys].astype(str).agg("/".join, axis=1).to_numpy().astype(str),
    }
    if name != "CFM":
        shift = {k: conditions[k][0] for k in keys}
        out["shift"] = np.stack([method.shift({**shift, "cell_type": ct}) for ct in ("A", "B")])
    return out


@pytest.mark.parametrize("case", sorted(CASES))
def test_predictions_match_pinned_values(case, synthetic):
    stored = np.load(STORED)
    got = pinned_predictions(case, synthetic)
    assert sorted(k for k in stored.files if k.startswith(f"{case}/")) == sorted(
        f"{case}/{k}" for k in got
    )
    for key, value in got.items():
        if value.dtype.kind in "US":
            np.testing.assert_array_equal(value, stored[f"{case}/{key}"])
        else:
            # float32 PCA and BLAS differ by ~1e-5 between numpy / scikit-learn / torch
            # releases (measured: at most 2.6e-5 after an upgrade); a moved-code bug is larger
            np.testing.assert_allclose(value, stored[f"{case}/{key}"], rtol=1e-4, atol=1e-4)


if __name__ == "__main__":
    import runpy

    # the synthetic fixture's data (tests never import conftest; the generator reads it)
    data = runpy.run_path(str(HERE.parent / "conftest.py"))["make_synthetic"]()
    out = {}
    for case in CASES:
        for key, value in pinned_predictions(case, data).items():
            out[f"{case}/{key}"] = value
    np.savez_compressed(STORED, **out)
    print({k: v.shape for k, v in out.items()})
