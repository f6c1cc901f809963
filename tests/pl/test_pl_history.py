"""pl.history: one panel per loss, train and validation curves, empty panels left out."""

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import sccalmflow as scf


@pytest.fixture
def model():
    """A stand-in with scvi-tools' history: one-column DataFrames indexed by epoch."""
    epochs = pd.Index(np.arange(4), name="epoch")

    def frame(key, values):
        return pd.DataFrame({key: values}, index=epochs)

    history = {
        "train_loss": frame("train_loss", [4.0, 3.0, 2.5, 2.2]),
        "validation_loss": frame("validation_loss", [4.2, 3.3, 2.9, 2.7]),
        "reconstruction_loss_train": frame("reconstruction_loss_train", [3.0, 2.2, 1.8, 1.6]),
        "reconstruction_loss_validation": frame(
            "reconstruction_loss_validation", [3.1, 2.4, 2.1, 2.0]
        ),
        "kl_local_train": frame("kl_local_train", [1.0, 0.8, 0.7, 0.6]),
        "kl_local_validation": frame("kl_local_validation", [1.1, 0.9, 0.8, 0.7]),
    }
    return SimpleNamespace(history=history)


def test_history(model, tmp_path):
    m = model
    axes = scf.pl.history(m, show=False, save=tmp_path / "h.pdf")
    assert (tmp_path / "h.pdf").exists()
    assert [a.get_title() for a in axes] == ["total loss", "reconstruction loss", "KL divergence"]
    rec = axes[1].get_lines()
    assert [ln.get_label() for ln in rec] == ["train", "validation"]
    np.testing.assert_allclose(
        rec[0].get_ydata(), m.history["reconstruction_loss_train"].iloc[:, 0].to_numpy(float)
    )
    assert all(a.get_xlabel() == "epoch" for a in axes)
    ax = scf.pl.history(m.history, panels=["kl"], show=False)  # a history dict, one panel
    assert ax.get_title() == "KL divergence"
    # the deterministic head logs KL = 0: that panel is left out
    zero_kl = {k: (v * 0 if k.startswith("kl_local") else v) for k, v in m.history.items()}
    axes = scf.pl.history(zero_kl, show=False)
    assert [a.get_title() for a in axes] == ["total loss", "reconstruction loss"]
    with pytest.raises(ValueError, match="Unknown panel"):
        scf.pl.history(m, panels=["accuracy"])
    with pytest.raises(ValueError, match="No training history"):
        scf.pl.history({})
    with pytest.raises(ValueError, match="non-zero"):
        scf.pl.history(zero_kl, panels=["kl"])


def test_history_logy_and_missing_validation(model):
    train_only = {k: v for k, v in model.history.items() if "valid" not in k}
    axes = scf.pl.history(train_only, logy=True, show=False)
    assert all(a.get_yscale() == "log" for a in axes)
    assert all([ln.get_label() for ln in a.get_lines()] == ["train"] for a in axes)


def test_history_deterministic_head_one_panel(model):
    """Total = reconstruction (KL logged as 0): one panel, not two identical ones."""
    det = {k: v for k, v in model.history.items() if not k.startswith("kl_local")}
    det["reconstruction_loss_train"] = det["train_loss"].rename(
        columns={"train_loss": "reconstruction_loss_train"}
    )
    det["reconstruction_loss_validation"] = det["validation_loss"].rename(
        columns={"validation_loss": "reconstruction_loss_validation"}
    )
    det["kl_local_train"] = model.history["kl_local_train"] * 0
    ax = scf.pl.history(det, show=False)  # one panel: a single Axes
    assert "total = reconstruction loss" in ax.get_title()
    assert "no KL" in ax.get_title()
    assert [ln.get_label() for ln in ax.get_lines()] == ["train", "validation"]
    # different curves still get their own panels
    axes = scf.pl.history(model, panels=["loss", "reconstruction"], show=False)
    assert len(axes) == 2
