"""Fixtures of the tl tests: one tiny trained model (flow head, so τ matters)."""

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import pytest

KEYS = ["cell_type", "condition"]
CONTROL = {"condition": "control"}
HELD = ("CD14 Mono", "IFN-beta")


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture(scope="session")
def trained(kang_small_shared, tiny_config, quiet_train):
    """``(model, cells)``: a tiny variational model trained 2 epochs on the small Kang cells
    without the held-out CD14 Mono · IFN-beta cells, and all the cells (with ``X_calmflow_pca`` in
    the model's space). Do not modify either."""
    from sccalmflow import CaLMFlowModel

    adata = kang_small_shared.copy()
    held = ((adata.obs.cell_type == HELD[0]) & (adata.obs.condition == HELD[1])).to_numpy()
    train = adata[~held].copy()
    CaLMFlowModel.setup_anndata(train, condition_keys=KEYS, control=CONTROL)
    model = CaLMFlowModel(train, **{**tiny_config, "head": "flow"})
    quiet_train(model, max_epochs=2, batch_size=64)
    model.add_pca(adata)
    return model, adata
