"""Fitting and predicting the methods of the suites, timed on one torch thread.

CaLMFlow (``sccalmflow.CaLMFlowModel``), the CFM baseline and the simple baselines of
``sccalmflow.baselines``; every fit and every prediction is timed (a prediction after a
1-cell warm-up call).
"""

from __future__ import annotations

import inspect
import logging
import time
import warnings
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import anndata as ad
import numpy as np

from .config import CFM_VARIANTS, CFMBudget
from .tasks import TOY_SETUP, TOY_TARGET, toy_anndata, toy_target_anndata

#: How multi-trajectory models are budgeted (markdown text).
EQUAL_BUDGET = (
    "every N trains with `batch_size = 128 / N` sequences (rounded), so each optimiser step "
    "sees the same 128 trajectories, an epoch has the same number of steps for every N, and "
    "the same `max_epochs` gives every N the same steps and trajectories (without it, "
    "`train()`'s default budget grows with the square root of the number of sequences, so "
    "N > 1 trains fewer steps: see the epochs in the setting column)"
)
#: Seed offset of the 1-cell warm-up call before a timed prediction.
WARMUP_SEED_OFFSET = 12345


# ====================================================================== runtime
def configure_runtime() -> None:
    """One thread, quiet Lightning, no warnings spam."""
    one_thread()
    warnings.filterwarnings("ignore")
    for name in ("lightning", "lightning.pytorch", "lightning.fabric", "scvi", "pytorch_lightning"):
        logging.getLogger(name).setLevel(logging.ERROR)


def one_thread() -> None:
    """Back to one torch thread (numba's OpenMP layer, used by scanpy, can change it)."""
    import torch

    torch.set_num_threads(1)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    """``fn()`` and the seconds it took, on one torch thread."""
    one_thread()
    t0 = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t0


def predict_timed(obj, conditions, n: int, seed: int, **kwargs) -> tuple[Any, float]:
    """``obj.predict`` timed after a 1-cell warm-up call (one-time caches, lazy imports)."""
    obj.predict(conditions, n_cells=1, seed=seed + WARMUP_SEED_OFFSET, **kwargs)
    return timed(lambda: obj.predict(conditions, n_cells=n, seed=seed, **kwargs))


@contextmanager
def head_steps_set(model, n: int) -> Iterator[None]:
    """Inside the block the model's flow head integrates with ``n`` steps; its own after."""
    head = model.module.head
    default = head.n_steps
    head.n_steps = int(n)
    try:
        yield
    finally:
        head.n_steps = default


def signature_defaults(func: Callable) -> dict[str, Any]:
    """Keyword defaults of a function (the model's defaults, read at run time)."""
    return {
        k: p.default
        for k, p in inspect.signature(func).parameters.items()
        if p.default is not inspect.Parameter.empty
    }


def calmflow_defaults() -> dict[str, Any]:
    """``CaLMFlowModel``'s constructor defaults (head, path, noise, mean: those of its source)."""
    from sccalmflow import CaLMFlowModel
    from sccalmflow.model import generator_defaults

    defaults = signature_defaults(CaLMFlowModel.__init__)
    names = ("head", "path", "sigma_min", "head_mean")
    resolved = generator_defaults(defaults["source"], *(defaults[k] for k in names))
    return defaults | dict(zip(names, resolved, strict=True))


def train_defaults() -> dict[str, Any]:
    """``CaLMFlowModel.train``'s defaults."""
    from sccalmflow import CaLMFlowModel

    return signature_defaults(CaLMFlowModel.train)


@dataclass
class Fitted:
    """A trained method and what it cost."""

    name: str
    obj: Any
    train_s: float
    setting: str = ""

    @property
    def nfe(self) -> float:
        """Function evaluations of the last prediction (ODE baselines), else NaN."""
        return float(getattr(self.obj, "nfe_", None) or float("nan"))


# ====================================================================== CaLMFlow
def fit_calmflow(
    adata: ad.AnnData,
    setup: Mapping[str, Any],
    model_kwargs: Mapping[str, Any],
    train_kwargs: Mapping[str, Any],
    seed: int,
    *,
    per_trajectory_batch: bool = False,
) -> tuple[Any, float]:
    """Set up, build and train a CaLMFlow model; returns it and the seconds it took.

    ``per_trajectory_batch``: with N trajectories per sequence, use ``batch_size / N``
    sequences per step (``train``'s default batch size unless given), so every N sees the
    same trajectories per step, the same steps per epoch and about the same compute.
    """
    from sccalmflow import CaLMFlowModel

    CaLMFlowModel.setup_anndata(adata, **setup)
    train_kwargs = dict(train_kwargs)
    n_traj = int(model_kwargs.get("n_trajectories", 1))
    batch = train_kwargs.get("batch_size", train_defaults()["batch_size"])
    if per_trajectory_batch and n_traj > 1:
        batch = max(1, round(batch / n_traj))
        train_kwargs["batch_size"] = batch
    one_thread()
    t0 = time.perf_counter()
    model = CaLMFlowModel(adata, seed=seed, **model_kwargs)
    model.train(enable_progress_bar=False, accelerator="cpu", **train_kwargs)
    model.bench_batch_size_ = batch
    return model, time.perf_counter() - t0


def epochs(model) -> int:
    """Epochs a CaLMFlow model was trained for (-1 if unknown)."""
    try:
        return len(model.history["train_loss"])
    except Exception:  # pragma: no cover - history layout is the model's business
        return -1


def budget(model) -> str:
    """Training budget of a fitted CaLMFlow model, for the ``setting`` column."""
    n = model.n_trajectories
    b = getattr(model, "bench_batch_size_", "?")
    return f"{epochs(model)} epochs, batch {b} seq" + (f" x {n} traj." if n > 1 else "")


def fit_toy_calmflow(
    source: np.ndarray,
    target: np.ndarray,
    model_kwargs: Mapping[str, Any],
    train_kwargs: Mapping[str, Any],
    seed: int,
) -> tuple[Any, float]:
    """CaLMFlow from the source points (registered as control cells) to the target points."""
    adata = toy_anndata(source, target)
    return fit_calmflow(
        adata,
        TOY_SETUP,
        {"source": "control", **model_kwargs},
        train_kwargs,
        seed,
        per_trajectory_batch=True,
    )


def predict_toy_calmflow(
    model, n: int, seed: int, temperature: float | None = None, **kwargs
) -> tuple[np.ndarray, float]:
    """``n`` generated toy points (float64) and the generation seconds (``kwargs``: predict's)."""
    from sccalmflow.data import PCA_KEY

    pred, gen_s = predict_timed(model, TOY_TARGET, n, seed, temperature=temperature, **kwargs)
    return np.asarray(pred.obsm[PCA_KEY], dtype=np.float64), gen_s


# ====================================================================== baselines
def cfm_setting(c: CFMBudget) -> str:
    """The CFM's ``setting`` column on Kang."""
    return f"{c.mlp()} MLP, {c.n_steps} steps"


def fit_kang_baselines(
    train: ad.AnnData,
    setup: Mapping[str, Any],
    n_pca: int,
    cfm: CFMBudget,
    seed: int,
    pca_folds: int | None = None,
    suffix: str = "",
) -> list[Fitted]:
    """Control, Additive, TrainMean and the three CFM variants, fitted on ``train``.

    ``pca_folds``: the training cells' PCA coordinates cross-fitted as CaLMFlow's are
    (``CaLMFlowModel(pca_folds=...)``; ``None``: in-sample). ``suffix`` ends every name.
    """
    from sccalmflow.baselines import CFM, Additive, Control, TrainMean

    kw = dict(n_pca=n_pca, seed=seed, pca_folds=pca_folds, **setup)
    fitted: list[Fitted] = []
    for cls in (Control, Additive, TrainMean):
        obj, t = timed(lambda cls=cls: cls().fit(train, **kw))
        fitted.append(Fitted(cls.__name__ + suffix, obj, t))
    for v in CFM_VARIANTS:
        obj = CFM(v, **cfm.kwargs())
        _, t = timed(lambda obj=obj: obj.fit(train, **kw))
        fitted.append(Fitted(f"CFM-{v}{suffix}", obj, t, cfm_setting(cfm)))
    return fitted


def fit_toy_cfm(target: np.ndarray, variant: str, cfm: CFMBudget, seed: int) -> tuple[Any, float]:
    """CFM from N(0, I) to the target points (the CFM baseline always starts from noise).

    A zero column is appended so that the baseline's PCA (at most n_vars - 1 components)
    keeps all ``dim`` directions: its PCA is then a rotation, and predictions are mapped
    back to the original coordinates exactly (no clipping).
    """
    from sccalmflow.baselines import CFM

    adata = toy_target_anndata(target)
    model = CFM(variant, **cfm.kwargs())
    _, train_s = timed(
        lambda: model.fit(
            adata,
            condition_keys=["system"],
            control={"system": "toy"},
            n_pca=target.shape[1],
            seed=seed,
            log_normalised=False,
        )
    )
    return model, train_s


def predict_toy_cfm(cfm, n: int, seed: int) -> tuple[np.ndarray, float, float]:
    """``n`` generated toy points (float64), the generation seconds and the NFE."""
    from sccalmflow.data import PCA_KEY

    pred, gen_s = predict_timed(cfm, {"system": ["toy"]}, n, seed)
    z = np.asarray(pred.obsm[PCA_KEY]) / cfm.pca.scale_
    pts = cfm.pca.inverse_transform(z, clip_negative=False)[:, :-1]
    return pts.astype(np.float64), gen_s, cfm.nfe_


def toy_cfm_setting(c: CFMBudget) -> str:
    """The CFM's ``setting`` column on the toy tasks."""
    return f"from N(0,I); {c.mlp()}, {c.n_steps} steps"
