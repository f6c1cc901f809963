import warnings

import pytest
import torch

from sccalmflow.module import CaLMFlowModule
from sccalmflow.nn import build_backbone, default_backbone_config, run_backbone


@pytest.mark.parametrize("family", ["gpt_neox", "gpt2"])
def test_cached_steps_equal_one_pass_and_warn_nothing(family):
    """Our calls into transformers use its current cache API: no Future/Deprecation warning
    (a removed keyword would break generation), and cached steps equal one full pass."""
    torch.manual_seed(0)
    cfg = default_backbone_config(family, width=16, n_layers=1, n_heads=2, ffn=32, vocab_size=9)
    backbone = build_backbone(cfg).eval()
    x = torch.randn(2, 7, 16)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        full, _ = run_backbone(backbone, x)
        first, cache = run_backbone(backbone, x[:, :4], use_cache=True)
        second, cache = run_backbone(backbone, x[:, 4:], cache, use_cache=True)
    assert cache is not None
    torch.testing.assert_close(torch.cat([first, second], 1), full, atol=1e-5, rtol=1e-5)


def test_generation_warns_nothing():
    cfg = default_backbone_config(width=16, n_layers=1, n_heads=2, ffn=32, vocab_size=12)
    mod = CaLMFlowModule(7, cfg, n_time_points=4, n_trajectories=2).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        x1, _ = mod.generate(torch.zeros(2, 3, dtype=torch.long), torch.randn(2, 2, 7))
    assert x1.shape == (2, 2, 7)


def test_finetune_modes_set_what_trains():
    from sccalmflow.nn import apply_finetune

    for family, target in (("gpt_neox", "query_key_value"), ("gpt2", "c_attn")):
        cfg = default_backbone_config(family, width=16, n_layers=1, n_heads=2, ffn=32)
        frozen = apply_finetune(build_backbone(cfg), "frozen")
        assert not any(p.requires_grad for p in frozen.parameters())
        lora = apply_finetune(build_backbone(cfg), "lora", lora_rank=2)
        names = [n for n, p in lora.named_parameters() if p.requires_grad]
        assert names and all("lora_" in n and target in n for n in names)
        x = torch.randn(1, 3, 16)
        # LoRA's B starts at zero: the adapted model computes what the base model does
        base = build_backbone(cfg)
        base.load_state_dict(
            {
                k.replace("base_layer.", ""): v
                for k, v in lora.state_dict().items()
                if "lora_" not in k
            }
        )
        torch.testing.assert_close(run_backbone(lora.eval(), x)[0], run_backbone(base.eval(), x)[0])
    with pytest.raises(ValueError, match="`finetune` must be one of"):
        apply_finetune(build_backbone(cfg), "partial")


def test_pretrained_sources_that_cannot_exist_are_named(tmp_path):
    from sccalmflow.nn import check_pretrained_source, load_pretrained_backbone

    check_pretrained_source("EleutherAI/pythia-160m")  # a hub name: not checked here
    check_pretrained_source(str(tmp_path))
    with pytest.raises(FileNotFoundError, match="no such folder"):
        check_pretrained_source(str(tmp_path / "missing"))
    with pytest.raises(OSError, match="Could not load the pretrained backbone"):
        load_pretrained_backbone(str(tmp_path), local_files_only=True)  # an empty folder
