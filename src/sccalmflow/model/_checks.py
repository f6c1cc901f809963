"""Argument checks of the model's constructor, ``train`` and ``predict``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from os import PathLike
from types import MappingProxyType
from typing import Any

from ..data import is_anndata
from ..flow import PATHS
from ..nn import FINETUNE_MODES, HEADS, MEAN_HEADS, MEAN_NETWORKS
from ..train import default_max_epochs
from ..utils import check_bool, check_choice, check_int, check_number, check_seed, warn_user

#: The places a path can start from (see :class:`~sccalmflow.CaLMFlowModel`).
SOURCES = ("control", "additive", "noise")


@dataclass(frozen=True)
class SourceDefaults:
    """What the model and ``train()`` use for one ``source`` when they are not told.

    Attributes
    ----------
    head, path
        The constructor's ``head`` and ``path``.
    head_mean
        The constructor's ``head_mean``: the mean network of a flow or gmm head.
    validation_size
        ``train()``'s validation split (0: no early stopping).
    step_scale
        ``train()``'s default step budget, as a multiple of
        :func:`~sccalmflow.train.default_max_epochs`'s.
    """

    head: str
    path: str
    head_mean: str
    validation_size: float
    step_scale: float


#: Every default that depends on ``source``, in one table (read by
#: :func:`generator_defaults` and ``train()``), each chosen from ``benchmarks/results/``:
#:
#: - from noise, the flow head on Brownian-bridge paths (unconditional Kang, 3 seeds: MMD and
#:   E-distance below every CFM's; the deterministic head on straight paths was far behind),
#:   trained without a validation split (early stopping on the mean velocity's error stopped
#:   it too soon) for twice the step budget from cells (the flow head learns the whole
#:   distribution: W2 in PCA fell from 10.0 to below the best CFM's, 3 seeds), its mean an
#:   MLP (the bottleneck: cells too wide at every τ, MMD 0.0047 vs 0.0013);
#: - from cells, the flow head on straight paths with the deterministic head's network (the
#:   bottleneck) as its mean (kang-loo, 9 held-out types x 3 seeds: R² top-100 DE, E-distance
#:   and MMD at least as good as the deterministic head's, a higher empirical W2 (wider
#:   cells), and a distribution instead of one cell per source; with an MLP mean it failed on
#:   one held-out split of six, E-distance 4.3 vs 0.46), early-stopped on a 10 % validation
#:   split.
SOURCE_DEFAULTS: Mapping[str, SourceDefaults] = MappingProxyType(
    {
        "noise": SourceDefaults("flow", "bridge", "mlp", validation_size=0.0, step_scale=2.0),
        "control": SourceDefaults(
            "flow", "straight", "bottleneck", validation_size=0.1, step_scale=1.0
        ),
        "additive": SourceDefaults(
            "flow", "straight", "bottleneck", validation_size=0.1, step_scale=1.0
        ),
    }
)

#: Largest output ``predict`` allocates at once (bytes) before it asks for ``decode=False``.
MAX_PREDICTION_BYTES = 8 * 2**30


def check_init_arguments(args: dict[str, Any]) -> None:
    """The constructor's hyperparameters (see :class:`~sccalmflow.CaLMFlowModel`)."""
    check_int("n_pca", args["n_pca"], minimum=1)
    check_int("pca_max_cells", args["pca_max_cells"], minimum=2)
    if args["pca_folds"] is not None:
        check_int("pca_folds", args["pca_folds"], minimum=2)
    check_choice("pca_scaling", args["pca_scaling"], ("global", "component", "none"))
    check_choice("source", args["source"], SOURCES)
    check_int("n_time_points", args["n_time_points"], minimum=2)
    for name in ("n_space_tokens", "n_trajectories", "latent_dim", "head_hidden"):
        check_int(name, args[name], minimum=1)
    check_int("tokenizer_hidden", args["tokenizer_hidden"], minimum=1)
    if args["sigma_min"] is not None:
        check_number("sigma_min", args["sigma_min"], minimum=0)
    check_number("kl_weight", args["kl_weight"], minimum=0)
    check_number("kl_free_bits", args["kl_free_bits"], minimum=0)
    if args["temperature"] is not None:
        check_number("temperature", args["temperature"], minimum=0)
    if not (isinstance(args["ot_coupling"], str) and args["ot_coupling"] == "sequence"):
        try:
            check_bool("ot_coupling", args["ot_coupling"])
        except TypeError:
            got = type(args["ot_coupling"]).__name__
            msg = f"`ot_coupling` must be True, False or 'sequence', got {got} {args['ot_coupling']!r:.40}."
            # an unknown name is a bad value (as check_choice), anything else a bad type
            raise (ValueError if isinstance(args["ot_coupling"], str) else TypeError)(msg) from None
    elif args["n_trajectories"] == 1:
        warn_user(
            "ot_coupling='sequence' pairs sources and targets by OT within each sequence of "
            "n_trajectories; with n_trajectories=1 there is nothing to pair and the model trains "
            "as with ot_coupling=False. Pass n_trajectories > 1, or ot_coupling=True."
        )
    check_choice("sequence_targets", args["sequence_targets"], ("stratified", "independent"))
    if args["head"] is not None:
        check_choice("head", args["head"], HEADS)
    if args["path"] is not None:
        check_choice("path", args["path"], PATHS)
    if args["head_mean"] is not None:
        check_choice("head_mean", args["head_mean"], MEAN_NETWORKS)
    check_seed("seed", args["seed"])
    _check_given_parts(args["features"], args["prompt_encoder"])
    _check_language(args)
    if args["backbone_config"] is None:
        check_choice("architecture", args["architecture"], ("gpt_neox", "gpt2"))
        for name in ("width", "n_layers", "n_heads", "ffn"):
            check_int(name, args[name], minimum=1)
        if args["width"] % args["n_heads"]:
            raise ValueError(
                f"`width` ({args['width']}) must be a multiple of `n_heads` ({args['n_heads']})."
            )
    elif (
        not isinstance(args["backbone_config"], dict) or "model_type" not in args["backbone_config"]
    ):
        raise TypeError(
            "`backbone_config` must be a dict with a 'model_type' (e.g. from "
            "sccalmflow.nn.default_backbone_config), got "
            f"{type(args['backbone_config']).__name__}."
        )


def generator_defaults(
    source: str,
    head: str | None = None,
    path: str | None = None,
    sigma_min: float | None = None,
    head_mean: str | None = None,
) -> tuple[str, str, float, str | None]:
    """The head, path, path noise and mean network the model uses for ``source``.

    Each argument given is kept; each ``None`` is filled from :data:`SOURCE_DEFAULTS`:
    the flow head, on Brownian-bridge paths from noise and on straight paths from cells
    (``"additive"``, ``"control"``), each chosen from the numbers in ``benchmarks/results/``
    (``unconditional_seeds.md``, ``kang-loo_seeds.md``, ``generator.md``). A flow or gmm head
    gets an MLP mean from noise and the deterministic head's network (``"bottleneck"``) from
    cells; the other heads have no separate mean (``None``; giving one is an error).

    Parameters
    ----------
    source
        ``"additive"``, ``"control"`` or ``"noise"``.
    head, path, sigma_min, head_mean
        As in :class:`~sccalmflow.CaLMFlowModel`. Without ``sigma_min`` a bridge gets 1.0
        (the best of 0.5, 1 and 2 from noise on Kang), a straight path 0.

    Returns
    -------
    ``(head, path, sigma_min, head_mean)``.

    Examples
    --------
    >>> from sccalmflow.model import generator_defaults
    >>> generator_defaults("noise")
    ('flow', 'bridge', 1.0, 'mlp')
    >>> generator_defaults("additive")
    ('flow', 'straight', 0.0, 'bottleneck')
    >>> generator_defaults("control", head="deterministic", path="bridge")
    ('deterministic', 'bridge', 1.0, None)
    """
    check_choice("source", source, SOURCES)
    defaults = SOURCE_DEFAULTS[source]
    head = defaults.head if head is None else head
    path = defaults.path if path is None else path
    if sigma_min is None:
        sigma_min = 1.0 if path == "bridge" else 0.0
    if head not in MEAN_HEADS:
        if head_mean is not None:
            raise ValueError(
                f"head_mean={head_mean!r} is for the {' and '.join(map(repr, MEAN_HEADS))} "
                f"heads; the {head!r} head has no separate mean. Leave head_mean None."
            )
    elif head_mean is None:
        head_mean = defaults.head_mean
    return head, path, float(sigma_min), head_mean


def _check_language(args: dict[str, Any]) -> None:
    """The backbone, its fine-tuning and the prompt encoder fit together."""
    from ..data import PROMPT_ENCODERS

    backbone, encoder = args["backbone"], args["prompt_encoder"]
    if backbone is not None:
        if not isinstance(backbone, str | PathLike) or not str(backbone).strip():
            raise TypeError(
                "`backbone` must be a pretrained model's hub name (e.g. "
                "'EleutherAI/pythia-160m') or a local folder, got "
                f"{backbone!r}. For a random-weight backbone leave it None and choose "
                "`architecture`."
            )
        if args["backbone_config"] is not None:
            raise ValueError(
                "Pass either `backbone` (pretrained) or `backbone_config` (random weights), "
                "not both."
            )
    check_choice("finetune", args["finetune"], FINETUNE_MODES)
    check_int("lora_rank", args["lora_rank"], minimum=1)
    check_bool("local_files_only", args["local_files_only"])
    check_int("prompt_tokens", args["prompt_tokens"], minimum=1)
    pretrained = backbone is not None or args.get("pretrained_config") is not None
    if args["finetune"] != "full" and not pretrained:
        raise ValueError(
            f"finetune={args['finetune']!r} keeps the backbone's weights (or adapts them): it "
            "needs a pretrained `backbone`; a random-weight backbone trains in full."
        )
    if isinstance(encoder, str):
        check_choice("prompt_encoder", encoder, PROMPT_ENCODERS)
        if encoder == "words" and pretrained:
            raise ValueError(
                "prompt_encoder='words' builds its own vocabulary, which a pretrained backbone "
                "does not know: use 'lm' (its own tokenizer, the default), 'sentence' or 'none'."
            )
        if encoder == "lm" and not pretrained:
            raise ValueError(
                "prompt_encoder='lm' uses a pretrained LM's tokenizer: pass `backbone` (a hub "
                "name or a local folder), or use 'words', 'sentence' or 'none'."
            )


def _check_given_parts(features, prompt_encoder) -> None:
    from ..data import PCAFeatures, PromptEncoder

    if features is not None:
        if not isinstance(features, PCAFeatures):
            raise TypeError(
                f"`features` must be a fitted sccalmflow.data.PCAFeatures, got "
                f"{type(features).__name__}."
            )
        if not features.is_fitted:
            raise ValueError("`features` is not fitted: call its `fit` first (or pass None).")
    if prompt_encoder is not None and not isinstance(prompt_encoder, str | PromptEncoder):
        raise TypeError(
            "`prompt_encoder` must be 'words', 'lm', 'sentence', 'none' or a "
            f"sccalmflow.data.PromptEncoder, got {type(prompt_encoder).__name__}."
        )


def check_plan_kwargs(plan_kwargs) -> dict:
    """``plan_kwargs`` is a dict of arguments the training plan or the loss accept."""
    import inspect

    from scvi.train import TrainingPlan

    from ..module import CaLMFlowModule
    from ..train import CaLMFlowTrainingPlan

    if plan_kwargs is None:
        return {}
    if not isinstance(plan_kwargs, Mapping):
        raise TypeError(f"`plan_kwargs` must be a dict, got {type(plan_kwargs).__name__}.")
    allowed = set()
    for fn in (CaLMFlowTrainingPlan.__init__, TrainingPlan.__init__, CaLMFlowModule.loss):
        allowed |= set(inspect.signature(fn).parameters) - {"self", "module", "kwargs"}
    allowed -= {"tensors", "inference_outputs", "generative_outputs"}
    unknown = sorted(set(plan_kwargs) - allowed)
    if unknown:
        raise TypeError(
            f"`plan_kwargs` has unknown argument(s) {unknown}; the training plan takes "
            f"{sorted(allowed)}."
        )
    return dict(plan_kwargs)


def check_train_arguments(args: dict[str, Any]) -> None:
    """The arguments of :meth:`~sccalmflow.CaLMFlowModel.train`."""
    if args["max_epochs"] is not None:
        check_int("max_epochs", args["max_epochs"], minimum=1)
    check_int("batch_size", args["batch_size"], minimum=1)
    check_number("lr", args["lr"], minimum=0, exclusive_minimum=True)
    check_number(
        "validation_size", args["validation_size"], minimum=0, maximum=1, exclusive_maximum=True
    )
    for name in ("early_stopping", "restore_best"):
        if args[name] is not None:
            check_bool(name, args[name])
    check_int("early_stopping_patience", args["early_stopping_patience"], minimum=1)
    if args["ema_decay"] is not None:
        check_number("ema_decay", args["ema_decay"], minimum=0, maximum=1, exclusive_maximum=True)
    if args["n_steps_kl_warmup"] is not None:
        check_int("n_steps_kl_warmup", args["n_steps_kl_warmup"], minimum=0)
    check_int("ot_batch_size", args["ot_batch_size"], minimum=1)
    check_plan_kwargs(args["plan_kwargs"])
    if args["n_threads"] is not None:
        check_int("n_threads", args["n_threads"], minimum=1)
    check_bool("resume", args["resume"])
    if args["checkpoint_dir"] is not None and not isinstance(
        args["checkpoint_dir"], str | PathLike
    ):
        raise TypeError(
            f"`checkpoint_dir` must be a folder path, got {type(args['checkpoint_dir']).__name__}."
        )


def resolve_max_epochs(
    max_epochs: int | None, n_sequences: int, steps_per_epoch: int, source: str
) -> int:
    """``max_epochs``, or the default budget (scaled by the source's ``step_scale``)."""
    if max_epochs is not None:
        return max_epochs
    scale = SOURCE_DEFAULTS[source].step_scale
    return default_max_epochs(n_sequences, steps_per_epoch, scale)


def resolve_validation_size(
    validation_size: float | None, train_size: float | None, source: str = "additive"
) -> float:
    """``validation_size`` from either spelling (scvi-tools users write ``train_size``).

    Neither given: the source's (:data:`SOURCE_DEFAULTS`; 0.1 from cells, 0 from noise).
    """
    if train_size is None:
        if validation_size is None:
            return SOURCE_DEFAULTS[source].validation_size
        return validation_size
    if validation_size is not None:
        raise ValueError(
            f"Give validation_size ({validation_size}) or train_size ({train_size}), not both: "
            "validation_size = 1 - train_size."
        )
    check_number("train_size", train_size, minimum=0, maximum=1, exclusive_minimum=True)
    return 1.0 - float(train_size)


def check_predict_arguments(args: dict[str, Any]) -> None:
    """The arguments of :meth:`~sccalmflow.CaLMFlowModel.predict`."""
    check_int("n_cells", args["n_cells"], minimum=1)
    check_seed("seed", args["seed"])
    if args["temperature"] is not None:
        check_number("temperature", args["temperature"], minimum=0)
    check_int("batch_size", args["batch_size"], minimum=1)
    for name in ("return_trajectories", "use_cache", "decode"):
        check_bool(name, args[name])
    if args["oversample"] is not None:
        check_choice("oversample", args["oversample"], ("repeat", "interpolate", "smooth"))
    if args["n_threads"] is not None:
        check_int("n_threads", args["n_threads"], minimum=1)
    if args["chain"] is not None:
        check_int("chain", args["chain"], minimum=1)
        N = args["self"].n_trajectories
        if N == 1:
            raise ValueError(
                "`chain` links sequences of several trajectories; this model has "
                "n_trajectories=1 (each cell its own sequence). Leave chain=None, or train a "
                "model with n_trajectories > 1."
            )
        check_int("chain", args["chain"], minimum=1, maximum=N - 1)
    if args["source_cells"] is not None and not is_anndata(args["source_cells"]):
        raise TypeError(
            f"`source_cells` must be an AnnData, got {type(args['source_cells']).__name__}."
        )
    if args["source_layer"] is not None and args["source_cells"] is None:
        raise ValueError("`source_layer` names a layer of `source_cells`; pass source_cells too.")


def check_prediction_size(n_rows: int, n_cells: int, n_values: int, what: str) -> None:
    """Refuse a prediction whose output would exceed :data:`MAX_PREDICTION_BYTES`."""
    size = 4 * n_rows * n_cells * n_values
    if size > MAX_PREDICTION_BYTES:
        raise ValueError(
            f"{n_rows} condition(s) x {n_cells} cells x {n_values} {what} would take "
            f"{size / 2**30:.1f} GiB (more than {MAX_PREDICTION_BYTES / 2**30:.0f} GiB in memory): "
            "pass out='prediction.h5ad' to write it to disk as it is generated (returned backed), "
            "ask for fewer cells per call, or pass decode=False to keep only the PCA "
            "coordinates."
        )
