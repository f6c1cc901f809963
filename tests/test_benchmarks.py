"""The benchmark suites of ``benchmarks/run.py`` run end to end on tiny sizes.

So the scripts cannot rot: each test runs one suite with ``mode="tiny"`` (tiny models,
a few training steps) and checks the CSV layout, that every method of the suite appears
with finite metrics, and that the markdown and the figures are written.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]
# the methods of the suites that generate from noise (tiny mode: 1 and 2 trajectories)
FROM_NOISE = {"CaLMFlow (1 traj.)", "CaLMFlow (2 traj.)", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"}


@pytest.fixture(scope="module")
def bench():
    name = "sccalmflow_benchmarks_run"
    spec = importlib.util.spec_from_file_location(name, ROOT / "benchmarks" / "run.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    yield module
    torch.set_num_threads(threads)  # the suites run with one thread
    sys.modules.pop(name, None)


def _check_outputs(
    bench, suite: str, out: Path, methods: set[str], metrics: set[str]
) -> pd.DataFrame:
    csv = pd.read_csv(out / f"{suite}.csv")
    assert list(csv.columns) == bench.COLUMNS
    assert set(csv.suite) == {suite}
    missing = methods - set(csv.method)
    assert not missing, f"methods missing from {suite}.csv: {missing}"
    assert metrics <= set(csv.metric)
    main = csv[csv.metric.isin(metrics)]
    assert np.isfinite(main.value).all()
    md = (out / f"{suite}.md").read_text()
    for m in methods:
        assert m in md
    pngs = sorted(out.glob(f"{suite}_*.png"))
    assert pngs
    for png in pngs:
        assert 0 < png.stat().st_size < 300_000
        assert png.name in md
    return csv


def test_kang_loo_tiny(bench, tmp_path):
    df = bench.run_suite("kang-loo", mode="tiny", out=tmp_path)
    methods = {"CaLMFlow", "Control", "Additive", "TrainMean", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"}
    csv = _check_outputs(
        bench,
        "kang-loo",
        tmp_path,
        methods,
        {"r2_pearson", "r2_sklearn", "pearson_delta", "e_distance", "mmd", "w2"},
    )
    assert len(df) == len(csv)
    # both R² conventions on all genes and on the top-100 DE genes, for every method
    r2 = csv[csv.metric.isin(["r2_pearson", "r2_sklearn"])]
    assert set(r2.space) == {"genes", "top100_de"}
    assert r2.groupby("method").size().eq(4).all()
    # timings recorded; NFE only for CFM
    first = csv.drop_duplicates("method").set_index("method")
    assert (first.train_seconds >= 0).all() and (first.generate_seconds > 0).all()
    assert first.nfe[[m for m in methods if m.startswith("CFM")]].gt(0).all()
    assert first.nfe[["CaLMFlow", "Control"]].isna().all()
    # every method is scored in the same PCA space (the check is written to the markdown)
    assert "Shared PCA" in (tmp_path / "kang-loo.md").read_text()


def test_gaussians_tiny(bench, tmp_path):
    bench.run_suite("gaussians", mode="tiny", out=tmp_path)
    methods = FROM_NOISE | {"Reference (fresh target sample)"}
    _check_outputs(bench, "gaussians", tmp_path, methods, {"w2", "mmd"})


def test_moons_tiny(bench, tmp_path):
    from sccalmflow import CaLMFlowModel

    variational = bench.signature_defaults(CaLMFlowModel.__init__)["variational"]
    ablation = f"CaLMFlow ({'deterministic' if variational else 'variational'} head)"
    bench.run_suite("moons", mode="tiny", out=tmp_path)
    csv = _check_outputs(
        bench,
        "moons",
        tmp_path,
        {
            "CaLMFlow (1 traj.)",
            "CaLMFlow (2 traj.)",
            "CaLMFlow (T=4)",
            ablation,
            "CFM-otcfm",
            "Reference (fresh target sample)",
        },
        {"w2", "mmd"},
    )
    # the temperature sweep runs on a variational-head model
    sweep = csv[csv.method == ("CaLMFlow (1 traj.)" if variational else ablation) + " τ-sweep"]
    assert set(sweep.setting.str.extract(r"τ=([\d.]+)")[0].astype(float)) == {0.0, 1.0}


def test_toy_samplers_match_torchcfm(bench):
    rng = np.random.default_rng(0)
    g = bench.sample_8gaussians(4000, rng)
    angles = np.arange(8) * np.pi / 4
    centers = 5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nearest = np.argmin(((g[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    residual = g - centers[nearest]
    assert np.allclose(residual.std(0), 0.1**0.25, atol=0.03)  # covariance sqrt(0.1) I
    assert np.allclose(np.bincount(nearest, minlength=8) / 4000, 1 / 8, atol=0.02)
    m = bench.sample_moons(4000, rng)
    assert m.shape == (4000, 2)
    assert np.allclose(m.mean(0), [0.5, -0.25], atol=0.1)  # make_moons mean (0.5, 0.25) * 3 - 1
    src, tgt = bench.gaussian_task(100, 3)
    assert src.means.shape == (2, 100) and tgt.means.shape == (3, 100)
    assert np.allclose(np.linalg.norm(tgt.means, axis=1), bench.GAUSS_RADIUS)


@pytest.mark.slow
def test_unconditional_tiny(bench, tmp_path):
    bench.run_suite("unconditional", mode="tiny", out=tmp_path)
    methods = FROM_NOISE | {"Real (other half)"}
    metrics = {"mmd", "w2", "adaptive_mmd", "leiden_kl"}
    _check_outputs(bench, "unconditional", tmp_path, methods, metrics)


def test_oversample_script_tiny(tmp_path):
    """``benchmarks/oversample.py`` end to end with one epoch, one subset, few cells."""
    spec = importlib.util.spec_from_file_location(
        "sccalmflow_benchmarks_oversample", ROOT / "benchmarks" / "oversample.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    threads = torch.get_num_threads()
    try:
        df = module.main(
            ["--cell-types", "B", "--subsets", "1", "--pool", "10", "--n-cells", "30"]
            + ["--max-epochs", "1", "--out", str(tmp_path)]
        )
    finally:
        torch.set_num_threads(threads)
    assert list(df["mode"]) == ["all controls", "repeat", "interpolate"]
    assert df.loc[df["mode"] == "repeat", "distinct_cells"].item() == 10
    assert df.loc[df["mode"] == "interpolate", "distinct_cells"].item() == 30
    assert np.isfinite(df[["r2_top100_de", "e_distance", "mmd", "w2"]].to_numpy()).all()
    md = (tmp_path / "oversample.md").read_text()
    assert "| B | interpolate |" in md and (tmp_path / "oversample.csv").exists()
