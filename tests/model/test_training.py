"""train(): the default budget, early stopping with the best weights, the additive source."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from sccalmflow import CaLMFlowModel
from sccalmflow.baselines import Additive
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
B_STIM = {"cell_type": ["B"], "condition": ["IFN-beta"]}


def _held_out(ad, cell_type="B"):
    mask = (ad.obs["cell_type"] == cell_type) & (ad.obs["condition"] == "IFN-beta")
    train = ad[~mask.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(train, **KEYS)
    return train


def test_train_reports_and_restores_the_best_epoch(kang_small, tiny, quiet_train, capsys):
    model = CaLMFlowModel(_held_out(kang_small), **tiny)
    quiet_train(model, max_epochs=8, lr=3e-2, early_stopping_patience=2)
    summary = model.training_summary
    # the best epoch is the one of the lowest validation error of the head's mean
    val = model.history["mean_error_validation"].to_numpy().ravel()
    assert summary["early_stopping"] and summary["max_epochs"] == 8
    assert summary["epochs"] == len(val) <= 8
    assert summary["best_epoch"] == int(np.nanargmin(val))
    assert summary["best_validation_loss"] == pytest.approx(float(np.nanmin(val)), rel=1e-5)
    # the split is kept as scvi-tools keeps it: disjoint positions covering every cell, about
    # 10 % of each condition's cells in validation
    train, val_idx = model.train_indices, model.validation_indices
    assert not set(train) & set(val_idx)
    assert sorted([*train, *val_idx]) == list(range(model.adata.n_obs))
    groups = model.adata.obs.groupby(list(model.condition_keys), observed=True).indices
    for rows in groups.values():
        assert np.isin(rows, val_idx).sum() == min(round(0.1 * len(rows)), len(rows) - 1)
    repr(model)  # scvi-tools prints the summary
    printed = " ".join(capsys.readouterr().out.split())  # rich wraps lines
    assert f"weights of epoch {summary['best_epoch'] + 1}" in printed
    off = CaLMFlowModel(_held_out(kang_small), **tiny)
    quiet_train(off, max_epochs=2, validation_size=0)
    assert off.training_summary["best_epoch"] is None
    assert not off.training_summary["early_stopping"]
    with pytest.raises(RuntimeError, match="not trained"):
        _ = CaLMFlowModel(_held_out(kang_small), **tiny).training_summary


@pytest.mark.parametrize("head", ["deterministic", "gmm"])
def test_every_head_is_selected_by_the_error_of_its_mean(kang_small, tiny, quiet_train, head):
    """Early stopping and the best epoch read ``mean_error_validation``: the reconstruction
    itself for the deterministic head; only the mean's squared error for a head whose loss
    also scores a distribution (a mixture's likelihood can over-fit while the mean improves)."""
    model = CaLMFlowModel(_held_out(kang_small), **{**tiny, "head": head})
    quiet_train(model, max_epochs=4)
    hist = model.history
    mean_err = hist["mean_error_validation"].to_numpy().ravel()
    rec = hist["reconstruction_loss_validation"].to_numpy().ravel()
    assert len(mean_err) == 4 and np.all(np.isfinite(mean_err))
    summary = model.training_summary
    assert summary["best_epoch"] == int(np.nanargmin(mean_err))
    assert summary["best_validation_loss"] == pytest.approx(float(np.nanmin(mean_err)), rel=1e-5)
    if head == "deterministic":
        np.testing.assert_allclose(mean_err, rec, rtol=1e-5)
    else:  # the mixture's negative log-likelihood is part of the loss, not of the monitor
        assert not np.allclose(mean_err, rec, rtol=1e-3)
    assert "mean_error_train" in hist


def test_additive_source_starts_from_the_additive_prediction(kang_small, tiny, quiet_train):
    train = _held_out(kang_small)
    model = CaLMFlowModel(train, **{**tiny, "source": "additive"})
    # the same features: the model cross-fits its cells (pca_folds=5), so the baseline too
    baseline = Additive().fit(train, n_pca=tiny["n_pca"], pca_folds=model.pca_folds, **KEYS)
    expected = baseline.shift({"cell_type": "B", "condition": "IFN-beta"})
    got, missing = model.additive_shift.shift(("B",), ("IFN-beta",))
    assert missing == []
    np.testing.assert_allclose(got, expected, atol=1e-4)
    # training sources: control cells of the context plus the group's shift
    dm = model._data_module(batch_size=512, validation_size=0.0, ot_batch_size=1024)
    frame = dm_group_frame(model)
    nk = frame.index[(frame.cell_type == "NK") & (frame.condition == "IFN-beta")][0]
    x0 = np.concatenate(
        [b["x0"][b["prompt"].eq(_ids(dm, nk)).all(1)].numpy() for b in dm.batches(dm.train_idx, 0)]
    ).reshape(-1, model.module.n_features)
    pool = dm.source_pools[nk]
    shift_nk = model.additive_shift.shift(("NK",), ("IFN-beta",))[0]
    assert len(x0) > 0
    gaps = np.linalg.norm((x0 - shift_nk)[:, None] - dm.features[pool][None], axis=-1).min(1)
    assert gaps.max() < 1e-4  # every source is a control cell of NK moved by NK's shift
    # an untrained model's velocity is not zero, but the sources are what arithmetic predicts
    quiet_train(model, max_epochs=1)
    pred = model.predict(B_STIM, n_cells=20, seed=0)
    assert "source_cell" in pred.obs


def dm_group_frame(model):
    cells = model._cell_conditions()
    return model.conditions.groups(cells)[1].astype(str)


def _ids(dm, group):
    import torch

    return torch.from_numpy(dm.prompt[group])


def test_additive_shift_is_saved_with_the_model(kang_small, tiny, quiet_train, tmp_path):
    train = _held_out(kang_small)
    model = CaLMFlowModel(train, **{**tiny, "source": "additive"})
    quiet_train(model, max_epochs=1)
    model.save(tmp_path / "m")
    # load on other cells: the shift stays the one estimated from the training cells
    other = train[train.obs.cell_type != "NK"].copy()
    loaded = CaLMFlowModel.load(tmp_path / "m", adata=other)
    np.testing.assert_array_equal(loaded.additive_shift.means, model.additive_shift.means)
    np.testing.assert_allclose(
        loaded.predict(B_STIM, n_cells=5, seed=1).X, model.predict(B_STIM, n_cells=5, seed=1).X
    )
    assert loaded.training_summary == model.training_summary


def test_additive_source_warns_when_a_shift_cannot_be_estimated(kang_small, tiny, quiet_train):
    ad = kang_small.copy()
    ad.obs["condition"] = ad.obs["condition"].astype(str)
    only_b = (ad.obs.cell_type == "B") & (ad.obs.condition == "IFN-beta")
    ad.obs.loc[only_b.to_numpy(), "condition"] = "IFN-gamma"  # a perturbation of B alone
    CaLMFlowModel.setup_anndata(ad, **KEYS)
    model = CaLMFlowModel(ad, **{**tiny, "source": "additive"})
    with pytest.warns(UserWarning, match=r"additive shift cannot be estimated.*IFN-gamma"):
        quiet_train(model, max_epochs=1)
    with pytest.warns(UserWarning, match="start at the control cells"):
        model.predict({"cell_type": ["B"], "condition": ["IFN-gamma"]}, n_cells=3)


def test_bf16_mixed_precision_trains_under_autocast(kang_small, tiny, quiet_train):
    model = CaLMFlowModel(_held_out(kang_small), **tiny)
    linear = next(m for m in model.module.modules() if isinstance(m, torch.nn.Linear))
    seen = set()
    handle = linear.register_forward_hook(lambda m, i, out: seen.add(out.dtype))
    quiet_train(model, max_epochs=2, precision="bf16-mixed")
    handle.remove()
    assert torch.bfloat16 in seen  # the layers ran in bfloat16
    assert model.training_summary["precision"] == "bf16-mixed"
    assert all(p.dtype == torch.float32 for p in model.module.parameters())
    loss = model.history["reconstruction_loss_train"].to_numpy().ravel()
    assert np.isfinite(loss).all() and loss[-1] < loss[0]
    pred = model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=10)
    assert pred.X.dtype == np.float32 and np.isfinite(pred.X).all()


def _flat(model):
    return torch.cat([p.detach().ravel() for p in model.module.parameters()])


def test_ema_decay_ends_with_the_average_of_the_weights(kang_small, tiny, quiet_train, capsys):
    """``train(ema_decay=...)`` is Lightning's weight averaging as a bias-corrected EMA: decay
    0 averages nothing (the plain run's weights), 0.995 is the default, and the model ends
    with ``m_1 = w_1, m_t = m_{t-1} + (w_t - m_{t-1}) (1 - d) / (1 - d^t)`` over the weights
    ``w_t`` after each step, computed here by hand: a short run is not pulled back towards
    its first weights (a plain EMA keeps ``d^t`` of them)."""
    import lightning.pytorch as pl

    class Steps(pl.Callback):  # the raw weights after every optimiser step
        def __init__(self):
            self.seen = []

        def on_train_batch_end(self, trainer, pl_module, *args):
            self.seen.append(_flat(pl_module))

    def weights(**kwargs):
        model = CaLMFlowModel(_held_out(kang_small), **{**tiny, "head": "flow"})
        quiet_train(model, max_epochs=2, validation_size=0, **kwargs)
        return model, _flat(model)

    plain_model, plain = weights(ema_decay=None)
    _, none = weights(ema_decay=0.0)
    spy = Steps()
    model, ema = weights(ema_decay=0.9, callbacks=[spy])
    default_model, _ = weights()
    torch.testing.assert_close(none, plain)
    # the buffers (the PCA) are not averaged: predictions stay in the model's PCA space
    assert model.features_.fingerprint() == plain_model.features_.fingerprint()
    assert not torch.allclose(ema, plain)
    by_hand = spy.seen[0].clone()
    for t, w in enumerate(spy.seen[1:], start=2):
        by_hand += (w - by_hand) * (1 - 0.9) / (1 - 0.9**t)
    torch.testing.assert_close(ema, by_hand)
    torch.testing.assert_close(spy.seen[-1], plain)  # the spy saw the same run
    assert model.training_summary["ema_decay"] == 0.9
    assert default_model.training_summary["ema_decay"] == 0.995
    assert plain_model.training_summary["ema_decay"] is None
    repr(model)  # scvi-tools prints the summary
    assert "EMA of the weights (decay 0.9)" in " ".join(capsys.readouterr().out.split())
    pred = model.predict(B_STIM, n_cells=10, seed=0)
    assert np.isfinite(pred.X).all()


def test_ema_with_restore_best_keeps_the_validated_average(kang_small, tiny, quiet_train):
    """With a validation split, the average is what is validated, and the model ends with
    the average of the best validation epoch (not the raw weights of that epoch)."""
    import lightning.pytorch as pl

    class Validated(pl.Callback):  # the weights each validation epoch actually evaluates
        def __init__(self):
            self.seen = []

        def on_validation_batch_start(self, trainer, pl_module, batch, batch_idx, *args):
            if batch_idx == 0 and not trainer.sanity_checking:
                self.seen.append(_flat(pl_module))

    spy = Validated()
    model = CaLMFlowModel(_held_out(kang_small), **tiny)
    quiet_train(model, max_epochs=5, lr=3e-2, ema_decay=0.8, callbacks=[spy])
    best = model.training_summary["best_epoch"]
    assert best is not None and len(spy.seen) == model.training_summary["epochs"]
    torch.testing.assert_close(_flat(model), spy.seen[best])
    # the best epoch is the one of the lowest validation error of the head's mean
    val = model.history["mean_error_validation"].to_numpy().ravel()
    assert best == int(np.nanargmin(val))


def test_ema_decay_bad_values_and_two_averages_are_refused(kang_small, tiny):
    from lightning.pytorch.callbacks import EMAWeightAveraging

    model = CaLMFlowModel(_held_out(kang_small), **tiny)
    for bad in (1.0, -0.1, 1.5):
        with pytest.raises(ValueError, match="ema_decay"):
            model.train(max_epochs=1, ema_decay=bad)
    with pytest.raises(ValueError, match="weight-averaging callback"):
        model.train(max_epochs=1, callbacks=[EMAWeightAveraging(decay=0.9)])


def test_from_noise_default_budget_is_twice_the_one_from_cells(kang_small, tiny, quiet_train):
    """From noise the default step budget is ``SOURCE_DEFAULTS["noise"].step_scale`` (2) times
    the one from cells (``training_summary["max_epochs"]``); a given ``max_epochs`` is used as
    given."""
    from lightning.pytorch.callbacks import Callback

    from sccalmflow.model import SOURCE_DEFAULTS
    from sccalmflow.train import default_max_epochs

    class StopAfterOneEpoch(Callback):
        def on_train_epoch_end(self, trainer, pl_module):
            trainer.should_stop = True

    assert SOURCE_DEFAULTS["noise"].step_scale == 2.0
    assert SOURCE_DEFAULTS["additive"].step_scale == SOURCE_DEFAULTS["control"].step_scale == 1.0
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    budgets = {}
    for source in ("noise", "additive"):
        data = kang_small if source == "noise" else _held_out(kang_small)
        batch = math.ceil(data.n_obs / 4)  # 4 steps per epoch: the budgets stay below 400
        model = CaLMFlowModel(data, source=source, **tiny)
        quiet_train(model, batch_size=batch, validation_size=0, callbacks=[StopAfterOneEpoch()])
        budgets[source] = model.training_summary["max_epochs"]
        scale = SOURCE_DEFAULTS[source].step_scale
        assert budgets[source] == default_max_epochs(data.n_obs, 4, scale)
    assert budgets["noise"] > 1.5 * budgets["additive"]
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)  # the held-out copy took its registration
    given = CaLMFlowModel(kang_small, source="noise", **tiny)
    quiet_train(given, max_epochs=1)
    assert given.training_summary["max_epochs"] == 1


def test_from_noise_train_uses_every_cell_without_early_stopping(kang_small, tiny, quiet_train):
    """From noise ``validation_size`` defaults to 0 (the whole budget, every cell); from cells
    to 0.1 (early stopping and the best epoch); given, it is used as given."""
    CaLMFlowModel.setup_anndata(kang_small, **KEYS)
    noise = CaLMFlowModel(kang_small, source="noise", **tiny)
    quiet_train(noise, max_epochs=2)
    summary = noise.training_summary
    assert not summary["early_stopping"] and summary["best_epoch"] is None
    assert summary["epochs"] == 2
    assert not any(k.endswith("_validation") for k in noise.history)
    split = CaLMFlowModel(kang_small, source="noise", **tiny)
    quiet_train(split, max_epochs=2, validation_size=0.2)
    assert split.training_summary["early_stopping"]
    assert any(k.endswith("_validation") for k in split.history)
    cells = CaLMFlowModel(_held_out(kang_small), **tiny)
    quiet_train(cells, max_epochs=2)
    assert cells.training_summary["early_stopping"]
