"""The sampling temperature chosen from the cells: train()'s calibration and calibrate_temperature."""

import numpy as np
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.data import PCA_KEY
from sccalmflow.metrics import mmd
from sccalmflow.model import CALIBRATION_TEMPERATURES


@pytest.fixture(scope="module")
def from_noise(kang_small_shared, tiny_config, quiet_train):
    """An unconditional flow-head model from noise, trained 3 epochs (do not modify)."""
    ad = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(ad)
    model = CaLMFlowModel(ad, source="noise", **tiny_config)
    quiet_train(model, max_epochs=3, batch_size=64)
    return model


def test_train_chooses_the_lowest_mmd(from_noise):
    rec = from_noise.temperature_calibration_
    assert rec["temperatures"] == list(CALIBRATION_TEMPERATURES)
    assert rec["reference"] == "training cells"  # from noise: no validation split
    assert rec["n_reference_cells"] == 600 and rec["n_conditions"] == 1
    assert rec["n_generated_per_condition"] == 600
    best = rec["temperatures"][int(np.argmin(rec["values"]))]
    assert from_noise.temperature == rec["chosen"] == best
    assert from_noise.training_summary["temperature"] == best
    # predict's default is the chosen τ
    a = from_noise.predict(n_cells=20, seed=3, decode=False).obsm[PCA_KEY]
    b = from_noise.predict(n_cells=20, seed=3, temperature=best, decode=False).obsm[PCA_KEY]
    np.testing.assert_array_equal(a, b)


def test_values_are_the_mmd_of_each_temperature(from_noise):
    """Each value is the MMD between predict(seed, τ) and the reference cells' PCA."""
    model = from_noise
    kept, record = model.temperature, model.temperature_calibration_
    try:
        table = model.calibrate_temperature(
            temperatures=(0.0, 2.0), max_cells=600, seed=4, progress_bar=False
        )
        real = model.get_pca()
        for t, v in zip(table["temperature"], table["value"], strict=True):
            gen = model.predict(n_cells=600, seed=4, temperature=t, decode=False).obsm[PCA_KEY]
            assert v == pytest.approx(mmd(gen.astype(np.float64), real), rel=1e-6)
        assert table["chosen"].sum() == 1
        assert model.temperature == table.loc[table["value"].idxmin(), "temperature"]
        # seeded: the same table again
        again = model.calibrate_temperature(
            temperatures=(0.0, 2.0), max_cells=600, seed=4, progress_bar=False
        )
        np.testing.assert_array_equal(table["value"], again["value"])
    finally:
        model.temperature, model.temperature_calibration_ = kept, record


def test_finds_the_temperature_of_known_cells(from_noise):
    """Reference cells generated at τ = 0 (another seed): τ = 0 is chosen over 3."""
    model = from_noise
    kept, record = model.temperature, model.temperature_calibration_
    try:
        ref = model.predict(n_cells=400, seed=11, temperature=0.0)
        table = model.calibrate_temperature(ref, temperatures=(3.0, 0.0), progress_bar=False)
        assert model.temperature == 0.0
        assert table.set_index("temperature").loc[0.0, "chosen"]
        assert model.temperature_calibration_["reference"] == "adata"
        assert record is not model.temperature_calibration_
    finally:
        model.temperature, model.temperature_calibration_ = kept, record


def test_table_property_and_plot(from_noise):
    import sccalmflow as scf

    table = from_noise.temperature_calibration
    assert list(table.columns) == ["temperature", "metric", "space", "value", "chosen"]
    assert table.loc[table["chosen"], "temperature"].item() == from_noise.temperature
    ax = scf.pl.temperature(table, show=False)
    assert ax.get_lines()[-1].get_label() == f"chosen τ = {from_noise.temperature:g}"


def test_saved_and_loaded(from_noise, tmp_path):
    from_noise.save(tmp_path / "m")
    loaded = CaLMFlowModel.load(tmp_path / "m", from_noise.adata)
    assert loaded.temperature == from_noise.temperature
    assert loaded.temperature_calibration_ == from_noise.temperature_calibration_


def test_a_given_temperature_is_kept(synthetic, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(synthetic, condition_keys=["cell_type", "condition"])
    model = CaLMFlowModel(synthetic, source="noise", temperature=0.7, **tiny)
    quiet_train(model, max_epochs=1)
    assert model.temperature == 0.7
    assert getattr(model, "temperature_calibration_", None) is None
    with pytest.raises(RuntimeError, match="not calibrated"):
        _ = model.temperature_calibration


def test_validation_cells_from_noise(synthetic, tiny, quiet_train):
    """With a validation split the reference is the validation cells of every condition."""
    CaLMFlowModel.setup_anndata(synthetic, condition_keys=["cell_type", "condition"])
    model = CaLMFlowModel(synthetic, source="noise", **tiny)
    quiet_train(model, max_epochs=1, validation_size=0.2)
    rec = model.temperature_calibration_
    assert rec["reference"] == "validation cells"
    assert rec["n_conditions"] == 6  # from noise the control cells are a condition like any
    assert abs(rec["n_reference_cells"] - round(0.2 * synthetic.n_obs)) <= 6
    assert model.temperature == rec["chosen"]


def test_too_few_validation_cells_fall_back_to_training_cells(synthetic, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(synthetic, condition_keys=["cell_type", "condition"])
    model = CaLMFlowModel(synthetic, source="noise", **tiny)
    quiet_train(model, max_epochs=1, validation_size=0.02)  # one validation cell per condition
    rec = model.temperature_calibration_
    assert rec["reference"] == "training cells"
    assert rec["n_reference_cells"] == synthetic.n_obs - 6


def test_from_cells_train_calibrates_on_the_perturbed_validation_cells(
    synthetic, tiny, quiet_train
):
    """From cells train() chooses τ too, on the validation cells of the generated conditions."""
    CaLMFlowModel.setup_anndata(
        synthetic, condition_keys=["cell_type", "condition"], control={"condition": "control"}
    )
    model = CaLMFlowModel(synthetic, source="control", head="gmm", **tiny)
    quiet_train(model, max_epochs=1, validation_size=0.2)
    rec = model.temperature_calibration_
    assert rec["reference"] == "validation cells" and rec["metric"] == "mmd"
    assert rec["n_conditions"] == 3  # 3 cell types x "drug"; control cells are sources
    drug = (synthetic.obs["condition"] == "drug").to_numpy()
    assert rec["n_reference_cells"] == drug[model.validation_indices].sum()
    # as many generated cells per condition as the largest reference set, not max_cells' share
    val = synthetic.obs.iloc[model.validation_indices]
    largest = val[val["condition"] == "drug"].groupby("cell_type", observed=True).size().max()
    assert rec["n_generated_per_condition"] == largest
    best = rec["temperatures"][int(np.argmin(rec["values"]))]
    assert model.temperature == best and model.training_summary["temperature"] == best
    # asked again on the registered cells: the reference is every perturbed cell
    table = model.calibrate_temperature(temperatures=(0.5, 1.0), progress_bar=False)
    rec = model.temperature_calibration_
    assert rec["reference"] == "registered cells"
    assert rec["n_conditions"] == 3 and rec["n_reference_cells"] == drug.sum()
    assert model.temperature == table.loc[table["value"].idxmin(), "temperature"]


def test_no_reference_for_the_calibration_warns_and_keeps_one(synthetic, tiny, quiet_train):
    """When no generated condition has 2 cells to compare with, τ stays 1 with a warning."""
    CaLMFlowModel.setup_anndata(
        synthetic, condition_keys=["cell_type", "condition"], control={"condition": "control"}
    )
    model = CaLMFlowModel(synthetic, source="control", head="flow", **tiny)
    quiet_train(model, max_epochs=1)
    model.temperature, model.temperature_calibration_ = 1.0, None
    control = np.flatnonzero((synthetic.obs["condition"] == "control").to_numpy())
    one_drug = np.flatnonzero((synthetic.obs["condition"] == "drug").to_numpy())[:1]
    # control cells are sources, and one perturbed cell cannot be compared with
    with pytest.warns(UserWarning, match="stays 1"):
        model._calibrate_after_training(control, one_drug, show=False)
    assert model.temperature == 1.0 and model.temperature_calibration_ is None


def test_deterministic_head_is_not_calibrated(synthetic, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(
        synthetic, condition_keys=["cell_type", "condition"], control={"condition": "control"}
    )
    model = CaLMFlowModel(synthetic, source="control", head="deterministic", **tiny)
    quiet_train(model, max_epochs=1)
    assert model.temperature == 1.0
    assert getattr(model, "temperature_calibration_", None) is None
    with pytest.raises(ValueError, match="deterministic head ignores the temperature"):
        model.calibrate_temperature()


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"temperatures": []}, ValueError, "`temperatures` must be a non-empty sequence"),
        ({"temperatures": [1.0, -0.5]}, ValueError, r"`temperatures\[1\]` must be at least 0"),
        ({"temperatures": [1.0, float("nan")]}, ValueError, r"`temperatures\[1\]` must be finite"),
        ({"temperatures": ["hot"]}, TypeError, r"`temperatures\[0\]` must be a number"),
        ({"temperatures": "0.5"}, TypeError, "`temperatures` must be a sequence of numbers"),
        ({"temperatures": 0.5}, TypeError, r"for one value pass \[0.5\]"),
        ({"temperatures": [True, 1.0]}, TypeError, r"`temperatures\[0\]` must be a number"),
        ({"temperatures": [0.5, 1, 0.5]}, ValueError, r"must not repeat a value; \[0.5\]"),
        ({"temperatures": np.ones((2, 2))}, ValueError, "must be 1-dimensional"),
        ({"metric": "w2"}, ValueError, "metric"),
        ({"max_cells": 1}, ValueError, "max_cells"),
        ({"seed": -1}, ValueError, "seed"),
        ({"progress_bar": "yes"}, TypeError, "progress_bar"),
    ],
)
def test_bad_arguments(from_noise, kwargs, error, match):
    kept = from_noise.temperature
    with pytest.raises(error, match=match):
        from_noise.calibrate_temperature(**kwargs)
    assert from_noise.temperature == kept


def test_bad_reference(from_noise, synthetic):
    with pytest.raises(TypeError, match="must be an AnnData"):
        from_noise.calibrate_temperature(synthetic.X)
    one = from_noise.adata[:1].copy()
    with pytest.raises(ValueError, match="2 or more reference cells"):
        from_noise.calibrate_temperature(one, progress_bar=False)


def test_bad_reference_keys(synthetic, tiny, quiet_train):
    CaLMFlowModel.setup_anndata(
        synthetic, condition_keys=["cell_type", "condition"], control={"condition": "control"}
    )
    model = CaLMFlowModel(synthetic, source="control", head="flow", temperature=1.0, **tiny)
    quiet_train(model, max_epochs=1)
    ref = synthetic.copy()
    del ref.obs["cell_type"]
    with pytest.raises(KeyError, match="cell_type"):
        model.calibrate_temperature(ref)


def test_many_conditions_keep_the_largest(synthetic, tiny, quiet_train):
    """max_cells // 20 conditions at most, the largest, and at most max_cells reference cells."""
    CaLMFlowModel.setup_anndata(synthetic, condition_keys=["cell_type", "condition"])
    model = CaLMFlowModel(synthetic, source="noise", temperature=1.0, **tiny)
    quiet_train(model, max_epochs=1)
    model.calibrate_temperature(temperatures=(0.5, 1.0), max_cells=40, progress_bar=False)
    rec = model.temperature_calibration_
    assert rec["n_conditions"] == 2
    sizes = synthetic.obs.groupby(["cell_type", "condition"], observed=True).size()
    a, b = sizes.nlargest(2)  # the two largest conditions share the 40 cells
    assert rec["n_reference_cells"] == int(40 * a / (a + b) + 1e-9) + int(40 * b / (a + b) + 1e-9)
