import numpy as np
import pytest
import torch

from sccalmflow.data import PCAFeatures
from sccalmflow.module import CaLMFlowModule
from sccalmflow.nn import HEADS, StateTokenizer, default_backbone_config, gaussian_kl


def _module(**kw):
    torch.manual_seed(0)
    args = dict(
        n_time_points=5,
        n_space_tokens=2,
        n_trajectories=3,
        latent_dim=4,
        head_hidden=16,
        tokenizer_hidden=16,
        head="variational",
    )
    args.update(kw)
    cfg = default_backbone_config(width=16, n_layers=1, n_heads=2, ffn=32, vocab_size=12)
    return CaLMFlowModule(7, cfg, **args)


def test_tokenizer_shapes():
    tok = StateTokenizer(7, n_space_tokens=3, width=16, n_time_points=5, hidden=8)
    z = torch.randn(4, 2, 5, 7)
    out = tok(z, torch.arange(5))
    assert out.shape == (4, 2, 15, 16)
    # state-major order: tokens of state i are positions 3i..3i+2
    single = tok(z[:, :, 1:2], torch.tensor([1]))
    assert torch.allclose(out[:, :, 3:6], single)


def test_pca_round_trip_and_decoder(kang_small):
    X = kang_small.X.toarray()
    pca = PCAFeatures(50, "component").fit(X)
    Z = pca.transform(X)
    assert Z.shape == (kang_small.n_obs, 50)
    assert np.allclose(Z.std(0), 1, atol=1e-2)
    # decoding the features of a decoded point gives the same features (projection)
    Xr = pca.inverse_transform(Z, clip_negative=False)
    assert np.allclose(pca.transform(Xr), Z, atol=1e-3)
    # full rank: decoding is exact
    Xs = X[:, :40] - X[:, :40].mean(0) + X[0, :40]  # 40 genes: full-rank PCA stays cheap
    full = PCAFeatures(39, "global").fit(Xs)
    assert np.allclose(
        full.inverse_transform(full.transform(Xs), clip_negative=False), Xs, atol=1e-3
    )
    mod = _module()
    mod2 = CaLMFlowModule(
        50,
        default_backbone_config(width=16, n_layers=1, n_heads=2, ffn=32, vocab_size=12),
        pca_mean=torch.from_numpy(pca.mean_),
        pca_components=torch.from_numpy(pca.components_),
        pca_scale=torch.from_numpy(pca.scale_),
    )
    assert mod.pca_components.shape == (7, 0)
    assert np.allclose(
        mod2.decode_genes(torch.from_numpy(Z)).numpy(), pca.inverse_transform(Z), atol=1e-4
    )


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("path", ["straight", "bridge"])
def test_kv_cache_equals_uncached(head, path):
    mod = _module(head=head, path=path, sigma_min=0.1).eval()
    p = torch.randint(0, 12, (4, 6))
    x0 = torch.randn(4, 3, 7)
    a, pa = mod.generate(p, x0, return_path=True, generator=torch.Generator().manual_seed(0))
    b, pb = mod.generate(
        p, x0, return_path=True, use_cache=False, generator=torch.Generator().manual_seed(0)
    )
    assert a.shape == (4, 3, 7) and pa.shape == (4, 3, 5, 7)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(pa, pb, atol=1e-5)
    assert torch.equal(pa[:, :, 0], x0)


@pytest.mark.parametrize("head", HEADS)
@pytest.mark.parametrize("use_cache", [True, False])
def test_context_continues_a_sequence(head, use_cache):
    """Generating the last trajectory of a sequence after the first two given as context is
    generating all three at once (same noise): the context is read exactly as the model's own
    earlier trajectories."""
    mod = _module(head=head).eval()
    p = torch.randint(0, 12, (4, 6))
    x0 = torch.randn(4, 3, 7)
    noise = torch.randn(4, 3, 4, mod.noise_dim)
    kw = dict(return_path=True, use_cache=use_cache)
    whole, paths = mod.generate(p, x0, noise=noise, **kw)
    last, path = mod.generate(p, x0[:, 2:], noise=noise[:, 2:], context=paths[:, :2], **kw)
    assert last.shape == (4, 1, 7) and path.shape == (4, 1, 5, 7)
    assert torch.allclose(last, whole[:, 2:], atol=1e-5)
    assert torch.allclose(path, paths[:, 2:], atol=1e-5)


@pytest.mark.parametrize("head", HEADS)
def test_generation_matches_teacher_forcing_layout(head):
    """The states generate() produces are what the training pass would predict from them."""
    mod = _module(head=head).eval()
    p = torch.randint(0, 12, (3, 6))
    x0 = torch.randn(3, 3, 7)
    _, path = mod.generate(p, x0, temperature=0.0, return_path=True)
    with torch.no_grad():
        v = mod.next_state_velocity(p, path, temperature=0.0)
    dt = (mod.time_grid[1:] - mod.time_grid[:-1]).view(1, 1, -1, 1)
    assert torch.allclose(path[:, :, :-1] + dt * v, path[:, :, 1:], atol=1e-5)


@pytest.mark.parametrize("head", HEADS)
def test_loss_parts_and_gradients(head):
    mod = _module(head=head)
    p = torch.randint(0, 12, (4, 6))
    inf = mod.inference(torch.randn(4, 3, 7), torch.randn(4, 3, 7))
    gen = mod.generative(p, inf["path"].states, inf["path"].target)
    assert gen["reconstruction"].shape == (4, 3, 4)
    assert (gen["kl"] is None) == (head in ("deterministic", "flow", "gmm"))
    out = mod.loss({}, inf, gen, kl_weight=0.5)
    assert out.reconstruction_loss["reconstruction_loss"].shape == (4,)
    assert torch.allclose(
        out.loss,
        (out.reconstruction_loss["reconstruction_loss"] + 0.5 * out.kl_local["kl_local"]).mean(),
    )
    out.loss.backward()
    head_grads = [p.grad for p in mod.head.parameters() if p.requires_grad]
    assert any(g is not None and g.abs().sum() > 0 for g in head_grads)
    assert mod.state_tokenizer.mlp[0].weight.grad is not None
    assert mod.backbone.get_input_embeddings().weight.grad is not None


def test_gpt2_backbone():
    cfg = default_backbone_config("gpt2", width=16, n_layers=1, n_heads=2, ffn=32, vocab_size=12)
    mod = CaLMFlowModule(7, cfg, n_time_points=4).eval()
    p = torch.randint(0, 12, (2, 5))
    x0 = torch.randn(2, 1, 7)
    a, _ = mod.generate(p, x0, generator=torch.Generator().manual_seed(0))
    b, _ = mod.generate(p, x0, use_cache=False, generator=torch.Generator().manual_seed(0))
    assert torch.allclose(a, b, atol=1e-5)


def test_latent_carries_information_on_toy_flow():
    """On a toy flow whose velocity depends on the source, the paper's head's latent matters:
    decoding the posterior mean predicts far better than decoding a draw from the prior, and
    the KL stays away from zero (no posterior collapse)."""
    torch.manual_seed(0)
    mod = _module(n_trajectories=1, n_space_tokens=1, latent_dim=4, head_hidden=32)
    mod.train()
    opt = torch.optim.AdamW(mod.parameters(), 3e-3)
    prompt = torch.zeros(64, 2, dtype=torch.long)
    for _ in range(200):
        x0 = torch.randn(64, 1, 7)
        x1 = x0 + 2.0 * x0.flip(-1)  # the velocity depends on the source
        inf = mod.inference(x0, x1)
        gen = mod.generative(prompt, inf["path"].states, inf["path"].target)
        loss = mod.loss({}, inf, gen, kl_weight=0.01).loss
        opt.zero_grad()
        loss.backward()
        opt.step()
    mod.eval()
    x0 = torch.randn(256, 1, 7)
    x1 = x0 + 2.0 * x0.flip(-1)
    with torch.no_grad():
        z = mod.path.sample(x0, x1, mod.time_grid).states
        h = mod.history_states(prompt[:1].expand(256, -1), z)
        mu, logvar = mod.head.posterior(h)
        target = (z[:, :, 1:] - z[:, :, :-1]) * (mod.n_time_points - 1)
        err_posterior = (mod.head.decoder(mu) - target).pow(2).sum(-1).mean()
        prior = mod.head.decode_prior(mu.shape[:-1], generator=torch.Generator().manual_seed(0))
        err_prior = (prior - target).pow(2).sum(-1).mean()
        kl = gaussian_kl(mu, logvar).sum(-1).mean()
    assert err_posterior < 0.8 * err_prior
    assert kl > 1.0
