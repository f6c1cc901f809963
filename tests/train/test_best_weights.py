"""BestWeights restores the weights validated at the best epoch; default_max_epochs follows the data size."""

from __future__ import annotations

import types

import pytest
import torch

from sccalmflow.train import BestWeights, default_max_epochs


def _fake(module: torch.nn.Module):
    trainer = types.SimpleNamespace(sanity_checking=False, callback_metrics={}, current_epoch=0)
    return trainer, types.SimpleNamespace(module=module)


def test_restores_the_weights_of_the_lowest_validation_loss():
    module = torch.nn.Linear(3, 2)
    trainer, plan = _fake(module)
    cb = BestWeights("loss_validation")
    kept = None
    for epoch, loss in enumerate([3.0, 1.0, 2.0, float("nan"), 1.5]):
        with torch.no_grad():
            module.weight.fill_(float(epoch))
        trainer.current_epoch = epoch
        cb.on_validation_epoch_start(trainer, plan)  # the weights validated are copied
        trainer.callback_metrics = {"loss_validation": torch.tensor(loss)}
        if epoch == 1:
            kept = module.weight.detach().clone()
        with torch.no_grad():  # a weight-averaging callback swaps the raw weights back
            module.weight.fill_(-1.0)
        cb.on_validation_end(trainer, plan)
    assert cb.best_epoch == 1 and cb.best_score == pytest.approx(1.0)
    cb.on_train_end(trainer, plan)
    torch.testing.assert_close(module.weight, kept)


def test_ignores_sanity_checks_and_missing_metrics():
    module = torch.nn.Linear(2, 2)
    trainer, plan = _fake(module)
    cb = BestWeights("loss_validation")
    trainer.sanity_checking = True
    trainer.callback_metrics = {"loss_validation": torch.tensor(0.0)}
    cb.on_validation_epoch_start(trainer, plan)
    cb.on_validation_end(trainer, plan)
    trainer.sanity_checking, trainer.callback_metrics = False, {}
    cb.on_validation_end(trainer, plan)
    before = module.weight.detach().clone()
    cb.on_train_end(trainer, plan)  # nothing kept: nothing restored
    assert cb.best_epoch is None
    torch.testing.assert_close(module.weight, before)


@pytest.mark.parametrize(
    ("n_sequences", "steps_per_epoch", "expected"),
    [
        (3000, 24, 84),  # the reference: 2,000 steps
        (750, 6, 167),  # a quarter of the data: half the steps (1,000)
        (100, 1, 400),  # tiny: 500 steps, but at most 400 epochs
        (1_000_000, 7813, 3),  # a million cells: 20,000 steps, about 3 epochs
    ],
)
def test_default_budget_grows_with_the_square_root_of_the_data(
    n_sequences, steps_per_epoch, expected
):
    assert default_max_epochs(n_sequences, steps_per_epoch) == expected


def test_default_budget_scale():
    """``scale`` multiplies the steps (from noise ``train()`` uses 2); it must be > 0."""
    assert default_max_epochs(3000, 24, scale=2.0) == 167  # 4,000 steps
    assert default_max_epochs(3000, 24, scale=0.1) == 21  # 200 steps, raised to 500
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="scale"):
            default_max_epochs(3000, 24, scale=bad)
    with pytest.raises(TypeError, match="`scale` must be a number"):
        default_max_epochs(3000, 24, scale="2")
    with pytest.raises(TypeError, match="`n_sequences` must be an integer"):
        default_max_epochs(3000.0, 24)
    with pytest.raises(ValueError, match="`steps_per_epoch` must be at least 1"):
        default_max_epochs(3000, 0)
