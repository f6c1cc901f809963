from __future__ import annotations

import logging
import math
import string
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import rich.pretty  # noqa: F401  (scvi-tools 1.4.2's view_anndata_setup uses it unimported)
import torch
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields
from scvi.model.base import BaseModelClass
from scvi.train import TrainRunner

from .. import __version__
from ..data import PCAFeatures, as_condition_frame, interpolate_repeats, resample_pool
from ..data._prompts import build_prompts, is_control, normalize_templates, template_keys
from ..data._text_tokenizer import PAD_TOKEN, build_word_tokenizer, load_tokenizer
from ..module import CaLMFlowModule, default_backbone_config
from ..train import CaLMFlowTrainingPlan, SequenceDataModule, stratified_split
from ._io import read_json, write_json
from ._validate import check_condition_keys, check_expression

logger = logging.getLogger(__name__)

_FEATURES_KEY = "calmflow_features"


class CaLMFlowModel(BaseModelClass):
    """CaLMFlow: flow matching as a Volterra integral equation solved by a causal LM.

    Each cell's path from a source (Gaussian noise, or a control cell of the same context)
    to its expression profile is a sequence of spatiotemporal tokens; the condition is a
    natural-language prompt ("Generate a CD14 Mono cell stimulated with IFN-beta:") prepended
    to it; a causal language model predicts the next state from all previous ones.

    Set up the data with :meth:`setup_anndata` (or :meth:`setup_mudata`) first.

    Parameters
    ----------
    adata
        Registered AnnData (or MuData).
    n_pca
        Number of principal components of the registered layer (fitted here; ignored when
        ``features_key`` was given at setup).
    pca_scaling
        ``"global"`` (default): PCA scores divided by one number, the root mean variance of
        the kept components (average unit variance, Euclidean geometry kept);
        ``"component"``: each component standardised; ``"none"``.
    source
        ``"control"``: the flow starts at control cells of the same context (same values of
        the non-control keys, e.g. cell type), as in CellFlow; ``"noise"``: at ``N(0, I)``
        (the paper's choice). See the benchmarks for how they compare.
    n_time_points
        ``T``, points of the time grid (T - 1 generation steps).
    n_space_tokens
        ``K``, tokens per state.
    n_trajectories
        ``N``, trajectories of the same condition per sequence.
    sigma_min
        Noise around the straight conditional paths.
    ot_coupling
        Pair sources and targets within a condition by exact optimal transport (POT).
    variational
        Variational decoding head (the paper's) or, by default, the deterministic head
        (``u = mu``). On held-out Kang cell types the deterministic head was better on every
        metric we measured, and with the variational head the sampling temperature had no
        measurable effect (the decoder learns to ignore the posterior noise); see
        ``benchmarks/results/``.
    latent_dim
        Dimension of the head's latent.
    kl_weight
        β of the KL term.
    kl_free_bits
        Free bits (nats) per latent dimension.
    temperature
        Default sampling temperature τ (scales the posterior variance at generation).
    backbone
        ``"gpt_neox"`` (Pythia-style) or ``"gpt2"``.
    width, n_layers, n_heads, ffn
        Size of the backbone (paper's single-cell model: 64, 2, 4, 256).
    backbone_config
        A full Hugging Face config dict (with ``model_type``) instead of the four sizes.
    head_hidden, tokenizer_hidden
        Hidden widths of the head's and the tokenizer's MLPs.
    seed
        Seed of the weight initialisation, the data splits and the training draws.
    """

    _module_cls = CaLMFlowModule

    def __init__(
        self,
        adata: ad.AnnData,
        n_pca: int = 50,
        pca_scaling: Literal["global", "component", "none"] = "global",
        source: Literal["control", "noise"] = "control",
        n_time_points: int = 16,
        n_space_tokens: int = 1,
        n_trajectories: int = 1,
        sigma_min: float = 0.0,
        ot_coupling: bool = True,
        variational: bool = False,
        latent_dim: int = 32,
        kl_weight: float = 0.01,
        kl_free_bits: float = 0.0,
        temperature: float = 1.0,
        backbone: Literal["gpt_neox", "gpt2"] = "gpt_neox",
        width: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        ffn: int = 256,
        backbone_config: dict[str, Any] | None = None,
        head_hidden: int = 128,
        tokenizer_hidden: int = 128,
        seed: int = 0,
    ):
        super().__init__(adata)
        if source not in ("control", "noise"):
            raise ValueError(f"source must be 'control' or 'noise', not {source!r}.")
        for name, value, low in (
            ("n_time_points", n_time_points, 2),
            ("n_space_tokens", n_space_tokens, 1),
            ("n_trajectories", n_trajectories, 1),
        ):
            if int(value) < low:
                raise ValueError(f"{name} must be at least {low}, got {value}.")
        setup = self.adata_manager.registry["setup_args"]
        self.condition_keys: list[str] = list(setup.get("condition_keys") or [])
        self.control: dict[str, str] | None = setup.get("control")
        if source == "control" and not self.control:
            raise ValueError(
                "source='control' needs control cells: call setup_anndata(..., control={key: "
                "value}) or use source='noise'."
            )
        self.templates = normalize_templates(
            setup.get("prompt_template"), self.condition_keys, self.control
        )
        self.source = source
        self.temperature = float(temperature)
        self.kl_weight = float(kl_weight)
        self.seed = int(seed)
        self.n_trajectories = int(n_trajectories)
        self.ot_coupling = bool(ot_coupling)
        self.features_key = setup.get("features_key")

        # ---- feature space (PCA of the registered layer, or a given .obsm key);
        # `load` sets `_restore` on the bare instance: the saved PCA and tokenizer replace
        # these placeholders after construction, so nothing is fitted to the new data
        restore: dict[str, Any] | None = self.__dict__.pop("_restore", None)
        if restore is not None:
            n_features = int(restore["n_features"])
            n_genes = int(restore["n_genes"])
            pca_state = {
                "mean": np.zeros(n_genes, np.float32),
                "components": np.zeros((n_features, n_genes), np.float32),
                "scale": np.ones(n_features, np.float32),
            }
        else:
            X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
            if self.features_key is None:
                pca_state = PCAFeatures(n_pca, pca_scaling, random_state=seed).fit(X).state_dict()
            else:
                pca_state = _least_squares_decoder(
                    np.asarray(self.adata_manager.get_from_registry(_FEATURES_KEY)), X
                )
        self.features_ = PCAFeatures.from_state_dict(pca_state, pca_scaling)

        # ---- prompt tokenizer and padded prompt length
        if restore is not None:
            self.text_tokenizer = restore["tokenizer"]
        else:
            self.text_tokenizer = build_word_tokenizer(self._vocabulary_texts())
        self.prompt_length = self._max_prompt_length()

        # ---- module
        if backbone_config is None:
            cfg = default_backbone_config(
                backbone, width=width, n_layers=n_layers, n_heads=n_heads, ffn=ffn
            )
        else:
            cfg = dict(backbone_config)
        cfg["vocab_size"] = len(self.text_tokenizer)
        seq_len = self.prompt_length + n_trajectories * n_time_points * n_space_tokens
        pos_key = "n_positions" if cfg.get("model_type") == "gpt2" else "max_position_embeddings"
        cfg[pos_key] = max(int(cfg.get(pos_key, 0)), seq_len + 8)
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.module = self._module_cls(
                n_features=self.features_.n_components,
                backbone_config=cfg,
                n_time_points=n_time_points,
                n_space_tokens=n_space_tokens,
                n_trajectories=n_trajectories,
                variational=variational,
                latent_dim=latent_dim,
                head_hidden=head_hidden,
                tokenizer_hidden=tokenizer_hidden,
                sigma_min=sigma_min,
                kl_free_bits=kl_free_bits,
                pca_mean=torch.from_numpy(self.features_.mean_),
                pca_components=torch.from_numpy(self.features_.components_),
                pca_scale=torch.from_numpy(self.features_.scale_),
            )
        self.backbone_config_ = cfg
        self._model_summary_string = (
            f"CaLMFlow ({cfg['model_type']}, source={source}, T={n_time_points}, "
            f"K={n_space_tokens}, N={n_trajectories}, {self.features_.n_components} features, "
            f"{'variational' if variational else 'deterministic'} head)"
        )
        self.init_params_ = self._get_init_params(locals())
        self._cache: dict[str, Any] = {}

    # ================================================================== registration
    @classmethod
    def setup_anndata(
        cls,
        adata: ad.AnnData,
        layer: str | None = None,
        condition_keys: Sequence[str] | None = None,
        control: Mapping[str, str] | None = None,
        prompt_template: str | Mapping[str, str] | None = None,
        features_key: str | None = None,
        **kwargs,
    ) -> None:
        """Register an AnnData for CaLMFlow (scvi-tools' ``AnnDataManager`` fields).

        Parameters
        ----------
        adata
            Cells x genes, log-normalised expression in ``X`` or ``layer``.
        layer
            Layer with log-normalised expression (``None``: ``X``).
        condition_keys
            Categorical ``.obs`` columns that make up a condition (cell type, perturbation,
            dose, chronicity, donor...). ``None``: an unconditional generator.
        control
            ``{key: value}`` marking control cells, e.g. ``{"condition": "control"}``. The
            other keys form a cell's *context* (control cells of the same context are the
            sources when ``source="control"``).
        prompt_template
            A template string with ``{key}`` placeholders, or ``{"perturbed": ..., "control":
            ...}``. Default: the paper's two templates (see :func:`default_templates`).
        features_key
            Use ``.obsm[features_key]`` as the flow's space instead of fitting PCA; predictions
            are mapped back to genes by a least-squares linear decoder. ``X`` (or ``layer``)
            then only needs to be finite (any continuous data, e.g. synthetic benchmarks).

        Notes
        -----
        As in scvi-tools, this adds ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]`` and
        the coded condition columns in ``obsm["_scvi_extra_categorical_covs"]`` to ``adata``;
        nothing else is changed.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        data = adata.X if layer is None else _get_layer(adata, layer)
        check_expression(
            data,
            "adata.X" if layer is None else f"adata.layers[{layer!r}]",
            log_scale=features_key is None,
        )
        keys, control = check_condition_keys(adata.obs, condition_keys, control)
        normalize_templates(prompt_template, keys, control)
        setup_method_args["setup_args"].update(condition_keys=keys or None, control=control)
        anndata_fields = [fields.LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False)]
        if keys:
            anndata_fields.append(fields.CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, keys))
        if features_key is not None:
            _check_features(adata, features_key)
            anndata_fields.append(fields.ObsmField(_FEATURES_KEY, features_key))
        manager = AnnDataManager(fields=anndata_fields, setup_method_args=setup_method_args)
        manager.register_fields(adata, **kwargs)
        cls.register_manager(manager)

    @classmethod
    def setup_mudata(
        cls,
        mdata,
        rna_layer: str | None = None,
        condition_keys: Sequence[str] | None = None,
        control: Mapping[str, str] | None = None,
        prompt_template: str | Mapping[str, str] | None = None,
        modalities: dict[str, str] | None = None,
        **kwargs,
    ) -> None:
        """Register the RNA modality of a MuData (scvi-tools' ``modalities=`` convention).

        Parameters
        ----------
        mdata
            MuData with an RNA modality of log-normalised expression.
        rna_layer
            Layer of the RNA modality (``None``: its ``X``).
        condition_keys, control, prompt_template
            As in :meth:`setup_anndata`; condition columns are read from the global
            ``mdata.obs`` unless ``modalities["condition_keys"]`` names a modality.
        modalities
            ``{"rna_layer": "rna"}`` (required), optionally ``"condition_keys"``.

        Examples
        --------
        >>> CaLMFlowModel.setup_mudata(mdata, condition_keys=["cell_type", "condition"],
        ...     control={"condition": "control"}, modalities={"rna_layer": "rna"})
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        if not modalities or "rna_layer" not in modalities:
            raise ValueError("setup_mudata needs modalities={'rna_layer': <RNA modality name>}.")
        mods = cls._create_modalities_attr_dict(modalities, setup_method_args)
        if mods.rna_layer not in mdata.mod:
            raise KeyError(f"Modality {mods.rna_layer!r} not in mdata.mod ({list(mdata.mod)}).")
        rna = mdata.mod[mods.rna_layer]
        data = rna.X if rna_layer is None else _get_layer(rna, rna_layer)
        check_expression(data, f"mdata.mod[{mods.rna_layer!r}]")
        cond_mod = getattr(mods, "condition_keys", None)
        obs = mdata.obs if cond_mod is None else mdata.mod[cond_mod].obs
        keys, control = check_condition_keys(obs, condition_keys, control)
        normalize_templates(prompt_template, keys, control)
        setup_method_args["setup_args"].update(condition_keys=keys or None, control=control)
        mudata_fields = [
            fields.MuDataLayerField(
                REGISTRY_KEYS.X_KEY,
                rna_layer,
                mod_key=mods.rna_layer,
                is_count_data=False,
                mod_required=True,
            )
        ]
        if keys:
            mudata_fields.append(
                fields.MuDataCategoricalJointObsField(
                    REGISTRY_KEYS.CAT_COVS_KEY, keys, mod_key=cond_mod
                )
            )
        manager = AnnDataManager(fields=mudata_fields, setup_method_args=setup_method_args)
        manager.register_fields(mdata, **kwargs)
        cls.register_manager(manager)

    # ================================================================== conditions
    @property
    def categories(self) -> dict[str, list[str]]:
        """Registered values of each condition key."""
        if not self.condition_keys:
            return {}
        maps = self.adata_manager.get_state_registry(REGISTRY_KEYS.CAT_COVS_KEY).mappings
        return {k: [str(v) for v in maps[k]] for k in self.condition_keys}

    def _cell_conditions(self) -> pd.DataFrame:
        """Condition values of every registered cell (from the registered codes)."""
        if "cell_conditions" in self._cache:
            return self._cache["cell_conditions"]
        n = self.adata_manager.adata.n_obs
        frame = pd.DataFrame(index=pd.RangeIndex(n))
        if self.condition_keys:
            codes = np.asarray(self.adata_manager.get_from_registry(REGISTRY_KEYS.CAT_COVS_KEY))
            cats = self.categories
            for j, k in enumerate(self.condition_keys):
                frame[k] = pd.Categorical.from_codes(codes[:, j].astype(int), categories=cats[k])
        self._cache["cell_conditions"] = frame
        return frame

    @property
    def training_conditions(self) -> pd.DataFrame:
        """Every condition (combination of key values) in the registered data, with counts.

        These are the conditions the model trains on; anything else is an unseen combination.
        """
        frame = self._cell_conditions()
        if not self.condition_keys:
            return pd.DataFrame({"n_cells": [len(frame)]})
        out = frame.astype(str).value_counts(sort=False).rename("n_cells").reset_index()
        return out.sort_values(self.condition_keys, ignore_index=True)

    def _context(self, frame: pd.DataFrame) -> list[tuple]:
        """The context (values of the non-control keys) of each row."""
        if not self._context_keys:
            # ``frame[[]].itertuples()`` yields nothing, not one empty tuple per row
            return [()] * len(frame)
        return list(frame[self._context_keys].astype(str).itertuples(index=False, name=None))

    # ================================================================== prompts
    def _vocabulary_texts(self) -> list[str]:
        texts = [_strip_placeholders(t) for t in self.templates.values()]
        for values in self.categories.values():
            texts.extend(values)
        return texts

    def _max_prompt_length(self) -> int:
        tok = self.text_tokenizer
        per_key = {
            k: max(len(tok(v, add_special_tokens=False)["input_ids"]) for v in vals)
            for k, vals in self.categories.items()
        }
        lengths = []
        for tpl in self.templates.values():
            n = len(tok(_strip_placeholders(tpl), add_special_tokens=False)["input_ids"])
            lengths.append(n + sum(per_key[k] for k in template_keys(tpl)))
        return max(lengths)

    def prompts(self, conditions: pd.DataFrame | Mapping[str, Sequence] | None = None) -> list[str]:
        """The prompt of each requested condition (``None``: one per registered cell).

        Examples
        --------
        >>> model.prompts({"cell_type": ["B"], "condition": ["IFN-beta"]})
        ['Generate a B cell stimulated with IFN-beta:']
        """
        if conditions is None and self.condition_keys:
            frame = self._cell_conditions()
        else:
            frame = as_condition_frame(conditions, self.condition_keys, self.categories)
        return build_prompts(frame, self.templates, self.control)

    def _prompt_ids(self, prompts: Sequence[str]) -> np.ndarray:
        """Token ids, left-padded with [PAD] to the model's fixed prompt length."""
        tok = self.text_tokenizer
        pad = tok.convert_tokens_to_ids(PAD_TOKEN)
        out = np.full((len(prompts), self.prompt_length), pad, dtype=np.int64)
        for i, ids in enumerate(tok(list(prompts), add_special_tokens=False)["input_ids"]):
            if len(ids) > self.prompt_length:
                raise ValueError(
                    f"Prompt {prompts[i]!r} has {len(ids)} tokens, more than the model's "
                    f"{self.prompt_length}."
                )
            out[i, self.prompt_length - len(ids) :] = ids
        return out

    # ================================================================== features
    def _registered_features(self) -> np.ndarray:
        if "features" not in self._cache:
            if self.features_key is None:
                X = self.adata_manager.get_from_registry(REGISTRY_KEYS.X_KEY)
                Z = self.features_.transform(X)
            else:
                Z = np.asarray(self.adata_manager.get_from_registry(_FEATURES_KEY), np.float32)
                Z = Z / self.features_.scale_
            self._cache["features"] = Z.astype(np.float32)
        return self._cache["features"]

    def get_pca(self, adata: ad.AnnData | None = None, layer: str | None = None) -> np.ndarray:
        """Cells in the model's PCA space (unscaled scores, like ``pred.obsm["X_pca"]``).

        Parameters
        ----------
        adata
            Cells with the same genes (``None``: the registered data).
        layer
            Layer of ``adata`` with log-normalised expression (``None``: ``X``).

        Returns
        -------
        Array of shape ``(n_cells, n_pca)``.
        """
        if adata is None:
            return self.features_.pca_scores(self._registered_features())
        return self.features_.pca_scores(self._features_of(adata, layer, "adata"))

    def _features_of(self, adata: ad.AnnData, layer: str | None, where: str) -> np.ndarray:
        """Scaled features of cells that are not (necessarily) the registered ones."""
        if self.features_key is not None:
            _check_features(adata, self.features_key)
            Z = np.asarray(adata.obsm[self.features_key], np.float32)
            if Z.shape[1] != self.features_.n_components:
                raise ValueError(
                    f"{where}.obsm[{self.features_key!r}] has {Z.shape[1]} columns; the model "
                    f"was set up with {self.features_.n_components}."
                )
            return Z / self.features_.scale_
        if not adata.var_names.equals(self.var_names):
            raise ValueError(
                f"{where} must have the model's {len(self.var_names)} genes in the same order "
                f"(it has {adata.n_vars}): use `{where}[:, model.var_names]`."
            )
        X = adata.X if layer is None else _get_layer(adata, layer)
        check_expression(X, where if layer is None else f"{where}.layers[{layer!r}]")
        return self.features_.transform(X)

    @property
    def var_names(self) -> pd.Index:
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY)
        return pd.Index(state["column_names"])

    # ================================================================== training
    def train(
        self,
        max_epochs: int | None = None,
        batch_size: int = 128,
        lr: float = 1e-3,
        validation_size: float = 0.1,
        early_stopping: bool = False,
        early_stopping_patience: int = 10,
        n_steps_kl_warmup: int | None = None,
        accelerator: str = "auto",
        devices: int | list[int] | str = "auto",
        plan_kwargs: dict | None = None,
        ot_batch_size: int = 1024,
        **trainer_kwargs,
    ) -> None:
        """Train with Lightning (scvi-tools' ``TrainRunner`` and ``TrainingPlan``).

        One epoch is one pass over the training cells: every cell is the target of one
        trajectory, with a new source, coupling and grouping each epoch.

        Parameters
        ----------
        max_epochs
            Default: enough epochs for about 2,000 optimiser steps (at least 20, at most 400).
        batch_size
            Sequences per step.
        lr
            AdamW learning rate.
        validation_size
            Fraction of each condition's cells held out to compute ``*_validation`` losses
            (0: none).
        early_stopping
            Stop when ``reconstruction_loss_validation`` has not improved for
            ``early_stopping_patience`` epochs.
        n_steps_kl_warmup
            Steps over which the KL weight rises linearly to ``kl_weight`` (default: a fifth
            of the training steps).
        accelerator, devices
            Passed to Lightning (``"cpu"``, ``"gpu"``, ``devices=2`` ...).
        plan_kwargs
            Extra arguments of :class:`~sccalmflow.train.CaLMFlowTrainingPlan`.
        ot_batch_size
            Cells per exact OT problem when ``ot_coupling`` is on.
        **trainer_kwargs
            Passed to scvi-tools' ``Trainer`` / Lightning's ``Trainer``
            (``enable_progress_bar``, ``log_every_n_steps`` ...).
        """
        if not 0 <= validation_size < 1:
            raise ValueError(f"validation_size must be in [0, 1), got {validation_size}.")
        groups, group_frame = self._groups()
        prompt_ids = self._prompt_ids(build_prompts(group_frame, self.templates, self.control))
        pools = self._source_pools(groups, group_frame) if self.source == "control" else None
        train_idx, val_idx = stratified_split(groups, validation_size, self.seed)
        dm = SequenceDataModule(
            self._registered_features(),
            groups,
            prompt_ids,
            source=self.source,
            source_pools=pools,
            n_trajectories=self.n_trajectories,
            batch_size=batch_size,
            ot_coupling=self.ot_coupling,
            train_idx=train_idx,
            val_idx=val_idx,
            seed=self.seed,
            ot_batch_size=ot_batch_size,
        )
        steps_per_epoch = max(len(dm.train_dataloader().dataset), 1)
        if max_epochs is None:
            max_epochs = int(min(400, max(20, math.ceil(2000 / steps_per_epoch))))
        if n_steps_kl_warmup is None:
            n_steps_kl_warmup = max(1, (max_epochs * steps_per_epoch) // 5)
        plan_kwargs = {
            "lr": lr,
            "max_kl_weight": self.kl_weight,
            "n_steps_kl_warmup": n_steps_kl_warmup,
            **(plan_kwargs or {}),
        }
        plan = CaLMFlowTrainingPlan(self.module, **plan_kwargs)
        if len(val_idx):
            trainer_kwargs.setdefault("check_val_every_n_epoch", 1)
        elif early_stopping:
            raise ValueError("early_stopping needs validation_size > 0.")
        trainer_kwargs.setdefault("log_every_n_steps", max(1, min(50, steps_per_epoch)))
        runner = TrainRunner(
            self,
            training_plan=plan,
            data_splitter=dm,
            max_epochs=max_epochs,
            accelerator=accelerator,
            devices=devices,
            early_stopping=early_stopping,
            early_stopping_monitor="reconstruction_loss_validation",
            early_stopping_patience=early_stopping_patience,
            **trainer_kwargs,
        )
        self.module.train()  # a loaded or already trained model is in eval mode
        with torch.random.fork_rng():
            torch.manual_seed(self.seed)
            runner()
        self.module.eval()

    def _groups(self) -> tuple[np.ndarray, pd.DataFrame]:
        """An integer condition id per registered cell and the frame of conditions."""
        frame = self._cell_conditions()
        if not self.condition_keys:
            return np.zeros(len(frame), dtype=np.int64), pd.DataFrame(index=pd.RangeIndex(1))
        group_frame = frame.drop_duplicates().sort_values(self.condition_keys)
        group_frame = group_frame.reset_index(drop=True)
        lookup = {
            row: i
            for i, row in enumerate(group_frame.astype(str).itertuples(index=False, name=None))
        }
        groups = np.array(
            [lookup[r] for r in frame.astype(str).itertuples(index=False, name=None)],
            dtype=np.int64,
        )
        return groups, group_frame

    def _control_by_context(self) -> dict[tuple, np.ndarray]:
        frame = self._cell_conditions()
        ctrl = np.flatnonzero(is_control(frame, self.control))
        out: dict[tuple, list[int]] = {}
        for pos, ctx in zip(ctrl, self._context(frame.iloc[ctrl]), strict=True):
            out.setdefault(ctx, []).append(pos)
        return {k: np.asarray(v) for k, v in out.items()}

    def _source_pools(self, groups: np.ndarray, group_frame: pd.DataFrame) -> list[np.ndarray]:
        by_ctx = self._control_by_context()
        pools = [by_ctx.get(ctx, np.array([], dtype=int)) for ctx in self._context(group_frame)]
        empty = [i for i, p in enumerate(pools) if len(p) == 0]
        if empty:
            dropped = int(np.isin(groups, empty).sum())
            message = (
                f"{dropped} cell(s) in {len(empty)} condition(s) have no control cells in their "
                "context and are not used for training with source='control': "
                f"{group_frame.iloc[empty].astype(str).to_dict('records')[:10]}"
                f"{' ...' if len(empty) > 10 else ''}.{self._control_hint()}"
            )
            perturbed = ~is_control(group_frame, self.control)
            if not np.isin(np.flatnonzero(perturbed), empty, invert=True).any():
                raise ValueError(f"Nothing to train on: {message}")
            warnings.warn(message, UserWarning, stacklevel=3)
        return pools

    def _control_hint(self) -> str:
        """Advice when context keys look like part of the perturbation (dose, time...)."""
        frame = self._cell_conditions().astype(str)
        ctrl = is_control(frame, self.control)
        hints = {}
        for key in self._context_keys:
            in_ctrl = set(frame.loc[ctrl, key])
            if len(in_ctrl) == 1 and set(frame.loc[~ctrl, key]) - in_ctrl:
                hints[key] = next(iter(in_ctrl))
        if not hints:
            return ""
        where = ", ".join(f"{k} = {v!r}" for k, v in hints.items())
        return (
            f" All control cells have {where}: if {'/'.join(hints)} is part of the perturbation "
            f"(a dose, a time point), add it to `control`, e.g. "
            f"setup_anndata(..., control={ ({**(self.control or {}), **hints})!r})."
        )

    # ================================================================== generation
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
        oversample: Literal["repeat", "interpolate"] = "repeat",
    ) -> ad.AnnData:
        """Generate cells for each requested condition.

        Parameters
        ----------
        conditions
            A DataFrame with one column per condition key, or a dict of equal-length lists;
            one row per condition. Any combination of registered values may be asked for,
            also one that never occurred in training. ``None`` for an unconditional model.
        n_cells
            Cells per condition. With ``source="control"`` the paths start from the control
            cells of the condition's context, each used once before any is used again
            (:func:`~sccalmflow.data.resample_pool`); with the deterministic head, more cells
            than the context has control cells therefore repeat cells.
        seed
            Seed of the sources and the head's samples: same seed, same cells.
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
            ``obsm["X_pca"]``.
        source_cells
            Cells to start every requested condition from (``source="control"`` models),
            instead of the registered control cells of the condition's context: e.g. the
            control cells of a new donor or sample the model never saw. They need the model's
            genes in the same order (log-normalised like the training data) or, for a model
            set up with ``features_key``, that ``.obsm`` key.
        source_layer
            Layer of ``source_cells`` with the expression (``None``: ``X``).
        oversample
            What the draws after one pass over the source cells start from. ``"repeat"``
            (default): the same cells again, so with the deterministic head the generated
            cells repeat. ``"interpolate"``: a random point between the cell and one of its 5
            nearest source cells (:func:`~sccalmflow.data.interpolate_repeats`), so every
            generated cell is distinct. Measured on held-out Kang cell types from 40 source
            cells (``benchmarks/oversample.py``), interpolation lowered W2 and kept MMD, but
            raised the E-distance (it narrows the spread).

        Returns
        -------
        AnnData with ``n_cells`` per condition: ``X`` (log-normalised expression decoded from
        PCA, negative values set to 0, same ``var_names``), ``obsm["X_pca"]``, ``.obs`` with
        the condition columns, ``prompt`` and (``source="control"``) ``source_cell``, the
        control cell each path started from (with ``oversample="interpolate"``, the cell a
        repeated draw was moved away from).
        """
        if not getattr(self, "is_trained_", False):
            warnings.warn("The model is not trained; predictions are random.", stacklevel=2)
        if int(n_cells) < 1:
            raise ValueError(f"n_cells must be positive, got {n_cells}.")
        n_cells = int(n_cells)
        tau = self.temperature if temperature is None else float(temperature)
        if tau < 0:
            raise ValueError(f"temperature must be >= 0, got {tau}.")
        frame = as_condition_frame(conditions, self.condition_keys, self.categories)
        prompts = build_prompts(frame, self.templates, self.control)
        ids = self._prompt_ids(prompts)
        N = self.n_trajectories
        T = self.module.n_time_points
        n_seq = math.ceil(n_cells / N)
        D = self.features_.n_components
        L = self.module.latent_dim
        sample = self.module.head.variational and tau > 0
        if oversample not in ("repeat", "interpolate"):
            raise ValueError(f"oversample must be 'repeat' or 'interpolate', not {oversample!r}.")
        if source_cells is not None:
            if self.source != "control":
                raise ValueError(
                    "source_cells needs a model with source='control'; this one starts from noise."
                )
            Z = self._features_of(source_cells, source_layer, "source_cells")
            names = np.asarray(source_cells.obs_names)
            by_ctx = dict.fromkeys(self._context(frame), np.arange(len(Z)))
        else:
            Z = self._registered_features()
            names = np.asarray(self.adata_manager.adata.obs_names)
            by_ctx = self._control_by_context() if self.source == "control" else {}
        device = self.device
        out = np.empty((len(frame), n_seq * N, D), dtype=np.float32)
        src = np.full((len(frame), n_seq * N), -1, dtype=np.int64)
        paths = (
            np.empty((len(frame), n_seq * N, T, D), dtype=np.float32)
            if return_trajectories
            else None
        )
        was_training = self.module.training
        self.module.eval()
        # each condition has its own random stream (sources first, then the head's draws in
        # sequence order), so its cells do not depend on the other rows or on batch_size
        for r, ctx in enumerate(self._context(frame)):
            rng = np.random.default_rng([int(seed), r])
            if self.source == "control":
                pool = by_ctx.get(ctx)
                if pool is None:
                    raise ValueError(
                        f"No control cells for context {dict(zip(self._context_keys, ctx, strict=True))} "
                        f"(condition {frame.iloc[r].astype(str).to_dict()}): source='control' "
                        "starts from control cells of the same context. Register data with such "
                        "cells, pass `source_cells=`, or use a model with source='noise'."
                        + self._control_hint()
                    )
                pos = resample_pool(np.arange(len(pool)), n_seq * N, rng)
                src[r] = pool[pos]
                if oversample == "interpolate":
                    x0 = interpolate_repeats(Z[pool], pos, rng).reshape(n_seq, N, D)
                else:
                    x0 = Z[src[r]].reshape(n_seq, N, D)
            else:
                x0 = rng.standard_normal((n_seq, N, D), dtype=np.float32)
            prompt = torch.from_numpy(ids[r : r + 1]).to(device)
            for s in range(0, n_seq, batch_size):
                b = min(batch_size, n_seq - s)
                noise = (
                    torch.from_numpy(rng.standard_normal((b, N, T - 1, L), dtype=np.float32)).to(
                        device
                    )
                    if sample
                    else None
                )
                x1, path = self.module.generate(
                    prompt.expand(b, -1),
                    torch.from_numpy(np.ascontiguousarray(x0[s : s + b])).to(device),
                    temperature=tau,
                    use_cache=use_cache,
                    return_path=return_trajectories,
                    noise=noise,
                )
                out[r, s * N : (s + b) * N] = x1.reshape(b * N, D).cpu().numpy()
                if paths is not None:
                    paths[r, s * N : (s + b) * N] = path.reshape(b * N, T, D).cpu().numpy()
        self.module.train(was_training)
        Zp = out[:, :n_cells].reshape(-1, D)
        rows = np.repeat(np.arange(len(frame)), n_cells)
        obs = frame.iloc[rows].reset_index(drop=True)
        obs["prompt"] = pd.Categorical(np.asarray(prompts, dtype=object)[rows])
        if self.source == "control":
            obs["source_cell"] = names[src[:, :n_cells].reshape(-1)]
        obs.index = [f"gen{i}" for i in range(len(obs))]
        X = self.features_.inverse_transform(Zp) if decode else np.empty((len(obs), 0), np.float32)
        pred = ad.AnnData(X=X, obs=obs)
        if decode:
            pred.var_names = self.var_names
        pred.obsm["X_pca"] = self.features_.pca_scores(Zp)
        info: dict[str, Any] = {
            "temperature": tau,
            "seed": int(seed),
            "source": self.source,
            "n_time_points": T,
        }
        if paths is not None:
            P = paths[:, :n_cells].reshape(-1, T, D)
            pred.obsm["X_trajectory"] = P * self.features_.scale_
            info["time_grid"] = self.module.time_grid.cpu().numpy()
        pred.uns["calmflow"] = info
        return pred

    @property
    def _context_keys(self) -> list[str]:
        return [k for k in self.condition_keys if not self.control or k not in self.control]

    # ================================================================== save / load
    def save(
        self,
        dir_path: str | Path,
        overwrite: bool = False,
        save_anndata: bool = False,
    ) -> None:
        """Save to a folder: weights (safetensors), JSON config and registry, tokenizer.

        Nothing is pickled; :meth:`load` never executes code from the folder.

        Parameters
        ----------
        dir_path
            Folder to create.
        overwrite
            Replace an existing folder's files.
        save_anndata
            Also write the registered AnnData as ``adata.h5ad``.
        """
        from safetensors.torch import save_file

        path = Path(dir_path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True.")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(path / "model.safetensors"))
        self.text_tokenizer.save_pretrained(str(path / "tokenizer"))
        history = (
            {k: v.reset_index().to_dict(orient="list") for k, v in (self.history_ or {}).items()}
            if getattr(self, "history_", None)
            else {}
        )
        write_json(
            path / "config.json",
            {
                "class": type(self).__name__,
                "sccalmflow_version": __version__,
                "init_params": self.init_params_,
                "registry": self.adata_manager.registry,
                "var_names": np.asarray(self.var_names),
                "n_features": self.features_.n_components,
                "is_trained": bool(getattr(self, "is_trained_", False)),
                "history": history,
            },
        )
        if save_anndata:
            self.adata_manager.adata.write_h5ad(path / "adata.h5ad")

    @classmethod
    def load(
        cls,
        dir_path: str | Path,
        adata: ad.AnnData | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
    ) -> CaLMFlowModel:
        """Load a saved model (no pickle, no network).

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        adata
            Data to attach, with the same genes and condition categories as at training
            (set up again from the saved registry). ``None``: the ``adata.h5ad`` saved with
            ``save_anndata=True``.
        accelerator, device
            Where to put the model.
        """
        from safetensors.torch import load_file
        from scvi.model._utils import parse_device_args

        path = Path(dir_path)
        if not (path / "config.json").exists():
            raise FileNotFoundError(f"{path} has no config.json: not a saved CaLMFlowModel.")
        config = read_json(path / "config.json")
        if config.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {config.get('class')}, not a {cls.__name__}.")
        if adata is None:
            if not (path / "adata.h5ad").exists():
                raise ValueError("Pass `adata` (the model was saved without its AnnData).")
            adata = ad.read_h5ad(path / "adata.h5ad")
        registry = config["registry"]
        saved_vars = pd.Index(config["var_names"])
        manager_vars = _registered_var_names(adata, registry)
        if not manager_vars.equals(saved_vars):
            raise ValueError(
                "The AnnData's genes differ from the saved model's "
                f"({len(manager_vars)} vs {len(saved_vars)} genes, or another order); "
                "subset/reorder with `adata = adata[:, saved_var_names]`."
            )
        setup_method = getattr(cls, registry["setup_method_name"])
        setup_method(adata, source_registry=registry, **registry["setup_args"])
        init = config["init_params"]
        params = {**init.get("non_kwargs", {}), **init.get("kwargs", {}).get("kwargs", {})}
        model = cls.__new__(cls)
        model._restore = {
            "tokenizer": load_tokenizer(path / "tokenizer"),
            "n_features": config["n_features"],
            "n_genes": len(saved_vars),
        }
        model.__init__(adata, **params)
        state = load_file(str(path / "model.safetensors"))
        model.module.load_state_dict(state, strict=True)
        model.features_ = PCAFeatures.from_state_dict(
            {
                "mean": state["pca_mean"].numpy(),
                "components": state["pca_components"].numpy(),
                "scale": state["pca_scale"].numpy(),
            },
            model.features_.scaling,
        )
        model.is_trained_ = bool(config.get("is_trained", False))
        if config.get("history"):
            model.history_ = {
                k: pd.DataFrame(v).set_index("epoch") if "epoch" in v else pd.DataFrame(v)
                for k, v in config["history"].items()
            }
        _, _, dev = parse_device_args(
            accelerator=accelerator, devices=device, return_device="torch"
        )
        model.to_device(dev)
        model.module.eval()
        return model


# ====================================================================== helpers
def _get_layer(adata: ad.AnnData, layer: str):
    if layer not in adata.layers:
        raise KeyError(f"Layer {layer!r} not found; available layers: {list(adata.layers)}.")
    return adata.layers[layer]


def _check_features(adata: ad.AnnData, key: str) -> None:
    if key not in adata.obsm:
        raise KeyError(f".obsm[{key!r}] not found; available: {list(adata.obsm)}.")
    Z = np.asarray(adata.obsm[key])
    if Z.ndim != 2 or not np.isfinite(Z).all():
        raise ValueError(f".obsm[{key!r}] must be a finite 2-d array (cells x features).")


def _strip_placeholders(template: str) -> str:
    return "".join(lit for lit, *_ in string.Formatter().parse(template))


def _least_squares_decoder(Z: np.ndarray, X) -> dict[str, np.ndarray]:
    """Linear map features -> genes by least squares, in the PCAFeatures layout."""
    X = X.toarray() if hasattr(X, "toarray") else np.asarray(X)
    mean_x = X.mean(0)
    mean_z = Z.mean(0)
    scale = np.full(
        Z.shape[1], float(np.sqrt(((Z - mean_z) ** 2).sum(1).mean() / Z.shape[1])) or 1.0
    )
    W, *_ = np.linalg.lstsq(Z - mean_z, X - mean_x, rcond=None)
    # X ~ (Z - mean_z) W + mean_x = Z W + (mean_x - mean_z W)
    return {
        "mean": (mean_x - mean_z @ W).astype(np.float32),
        "components": W.astype(np.float32),
        "scale": scale.astype(np.float32),
    }


def _registered_var_names(adata, registry) -> pd.Index:
    x_reg = registry["field_registries"][REGISTRY_KEYS.X_KEY]
    mod = x_reg["data_registry"].get("mod_key")
    target = adata.mod[mod] if mod is not None and hasattr(adata, "mod") else adata
    return pd.Index(target.var_names)
