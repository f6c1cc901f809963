"""Conditional flow matching baseline (torchcfm) in the scaled PCA feature space."""

from __future__ import annotations

import time
from typing import Literal

import anndata as ad
import numpy as np
import torch
from torch import nn

from ..utils import check_int, check_number
from ._base import BaselineMethod

Variant = Literal["icfm", "otcfm", "sbcfm"]
_ACTIVATIONS = {"selu": nn.SELU, "silu": nn.SiLU}


class _VectorField(nn.Module):
    """MLP ``v(x, t, c)``: input ``[x (D), t (1), one-hot c (C)]`` -> velocity (D)."""

    def __init__(self, dim: int, n_cond: int, width: int, depth: int, activation: str):
        super().__init__()
        act = _ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        d_in = dim + 1 + n_cond
        for _ in range(depth):
            layers += [nn.Linear(d_in, width), act()]
            d_in = width
        layers.append(nn.Linear(d_in, dim))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor, t: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return self.net(torch.cat([x, t.reshape(-1, 1).expand(x.shape[0], 1), c], dim=1))


class CFM(BaselineMethod):
    """Conditional flow matching from N(0, I) to the cells of each condition (torchcfm).

    The flow lives in the scaled PCA features ``z`` of :attr:`pca` (the main model's space
    for the same ``adata`` and PCA settings). A condition is the concatenation of one
    one-hot block per condition key (all keys, perturbation and context alike); the network
    sees ``[x_t, t, condition]``. Each training step draws ``batch_size`` cells uniformly
    (with replacement) and as many N(0, I) samples; ``"otcfm"`` and ``"sbcfm"`` then pair
    them by a mini-batch OT plan computed **within each condition** of the batch (the plan
    of torchcfm's ``ot_sampler`` on the noise and cells of that condition, pairs drawn from
    it as torchcfm does), so the noise reaching a condition stays N(0, I). The probability
    path, target velocity and noise come from torchcfm's flow matcher; the loss is the
    mean squared error to the conditional velocity; the optimiser is Adam.

    Generation integrates ``dz/dt = v(z, t, condition)`` from ``t = 0`` (``z ~ N(0, I)``) to
    ``t = 1`` with torchdiffeq's ``dopri5``; the number of function evaluations is kept in
    :attr:`nfe_` and ``pred.uns["cfm"]["nfe"]``.

    Parameters
    ----------
    variant
        ``"icfm"`` (:class:`torchcfm.ConditionalFlowMatcher`, independent coupling),
        ``"otcfm"`` (:class:`torchcfm.ExactOptimalTransportConditionalFlowMatcher`) or
        ``"sbcfm"`` (:class:`torchcfm.SchrodingerBridgeConditionalFlowMatcher`, exact OT).
    sigma
        Path noise. ``None``: torchcfm's default, 0 for ``icfm``/``otcfm``, 1 for ``sbcfm``.
    width, depth
        Hidden width and number of hidden layers of the MLP (paper: 1024 x 4).
    activation
        ``"selu"`` or ``"silu"``.
    n_steps, batch_size, lr
        Adam steps, cells per step, learning rate.
    atol, rtol
        Tolerances of the ``dopri5`` solver at generation.
    device
        Torch device for training and generation (results are reproducible on CPU).

    Attributes
    ----------
    loss_history
        Training loss per step (``numpy`` array, after :meth:`fit`).
    nfe_
        Function evaluations of the last :meth:`predict`.
    training_summary
        ``seconds``, ``n_cells``, ``n_pca``, ``n_steps``, ``initial_loss`` and
        ``final_loss`` (means over the first / last 10% of steps).

    Notes
    -----
    Training uses a plain torch loop; all randomness comes from ``seed`` in :meth:`fit`
    (a private torch RNG state and a numpy generator; the global RNGs are left untouched),
    so fitting twice with the same seed on CPU gives the same network.
    """

    method_name = "CFM"

    def __init__(
        self,
        variant: Variant = "otcfm",
        *,
        sigma: float | None = None,
        width: int = 1024,
        depth: int = 4,
        activation: Literal["selu", "silu"] = "selu",
        n_steps: int = 2000,
        batch_size: int = 256,
        lr: float = 1e-3,
        atol: float = 1e-4,
        rtol: float = 1e-4,
        device: str | torch.device = "cpu",
    ):
        super().__init__()
        if variant not in ("icfm", "otcfm", "sbcfm"):
            raise ValueError(f"variant must be 'icfm', 'otcfm' or 'sbcfm', not {variant!r}.")
        if activation not in _ACTIVATIONS:
            raise ValueError(f"activation must be one of {list(_ACTIVATIONS)}, not {activation!r}.")
        self.variant = variant
        self.sigma = (
            check_number("sigma", sigma, minimum=0)
            if sigma is not None
            else (1.0 if variant == "sbcfm" else 0.0)
        )
        self.width = check_int("width", width, minimum=1)
        self.depth = check_int("depth", depth, minimum=1)
        self.activation = activation
        self.n_steps = check_int("n_steps", n_steps, minimum=1)
        self.batch_size = check_int("batch_size", batch_size, minimum=1)
        self.lr = check_number("lr", lr, minimum=0, exclusive_minimum=True)
        self.atol = check_number("atol", atol, minimum=0, exclusive_minimum=True)
        self.rtol = check_number("rtol", rtol, minimum=0, exclusive_minimum=True)
        self.device = torch.device(device)
        self.network: _VectorField | None = None
        self.loss_history: np.ndarray | None = None
        self.nfe_: int | None = None

    # ---------------------------------------------------------------- parts
    def _flow_matcher(self):
        import torchcfm

        if self.variant == "icfm":
            return torchcfm.ConditionalFlowMatcher(sigma=self.sigma)
        if self.variant == "otcfm":
            return torchcfm.ExactOptimalTransportConditionalFlowMatcher(sigma=self.sigma)
        return torchcfm.SchrodingerBridgeConditionalFlowMatcher(sigma=self.sigma, ot_method="exact")

    def _onehot(self, codes: np.ndarray) -> np.ndarray:
        """Integer codes (n x n_keys) -> concatenated one-hot blocks (n x sum of categories)."""
        blocks = []
        for j, k in enumerate(self.condition_keys):
            block = np.zeros((codes.shape[0], len(self.categories[k])), dtype=np.float32)
            block[np.arange(codes.shape[0]), codes[:, j]] = 1.0
            blocks.append(block)
        return np.concatenate(blocks, axis=1)

    @staticmethod
    def _pair_within(
        ot_sampler, x0: torch.Tensor, x1: torch.Tensor, labels: np.ndarray, rng: np.random.Generator
    ) -> tuple[np.ndarray, np.ndarray]:
        """Row indices ``(i, j)`` pairing ``x0[i]`` with ``x1[j]`` by an OT plan per label.

        Noise rows are assigned to the labels of the cell rows they sit beside, so every
        label has as many noise samples as cells; each label's plan is torchcfm's
        ``ot_sampler.get_map`` on its rows and pairs are drawn from it with replacement.
        """
        i_all = np.empty(len(labels), dtype=np.int64)
        j_all = np.empty(len(labels), dtype=np.int64)
        for label in np.unique(labels):
            rows = np.flatnonzero(labels == label)
            if len(rows) == 1:
                i_all[rows], j_all[rows] = rows, rows
                continue
            rows_t = torch.as_tensor(rows, device=x0.device)
            pi = ot_sampler.get_map(x0[rows_t], x1[rows_t])
            p = pi.ravel() / pi.sum()
            i, j = np.divmod(rng.choice(p.size, size=len(rows), p=p), len(rows))
            i_all[rows], j_all[rows] = rows[i], rows[j]
        return i_all, j_all

    # ------------------------------------------------------------- training
    def _fit_features(self, z: np.ndarray, codes: np.ndarray) -> None:
        from torchcfm import ConditionalFlowMatcher

        fm = self._flow_matcher()
        ot_sampler = getattr(fm, "ot_sampler", None)
        onehot = self._onehot(codes)
        _, labels = np.unique(codes, axis=0, return_inverse=True)
        labels = labels.ravel()
        dev = self.device
        z_t = torch.as_tensor(z, dtype=torch.float32, device=dev)
        c_t = torch.as_tensor(onehot, dtype=torch.float32, device=dev)
        rng = np.random.default_rng(self._seed)
        losses = np.empty(self.n_steps)
        start = time.perf_counter()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self._seed)
            net = _VectorField(z.shape[1], onehot.shape[1], self.width, self.depth, self.activation)
            net = net.to(dev)
            opt = torch.optim.Adam(net.parameters(), lr=self.lr)
            net.train()
            for step in range(self.n_steps):
                idx = rng.integers(z.shape[0], size=self.batch_size)
                idx_t = torch.as_tensor(idx, device=dev)
                x1, c = z_t[idx_t], c_t[idx_t]
                x0 = torch.randn(x1.shape).to(dev)
                if ot_sampler is not None:
                    i, j = self._pair_within(ot_sampler, x0, x1, labels[idx], rng)
                    i_t, j_t = torch.as_tensor(i, device=dev), torch.as_tensor(j, device=dev)
                    x0, x1, c = x0[i_t], x1[j_t], c[j_t]
                t = torch.rand(x1.shape[0]).to(dev)
                # the flow matcher's own path (sigma_t, conditional velocity); pairing done above
                t, xt, ut = ConditionalFlowMatcher.sample_location_and_conditional_flow(
                    fm, x0, x1, t=t
                )
                loss = torch.mean((net(xt, t, c) - ut) ** 2)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                losses[step] = loss.item()
        net.eval()
        self.network = net
        self.loss_history = losses
        tenth = max(1, self.n_steps // 10)
        self.training_summary = {
            "n_steps": self.n_steps,
            "train_seconds": time.perf_counter() - start,
            "initial_loss": float(losses[:tenth].mean()),
            "final_loss": float(losses[-tenth:].mean()),
            "variant": self.variant,
            "sigma": self.sigma,
        }

    # ----------------------------------------------------------- generation
    def _generate(self, codes: np.ndarray, counts: np.ndarray, seed: int) -> np.ndarray:
        from torchdiffeq import odeint

        dev = self.device
        net = self.network
        cond = torch.as_tensor(
            self._onehot(np.repeat(codes, counts, axis=0)), dtype=torch.float32, device=dev
        )
        gen = torch.Generator().manual_seed(seed)
        z0 = torch.randn(int(counts.sum()), self.pca.n_components, generator=gen).to(dev)
        nfe = 0

        def velocity(t: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
            nonlocal nfe
            nfe += 1
            return net(x, t.to(x.dtype), cond)

        times = torch.tensor([0.0, 1.0], device=dev)
        with torch.no_grad():
            traj = odeint(velocity, z0, times, method="dopri5", atol=self.atol, rtol=self.rtol)
        self.nfe_ = nfe
        return traj[-1].cpu().numpy().astype(np.float32)

    def _annotate(self, pred: ad.AnnData) -> None:
        pred.uns["cfm"] = {
            "nfe": int(self.nfe_),
            "variant": self.variant,
            "sigma": self.sigma,
            "atol": self.atol,
            "rtol": self.rtol,
        }
