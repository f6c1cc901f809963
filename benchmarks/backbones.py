"""What each fine-tuning mode costs, for a tiny and a Pythia-160m-sized backbone (a benchmark).

For each size and mode (``full``, ``frozen``, ``lora``) a fresh process builds a
random-weight GPT-NeoX of that size, writes it with ``save_pretrained`` (with a BPE
tokenizer trained on the prompts) to a temporary folder, loads it as
``CaLMFlowModel(adata, backbone=folder, finetune=mode)`` and trains one epoch on a Kang
subsample. It reports trainable parameters, seconds per training step, peak resident memory
of the whole process (``ru_maxrss``), generation time and the saved model's size. Weights
are random: this measures cost, not quality (no network needed). Pythia-160m's published
sizes: width 768, 12 layers, 12 heads, FFN 3072, vocabulary 50,304, 2,048 positions.

    python benchmarks/backbones.py             # tiny and pythia-160m sizes, 3 modes
    python benchmarks/backbones.py --quick     # tiny only
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

if __package__ in (None, ""):  # `python benchmarks/backbones.py` from the repository root
    sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

RESULTS = Path(__file__).resolve().parent / "results"
SIZES = {
    "tiny": dict(hidden_size=64, num_hidden_layers=2, num_attention_heads=4, intermediate_size=256),
    "pythia-160m": dict(
        hidden_size=768, num_hidden_layers=12, num_attention_heads=12, intermediate_size=3072
    ),
}
VOCAB = {"tiny": 512, "pythia-160m": 50304}
MODES = ("full", "frozen", "lora")
N_CELLS, BATCH = 512, 32


def write_backbone(folder: Path, size: str, texts: list[str]) -> None:
    """A random-weight GPT-NeoX of ``size`` and a BPE tokenizer trained on ``texts``."""
    import torch
    from transformers import AutoConfig, AutoModel

    from sccalmflow.data import build_bpe_tokenizer

    fast = build_bpe_tokenizer(texts * 10)
    config = AutoConfig.for_model(
        "gpt_neox",
        vocab_size=VOCAB[size],
        max_position_embeddings=2048,
        rotary_pct=0.25,
        **SIZES[size],
    )
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    fast.save_pretrained(folder)


def measure(size: str, mode: str) -> dict:
    """One (size, mode) in this process: build, train one epoch, generate, save."""
    import torch

    import sccalmflow as scf
    from sccalmflow import CaLMFlowModel

    torch.set_num_threads(1)
    adata = scf.datasets.kang2018()
    adata = adata[adata.obs_names[:: max(1, adata.n_obs // N_CELLS)][:N_CELLS]].copy()
    CaLMFlowModel.setup_anndata(adata, **scf.datasets.kang2018_setup())
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "lm"
        prompts = CaLMFlowModel(adata, n_pca=10).prompts(
            adata.obs[["cell_type", "condition"]].drop_duplicates()
        )
        write_backbone(folder, size, prompts)
        rss_before = _rss_gib()
        model = CaLMFlowModel(adata, backbone=str(folder), finetune=mode, n_pca=50)
        params = sum(p.numel() for p in model.module.parameters())
        trainable = sum(p.numel() for p in model.module.parameters() if p.requires_grad)
        t0 = time.perf_counter()
        model.train(
            max_epochs=1,
            batch_size=BATCH,
            validation_size=0,
            accelerator="cpu",
            enable_progress_bar=False,
        )
        train_s = time.perf_counter() - t0
        steps = -(-adata.n_obs // BATCH)
        t0 = time.perf_counter()
        model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=100)
        gen_s = time.perf_counter() - t0
        model.save(Path(tmp) / "saved")
        saved_mb = sum(f.stat().st_size for f in (Path(tmp) / "saved").rglob("*") if f.is_file())
    return {
        "size": size,
        "finetune": mode,
        "parameters (M)": round(params / 1e6, 2),
        "trainable (M)": round(trainable / 1e6, 3),
        "s / step (32 seq.)": round(train_s / steps, 3),
        "peak RSS (GiB)": round(_rss_gib(), 2),
        "RSS before model (GiB)": round(rss_before, 2),
        "generate 100 cells (s)": round(gen_s, 2),
        "saved (MB)": round(saved_mb / 1e6, 1),
    }


def _rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def main(argv: list[str] | None = None) -> list[dict]:
    """Measure every (size, mode), each in a fresh process; write ``backbones.md``."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--one", nargs=2, metavar=("SIZE", "MODE"), help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--note", default="", help="a line on how the run went (load, machine)")
    args = parser.parse_args(argv)
    if args.one:
        print(json.dumps(measure(*args.one)))
        return []
    rows = []
    for size in ["tiny"] if args.quick else list(SIZES):
        for mode in MODES:  # each in a fresh process: ru_maxrss is the process's peak
            out = subprocess.run(
                [sys.executable, __file__, "--one", size, mode],
                capture_output=True,
                text=True,
                check=True,
            )
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), flush=True)
    if not args.quick:
        import pandas as pd

        from benchmarks.report import md_table

        text = "\n".join(
            [
                "# backbones: what each fine-tuning mode costs",
                "",
                __doc__.split("\n\n")[1].replace("\n", " "),
                "",
                f"{N_CELLS} Kang cells, batch {BATCH} sequences, T = 16, one epoch, 1 CPU "
                "thread, each row in a fresh process. The base model (no LM head) of "
                "Pythia-160m has 124 M parameters: its '160m' counts the separate output "
                "embedding (38.6 M), which CaLMFlow does not use.",
                "",
                md_table(pd.DataFrame(rows)),
                "",
                args.note,
            ]
        )
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "backbones.md").write_text(text + "\n")
    return rows


if __name__ == "__main__":
    main()
