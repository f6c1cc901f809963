"""The benchmark package (``benchmarks/``) runs end to end on tiny sizes.

So the suites cannot rot: each test runs one suite with ``mode="tiny"`` (tiny models, a few
training steps) and checks the CSV layout, that every method of the suite appears with
finite metrics, and that the markdown and the figures are written. Also: the command line,
``benchmarks.compare`` and the configuration.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import compare, config, methods, oversample, records, suites, tasks

ROOT = Path(__file__).resolve().parents[2]
# the methods of the suites that generate from noise (tiny mode: 1 and 2 trajectories)
FROM_NOISE = {"CaLMFlow (1 traj.)", "CaLMFlow (2 traj.)", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"}


@pytest.fixture
def keep_threads():
    """The suites run with one torch thread; give the other tests theirs back."""
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def _check_outputs(suite: str, out: Path, methods: set[str], metrics: set[str]) -> pd.DataFrame:
    csv = pd.read_csv(out / f"{suite}.csv")
    assert list(csv.columns) == records.COLUMNS
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


def test_kang_loo_tiny(keep_threads, tmp_path):
    df = suites.run_suite("kang-loo", mode="tiny", out=tmp_path)
    methods = {"CaLMFlow", "Control", "Additive", "TrainMean", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"}
    csv = _check_outputs(
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
    md = (tmp_path / "kang-loo.md").read_text()
    assert "Shared PCA" in md
    assert "Generation speed on 100 cells (B IFN-beta)" in md  # the last split's models


def test_gaussians_tiny(keep_threads, tmp_path):
    suites.run_suite("gaussians", mode="tiny", out=tmp_path)
    methods = FROM_NOISE | {"Reference (fresh target sample)"}
    _check_outputs("gaussians", tmp_path, methods, {"w2", "mmd"})


def test_moons_tiny(keep_threads, tmp_path):
    variational = methods.calmflow_defaults()["variational"]
    ablation = f"CaLMFlow ({'deterministic' if variational else 'variational'} head)"
    suites.run_suite("moons", mode="tiny", out=tmp_path)
    csv = _check_outputs(
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


@pytest.mark.slow
def test_unconditional_tiny(keep_threads, tmp_path):
    suites.run_suite("unconditional", mode="tiny", out=tmp_path)
    methods = FROM_NOISE | {"Real (other half)"}
    metrics = {"mmd", "w2", "adaptive_mmd", "leiden_kl"}
    _check_outputs("unconditional", tmp_path, methods, metrics)


def test_toy_samplers_match_torchcfm():
    rng = np.random.default_rng(0)
    g = tasks.sample_8gaussians(4000, rng)
    angles = np.arange(8) * np.pi / 4
    centers = 5 * np.stack([np.cos(angles), np.sin(angles)], axis=1)
    nearest = np.argmin(((g[:, None] - centers[None]) ** 2).sum(-1), axis=1)
    residual = g - centers[nearest]
    assert np.allclose(residual.std(0), 0.1**0.25, atol=0.03)  # covariance sqrt(0.1) I
    assert np.allclose(np.bincount(nearest, minlength=8) / 4000, 1 / 8, atol=0.02)
    m = tasks.sample_moons(4000, rng)
    assert m.shape == (4000, 2)
    assert np.allclose(m.mean(0), [0.5, -0.25], atol=0.1)  # make_moons mean (0.5, 0.25) * 3 - 1
    src, tgt = tasks.gaussian_task(100, 3)
    assert src.means.shape == (2, 100) and tgt.means.shape == (3, 100)
    assert np.allclose(np.linalg.norm(tgt.means, axis=1), tasks.GAUSS_RADIUS)


def test_oversample_script_tiny(keep_threads, tmp_path):
    """``benchmarks/oversample.py`` end to end with one epoch, one subset, few cells."""
    df = oversample.main(
        ["--cell-types", "B", "--subsets", "1", "--pool", "10", "--n-cells", "30"]
        + ["--max-epochs", "1", "--out", str(tmp_path)]
    )
    assert list(df["mode"]) == ["all controls", "repeat", "interpolate"]
    assert df.loc[df["mode"] == "repeat", "distinct_cells"].item() == 10
    assert df.loc[df["mode"] == "interpolate", "distinct_cells"].item() == 30
    assert np.isfinite(df[["r2_top100_de", "e_distance", "mmd", "w2"]].to_numpy()).all()
    md = (tmp_path / "oversample.md").read_text()
    assert "| B | interpolate |" in md and (tmp_path / "oversample.csv").exists()


# ====================================================================== command line
@pytest.mark.parametrize(
    "command",
    [["-m", "benchmarks"], ["benchmarks/run.py"], ["-m", "benchmarks.compare"]],
    ids=["python -m benchmarks", "benchmarks/run.py", "python -m benchmarks.compare"],
)
def test_command_line_help(command):
    res = subprocess.run(
        [sys.executable, *command, "--help"], cwd=ROOT, capture_output=True, text=True
    )
    assert res.returncode == 0, res.stderr
    assert res.stdout.startswith("usage: python -m benchmarks")
    if command[-1] != "benchmarks.compare":
        for suite in (*config.SUITES, "all", "--quick", "--out"):
            assert suite in res.stdout


def test_unknown_suite_or_mode():
    with pytest.raises(ValueError, match="unknown suite"):
        suites.run_suite("nope", mode="tiny")
    with pytest.raises(ValueError, match="unknown mode"):
        suites.run_suite("moons", mode="huge")


# ====================================================================== configuration
def test_configs_are_typed_and_overridable():
    for suite in config.SUITES:
        assert set(config.CONFIGS[suite]) == set(config.MODES)
        for mode in config.MODES:
            cfg = config.get_config(suite, mode)
            assert isinstance(cfg, config.SuiteConfig)
            assert isinstance(cfg.cfm, config.CFMBudget)
    cfg = config.get_config("moons", "tiny", {"n_eval": 7})
    assert cfg.n_eval == 7 and config.CONFIGS["moons"]["tiny"].n_eval == 100
    assert config.get_config("kang-loo", "quick").cfm.kwargs() == dict(
        width=128, depth=4, n_steps=300, batch_size=256, lr=1e-3
    )
    with pytest.raises(TypeError):
        config.get_config("moons", "tiny", {"no_such_field": 1})


def test_paper_numbers_are_numbers_printed_as_in_the_paper():
    cfm = config.PAPER_GAUSSIANS.rows[("2->3", "CFM")]["w2"]
    assert (cfm.mean, cfm.sd) == (6.4344, 0.2738) and str(cfm) == "6.4344 ± 0.2738"
    assert config.PAPER_GAUSSIANS.text(("2->3", "CaLMFlow (1 traj.)"), "mmd") == "0.02021 ± 0.0016"
    kld = config.PAPER_UNCONDITIONAL.rows["CFM-icfm"]["leiden_kl"]
    assert str(kld) == "0.0330 ± 0.0027e-2" and kld.value == pytest.approx(0.0330e-2)
    admmd = config.PAPER_UNCONDITIONAL.rows["CaLMFlow (5 traj.)"]["adaptive_mmd"]
    assert str(admmd) == "1.8039e-4" and admmd.value == pytest.approx(1.8039e-4)
    assert config.PAPER_MOONS.text(10, "mmd") == "0.0020 ± 0.0003"
    assert config.PAPER_MOONS.text(2, "mmd") == "–"
    for table in (config.PAPER_GAUSSIANS, config.PAPER_MOONS, config.PAPER_UNCONDITIONAL):
        assert table.source.startswith("CaLMFlow paper, Table")


# ====================================================================== compare
def _results(folder: Path, values, seconds, name: str = "suite.csv") -> Path:
    folder.mkdir(exist_ok=True)
    pd.DataFrame(
        {
            "suite": "s",
            "method": ["A", "B", "C"],
            "metric": ["w2", "w2", "mmd"],
            "value": values,
            "train_seconds": seconds,
            "nfe": [np.nan, 26.0, np.nan],
        }
    ).to_csv(folder / name, index=False)
    return folder


def test_compare_ignores_time_and_finds_metric_differences(tmp_path, capsys):
    a = _results(tmp_path / "a", [1.0, 0.5, np.nan], [10.0, 20.0, 30.0])
    same = _results(tmp_path / "same", [1.0, 0.5 * (1 + 1e-12), np.nan], [11.0, 19.0, 1.0])
    assert compare.main([str(a), str(same)]) == 0
    assert "identical: 1 CSV file(s)" in capsys.readouterr().out

    other = _results(tmp_path / "other", [1.0, 0.5 * (1 + 1e-6), np.nan], [10.0, 20.0, 30.0])
    assert compare.main([str(a), str(other)]) == 1
    out = capsys.readouterr().out
    assert "row 1 (suite=s, method=B, metric=w2" in out and "value: 0.5 ->" in out
    assert "row 0" not in out and "row 2" not in out
    assert compare.main([str(a), str(other), "--rtol", "1e-5"]) == 0

    missing = _results(tmp_path / "missing", [1.0, 0.5, np.nan], [1.0, 2.0, 3.0], "x.csv")
    diffs = compare.compare_dirs(a, missing)
    assert {str(d) for d in diffs} == {
        f"suite.csv: missing from {missing}",
        f"x.csv: missing from {a}",
    }


def test_compare_time_columns():
    assert all(map(compare.is_time_column, ["train_seconds", "generate_seconds", "train_s"]))
    assert not any(
        map(compare.is_time_column, ["value", "nfe", "n_sources", "distinct_cells", "time_points"])
    )


def test_speed_flop_count_on_a_tiny_model(kang_small, kang_setup, tiny):
    """benchmarks/speed.py reads the module's parts by name: a rename must not break it."""
    from benchmarks import speed
    from sccalmflow import CaLMFlowModel

    CaLMFlowModel.setup_anndata(kang_small, **kang_setup)
    model = CaLMFlowModel(kang_small, **tiny)
    flops = speed.generation_flops_per_cell(model)
    mod = model.module
    dense = 2 * sum(p.numel() for p in mod.head.parameters()) * (mod.n_time_points - 1)
    assert flops > dense > 0


def test_threads_benchmark_help():
    """benchmarks/threads.py runs as a script from the repository root."""
    res = subprocess.run(
        [sys.executable, "benchmarks/threads.py", "--help"],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert res.returncode == 0, res.stderr
    assert "--epochs" in res.stdout and "--n-cells" in res.stdout
