"""The benchmark package (``benchmarks/``) runs end to end on tiny sizes.

So the suites cannot rot: each test runs one suite with ``mode="tiny"`` (tiny models, a few
training steps) and checks the CSV layout, that every method of the suite appears with
finite metrics, and that the markdown and the figures are written. Also: the command line,
``benchmarks.compare`` and the configuration.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from benchmarks import compare, config, methods, oversample, records, suites, tasks
from sccalmflow.nn import HEADS

kang_loo = suites.kang_loo

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
    methods.add(kang_loo.REPLICATE)
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
    # timings recorded (none for the replicate: nothing trained or generated); NFE only for CFM
    first = csv.drop_duplicates("method").set_index("method")
    rep = first.loc[kang_loo.REPLICATE]
    assert np.isnan([rep.train_seconds, rep.generate_seconds, rep.nfe]).all()
    assert rep.setting.startswith("real half A")
    first = first.drop(kang_loo.REPLICATE)
    assert (first.train_seconds >= 0).all() and (first.generate_seconds > 0).all()
    assert first.nfe[[m for m in methods if m.startswith("CFM")]].gt(0).all()
    assert first.nfe[["CaLMFlow", "Control"]].isna().all()
    # every method is scored in the same PCA space (the check is written to the markdown)
    md = (tmp_path / "kang-loo.md").read_text()
    assert "Shared PCA" in md
    folds = suites.kang_loo.calmflow_defaults()["pca_folds"]  # the baselines train on these
    assert f"cross-fitted with `pca_folds={folds!r}` as CaLMFlow's" in md
    assert "Generation speed on 100 cells (B IFN-beta)" in md  # the last split's models
    # the replicate is scored on halves of the real cells (same seed, same halves per type)
    n_ifn = tasks.kang_counts(tasks.load_kang(config.get_config("kang-loo", "tiny").n_genes))
    for ct, setting in first_setting(csv, kang_loo.REPLICATE).items():
        n = n_ifn.loc[ct, "IFN-beta"]
        assert setting == f"real half A ({n // 2} cells) vs real half B ({n - n // 2} cells)"
    # the gap-closed section: a row per method but Additive and the replicate
    assert "## Fraction of the gap from Additive (0) to the replicate (1) closed" in md
    gap = md.split("closed\n", 1)[1].split("\n## ", 1)[0]
    assert "| CaLMFlow |" in gap and "| Additive |" not in gap
    assert f"| {kang_loo.REPLICATE} |" not in gap
    assert "of the gap from Additive (0) to the replicate (1) on this R²" in md  # goal line
    assert "half the sample size" in md  # the setup bullet


def first_setting(csv: pd.DataFrame, method: str) -> dict[str, str]:
    """Held-out type -> the setting of ``method``'s rows."""
    rows = csv[csv.method == method].drop_duplicates("split")
    return dict(zip(rows.split, rows.setting))


def test_kang_loo_gap_fraction():
    """(method - Additive) / (replicate - Additive): 0 = Additive, 1 = replicate, NaN for 0/0."""
    rows = [
        ("T1", "Additive", "r2_pearson", "top100_de", 0.8),
        ("T1", kang_loo.REPLICATE, "r2_pearson", "top100_de", 0.95),
        ("T1", "CaLMFlow", "r2_pearson", "top100_de", 0.9),
        ("T1", "Additive", "e_distance", "pca", 3.0),
        ("T1", kang_loo.REPLICATE, "e_distance", "pca", 1.0),
        ("T1", "CaLMFlow", "e_distance", "pca", 2.0),
        ("T1", "Additive", "mmd", "pca", 0.5),
        ("T1", kang_loo.REPLICATE, "mmd", "pca", 0.5),
        ("T1", "CaLMFlow", "mmd", "pca", 0.2),
        # a second type: Additive and the replicate equal on the R², so no fraction there
        ("T2", "Additive", "r2_pearson", "top100_de", 0.7),
        ("T2", kang_loo.REPLICATE, "r2_pearson", "top100_de", 0.7),
        ("T2", "CaLMFlow", "r2_pearson", "top100_de", 0.9),
        ("T2", "Additive", "e_distance", "pca", 4.0),
        ("T2", kang_loo.REPLICATE, "e_distance", "pca", 2.0),
        ("T2", "CaLMFlow", "e_distance", "pca", 4.0),
    ]
    df = pd.DataFrame(rows, columns=["split", "method", "metric", "space", "value"])
    frac = kang_loo.gap_fractions(df).set_index(["split", "method"])
    assert set(frac.index) == {("T1", "CaLMFlow"), ("T2", "CaLMFlow")}  # not the ends
    r2, ed, mmd = "R² top-100 DE (Pearson²)", "E-distance (PCA)", "MMD (PCA)"
    assert frac.loc[("T1", "CaLMFlow"), r2] == pytest.approx(2 / 3)
    assert frac.loc[("T1", "CaLMFlow"), ed] == pytest.approx(0.5)
    assert np.isnan(frac.loc[("T1", "CaLMFlow"), mmd])  # equal Additive and replicate
    assert np.isnan(frac.loc[("T2", "CaLMFlow"), r2])
    assert frac.loc[("T2", "CaLMFlow"), ed] == pytest.approx(0.0)  # as good as Additive
    assert np.isnan(frac.loc[("T2", "CaLMFlow"), "W2 (PCA)"])  # not measured
    # mean (median) over types, NaNs left out; "–" where every type's is NaN
    table = kang_loo.gap_table(kang_loo.gap_fractions(df), ["CaLMFlow"]).iloc[0]
    assert table[r2] == "0.67 (0.67)" and table[ed] == "0.25 (0.25)" and table[mmd] == "–"
    section = "\n".join(kang_loo.gap_section(kang_loo.gap_fractions(df), ["CaLMFlow"]))
    assert "15 per-type fraction(s) are NaN" in section  # 2 types x 9 columns, 3 measured


def test_gaussians_tiny(keep_threads, tmp_path):
    suites.run_suite("gaussians", mode="tiny", out=tmp_path)
    methods = FROM_NOISE | {"Reference (fresh target sample)"}
    _check_outputs("gaussians", tmp_path, methods, {"w2", "mmd"})


def test_moons_tiny(keep_threads, tmp_path):
    head = methods.calmflow_defaults()["head"]
    ablations = {f"CaLMFlow ({h} head)" for h in HEADS if h != head}
    suites.run_suite("moons", mode="tiny", out=tmp_path)
    csv = _check_outputs(
        "moons",
        tmp_path,
        {
            "CaLMFlow (1 traj.)",
            "CaLMFlow (2 traj.)",
            "CaLMFlow (T=4)",
            *ablations,
            "CFM-otcfm",
            "Reference (fresh target sample)",
        },
        {"w2", "mmd"},
    )
    # the temperature sweep runs on every sampling head, never on the deterministic one
    swept = {m.removesuffix(" τ-sweep") for m in csv.method if m.endswith(" τ-sweep")}
    sampling = {f"CaLMFlow ({h} head)" for h in HEADS if h not in (head, "deterministic")}
    assert sampling <= swept and "CaLMFlow (deterministic head)" not in swept
    sweep = csv[csv.method == sorted(sampling)[0] + " τ-sweep"]
    assert set(sweep.setting.str.extract(r"τ=([\d.]+)")[0].astype(float)) == {0.0, 1.0}


@pytest.mark.slow
def test_unconditional_tiny(keep_threads, tmp_path):
    suites.run_suite("unconditional", mode="tiny", out=tmp_path)
    # the first model again with 2 head steps (the tiny config's head_steps)
    steps = "CaLMFlow (1 traj., 2 head steps)"
    methods = FROM_NOISE | {"Real (other half)", steps}
    metrics = {"mmd", "w2", "adaptive_mmd", "leiden_kl", "w2_gaussian"}
    df = _check_outputs("unconditional", tmp_path, methods, metrics)
    rows = df[df.method == steps]
    assert (rows.generate_seconds > 0).all() and rows.setting.str.contains("2 head steps").all()
    # the τ sweep of the first model: one row per temperature of the tiny config
    md = (tmp_path / "unconditional.md").read_text()
    section = md.split("## Temperature")[1].split("## Setup")[0]
    # the model's τ, chosen by train() from the calibration grid (0.5 since the weight average
    # became bias-corrected, 1 before: it depends on the tiny model)
    from sccalmflow.model import CALIBRATION_TEMPERATURES

    chosen = re.search(r"default τ = ([\d.]+)\)", section)
    assert chosen and float(chosen[1]) in CALIBRATION_TEMPERATURES
    assert "Lowest: MMD at τ = " in section
    assert section.count("| 0.5 |") == 1 and section.count("| 1 |") == 1


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
        + ["--max-epochs", "1", "--out", str(tmp_path), "--heads", "deterministic", "flow"]
    )
    assert list(df["mode"]) == ["all controls", "repeat", "interpolate", "smooth"] * 2
    det, flow = df[df["head"] == "deterministic"], df[df["head"] == "flow"]
    # the deterministic head repeats its 10 sources; the flow head draws 30 distinct cells
    assert det.loc[det["mode"] == "repeat", "distinct_cells"].item() == 10
    assert flow.loc[flow["mode"] == "repeat", "distinct_cells"].item() == 30
    assert (df.loc[df["mode"].isin(["interpolate", "smooth"]), "distinct_cells"] == 30).all()
    scores = ["r2_top100_de", "e_distance", "mmd", "w2", "w2_gaussian", "spread"]
    assert np.isfinite(df[scores].to_numpy()).all() and (df["seed"] == 0).all()
    # repeating 10 sources keeps their spread; the real cells' spread is one number per type
    assert df["real_spread"].nunique() == 1 and (df["spread"] > 0).all()
    md = (tmp_path / "oversample.md").read_text()
    assert "| B | flow | repeat |" in md and (tmp_path / "oversample.csv").exists()
    assert "w2_gaussian: < interpolate" in md and "--heads deterministic flow" in md


def test_oversample_smooth_wins_counts_runs():
    rows = []
    for seed, smooth_w2 in [(0, 1.0), (1, 3.0)]:  # seed 0: smooth best; seed 1: worst on w2
        for mode, e, w2 in [
            ("repeat", 2.0, 2.0),
            ("interpolate", 3.0, 1.5),
            ("smooth", 1.0, smooth_w2),
        ]:
            for _subset in range(2):
                rows.append(
                    {
                        "cell_type": "B",
                        "head": "deterministic",
                        "seed": seed,
                        "mode": mode,
                        "e_distance": e,
                        "mmd": e,
                        "w2": w2,
                        "w2_gaussian": e,
                    }  # fmt: skip
                )
    rows.append({**rows[0], "mode": "all controls", "w2": 0.0})  # a reference, not compared
    wins = oversample.smooth_wins(pd.DataFrame(rows)).set_index("head").loc["deterministic"]
    assert wins["runs"] == 2
    assert wins["e_distance: < repeat"] == 2 and wins["w2_gaussian: < interpolate"] == 2
    assert wins["w2: < repeat"] == 1 and wins["w2: < interpolate"] == 1


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


# ====================================================================== generator.py
def test_generator_variants_and_page(tmp_path):
    """``benchmarks/generator.py``: variant parsing, the long frame and the page (from rows)."""
    from benchmarks import generator

    assert generator.parse_variant("default") == {}
    assert generator.parse_variant(
        "head=flow,sigma_min=0.2,n_trajectories=4,ot_coupling=False"
    ) == {
        "head": "flow",
        "sigma_min": 0.2,
        "n_trajectories": 4,
        "ot_coupling": False,
    }
    scores = dict(r2_pearson_top_de=0.9, e_distance_pca=1.0, mmd_pca=0.03, w2_pca=8.0)
    refs = {
        "Additive": dict(r2_pearson_top_de=0.8, e_distance_pca=3.0, mmd_pca=0.05, w2_pca=10.0),
        "replicate": dict(r2_pearson_top_de=1.0, e_distance_pca=0.0, mmd_pca=0.01, w2_pca=7.0),
    }
    pool = {"repeat": {**scores, "distinct": 40}, "interpolate": {**scores, "distinct": 500}}
    rows = [
        {"variant": "default", "cell_type": "B", "seed": s, "train_s": 10.0, "epochs": 3,
         "default_tau": 0.5, "pool": pool, "references": refs,
         **{f"tau={t:g}": {**scores, "e_distance_pca": 1.0 + t + s, "distinct": 500, "gen_s": 1}
            for t in (0.0, 0.5, 1.0)}}
        for s in (0, 1)
    ] + [
        {"variant": "head=gmm", "cell_type": "B", "seed": 0, "train_s": 5.0,
         "epochs": 3, "default_tau": 1.0,
         "pool": {"repeat": {**scores, "distinct": 500}},
         "tau=1": {**scores, "distinct": 99, "gen_s": 1, "spread": 3.0}}
    ]  # fmt: skip
    df = generator.frame(rows)
    assert len(df) == 7 and set(df.tau) == {0.0, 0.5, 1.0}
    (tmp_path / "generator.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    out = generator.main(["--report-only", "--out", str(tmp_path)])
    assert len(out) == 7
    md = (tmp_path / "generator.md").read_text()
    # mean over the two seeds at τ = 0.5: E-distance (1.5 + 2.5) / 2 = 2, sd 0.71
    line = next(ln for ln in md.splitlines() if ln.startswith("| default | 0.5 |"))
    assert "| 2 ± 0.71 |" in line and line.rstrip().endswith("| 2 |")
    # gap closed: R² (0.9 - 0.8) / (1 - 0.8) = 0.5; E-distance at τ = 0 (seed 0: 1) (1 - 3) / -3
    gaps = md.split("Fraction of the gap")[1].split("## 500 cells")[0]
    line = next(ln for ln in gaps.splitlines() if ln.startswith("| default | 0 |"))
    assert line.split("|")[3].strip() == "0.5 ± 0"
    assert line.split("|")[4].strip().startswith("0.5 ± ")  # seeds 0, 1: 2/3 and 1/3
    pools = md.split("## 500 cells from 40 control cells")[1]
    assert "| default | interpolate |" in pools and f"| {'head=gmm'} | repeat |" in pools
    assert "Per held-out type" in md
    assert "calibrate_temperature` chooses" not in md and "integration steps" not in md


def test_generator_calibration_and_steps_sections(tmp_path):
    """``generator.py``: the τ calibration chose and the flow head's steps, from rows."""
    from benchmarks import generator

    scores = dict(r2_pearson_top_de=0.9, e_distance_pca=1.0, mmd_pca=0.03, w2_pca=8.0)
    cal = {
        "reference": "validation_indices",
        "mmd": {"chosen": 1.0, "values": [2, 1]},
        "w2_gaussian": {"chosen": 0.5, "values": [1, 2]},
    }
    rows = [
        {"variant": "default", "cell_type": "B", "seed": s, "train_s": 10.0, "epochs": 3,
         "default_tau": 1.0, "calibration": cal if s else {k: v for k, v in cal.items()
                                                           if k != "reference"},
         "head_steps": {str(n): {**scores, "spread": 6.0, "gen_s": n / 4} for n in (2, 8)},
         **{f"tau={t:g}": {**scores, "w2_pca": 8.0 + t + s, "spread": 6.0 + t, "distinct": 9}
            for t in (0.5, 1.0)}}
        for s in (0, 1)
    ]  # fmt: skip
    rows[1]["real_spread"] = 3.5  # recorded since 2026-12-04; rows[0] has none
    c = generator.calibration_frame(rows)
    assert len(c) == 4 and set(c.reference) == {"validation cells", "re-drawn sample"}
    w2 = c[c.chosen_by == "w2_gaussian"]
    assert (w2.tau == 0.5).all() and np.allclose(w2.delta_w2_pca, -0.5)
    assert np.allclose(w2.spread, 6.5) and np.allclose(w2.w2_pca, [8.5, 9.5])
    assert np.allclose(c[c.chosen_by == "mmd"].delta_w2_pca, 0)
    steps = generator.steps_frame(rows)
    assert sorted(steps.n_steps) == [2, 2, 8, 8] and np.allclose(steps.gen_s, [0.5, 2, 0.5, 2])
    (tmp_path / "generator.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    generator.main(["--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "generator.md").read_text()
    section = md.split("calibrate_temperature` chooses")[1].split("## The flow head")[0]
    line = next(
        ln
        for ln in section.splitlines()
        if "| default | validation cells | 0.5 ... 1 | w2_gaussian |" in ln
    )
    assert line.rstrip().endswith("| 1 | 0.5: 1 |")  # one run, τ 0.5 chosen once
    # the τ train() chooses: MMD's lowest value among the row's τ up to the package grid's
    assert generator.trained_tau(rows[1]) == 1.0 and generator.trained_tau(rows[0]) is None
    beyond = {**rows[1], "tau=2": rows[1]["tau=1"]}
    beyond["calibration"] = {**cal, "mmd": {"chosen": 2.0, "values": [3, 2, 1]}}
    assert generator.trained_tau(beyond) == 1.0  # 2 is outside train()'s grid
    trained = md.split("## The τ `train()` chooses")[1].split("## The flow head")[0]
    assert "Chosen: default: 1 in 1 runs" in trained
    line = next(
        ln for ln in trained.splitlines() if ln.startswith("| default | chosen by train() | 1 |")
    )
    assert "| 0.03 | 10 | 7 | 2 |" in line  # seed 1 at τ = 1: MMD 0.03, W2 8 + 1 + 1, spread 7
    unrecorded = {k: v for k, v in rows[1].items() if k != "real_spread"}
    assert generator.trained_frame([unrecorded])["spread / real"].isna().all()
    steps_md = md.split("## The flow head's integration steps")[1].split("## Per held-out")[0]
    line = next(ln for ln in steps_md.splitlines() if ln.startswith("| 8 |"))
    assert line.rstrip().endswith("| 2 ± 0 | 2 |")  # gen_s 8 / 4 = 2 in both runs


def test_fit_kang_baselines_cross_fitted(synthetic, keep_threads):
    """``methods.fit_kang_baselines``: ``pca_folds`` cross-fits every baseline's coordinates."""
    from sccalmflow.data import PCA_KEY

    setup = {"condition_keys": ["cell_type", "condition"], "control": {"condition": "control"}}
    cfm = config.CFMBudget(8, 2, batch_size=16, depth=1)
    plain = methods.fit_kang_baselines(synthetic, setup, 5, cfm, seed=0)
    folded = methods.fit_kang_baselines(synthetic, setup, 5, cfm, 0, 3, ", cross-fitted")
    names = [f.name for f in plain]
    assert names == ["Control", "Additive", "TrainMean", "CFM-icfm", "CFM-otcfm", "CFM-sbcfm"]
    assert [f.name for f in folded] == [f"{n}, cross-fitted" for n in names]
    condition = {"cell_type": "A", "condition": "drug"}
    a, b = (f[1].obj.predict(condition, n_cells=50, seed=0) for f in (plain, folded))
    # one PCA for both, the training cells' coordinates differ: so do Additive's shifted cells
    assert np.allclose(plain[1].obj.pca.components_, folded[1].obj.pca.components_)
    assert not np.allclose(a.obsm[PCA_KEY], b.obsm[PCA_KEY])


def test_generator_baselines_section(tmp_path):
    """``generator.py --baselines`` rows: CaLMFlow against the baselines per seed, the ratios."""
    from benchmarks import generator

    def s(r2, e):
        return dict(r2_pearson_top_de=r2, e_distance_pca=e, mmd_pca=0.03, w2_pca=8.0)

    cal = {"reference": "validation_indices", "mmd": {"chosen": 1.0, "values": [2, 1]}}
    calm = [
        {"variant": "default", "cell_type": ct, "seed": 0, "train_s": 1.0, "epochs": 3,
         "default_tau": 1.0, "calibration": cal, "tau=0.5": {**s(0.5, 9.0), "spread": 3.0, "distinct": 9},
         "tau=1": {**s(0.9, e), "spread": 3.0, "distinct": 9}}
        for ct, e in (("B", 0.5), ("NK", 1.5))
    ] + [
        {"variant": "head=deterministic", "cell_type": ct, "seed": 0, "train_s": 1.0,
         "epochs": 3, "default_tau": 1.0, "tau=1": {**s(0.89, 2.5), "spread": 2.0, "distinct": 9}}
        for ct in ("B", "NK")
    ]  # fmt: skip
    refs = {
        "Additive": s(0.8, 3.0),
        "replicate": {**s(1.0, 0.2), "mmd_pca": 0.01, "w2_pca": 7.0},
        "CFM-icfm": s(0.85, 2.0),
        "CFM-otcfm": s(0.88, 4.0),
        "CFM-icfm, cross-fitted": s(0.87, 1.0),
    }
    base = [
        {"variant": generator.BASELINES, "cell_type": ct, "seed": 0, "pca_folds": 5,
         "references": refs, "train_s": {}}
        for ct in ("B", "NK")
    ]  # fmt: skip
    df = generator.baselines_frame(calm + base)
    # a head without a τ record (deterministic) at its own τ
    assert set(df.method) == {"CaLMFlow: default", "CaLMFlow: head=deterministic", *refs}
    mine = df[df.method == "CaLMFlow: default"]
    assert np.allclose(mine.e_distance_pca, [0.5, 1.5])  # at the τ train() chose (1)
    (tmp_path / "generator.jsonl").write_text("\n".join(json.dumps(r) for r in calm + base))
    generator.main(["--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "generator.md").read_text()
    section = md.split("## CaLMFlow against kang-loo's baselines")[1].split("## Per held-out")[0]
    assert "`--baselines 5` runs" in section and "all 2 (type, seed) pairs" in section
    # R²: 0.9 over the best CFM's 0.88 (in-sample) and 0.87; E-distance 1 over 2 and over 1
    line = next(ln for ln in section.splitlines() if "default | 0 | in-sample |" in ln)
    assert line.split("|")[4:6] == [" 1.02 ", " 0.5 "]
    line = next(ln for ln in section.splitlines() if "default | 0 | cross-fitted |" in ln)
    assert line.split("|")[4:6] == [" 1.03 ", " 1 "]
    # the gap-closed section keeps its references (Additive, replicate) only
    gaps = md.split("Fraction of the gap")[1].split("The τ")[0]
    assert "CFM-icfm" not in gaps and "| Additive |" in gaps


def test_generator_extra_metrics_section(tmp_path):
    """``generator.py``: the Gaussian W2 is tabled for the runs that recorded it only."""
    from benchmarks import generator

    def s(w2g=None):
        v = dict(r2_pearson_top_de=0.9, e_distance_pca=1.0, mmd_pca=0.03, w2_pca=8.0)
        return {**v, "distinct": 9, "spread": 2.0} | (
            {} if w2g is None else {"w2_gaussian_pca": w2g}
        )

    rows = [
        {"variant": "default", "cell_type": ct, "seed": 0, "train_s": 1.0, "epochs": 3,
         "default_tau": 1.0, "tau=1": s(w2g), "pool": {"repeat": s(w2g)}}
        for ct, w2g in (("B", 3.0), ("NK", 5.0), ("DC", None))
    ]  # fmt: skip
    (tmp_path / "generator.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    generator.main(["--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "generator.md").read_text()
    section = md.split("## The W2 between fitted Gaussians")[1].split("## Per held-out")[0]
    line = next(ln for ln in section.splitlines() if ln.startswith("| default | 1 |"))
    assert "| 4 ± 1.4 |" in line and line.rstrip().endswith("| 2 |")  # B and NK, not DC
    assert "| default | repeat |" in section
    (tmp_path / "generator.jsonl").write_text(json.dumps(rows[2]))  # no run recorded it
    generator.main(["--report-only", "--out", str(tmp_path)])
    assert "fitted Gaussians" not in (tmp_path / "generator.md").read_text()


def test_generator_real_spread():
    """``generator.real_spread``: the RMS distance to the mean of the held-out (not control) cells."""
    import anndata as ad
    from benchmarks.tasks import KangSplit

    from benchmarks import generator
    from sccalmflow.data import PCA_KEY

    z = np.array([[0.0, 0.0], [2.0, 0.0], [100.0, 100.0]])  # two held-out cells, one control
    real = ad.AnnData(
        np.zeros((3, 1), np.float32),
        obs=pd.DataFrame({"condition": ["IFN-beta", "IFN-beta", "control"]}, index=list("abc")),
        obsm={PCA_KEY: z},
    )
    split = KangSplit("B", real, real, [])
    assert generator.real_spread(split) == pytest.approx(1.0)  # each 1 from the mean (1, 0)


def test_generator_toys_page(tmp_path):
    """``benchmarks/generator_toys.py``: mean ± sd over seeds, the goals and the τ table."""
    from benchmarks import generator_toys

    def calm(seed, head, n, w2, suffix="", kind=""):
        row = {
            "task": "moons",
            "seed": seed,
            "method": f"CaLMFlow {head} ({n}{kind} traj.){suffix}",
            "head": head,
            "n_traj": n,
            "w2": w2,
            "mmd": 0.003,
        }
        if head == "flow" and n == 1 and not suffix:
            row |= {f"tau={t:g}": {"w2": w2 + t, "mmd": 0.003, "spread": 1 + t} for t in (0.0, 1.0)}
        return row

    rows = [
        r
        for s in (0, 1)
        for r in [
            {"task": "moons", "seed": s, "method": "Reference", "w2": 0.2, "mmd": 0.0002},
            calm(s, "flow", 1, 0.5), calm(s, "flow", 10, 0.3 + 0.1 * s),
            calm(s, "flow", 1, 0.45, ", EMA 0.995"), calm(s, "flow", 10, 0.46, ", EMA 0.995"),
            calm(s, "flow", 10, 0.44, ", EMA 0.995", " stratified"),
            {"task": "moons", "seed": s, "method": "CFM-otcfm", "w2": 0.4, "mmd": 0.003},
        ]
    ]  # fmt: skip
    (tmp_path / "generator_toys.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    generator_toys.main(["--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "generator_toys.md").read_text()
    assert "| moons | CaLMFlow flow (10 traj.) | 0.35 ± 0.071 | 0.003 ± 0 | 2 |" in md
    # best CaLMFlow (0.35) below the best CFM (0.4), MMD equal: met; 10 traj. beat 1
    assert "best CaLMFlow flow (10 traj.): W2 0.350" in md and "-> met" in md
    assert "flow head: 10 traj. W2 0.350 vs 1 traj. 0.500 -> more trajectories help." in md
    # N vs 1 within each setting: with the weight average 10 trajectories are worse here
    assert (
        "flow head, EMA 0.995: 10 traj. W2 0.460 vs 1 traj. 0.450 -> more trajectories do not help."
        in md
    )
    # stratified sequences are compared with the same one-trajectory model
    assert (
        "flow head, EMA 0.995: 10 stratified traj. W2 0.440 vs 1 traj. 0.450 -> more "
        "trajectories help." in md
    )
    # the swept model at its best τ (0: W2 0.5) is above the best CFM (0.4)
    assert "moons, best τ: CaLMFlow flow (1 traj.) at τ = 0: W2 0.500, MMD 0.0030 -> not met" in md
    assert "| moons | CaLMFlow flow (1 traj.) | 1 | 1.5 ± 0 | 0.003 ± 0 | 2 ± 0 | 2 |" in md


def test_generator_toys_default_budget():
    """The toys train for ``train()``'s default step budget of one-trajectory sequences."""
    from benchmarks.generator_toys import default_budget

    # moons: 2,000 sequences, 16 steps per epoch at batch 128: 2000 * sqrt(2/3) = 1633 steps
    assert default_budget(2000) == {"max_epochs": 103}
    assert default_budget(1500) == {"max_epochs": 118}  # gaussians: 1414 steps / 12 per epoch


def test_mode_fit_on_known_points():
    """Exact shares, the true noise and centres; then a mode emptied and the noise halved."""
    from benchmarks.tasks import mode_fit

    rng = np.random.default_rng(0)
    means = np.eye(3, 50) * 5
    which = np.arange(3000) % 3
    points = means[which] + rng.normal(scale=0.1, size=(3000, 50))
    fit = mode_fit(points, means)
    assert fit["mode_tv"] == 0
    assert fit["within_sd"] == pytest.approx(0.1, rel=0.02)
    assert fit["centre_error"] < 0.03  # the noise of 1,000 means: 0.1 * sqrt(50 / 1000) = 0.022
    skewed = means[np.minimum(which, 1)] + rng.normal(scale=0.05, size=(3000, 50))
    fit = mode_fit(skewed, means)  # shares 1/3, 2/3, 0
    assert fit["mode_tv"] == pytest.approx(1 / 3)
    assert fit["within_sd"] == pytest.approx(0.05, rel=0.02)


def test_generator_toys_mode_share_floors():
    """The true target with exact mode shares is closer to the reference than with modes
    drawn independently (what stratified sets can gain on W2); moons has no modes."""
    from benchmarks.generator_toys import mode_share_floors

    iid, exact, train_iid, train_exact = mode_share_floors("gaussians 2->4", 3, draws=2)
    assert iid["method"] == "Target, modes i.i.d. (mean of 2)"
    assert exact["method"] == "Target, exact mode shares (mean of 2)"
    assert train_iid["method"] == "Target, training shares, modes i.i.d. (mean of 2)"
    assert train_exact["method"] == "Target, exact training shares (mean of 2)"
    assert exact["w2"] < iid["w2"] - 0.1 and exact["mmd"] < iid["mmd"]
    assert 1.2 < exact["w2"] < 2.0  # about the sampling floor of 1,000 points in 100-d
    # the 1,500 training targets of this seed: shares 0.232 0.243 0.257 0.269 (TV 0.025)
    assert exact["sets"]["pooled_tv"] < 1e-3 < exact["sets"]["train_tv"]
    assert train_exact["sets"]["train_tv"] < 1e-3
    assert train_exact["sets"]["pooled_tv"] == pytest.approx(0.0253, abs=1e-3)
    assert train_iid["sets"]["train_tv"] < train_iid["sets"]["pooled_tv"]
    # the sets learned from this training sample are farther from fresh target samples
    assert train_exact["sets"]["w2"] > exact["sets"]["w2"]
    with pytest.raises(ValueError, match="needs a gaussians task"):
        mode_share_floors("moons", 0)


# ====================================================================== scale
def test_scale_table_and_screen(tmp_path):
    from benchmarks import scale

    written = scale.write_screen(tmp_path / "s.h5ad", 300)
    assert written["nnz"] > 0 and written["file_gib"] > 0
    row = dict(
        n_cells=10_000, nnz=5, write_s=1.0, setup_s=1.0, pca_s=2.0, train_cells_per_s=1000.0,
        epoch_cells_per_s=800.0, first_epoch_s=10.0, predict_cells_per_s=500.0,
        rss_setup_mib=1.0, rss_pca_mib=2.0, rss_train_mib=3.0, rss_predict_mib=4.0,
    )  # fmt: skip
    big = {**row, "n_cells": 1_000_000, "train_cells_per_s": 900.0, "predict_cells_per_s": 550.0}
    text = scale.table([row, big])
    assert "| 1,000,000 |" in text
    assert "training (timed steps) throughput at 1,000,000 / at 10,000 cells: 0.90" in text
    assert "generation throughput at 1,000,000 / at 10,000 cells: 1.10" in text


@pytest.mark.slow
def test_scale_script_tiny(tmp_path):
    """``benchmarks/scale.py`` end to end on two tiny screens (child processes)."""
    res = subprocess.run(
        [sys.executable, "benchmarks/scale.py", "--sizes", "400", "800", "--data-dir",
         str(tmp_path), "--warmup", "2", "--steps", "3", "--predict", "100", "--out",
         str(tmp_path / "scale.md")],
        cwd=ROOT, capture_output=True, text=True,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    rows = [json.loads(line) for line in (tmp_path / "scale.jsonl").read_text().splitlines()]
    assert [r["n_cells"] for r in rows] == [400, 800]
    for r in rows:
        assert r["steps"] >= 5 and r["predict_cells"] >= 100 and r["pred_finite"]
        assert 0 < r["rss_setup_mib"] <= r["peak_rss_mib"]
    assert "| 800 |" in (tmp_path / "scale.md").read_text()


def test_command_line_overrides_constructor_and_train_keywords():
    from benchmarks.__main__ import parser, suite_overrides

    args = parser().parse_args(["--suite", "unconditional"])
    assert suite_overrides(args, "unconditional", "full") is None
    args = parser().parse_args(
        [
            "--suite",
            "unconditional",
            "--calmflow",
            "head=flow,sigma_min=0.5",
            "--train",
            "ema_decay=0.995",
        ]
    )
    got = suite_overrides(args, "unconditional", "full")
    assert got["calmflow"] == {"head": "flow", "sigma_min": 0.5}
    assert got["train"] == {"ema_decay": 0.995}
    # the CFM baselines' budget: the suite's with the given fields replaced
    args = parser().parse_args(["--suite", "unconditional", "--cfm", "n_steps=3000"])
    cfm = suite_overrides(args, "unconditional", "full")["cfm"]
    assert (cfm.n_steps, cfm.width, cfm.batch_size) == (3000, 256, 256)
    with pytest.raises(SystemExit, match="unknown field"):
        suite_overrides(
            parser().parse_args(["--suite", "moons", "--cfm", "steps=3"]), "moons", "full"
        )


# ====================================================================== seeds
def seed_rows(suite: str, seed: int, split: str, method: str, values: dict) -> list[dict]:
    """Rows of one ``<suite>.csv`` as a suite writes them: one per (metric, space)."""
    return [
        {"suite": suite, "split": split, "method": method, "setting": "", "metric": m,
         "space": s, "value": v, "train_seconds": 1.0, "generate_seconds": 0.1,
         "n_generated": 10, "nfe": float("nan"), "seed": seed}
        for (m, s), v in values.items()
    ]  # fmt: skip


def test_seeds_page_kang_loo(tmp_path):
    """``benchmarks/seeds.py``: mean over splits per seed, mean ± sd over seeds, the ratio to
    the best CFM of each seed, the gap closed per seed; one file per seed."""
    import pandas as pd

    from benchmarks import seeds

    def values(r2, w2):
        return {("r2_pearson", "top100_de"): r2, ("e_distance", "pca"): w2 / 10,
                ("mmd", "pca"): w2 / 100, ("w2", "pca"): w2}  # fmt: skip

    files = []
    for seed in (0, 1):
        rows = []
        for split in ("A", "B"):
            rows += seed_rows("kang-loo", seed, split, "CaLMFlow", values(0.8 + 0.1 * seed, 9.0))
            rows += seed_rows("kang-loo", seed, split, "Additive", values(0.6, 11.0))
            rows += seed_rows("kang-loo", seed, split, "CFM-icfm", values(0.7, 10.0))
            rows += seed_rows("kang-loo", seed, split, "CFM-otcfm", values(0.75, 12.0))
            rows += seed_rows("kang-loo", seed, split, "Replicate (half vs half)", values(1.0, 8.0))
        files.append(tmp_path / f"s{seed}.csv")
        pd.DataFrame(rows).to_csv(files[-1], index=False)
    seeds.main(["kang-loo", *map(str, files), "--out", str(tmp_path)])
    md = (tmp_path / "kang-loo_seeds.md").read_text()
    assert "# kang-loo, seeds 0, 1" in md
    # R² 0.8 and 0.9 over the seeds: mean 0.85, sd 0.071; W2 9 on both
    assert "| CaLMFlow | 0.85 ± 0.071 | 0.9 ± 0 | 0.09 ± 0 | 9 ± 0 | 2 |" in md
    # against the best CFM of the seed: R² / 0.75 (the highest), W2 / 10 (the lowest)
    assert "| 0 | CaLMFlow | 1.07 | 0.9 | 0.9 | 0.9 |" in md
    # gap closed: R² (0.8 - 0.6) / 0.4 = 0.5 and 0.75; W2 (9 - 11) / (8 - 11) = 0.667
    gap = md.split("## Fraction of the gap")[1]
    assert "| CaLMFlow | 0.625 ± 0.18 | 0.6667 ± 0 | 0.6667 ± 0 | 0.6667 ± 0 | 2 |" in gap
    assert (tmp_path / "kang-loo_seeds.csv").exists()
    # the same page again from the gathered rows; a seed given twice is refused
    seeds.main(["kang-loo", "--report-only", "--out", str(tmp_path)])
    assert (tmp_path / "kang-loo_seeds.md").read_text() != ""
    with pytest.raises(SystemExit):
        seeds.main(["kang-loo", str(files[0]), str(files[0]), "--out", str(tmp_path)])


def test_seeds_page_unconditional_notes(tmp_path):
    """The unconditional page: one split; hand-written notes are appended."""
    import pandas as pd

    from benchmarks import seeds

    rows = []
    for seed in (0, 1, 2):
        for method, w2 in (("CaLMFlow (1 traj.)", 10.0 + seed), ("CFM-icfm", 9.0 + seed)):
            vals = {(m, s): w2 for m, s, _, _ in seeds.SEED_METRICS["unconditional"]}
            rows += seed_rows("unconditional", seed, "all cells", method, vals)
    pd.DataFrame(rows).to_csv(tmp_path / "unconditional_seeds.csv", index=False)
    (tmp_path / "unconditional_seeds_notes.md").write_text("## What these runs say\n")
    seeds.main(["unconditional", "--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "unconditional_seeds.md").read_text()
    assert "| CaLMFlow (1 traj.) | 11 ± 1 | 11 ± 1 |" in md
    assert "| 2 | CaLMFlow (1 traj.) | 1.09 |" in md  # 12 / 11
    assert md.endswith("## What these runs say\n")


# ====================================================================== metric_spread.py
def test_metric_spread_finds_which_metric_wants_the_right_spread(tmp_path):
    """Gaussian cells vs Gaussian cells, one set rescaled: E-distance and MMD are lowest at
    the real spread, the empirical W2 in 30-d at 150 cells per set below it."""
    from benchmarks import metric_spread

    rng = np.random.default_rng(0)
    z = rng.normal(size=(300, 30)) * np.linspace(3.0, 0.5, 30)
    a = metric_spread.rescaled(z, 0.5)
    np.testing.assert_allclose(a.mean(0), z.mean(0))
    np.testing.assert_allclose(a.std(0), 0.5 * z.std(0))
    df = metric_spread.run({"gauss": z}, scales=(0.6, 0.8, 1.0, 1.25), n_splits=3)
    assert len(df) == 12 and set(df.n_half) == {150}
    low = metric_spread.lowest_at(df).loc["gauss"]
    assert low["e_distance"] == low["mmd"] == 1.0
    assert low["w2"] == 0.6
    df.to_csv(tmp_path / "metric_spread.csv", index=False)
    metric_spread.main(["--report-only", "--out", str(tmp_path)])
    md = (tmp_path / "metric_spread.md").read_text()
    assert "| gauss | 0.6 | 1 | 1 |" in md


def test_jsonl_rows_record_the_software(tmp_path, keep_threads):
    """Every row ``run_jsonl`` appends carries the installed versions and the commit."""
    jsonl = tmp_path / "rows.jsonl"
    records.run_jsonl(jsonl, [0, 1], ["a"], lambda item, seed: [{"item": item, "seed": seed}])
    rows = records.read_jsonl(jsonl)
    assert [(r["item"], r["seed"]) for r in rows] == [("a", 0), ("a", 1)]
    env = rows[0]["software"]
    assert set(records.SOFTWARE) <= set(env) and "commit" in env
    assert env["torch"] == torch.__version__ and env["numpy"] == np.__version__


def test_scored_taus_and_tau_rows_read_the_tau_entries_once():
    """``"tau=<τ>"`` keys are parsed in one place; the flat rows follow the record's order."""
    row = {"cell_type": "B", "tau=0.5": {"mmd": 2.0}, "calibration": {}, "tau=1.25": {"mmd": 1.0}}
    assert records.scored_taus(row) == {0.5: {"mmd": 2.0}, 1.25: {"mmd": 1.0}}
    flat = records.tau_rows([row], ["cell_type", "seed"])
    assert [(r["tau"], r["mmd"], r["cell_type"]) for r in flat] == [
        (0.5, 2.0, "B"),
        (1.25, 1.0, "B"),
    ]
    assert np.isnan(flat[0]["seed"])
    from benchmarks import generator

    assert generator.row_taus(row) == [0.5, 1.25]


def test_generator_pooled_gap_is_the_fraction_of_the_mean_gap():
    """``pooled_gap``: (mean method − mean Additive) / (mean replicate − mean Additive), and
    the median of the per-run fractions in brackets."""
    from benchmarks import generator

    metrics = list(generator.METRICS)
    runs = [("B", 0), ("NK", 0)]
    refs = pd.DataFrame(
        [
            {"cell_type": c, "seed": s, "method": m, **dict.fromkeys(metrics, v)}
            for (c, s), add, rep in zip(runs, (0.0, 0.0), (1.0, 3.0), strict=True)
            for m, v in (("Additive", add), ("replicate", rep))
        ]
    )
    df = pd.DataFrame(
        [
            {"variant": "v", "tau": 1.0, "cell_type": c, "seed": s, **dict.fromkeys(metrics, v)}
            for (c, s), v in zip(runs, (0.5, 0.3), strict=True)
        ]
    )
    table = generator.pooled_gap(df, refs)
    # pooled: (0.4 - 0) / (2 - 0) = 0.2; per run 0.5 and 0.1, median 0.3
    assert table.loc[0, "e_distance_pca"] == "0.200 (0.300)" and table.loc[0, "runs"] == 2


def test_head_steps_set_restores_the_count_even_after_an_error():
    """``methods.head_steps_set``: the flow head's steps inside the block, its own after."""
    from types import SimpleNamespace

    model = SimpleNamespace(module=SimpleNamespace(head=SimpleNamespace(n_steps=4)))
    with methods.head_steps_set(model, 2):
        assert model.module.head.n_steps == 2
    assert model.module.head.n_steps == 4
    with pytest.raises(RuntimeError), methods.head_steps_set(model, 8):
        raise RuntimeError
    assert model.module.head.n_steps == 4


def test_sequence_fit_on_known_sequences():
    """Sequences that give every mode its share have dispersion 0, independent ones about 1;
    the first cell of each sequence is scored on its own."""
    from benchmarks.tasks import sequence_fit

    rng = np.random.default_rng(0)
    means = np.eye(3, 50) * 5
    spread = np.arange(6000) % 3  # blocks of 6: two cells in each mode
    points = means[spread] + rng.normal(scale=0.1, size=(6000, 50))
    points[::6] = means[0] + rng.normal(scale=0.3, size=(1000, 50))  # first cells, wider
    fit = sequence_fit(points, means, 6)
    assert fit["mode_dispersion"] == 0
    assert fit["first_within_sd"] == pytest.approx(0.3, rel=0.02)
    independent = means[rng.integers(3, size=6000)] + rng.normal(scale=0.1, size=(6000, 50))
    assert sequence_fit(independent, means, 6)["mode_dispersion"] == pytest.approx(1, abs=0.1)
    clumped = means[np.repeat(rng.integers(3, size=1000), 6)]  # every sequence in one mode
    assert sequence_fit(clumped, means, 6)["mode_dispersion"] == pytest.approx(6, rel=0.1)
    with pytest.raises(ValueError, match="multiple of N"):
        sequence_fit(points[:-1], means, 6)


def test_generator_toys_training_dispersion():
    """Stratified training sequences of a Gaussian task spread their cells over the modes
    (well below 1); random ones do not (about 1)."""
    from benchmarks.generator_toys import sample_task, target_mixture, training_dispersion

    points, cfg = sample_task("gaussians 2->3", 0)
    means = target_mixture("gaussians 2->3", cfg, 0).means
    assert training_dispersion(points.target, means, 8, True, 0) < 0.3
    assert training_dispersion(points.target, means, 8, False, 0) == pytest.approx(1, abs=0.15)


def test_generator_toys_over_sets():
    """Sets of the true target score the W2 of independent samples; exact mode shares score
    lower on the same references; the references are fresh and fixed by the seed."""
    from benchmarks.generator_toys import (
        N_SETS,
        over_sets,
        reference_samples,
        sample_task,
        target_mixture,
    )

    points, cfg = sample_task("gaussians 2->3", 0)
    target = target_mixture("gaussians 2->3", cfg, 0)
    refs = reference_samples(target, 300, 0)
    assert len(refs) == N_SETS and refs[0].shape == (300, cfg.dim)
    assert np.array_equal(refs[1], reference_samples(target, 300, 0)[1])
    assert not np.array_equal(refs[0], reference_samples(target, 300, 0, stream=12)[0])
    iid = np.vstack(reference_samples(target, 300, 0, stream=12))
    rng = np.random.default_rng(0)
    exact = target.means[np.arange(N_SETS * 300) % 3] + rng.normal(
        scale=target.sd, size=(N_SETS * 300, cfg.dim)
    )
    a = over_sets(iid, refs, target.means, 0)
    b = over_sets(exact, refs, target.means, 0, n_traj=3)
    assert set(a) == {"w2", "w2_sd", "mmd", "mode_tv", "pooled_tv"}
    assert b["mode_tv"] == 0 and b["mode_dispersion"] == 0
    assert b["w2"] < a["w2"] - 0.05 and 0 < a["pooled_tv"] < a["mode_tv"]
    # against training shares (here: a skewed set of shares) and the first cell per sequence
    skew = np.array([0.5, 0.25, 0.25])
    c = over_sets(exact, refs, target.means, 0, n_traj=3, train_shares=skew)
    assert c["train_tv"] == pytest.approx(1 / 6) and c["first_train_tv"] == pytest.approx(0.5)
    assert c["set_train_tv"] == pytest.approx(1 / 6)  # 300 = 3 x 100: every set exact
    d = over_sets(iid, refs, target.means, 0, train_shares=np.full(3, 1 / 3))
    assert d["train_tv"] == pytest.approx(d["pooled_tv"])
    assert d["set_train_tv"] == pytest.approx(d["mode_tv"])


def test_generator_toys_sets_section():
    """The page's sets table and the seed-by-seed comparison of N trajectories with one."""
    from benchmarks.generator_toys import markdown

    def row(seed, method, n_traj, w2, **more):
        sets = {"w2": w2, "w2_sd": 0.1, "mmd": 0.001, "mode_tv": 0.02, **more}
        return {
            "task": "gaussians 2->3",
            "seed": seed,
            "method": method,
            "n_traj": n_traj,
            "w2": w2,
            "mmd": 0.001,
            "sets": sets,
        }

    one, many = (
        "CaLMFlow flow (1 traj.)",
        "CaLMFlow flow (8 stratified traj.), ot_coupling=sequence",
    )
    rows = [row(s, one, 1, 1.5) for s in range(3)]
    rows += [row(s, many, 8, w, mode_dispersion=0.5) for s, w in enumerate([1.4, 1.6, 1.45])]
    rows += [
        {
            "task": "gaussians 2->3",
            "seed": 0,
            "method": "Target, modes i.i.d. (mean of 10)",
            "w2": 1.5,
            "mmd": 0.001,
            "sets": {"w2": 1.5, "w2_sd": 0.1, "mmd": 0.001, "mode_tv": 0.02},
        }
    ]
    md = markdown(rows)
    assert "## Over 16 generated sets" in md
    assert f"| gaussians 2->3 | {many} | 1.483 ± 0.1 | 0.001 ± 0 | 0.02 ± 0 | 0.5 ± 0 | 3 |" in md
    assert (
        f"- gaussians 2->3: {many} vs {one}: lower W2 on 2 of 3 seeds (mean difference -0.017)."
        in md
    )
    assert "generated sets" not in markdown(
        [{k: v for k, v in r.items() if k != "sets"} for r in rows]
    )
