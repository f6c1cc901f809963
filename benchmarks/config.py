"""What every suite runs with: budgets per suite and mode, and the paper's numbers.

A suite's budget is one frozen dataclass per mode (``full``: the benchmark, ``quick``:
< 5 min per suite on 2 cores, ``tiny``: seconds, for the tests); :func:`get_config` picks
one and applies overrides. ``calmflow`` and ``train`` are keyword arguments passed as they
are to ``CaLMFlowModel(...)`` and ``.train(...)`` (empty: the model's defaults).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

#: Where the full runs' results live (the default output folder).
RESULTS = Path(__file__).resolve().parent / "results"
SUITES = ("kang-loo", "unconditional", "gaussians", "moons")
MODES = ("full", "quick", "tiny")
CFM_VARIANTS = ("icfm", "otcfm", "sbcfm")

#: The paper's synthetic-task CaLMFlow (Appendix A.2): GPT-2, width 32, 4 layers, 1 head;
#: VAE head with latent 16 and hidden 32. Everything else stays at the model's defaults.
PAPER_SYNTHETIC_ARCH: dict[str, Any] = dict(
    architecture="gpt2", width=32, n_layers=4, n_heads=1, ffn=128, latent_dim=16, head_hidden=32
)
#: A tiny model for the smoke tests (``mode="tiny"``).
TINY_ARCH: dict[str, Any] = dict(
    width=16, n_layers=1, n_heads=2, ffn=32, head_hidden=32, tokenizer_hidden=32, latent_dim=8
)


# ====================================================================== budgets
@dataclass(frozen=True)
class CFMBudget:
    """The CFM baseline's MLP and training budget (``sccalmflow.baselines.CFM`` keywords)."""

    width: int
    n_steps: int
    batch_size: int = 256
    depth: int = 4
    lr: float = 1e-3

    def kwargs(self) -> dict[str, Any]:
        """Keywords of ``CFM(variant, **kwargs)``."""
        return dict(
            width=self.width,
            depth=self.depth,
            n_steps=self.n_steps,
            batch_size=self.batch_size,
            lr=self.lr,
        )

    def mlp(self, times: str = "x") -> str:
        """``"4x256"`` (``times="×"`` for the markdown)."""
        return f"{self.depth}{times}{self.width}"


@dataclass(frozen=True, kw_only=True)
class SuiteConfig:
    """What every suite has: CaLMFlow's model / training keywords and the CFM budget."""

    calmflow: Mapping[str, Any] = field(default_factory=dict)
    train: Mapping[str, Any] = field(default_factory=dict)
    cfm: CFMBudget


@dataclass(frozen=True, kw_only=True)
class KangLooConfig(SuiteConfig):
    """``kang-loo``: which cell types are held out, how many cells are generated."""

    cell_types: tuple[str, ...] | None  # None: every eligible type
    n_gen: int
    n_genes: int | None = None  # None: all genes; else the most variable ones


@dataclass(frozen=True, kw_only=True)
class UnconditionalConfig(SuiteConfig):
    """``unconditional``: generated / reference cells and the trajectory counts."""

    n_eval: int | None  # None: half of the cells
    trajectories: tuple[int, ...]
    n_genes: int | None = None
    temperatures: tuple[float, ...] = ()  # τ sweep of the first CaLMFlow model
    head_steps: tuple[int, ...] = ()  # the first model again with its head's steps set to each


@dataclass(frozen=True, kw_only=True)
class GaussiansConfig(SuiteConfig):
    """``gaussians``: 2 -> k Gaussians in ``dim`` dimensions for every k in ``modes``."""

    dim: int
    modes: tuple[int, ...]
    n_train: int
    n_eval: int
    trajectories: tuple[int, ...]


@dataclass(frozen=True, kw_only=True)
class MoonsConfig(SuiteConfig):
    """``moons``: 8 Gaussians -> 2 moons, with trajectory, time-point and τ sweeps."""

    n_train: int
    n_eval: int
    trajectories: tuple[int, ...]
    time_points: tuple[int, ...]
    temperatures: tuple[float, ...]


_TINY_CFM = CFMBudget(32, 10, batch_size=64)

CONFIGS: dict[str, dict[str, SuiteConfig]] = {
    "kang-loo": {
        "full": KangLooConfig(cell_types=None, n_gen=500, cfm=CFMBudget(256, 1000)),
        "quick": KangLooConfig(
            cell_types=("B", "CD14 Mono"),
            n_gen=500,
            train={"max_epochs": 4},
            cfm=CFMBudget(128, 300),
        ),
        "tiny": KangLooConfig(
            cell_types=("B",),
            n_gen=100,
            n_genes=300,
            calmflow={**TINY_ARCH, "n_pca": 10, "n_time_points": 6},
            train={"max_epochs": 1},
            cfm=_TINY_CFM,
        ),
    },
    "unconditional": {
        "full": UnconditionalConfig(
            n_eval=None,
            trajectories=(1, 5),
            temperatures=(0.9, 1.0, 1.1, 1.2),
            cfm=CFMBudget(256, 1000),
        ),
        "quick": UnconditionalConfig(
            n_eval=600, trajectories=(1, 5), train={"max_epochs": 3}, cfm=CFMBudget(128, 200)
        ),
        "tiny": UnconditionalConfig(
            n_eval=150,
            n_genes=300,
            trajectories=(1, 2),
            temperatures=(0.5, 1.0),
            head_steps=(2,),
            calmflow={**TINY_ARCH, "n_pca": 10, "n_time_points": 6},
            train={"max_epochs": 1},
            cfm=_TINY_CFM,
        ),
    },
    "gaussians": {
        "full": GaussiansConfig(
            dim=100,
            modes=(3, 4),
            n_train=1500,
            n_eval=1000,
            trajectories=(1, 8),
            calmflow=PAPER_SYNTHETIC_ARCH,
            train={"max_epochs": 50},
            cfm=CFMBudget(256, 1000),
        ),
        "quick": GaussiansConfig(
            dim=100,
            modes=(3,),
            n_train=1000,
            n_eval=500,
            trajectories=(1, 8),
            calmflow=PAPER_SYNTHETIC_ARCH,
            train={"max_epochs": 5},
            cfm=CFMBudget(128, 300),
        ),
        "tiny": GaussiansConfig(
            dim=10,
            modes=(3,),
            n_train=200,
            n_eval=100,
            trajectories=(1, 2),
            calmflow={**TINY_ARCH, "n_time_points": 6},
            train={"max_epochs": 1},
            cfm=_TINY_CFM,
        ),
    },
    "moons": {
        "full": MoonsConfig(
            n_train=2000,
            n_eval=2000,
            trajectories=(1, 4, 10),
            time_points=(4, 8, 32),
            temperatures=(0.0, 0.25, 0.5, 0.75, 1.0, 1.25, 1.5),
            calmflow=PAPER_SYNTHETIC_ARCH,
            train={"max_epochs": 30},
            cfm=CFMBudget(256, 1500),
        ),
        "quick": MoonsConfig(
            n_train=1000,
            n_eval=1000,
            trajectories=(1, 4, 10),
            time_points=(4, 8),
            temperatures=(0.0, 0.5, 1.0),
            calmflow=PAPER_SYNTHETIC_ARCH,
            train={"max_epochs": 4},
            cfm=CFMBudget(128, 300),
        ),
        "tiny": MoonsConfig(
            n_train=200,
            n_eval=100,
            trajectories=(1, 2),
            time_points=(4,),
            temperatures=(0.0, 1.0),
            calmflow={**TINY_ARCH, "n_time_points": 6},
            train={"max_epochs": 1},
            cfm=_TINY_CFM,
        ),
    },
}


def get_config(suite: str, mode: str, overrides: Mapping[str, Any] | None = None) -> Any:
    """The budget of ``suite`` in ``mode``, with ``overrides`` (field name -> value) applied."""
    if suite not in CONFIGS:
        raise ValueError(f"unknown suite {suite!r}; choose from {SUITES}")
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; choose from {MODES}")
    return dataclasses.replace(CONFIGS[suite][mode], **(overrides or {}))


# ====================================================================== the paper's numbers
@dataclass(frozen=True)
class PaperValue:
    """One number of the paper: ``(mean ± sd) x 10^exponent``, printed as the paper prints it.

    ``decimals`` / ``sd_decimals``: the decimals the paper prints (mean / sd), so that
    ``str()`` gives back the paper's text.
    """

    mean: float
    sd: float | None = None
    exponent: int = 0
    decimals: int = 4
    sd_decimals: int | None = None

    @property
    def value(self) -> float:
        """The number itself, ``mean x 10^exponent``."""
        return self.mean * 10.0**self.exponent

    def __str__(self) -> str:
        text = f"{self.mean:.{self.decimals}f}"
        if self.sd is not None:
            text += f" ± {self.sd:.{self.sd_decimals or self.decimals}f}"
        return text + (f"e{self.exponent}" if self.exponent else "")


@dataclass(frozen=True)
class PaperTable:
    """Rows of one of the paper's tables: row key -> metric -> :class:`PaperValue`."""

    source: str
    rows: Mapping[Any, Mapping[str, PaperValue]]

    def text(self, key: Any, metric: str) -> str:
        """The paper's number as printed, ``"–"`` where the paper has none."""
        value = self.rows.get(key, {}).get(metric)
        return "–" if value is None else str(value)


def _pv(mean: float, sd: float | None = None, **kwargs: Any) -> PaperValue:
    return PaperValue(mean, sd, **kwargs)


#: Table 2: 2 Gaussians -> k Gaussians in 100 dimensions (mean ± sd over seeds).
PAPER_GAUSSIANS = PaperTable(
    "CaLMFlow paper, Table 2 (2 Gaussians -> k Gaussians in 100-d; W2, MMD)",
    {
        ("2->3", "CFM"): {"w2": _pv(6.4344, 0.2738), "mmd": _pv(0.0293, 0.0008)},
        ("2->3", "CaLMFlow (1 traj.)"): {
            "w2": _pv(4.0898, 0.1842),
            "mmd": _pv(0.02021, 0.0016, decimals=5, sd_decimals=4),
        },
        ("2->3", "CaLMFlow (8 traj.)"): {"w2": _pv(2.8363, 0.3868), "mmd": _pv(0.0149, 0.0016)},
        ("2->4", "CFM"): {"w2": _pv(6.3400, 0.3185), "mmd": _pv(0.0206, 0.0003)},
        ("2->4", "CaLMFlow (1 traj.)"): {"w2": _pv(5.6608, 0.3272), "mmd": _pv(0.0148, 0.0007)},
        ("2->4", "CaLMFlow (8 traj.)"): {"w2": _pv(3.6119, 0.3213), "mmd": _pv(0.0058, 0.0005)},
    },
)

#: Table 7: 8 Gaussians -> 2 moons, by number of trajectories.
PAPER_MOONS = PaperTable(
    "CaLMFlow paper, Table 7 (8 Gaussians -> 2 moons, by trajectories; W2, MMD)",
    {
        1: {"w2": _pv(1.3756, 0.0668), "mmd": _pv(0.0057, 0.0002)},
        4: {"w2": _pv(1.0477, 0.0771), "mmd": _pv(0.0041, 0.0003)},
        10: {"w2": _pv(0.8753, 0.1243), "mmd": _pv(0.0020, 0.0003)},
    },
)


def _table3(mmd: PaperValue, w2: PaperValue, kld: PaperValue, admmd: PaperValue) -> dict:
    return {"mmd": mmd, "w2": w2, "leiden_kl": kld, "adaptive_mmd": admmd}


#: Table 3: unconditional generation of the Dong et al. immune data (1,000 PCs). The
#: Leiden KLD column is printed as "0.0330 ± 0.0027e-2" in the extracted text; the
#: exponent is read as applying to both numbers (the units are ambiguous).
PAPER_UNCONDITIONAL = PaperTable(
    "CaLMFlow paper, Table 3 (Dong et al. 2023 immune cells, 1,000 PCs; MMD, W2, KLD, adMMD)",
    {
        "CFM-icfm": _table3(
            _pv(0.0763, 0.0275),
            _pv(0.0158, 0.0043),
            _pv(0.0330, 0.0027, exponent=-2),
            _pv(9.3568, exponent=-4),
        ),
        "CFM-otcfm": _table3(
            _pv(0.0893, 0.0193),
            _pv(0.0149, 0.0012),
            _pv(0.0324, 0.0039, exponent=-2),
            _pv(9.1720, exponent=-4),
        ),
        "CFM-sbcfm": _table3(
            _pv(0.0998, 0.0050),
            _pv(0.0151, 0.0024),
            _pv(0.0338, 0.0045, exponent=-2),
            _pv(9.5234, exponent=-4),
        ),
        "CaLMFlow (1 traj.)": _table3(
            _pv(0.0060, 0.0002),
            _pv(0.0100, 0.0006),
            _pv(0.0311, 0.0045, exponent=-2),
            _pv(2.4795, exponent=-4),
        ),
        "CaLMFlow (5 traj.)": _table3(
            _pv(0.0031, 0.0001),
            _pv(0.0087, 0.0006),
            _pv(0.0331, 0.0158, exponent=-2),
            _pv(1.8039, exponent=-4),
        ),
    },
)
