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
