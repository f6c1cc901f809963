"""Generation: :meth:`~sccalmflow.CaLMFlowModel.predict` and what it needs."""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import torch

from ..data import (
    PCA_KEY,
    ROW_BLOCK,
    H5adRowWriter,
    check_h5ad_path,
    interpolate_repeats,
    pca_uns_key,
    resample_pool,
    smooth_repeats,
    write_pca,
)
from ..flow import AutoregressiveSolver
from ..utils import check_bool, torch_threads, warn_user
from ..utils import progress_bar as tqdm_bar
from ._checks import check_predict_arguments, check_prediction_size


@dataclass
class _Sources:
    """Where the paths of a prediction start: features, their cell names, pools per context.

    ``shifts``: ``(n_rows, D)`` additive shifts of the requested rows (``source="additive"``).
    """

    features: np.ndarray | None
    names: np.ndarray | None
    pools: dict[tuple, np.ndarray]
    shifts: np.ndarray | None = None


@dataclass
class _Draws:
    """The generated states of one condition (``n_seq * N`` paths)."""

    x1: np.ndarray
    source: np.ndarray
    paths: np.ndarray | None


#: The most cells of one chain of sequences (``predict(chain=h)``).
CHAIN_CELLS = 1000

#: Requests of more cells than this get a progress bar by default (``progress_bar=None``).
PROGRESS_MIN_CELLS = 10_000


def _progress(n_rows: int, n_seq: int, n_paths: int, show: bool | None):
    """A tqdm bar over the ``n_rows * n_seq * n_paths`` generated cells (hidden if not shown).

    ``show=None``: shown when the request asks for more than :data:`PROGRESS_MIN_CELLS`
    cells in all (a few conditions of a few hundred cells take seconds: no bar). The bar
    only counts: it draws no random number.
    """
    total = n_rows * n_seq * n_paths
    if show is None:
        show = total > PROGRESS_MIN_CELLS
    return tqdm_bar(total=total, desc="generating cells", unit="cell", disable=not show)


class GenerationMixin:
    """:meth:`predict` of :class:`~sccalmflow.CaLMFlowModel`."""

    @torch.inference_mode()
    def predict(
        self,
        conditions: pd.DataFrame | Mapping[str, Sequence] | None = None,
        n_cells: int = 100,
        seed: int = 0,
        *,
        temperature: float | None = None,
        batch_size: int = 2048,
        return_trajectories: bool = False,
        use_cache: bool = True,
        decode: bool = True,
        source_cells: ad.AnnData | None = None,
        source_layer: str | None = None,
        oversample: Literal["repeat", "interpolate", "smooth"] | None = None,
        chain: int | None = None,
        n_threads: int | None = None,
        progress_bar: bool | None = None,
        allow_unseen: bool = False,
        out: str | Path | None = None,
    ) -> ad.AnnData:
        """Generate cells for each requested condition.

        Parameters
        ----------
        conditions
            A DataFrame with one column per condition key, or a dict of equal-length lists;
            one row per condition. Any combination of registered values may be asked for,
            also one that never occurred in training. ``None`` for an unconditional model.
        n_cells
            Cells per condition. With ``source="additive"`` (default) or ``"control"`` the
            paths start from the control cells of the condition's context, each used once before any is used again
            (:func:`~sccalmflow.data.resample_pool`); with the deterministic head, more cells
            than the context has control cells therefore repeat cells.
        seed
            Seed of the sources and the head's samples: same seed, same cells. Each condition
            draws from its own stream, keyed on the seed and the condition's values, so its
            cells do not depend on the other requested conditions, their order or
            ``batch_size``.
        temperature
            Sampling temperature τ (default: the model's ``temperature``).
        batch_size
            Sequences generated at once (bounds memory: generation is chunked).
        return_trajectories
            Store every state of each path in ``obsm["X_trajectory"]``
            (``n x T x n_pca``, PCA units) and the grid in ``uns["calmflow"]["time_grid"]``.
        use_cache
            Use the backbone's key/value cache.
        decode
            Map to gene space (``X``); ``False`` leaves ``X`` empty (0 genes) and keeps only
            ``obsm["X_calmflow_pca"]``.
        source_cells
            Cells to start every requested condition from (``source="additive"`` or
            ``"control"`` models; an additive model adds the condition's shift to them),
            instead of the registered control cells of the condition's context: e.g. the
            control cells of a new donor or sample the model never saw. They need the model's
            genes in the same order (log-normalised like the training data) or, for a model
            set up with ``features_key``, that ``.obsm`` key.
        source_layer
            Layer of ``source_cells`` with the expression (``None``: ``X``).
        oversample
            What the draws after one pass over the source cells start from, when more cells
            are asked for than there are source cells. ``"smooth"``: a smoothed bootstrap of
            the source cells that keeps their mean and covariance
            (:func:`~sccalmflow.data.smooth_repeats`, bandwidth 1), so every generated cell
            is distinct and the spread stays the sources'. ``"repeat"``: the same cells
            again, so with the deterministic head the generated cells repeat.
            ``"interpolate"``: a random point between the cell and one of its 5 nearest
            source cells (:func:`~sccalmflow.data.interpolate_repeats`): distinct cells, a
            narrower spread. ``None`` (default): ``"smooth"`` when the head does not sample
            (the deterministic head, or τ = 0), ``"repeat"`` when it does (it draws a new
            cell from each reuse). From 40 control cells of a held-out type (6 runs,
            ``benchmarks/results/generator.md``) ``"smooth"`` had a lower E-distance, MMD and
            W2 than ``"repeat"`` in every run and a lower E-distance and MMD than
            ``"interpolate"`` (whose W2 is lower).
        chain
            For a model with ``n_trajectories = N > 1``: ``None`` (default) generates
            independent sequences of ``N`` cells, each starting from an empty context. An
            integer ``h`` (``1 <= h < N``) generates chains instead: after a chain's first
            sequence, each sequence holds the paths of the last ``N - h`` cells the chain
            generated as its context and adds ``h`` new cells, so the cells of a whole chain
            share the distribution as the cells of one sequence do (what a model trained on
            ``sequence_targets="stratified"`` learned). A condition's cells are split into
            the fewest chains of at most 1,000 cells; the blocks of a chain are generated one
            after another, so this is slower (3 to 4 times on the 100-d Gaussians, 1 CPU
            thread). On those Gaussians chains did not make 8 trajectories better than one
            (``benchmarks/results/sequences/chains/``); the option is off by default. Same
            seed, same cells, whatever ``batch_size`` (chains generated at once).
        n_threads
            Torch CPU threads during generation (default: ``sccalmflow.settings.n_threads``,
            1); your own setting is restored afterwards.
        progress_bar
            Show a progress bar over the generated cells (tqdm). ``None`` (default): only
            for a big request, more than 10,000 cells in all. The bar changes no number: same seed, same cells.
        out
            Write the prediction to this new ``.h5ad`` file as it is generated, one condition
            and at most 8,192 decoded cells at a time, and return it opened in backed mode
            (``X`` stays on disk): memory then holds one condition's features (``n_cells x
            n_pca``), not the ``n_conditions x n_cells x n_genes`` output. Not with
            ``return_trajectories``.
        allow_unseen
            Accept condition values that were never registered (e.g. a cytokine described in
            words, ``{"condition": ["interleukin 6"]}``), with a warning that this is
            extrapolation. Only for models whose prompts read language
            (``prompt_encoder="lm"`` or ``"sentence"``): the value enters as text. The
            context still needs control cells (or ``source_cells``), and an unseen
            perturbation has no additive shift (its paths start at the control cells).

        Returns
        -------
        AnnData with ``n_cells`` per condition: ``X`` (log-normalised expression decoded from
        PCA, negative values set to 0, same ``var_names``), ``obsm["X_calmflow_pca"]`` (the
        model's unscaled PCA scores; the projection's fingerprint in
        ``uns["calmflow_pca"]``; compare with real cells after :meth:`add_pca`), ``.obs`` with
        the condition columns, ``prompt`` and (control or additive source) ``source_cell``, the
        control cell each path started from (with ``oversample="interpolate"`` or
        ``"smooth"``, the cell a repeated draw was moved away from).
        """
        check_predict_arguments(locals())
        if progress_bar is not None:
            check_bool("progress_bar", progress_bar)
        if not getattr(self, "is_trained_", False):
            warn_user("The model is not trained; predictions are random.")
        n_cells, seed = int(n_cells), int(seed)
        tau = self.temperature if temperature is None else float(temperature)
        if oversample is None:
            oversample = "repeat" if self.module.samples_latent(tau) else "smooth"
        frame = self._observed(self._requested(conditions, allow_unseen))
        n_values = len(self.var_names) if decode else self.module.n_features
        if out is None:
            check_prediction_size(len(frame), n_cells, n_values, "genes" if decode else "features")
        else:
            out = check_h5ad_path(out)
            if return_trajectories:
                raise ValueError(
                    "return_trajectories=True keeps every state in memory; it cannot be "
                    "combined with `out` (ask for the trajectories of fewer cells in memory)."
                )
        prompts = self.prompt_encoder.prompts(frame)
        ids = self.prompt_encoder.encode_conditions(frame)
        sources = self._sources(frame, source_cells, source_layer)
        n_seq = math.ceil(n_cells / self.n_trajectories)
        was_training = self.module.training
        self.module.eval()
        # each condition has its own random stream, keyed on its values (sources first, then
        # the head's draws in sequence order): its cells do not depend on the other rows, their
        # order or batch_size
        labels = self.conditions.labels(frame, sep="\x1f")
        bar = _progress(len(frame), n_seq, self.n_trajectories, progress_bar)
        kwargs = dict(
            temperature=tau,
            batch_size=batch_size,
            use_cache=use_cache,
            return_trajectories=return_trajectories,
            oversample=oversample,
            chain=chain,
            bar=bar,
        )
        draws = (
            self._generate_condition(
                frame,
                r,
                ctx,
                sources,
                ids[r : r + 1],
                n_seq,
                np.random.default_rng([seed, zlib.crc32(str(labels[r]).encode())]),
                **kwargs,
            )
            for r, ctx in enumerate(self.conditions.contexts(frame))
        )
        info = {"temperature": tau, "seed": int(seed)}
        with torch_threads(n_threads), bar:
            try:
                if out is not None:
                    return self._stream_prediction(
                        out, frame, prompts, draws, sources, n_cells, decode, info
                    )
                draws = list(draws)
            finally:
                self.module.train(was_training)
        return self._prediction_anndata(frame, prompts, draws, sources, n_cells, decode, info)

    def _requested(self, conditions, allow_unseen: bool) -> pd.DataFrame:
        """The validated request; values never registered only with ``allow_unseen``."""
        check_bool("allow_unseen", allow_unseen)
        if allow_unseen and not self.prompt_encoder.reads_language:
            raise ValueError(
                "allow_unseen=True needs prompts that read language (prompt_encoder='lm' with a "
                f"pretrained backbone, or 'sentence'); this model's prompt encoder is "
                f"{self.prompt_encoder.kind!r}, which knows only the registered values "
                f"{self.categories}."
            )
        frame = self.conditions.validate(conditions, allow_unknown=allow_unseen)
        unknown = self.conditions.unknown_values(frame)
        if unknown:
            warn_user(
                f"Extrapolation: {unknown} never occurred in training; their prompts are read as "
                "words, and the prediction rests on what the language model makes of them. "
                "Check it against data before trusting it."
            )
        return frame

    def _observed(self, frame: pd.DataFrame) -> pd.DataFrame:
        """``frame``, refused if it asks for a registered value that no training cell had.

        The values seen in training (``observed_values_``, saved with the model) or, before
        training, those of the registered cells.
        """
        observed = getattr(self, "observed_values_", None)
        if observed is None:
            cells = self._cell_conditions()
            observed = {k: cells[k].astype(str) for k in self.condition_keys}
        for k in self.condition_keys:
            seen = set(observed[k])
            registered = set(self.categories[k])  # unregistered values: allow_unseen said so
            never = sorted((set(frame[k].astype(str)) & registered) - seen)
            if never:
                raise ValueError(
                    f"Value(s) {never} of {k!r} are registered categories but no cell has them, "
                    f"so the model never saw them in any combination. Observed: {sorted(seen)}."
                )
        return frame

    def _sources(
        self, frame: pd.DataFrame, source_cells: ad.AnnData | None, source_layer: str | None
    ) -> _Sources:
        """Source features and, for control sources, the pool of each context."""
        if source_cells is not None:
            if self.source == "noise":
                raise ValueError(
                    "source_cells needs a model with source='control' or 'additive'; this one "
                    "starts from noise."
                )
            Z = self._features_of(source_cells, source_layer, "source_cells")
            pools = dict.fromkeys(self.conditions.contexts(frame), np.arange(len(Z)))
            shifts = self._source_shifts(frame, warn=True)
            return _Sources(Z, np.asarray(source_cells.obs_names), pools, shifts)
        if self.source == "noise":
            return _Sources(None, None, {})
        return _Sources(
            self._registered_features(),
            np.asarray(self.adata_manager.adata.obs_names),
            self.conditions.control_pools(self._cell_conditions()),
            self._source_shifts(frame, warn=True),
        )

    def _source_shifts(self, frame: pd.DataFrame, *, warn: bool) -> np.ndarray | None:
        """``(n_rows, D)`` shifts of the rows of ``frame`` (``source="additive"``), else None."""
        if self.source != "additive":
            return None
        shifts, missing = self.additive_shift.shifts(frame)
        unknown = [
            f"{row} (no shift for {'/'.join(miss)})"
            for row, miss in zip(frame.astype(str).to_dict("records"), missing, strict=True)
            if miss
        ]
        if unknown and warn:
            warn_user(
                f"source='additive': {len(unknown)} condition(s) have a perturbation that no "
                "other context has with its control cells (or that never occurred in "
                "training), so its additive shift cannot be estimated and their paths start at "
                "the control cells for it: "
                f"{unknown[:5]}{' ...' if len(unknown) > 5 else ''}."
            )
        return shifts

    def _source_states(
        self, frame: pd.DataFrame, r: int, ctx: tuple, sources: _Sources, n: int, rng, oversample
    ) -> tuple[np.ndarray, np.ndarray]:
        """The ``n`` start states of row ``r`` and the source cell of each (-1: noise)."""
        D = self.module.n_features
        if self.source == "noise":
            return rng.standard_normal((n, D), dtype=np.float32), np.full(n, -1, np.int64)
        pool = sources.pools.get(ctx)
        if pool is None:
            raise ValueError(
                f"No control cells for context {self.conditions.describe_context(ctx)} "
                f"(condition {frame.iloc[r].astype(str).to_dict()}): source={self.source!r} "
                "starts from control cells of the same context. Register data with such "
                "cells, pass `source_cells=`, or use a model with source='noise'."
                + self.conditions.control_hint(self._cell_conditions())
            )
        pos = resample_pool(np.arange(len(pool)), n, rng)
        src = pool[pos]
        if oversample == "interpolate":
            x0 = interpolate_repeats(sources.features[pool], pos, rng)
        elif oversample == "smooth":
            x0 = smooth_repeats(sources.features[pool], pos, rng)
        else:
            x0 = sources.features[src]
        if sources.shifts is not None:
            x0 = x0 + sources.shifts[r]
        return x0, src

    def _generate_condition(
        self, frame, r, ctx, sources, prompt, n_seq, rng, *, temperature, batch_size,
        use_cache, return_trajectories, oversample, chain=None, bar=None,
    ) -> _Draws:  # fmt: skip
        """Generate ``n_seq`` sequences of ``N`` paths for row ``r`` of ``frame``."""
        if chain is not None:
            return self._generate_chains(
                frame, r, ctx, sources, prompt, n_seq * self.n_trajectories, chain, rng,
                temperature=temperature, batch_size=batch_size, use_cache=use_cache,
                return_trajectories=return_trajectories, oversample=oversample, bar=bar,
            )  # fmt: skip
        N, T, D = self.n_trajectories, self.module.n_time_points, self.module.n_features
        L = self.module.noise_dim
        x0, src = self._source_states(frame, r, ctx, sources, n_seq * N, rng, oversample)
        x0 = x0.reshape(n_seq, N, D)
        device = self.device
        out = np.empty((n_seq * N, D), dtype=np.float32)
        paths = np.empty((n_seq * N, T, D), dtype=np.float32) if return_trajectories else None
        solver = AutoregressiveSolver(self.module)
        prompt = torch.from_numpy(prompt).to(device)
        sample = self.module.samples_latent(temperature)
        for s in range(0, n_seq, batch_size):
            b = min(batch_size, n_seq - s)
            noise = None
            if sample:
                noise = rng.standard_normal((b, N, T - 1, L), dtype=np.float32)
                noise = torch.from_numpy(noise).to(device)
            x1, path = solver.sample(
                prompt.expand(b, -1),
                torch.from_numpy(np.ascontiguousarray(x0[s : s + b])).to(device),
                temperature=temperature,
                use_cache=use_cache,
                return_path=return_trajectories,
                noise=noise,
            )
            out[s * N : (s + b) * N] = x1.reshape(b * N, D).cpu().numpy()
            if paths is not None:
                paths[s * N : (s + b) * N] = path.reshape(b * N, T, D).cpu().numpy()
            if bar is not None:
                bar.update(b * N)
        return _Draws(out, src, paths)

    def _generate_chains(
        self, frame, r, ctx, sources, prompt, n_paths, h, rng, *, temperature, batch_size,
        use_cache, return_trajectories, oversample, bar=None,
    ) -> _Draws:  # fmt: skip
        """``n_paths`` paths for row ``r`` of ``frame``, in chains (``predict(chain=h)``).

        The paths are cut into the fewest chains of at most ``CHAIN_CELLS``; a chain's
        first block generates ``N`` paths from an empty context, every later block ``h``
        paths after the last ``N - h`` of the chain (their whole paths as context). A chain
        generates whole blocks and keeps its first paths. The sources of all chains are drawn
        first; each chain then draws the head's noise from its own stream (spawned from
        ``rng``), so the result does not depend on ``batch_size``.
        """
        N, T, D = self.n_trajectories, self.module.n_time_points, self.module.n_features
        L = self.module.noise_dim
        lengths = [len(c) for c in np.array_split(np.arange(n_paths), -(-n_paths // CHAIN_CELLS))]
        blocks = 1 + -(-(max(lengths) - N) // h) if max(lengths) > N else 1
        made = N + (blocks - 1) * h  # paths a chain generates (it keeps its first `length`)
        x0, src = self._source_states(frame, r, ctx, sources, len(lengths) * made, rng, oversample)
        x0 = x0.reshape(len(lengths), made, D)
        streams = rng.spawn(len(lengths))
        keep = np.concatenate([np.arange(n) + c * made for c, n in enumerate(lengths)])
        out = np.empty((len(lengths), made, D), dtype=np.float32)
        paths = np.empty((len(lengths), made, T, D), np.float32) if return_trajectories else None
        solver = AutoregressiveSolver(self.module)
        prompt = torch.from_numpy(prompt).to(self.device)
        sample = self.module.samples_latent(temperature)
        for s in range(0, len(lengths), batch_size):
            chains = range(s, min(s + batch_size, len(lengths)))
            context = None
            for b in range(blocks):
                lo, k = (0, N) if b == 0 else (N + (b - 1) * h, h)
                noise = None
                if sample:
                    draws = [streams[c].standard_normal((k, T - 1, L), np.float32) for c in chains]
                    noise = torch.from_numpy(np.stack(draws)).to(self.device)
                x1, path = solver.sample(
                    prompt.expand(len(chains), -1),
                    torch.from_numpy(np.ascontiguousarray(x0[chains, lo : lo + k])).to(self.device),
                    temperature=temperature,
                    use_cache=use_cache,
                    return_path=True,
                    noise=noise,
                    context=context,
                )
                out[chains, lo : lo + k] = x1.cpu().numpy()
                if paths is not None:
                    paths[chains, lo : lo + k] = path.cpu().numpy()
                context = path if context is None else torch.cat([context, path], dim=1)
                context = context[:, context.shape[1] - (N - h) :]
                if bar is not None:  # the kept cells of this block
                    bar.update(sum(min(lengths[c], lo + k) - lo for c in chains if lengths[c] > lo))
        flat = out.reshape(-1, D)[keep]
        return _Draws(flat, src[keep], None if paths is None else paths.reshape(-1, T, D)[keep])

    def _prediction_obs(self, frame, prompts, source_rows, sources, n_cells) -> pd.DataFrame:
        """``.obs`` of a prediction: conditions, prompt and (control sources) source cell."""
        rows = np.repeat(np.arange(len(frame)), n_cells)
        obs = frame.iloc[rows].reset_index(drop=True)
        obs["prompt"] = pd.Categorical(np.asarray(prompts, dtype=object)[rows])
        if self.source != "noise":
            obs["source_cell"] = sources.names[np.concatenate(source_rows)]
        obs.index = [f"gen{i}" for i in range(len(obs))]
        return obs

    def _prediction_uns(self, info) -> dict[str, Any]:
        return {**info, "source": self.source, "n_time_points": self.module.n_time_points}

    def _prediction_anndata(
        self, frame, prompts, draws: list[_Draws], sources: _Sources, n_cells, decode, info
    ) -> ad.AnnData:
        """The first ``n_cells`` paths of each row as an AnnData (see :meth:`predict`)."""
        features = self.features_
        Zp = np.concatenate([d.x1[:n_cells] for d in draws])
        obs = self._prediction_obs(
            frame, prompts, [d.source[:n_cells] for d in draws], sources, n_cells
        )
        X = features.inverse_transform(Zp) if decode else np.empty((len(obs), 0), np.float32)
        pred = ad.AnnData(X=X, obs=obs)
        if decode:
            pred.var_names = self.var_names
        write_pca(pred, features.pca_scores(Zp), features.fingerprint())
        uns = self._prediction_uns(info)
        if draws[0].paths is not None:
            P = np.concatenate([d.paths[:n_cells] for d in draws])
            pred.obsm["X_trajectory"] = P * features.scale_
            uns["time_grid"] = self.module.time_grid.cpu().numpy()
        pred.uns["calmflow"] = uns
        return pred

    def _stream_prediction(
        self, out: Path, frame, prompts, draws, sources: _Sources, n_cells, decode, info
    ) -> ad.AnnData:
        """Write the prediction to ``out`` condition by condition; open it backed."""
        features = self.features_
        n_genes = len(self.var_names) if decode else 0
        writer = H5adRowWriter(out, len(frame) * n_cells, n_genes, {PCA_KEY: features.n_components})
        source_rows = []
        try:
            for r, draw in enumerate(draws):
                z, start = draw.x1[:n_cells], r * n_cells
                source_rows.append(draw.source[:n_cells])
                for s in range(0, n_cells, ROW_BLOCK):
                    block = z[s : s + ROW_BLOCK]
                    X = features.inverse_transform(block) if decode else block[:, :0]
                    writer.write_rows(start + s, X, {PCA_KEY: features.pca_scores(block)})
            obs = self._prediction_obs(frame, prompts, source_rows, sources, n_cells)
            var = pd.DataFrame(index=self.var_names if decode else pd.Index([], dtype=str))
            uns = {
                "calmflow": self._prediction_uns(info),
                pca_uns_key(PCA_KEY): {"fingerprint": features.fingerprint()},
            }
            writer.finish(obs, var, uns)
        except BaseException:
            writer.abort()
            raise
        return ad.read_h5ad(out, backed="r")
