"""Speed of the default CaLMFlow model on this machine (a benchmark, not a test).

Prints training throughput (cells/s), generation throughput (cells/s), peak memory of
100,000-cell generation, the KV-cache speed-up, and the machine's matrix-multiply FLOP rate
measured in the same run, with how far generation is from that FLOP floor.

    python benchmarks/speed.py            # full default training on Kang (minutes)
    python benchmarks/speed.py --quick    # 3 training epochs (throughput only), then the same generation checks
    python -m benchmarks.speed --quick    # the same
    python benchmarks/speed.py --budget   # only the default training length and time: a
                                          # 1,500-cell screen and the Kang data
"""

from __future__ import annotations

import argparse
import json
import logging
import subprocess
import sys
import time
import warnings

import torch

from sccalmflow.datasets import kang2018_setup


def matmul_flops(n: int = 512, seconds: float = 2.0) -> float:
    """Sustained float32 matrix-multiply rate (FLOP/s) of this machine with torch."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    for _ in range(3):
        a @ b
    reps, t0 = 0, time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        a @ b
        reps += 1
    return 2 * n**3 * reps / (time.perf_counter() - t0)


def generation_flops_per_cell(model) -> float:
    """Multiply-add FLOPs to generate one cell (one trajectory, T - 1 cached steps).

    Counts the dense layers (2 x parameters x tokens) of the state tokenizer MLP, the backbone
    blocks and the head for the K new tokens of each step, plus attention over the context.
    """
    mod = model.module
    T, K = mod.n_time_points, mod.n_space_tokens
    width = model.backbone_config_.get("hidden_size") or model.backbone_config_["n_embd"]
    emb = mod.backbone.get_input_embeddings().weight.numel()
    block_params = sum(p.numel() for p in mod.backbone.parameters()) - emb
    tok_params = sum(p.numel() for p in mod.state_tokenizer.mlp.parameters())
    head_params = sum(p.numel() for p in mod.head.parameters())
    n_layers = model.backbone_config_.get("num_hidden_layers") or model.backbone_config_["n_layer"]
    flops = 0.0
    for i in range(T - 1):
        context = model.prompt_length + (i + 1) * K
        flops += 2 * tok_params + 2 * head_params
        flops += K * (2 * block_params + n_layers * 4 * context * width)
    return flops


def _generate_child(path: str, n_cells: int, decode: bool) -> None:
    """Child process: load, generate, print peak RSS (so the parent's memory does not count)."""
    import resource

    import sccalmflow as scf

    adata = scf.datasets.kang2018()
    model = scf.CaLMFlowModel.load(path, adata=adata)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    t0 = time.perf_counter()
    pred = model.predict(
        {"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]},
        n_cells=n_cells,
        seed=0,
        decode=decode,
    )
    dt = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(
        json.dumps({"seconds": dt, "rss_before_mib": rss0, "peak_rss_mib": peak, "n": pred.n_obs})
    )


def cfm_generation(model, train, cond: dict, *, quick: bool) -> None:
    """10,000 cells from OT-CFM with dopri5 (atol = rtol = 1e-4), small and paper-size MLPs.

    Both sides decode to gene space (the baselines always do). The number of function
    evaluations depends on the learned field, so each CFM is trained first (fewer steps with
    ``--quick``) on the same cells and PCA as the model.
    """
    from sccalmflow.baselines import CFM

    t0 = time.perf_counter()
    model.predict(cond, n_cells=10_000, seed=0)
    calmflow_s = time.perf_counter() - t0
    print(f"CaLMFlow: 10,000 cells decoded to genes in {calmflow_s:.2f} s")

    for width, steps in ((256, 1000), (1024, 300 if quick else 2000)):
        cfm = CFM("otcfm", width=width, depth=4, n_steps=steps)
        t0 = time.perf_counter()
        cfm.fit(train, **kang2018_setup(), seed=0)
        fit_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        cfm.predict(cond, n_cells=10_000, seed=0)
        dt = time.perf_counter() - t0
        print(
            f"CFM-otcfm 4x{width} ({steps} steps, trained in {fit_s:.0f} s): 10,000 cells with "
            f"dopri5 in {dt:.2f} s (NFE {cfm.nfe_:.0f}) -> CaLMFlow is {dt / calmflow_s:.2f}x "
            "as fast (> 1: faster)"
        )


def training_budget() -> None:
    """Default ``train()`` on a 1,500-cell synthetic screen and on Kang: epochs and minutes."""
    import sccalmflow as scf

    screen = scf.datasets.synthetic_perturbation(
        n_cells=1500, n_genes=2000, n_cell_types=8, n_perturbations=2, interaction=1.0
    )
    held = ((screen.obs.cell_type == "type0") & (screen.obs.perturbation == "pert0")).to_numpy()
    kang = scf.datasets.kang2018()
    k_held = ((kang.obs.cell_type == "CD14 Mono") & (kang.obs.condition == "IFN-beta")).to_numpy()
    for name, data, setup in (
        ("1,500-cell screen (8 types x 2 perturbations, 2,000 genes)", screen[~held], scf.datasets.synthetic_setup()),
        ("Kang, CD14 Mono IFN-beta held out", kang[~k_held], kang2018_setup()),
    ):  # fmt: skip
        train = data.copy()
        scf.CaLMFlowModel.setup_anndata(train, **setup)
        model = scf.CaLMFlowModel(train)
        t0 = time.perf_counter()
        model.train(enable_progress_bar=False)
        dt = time.perf_counter() - t0
        s = model.training_summary
        print(
            f"{name}: {train.n_obs:,} cells, {s['epochs']} of at most {s['max_epochs']} epochs "
            f"({s['steps_per_epoch']} steps each), weights of epoch {s['best_epoch'] + 1}: "
            f"{dt:.0f} s ({dt / 60:.2f} min)",
            flush=True,
        )


def main(argv: list[str] | None = None) -> None:
    """Print the speed figures (or, with ``--child``, one generation run)."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--budget", action="store_true", help="only the default training length")
    parser.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch CPU threads inside train/predict (default: the package's scf.settings.n_threads)",
    )
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    warnings.filterwarnings("ignore")
    logging.getLogger("lightning.pytorch").setLevel(logging.ERROR)
    if args.child:
        import sccalmflow as scf

        scf.settings.n_threads = int(args.child[3])
        _generate_child(args.child[0], int(args.child[1]), args.child[2] == "genes")
        return

    import tempfile

    import sccalmflow as scf

    if args.threads:
        scf.settings.n_threads = args.threads
    n_threads = scf.settings.n_threads or torch.get_num_threads()
    torch.set_num_threads(n_threads)  # the FLOP rate and the CFM baseline use the same count
    print(
        f"torch {torch.__version__}, {n_threads} threads "
        f"(scf.settings.n_threads={scf.settings.n_threads})"
    )
    if args.budget:
        training_budget()
        return
    flops = matmul_flops()
    print(f"matmul rate: {flops / 1e9:.1f} GFLOP/s (float32, 512x512)")

    adata = scf.datasets.kang2018()
    held = (
        (adata.obs["cell_type"] == "CD14 Mono") & (adata.obs["condition"] == "IFN-beta")
    ).to_numpy()
    train = adata[~held].copy()
    scf.CaLMFlowModel.setup_anndata(train, **kang2018_setup())
    model = scf.CaLMFlowModel(train)
    t0 = time.perf_counter()
    model.train(max_epochs=3 if args.quick else None, enable_progress_bar=False)
    train_s = time.perf_counter() - t0
    epochs = len(model.history["train_loss"])
    n_train = int(0.9 * train.n_obs)
    print(
        f"training: {epochs} epochs in {train_s:.1f} s -> {epochs * n_train / train_s:,.0f} "
        f"cells/s ({train_s / 60:.2f} min; target <= 5 min for the default run)"
    )

    cond = {"cell_type": ["CD14 Mono"], "condition": ["IFN-beta"]}
    per_cell = generation_flops_per_cell(model)
    for n, cache in ((10_000, True), (2_000, True), (2_000, False)):
        t0 = time.perf_counter()
        model.predict(cond, n_cells=n, seed=0, use_cache=cache, decode=False)
        dt = time.perf_counter() - t0
        floor = n * per_cell / flops
        print(
            f"generate {n:>6,} cells, cache={cache!s:5}: {dt:6.2f} s -> {n / dt:8,.0f} cells/s; "
            f"FLOP floor {floor:.3f} s ({dt / floor:,.0f}x above it)"
        )
        if n == 2_000:
            (cached := dt) if cache else print(
                f"KV-cache speed-up: {dt / cached:.1f}x (target >= 3x)"
            )
    cfm_generation(model, train, cond, quick=args.quick)
    with tempfile.TemporaryDirectory() as tmp:
        model.save(tmp, overwrite=True)
        for space in ("pca", "genes"):
            out = subprocess.run(
                [
                    sys.executable,
                    __file__,
                    "--child",
                    tmp,
                    "100000",
                    space,
                    str(n_threads),
                ],
                capture_output=True,
                text=True,
                check=True,
            )
            res = json.loads(out.stdout.strip().splitlines()[-1])
            print(
                f"generate 100,000 cells (chunked, output in {space} space): {res['seconds']:.1f} s, "
                f"peak RSS {res['peak_rss_mib']:,.0f} MiB (process before generating: "
                f"{res['rss_before_mib']:,.0f} MiB; target < 2 GiB)"
            )
    print(f"theoretical FLOPs per generated cell: {per_cell / 1e6:.2f} MFLOP")


if __name__ == "__main__":
    main()
