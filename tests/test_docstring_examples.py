"""Every ``Examples`` section of the package's docstrings runs.

The examples are collected with :mod:`doctest` from every module of the package and
executed, one docstring at a time, in a namespace with the names they use (a small trained
model, real Kang cells, a prediction ...). An example that shows an output is compared with
it; the others only have to run.
"""

from __future__ import annotations

import doctest
import importlib
import pkgutil

import matplotlib
import numpy as np
import pandas as pd
import pytest

import sccalmflow

matplotlib.use("Agg")


def _examples() -> list[doctest.DocTest]:
    finder = doctest.DocTestFinder(exclude_empty=True)
    tests, seen = [], set()
    for info in pkgutil.walk_packages(sccalmflow.__path__, "sccalmflow."):
        module = importlib.import_module(info.name)
        for test in finder.find(module):
            if test.examples and test.name.split(".")[-1] not in seen | {"__init__"}:
                key = (test.filename, test.lineno)
                if key not in seen:
                    seen.add(key)
                    tests.append(test)
    return sorted(tests, key=lambda t: t.name)


EXAMPLES = _examples()


@pytest.fixture(scope="module")
def namespace(kang_small_shared, kang_setup, tiny_config):
    """The names the examples use."""
    import mudata as md

    import sccalmflow as scf
    from sccalmflow import CaLMFlowModel
    from sccalmflow.baselines import Control
    from sccalmflow.data import ConditionSpec
    from sccalmflow.metrics import evaluate

    real = kang_small_shared.copy()
    held = ((real.obs.cell_type == "CD14 Mono") & (real.obs.condition == "IFN-beta")).to_numpy()
    adata = real[~held].copy()
    CaLMFlowModel.setup_anndata(adata, **kang_setup)
    model = CaLMFlowModel(adata, **tiny_config, head="flow")
    model.train(max_epochs=2, batch_size=64, enable_progress_bar=False, accelerator="cpu")
    held_out = {"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}
    pred = model.predict(held_out, n_cells=100)
    mono = (real.obs.cell_type == "CD14 Mono").to_numpy()
    control = Control().fit(adata, **kang_setup).predict(held_out, n_cells=100)
    model.add_pca(control)  # compared in the model's PCA, like the tutorial does
    model.add_pca(real)
    return {
        "sccalmflow": scf,
        "scf": scf,
        "pd": pd,
        "np": np,
        "CaLMFlowModel": CaLMFlowModel,
        "Control": Control,
        "ConditionSpec": ConditionSpec,
        "evaluate": evaluate,
        "adata": adata,
        "real": real,
        "model": model,
        "pred": pred,
        "held_out": held_out,
        "pred_mono": pred,
        "real_mono": real[mono & (real.obs.condition == "IFN-beta").to_numpy()].copy(),
        "ctrl_mono": real[mono & (real.obs.condition == "control").to_numpy()].copy(),
        "ctrl": {"condition": "control"},
        "keys": ["cell_type", "condition"],
        "predictions": {"CaLMFlow": pred, "Control": control},
        "mudata": md,
    }


def test_examples_were_found():
    names = {t.name.split(".")[-1] for t in EXAMPLES}
    assert {"embedding", "trajectories", "synthetic_perturbation", "add_pca"} <= names


@pytest.mark.slow
@pytest.mark.parametrize("test", EXAMPLES, ids=[t.name for t in EXAMPLES])
def test_docstring_example_runs(test, namespace):
    import anndata as ad
    import matplotlib.pyplot as plt

    # every example gets its own copy of the data (some write into it); not of `adata`, which
    # is registered with scvi-tools (a copy would no longer match the model's registration)
    ns = {
        k: v.copy() if isinstance(v, ad.AnnData) and k != "adata" else v
        for k, v in namespace.items()
    }
    checker = doctest.OutputChecker()
    flags = doctest.ELLIPSIS | doctest.NORMALIZE_WHITESPACE
    for example in test.examples:
        code = compile(example.source, f"<{test.name} line {example.lineno}>", "single")
        if example.want:
            value = eval(compile(example.source, "<example>", "eval"), ns)
            assert checker.check_output(example.want, repr(value) + "\n", flags), (
                f"{test.name}: {example.source.strip()} gave {value!r}, the docstring shows "
                f"{example.want.strip()}"
            )
        else:
            exec(code, ns)
    plt.close("all")
