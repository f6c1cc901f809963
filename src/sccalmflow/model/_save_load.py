"""Saving and loading :class:`~sccalmflow.CaLMFlowModel`: safetensors + JSON, never pickle."""

from __future__ import annotations

import hashlib
from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
import torch

from .. import __version__
from ..data import AdditiveShift, PCAFeatures, PromptEncoder, is_anndata
from ..nn import MEAN_HEADS
from ..utils import check_bool, check_number
from ._io import read_json, write_json
from ._registration import registered_var_names, registry_conditions, registry_phrases

WEIGHTS_FILE = "model.safetensors"
#: Prefix of the cross-fitting arrays in the weights file (``model.cross_fit_``; not the
#: module's): the fold maps and the name hashes of the PCA's cells.
CROSS_FIT = "cross_fit"
CONFIG_FILE = "config.json"
PROMPT_ENCODER_DIR = "tokenizer"
ADATA_FILE = "adata.h5ad"


SETUP_METHODS = ("setup_anndata", "setup_mudata")
REQUIRED_CONFIG_KEYS = ("class", "init_params", "registry", "var_names")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _checksums(path: Path) -> dict[str, str]:
    """SHA-256 of the weights and of every prompt-encoder file, by relative path."""
    files = [path / WEIGHTS_FILE, *sorted((path / PROMPT_ENCODER_DIR).rglob("*"))]
    return {str(f.relative_to(path)): _sha256(f) for f in files if f.is_file()}


def _verify_checksums(path: Path, config: dict) -> None:
    """Refuse a folder whose files differ from what :meth:`save` wrote."""
    saved = config.get("checksums")
    if not isinstance(saved, dict) or not saved:
        raise ValueError(
            f"{path / CONFIG_FILE} has no file checksums, so the weights cannot be verified; "
            "save the model again with this version of sccalmflow."
        )
    for rel, digest in saved.items():
        file = path / rel
        if not file.is_file():
            raise FileNotFoundError(f"{file} is missing: the saved model folder is incomplete.")
        if _sha256(file) != digest:
            raise ValueError(
                f"{file} has changed since the model was saved (SHA-256 differs from "
                f"{CONFIG_FILE}): the folder is damaged or was edited. Restore it or save again."
            )


def _read_config_file(path: Path, cls_name: str) -> dict:
    """The JSON object in ``path / config.json``, with errors that name the file."""
    file = path / CONFIG_FILE
    if not file.is_file():
        raise FileNotFoundError(f"{path} has no {CONFIG_FILE}: not a saved {cls_name}.")
    try:
        config = read_json(file)
    except (ValueError, UnicodeDecodeError) as err:
        raise ValueError(f"{file} is not valid JSON ({err}); the folder is damaged.") from err
    if not isinstance(config, dict):
        raise ValueError(f"{file} must hold a JSON object, got {type(config).__name__}.")
    return config


def read_config(path: Path, cls_name: str) -> dict:
    """``config.json`` of a saved model, checked: valid JSON, the keys load needs."""
    file = path / CONFIG_FILE
    config = _read_config_file(path, cls_name)
    missing = [k for k in REQUIRED_CONFIG_KEYS if k not in config]
    if missing:
        raise ValueError(f"{file} lacks {missing}: not a complete saved {cls_name}.")
    if config["class"] != cls_name:
        raise ValueError(f"{path} holds a {config['class']}, not a {cls_name}.")
    registry = config["registry"]
    method = registry.get("setup_method_name") if isinstance(registry, dict) else None
    if method not in SETUP_METHODS:
        raise ValueError(
            f"{file}: registry['setup_method_name'] must be one of {list(SETUP_METHODS)}, "
            f"got {method!r}."
        )
    return config


def _history_to_json(history: dict | None) -> dict:
    return {k: v.reset_index().to_dict(orient="list") for k, v in (history or {}).items()}


def _history_from_json(history: dict) -> dict[str, pd.DataFrame]:
    return {
        k: pd.DataFrame(v).set_index("epoch") if "epoch" in v else pd.DataFrame(v)
        for k, v in history.items()
    }


def _saved_prompt_encoder(path: Path, registry: dict) -> PromptEncoder:
    """The prompt encoder saved in ``path`` with the saved registry's templates and values."""
    if not (path / PROMPT_ENCODER_DIR).is_dir():
        raise FileNotFoundError(
            f"{path / PROMPT_ENCODER_DIR} is missing: the saved model folder is incomplete."
        )
    spec, templates = registry_conditions(registry)
    return PromptEncoder.load(
        path / PROMPT_ENCODER_DIR,
        templates,
        spec.control,
        spec.categories,
        phrases=registry_phrases(registry),
    )


def _saved_cross_fit(cross: dict, model, path: Path) -> dict | None:
    """The saved fold maps and name hashes, checked against the model (``None``: none)."""
    if not cross:
        return None
    maps, hashes = cross.get("maps"), cross.get("hashes")
    shape = (len(model.var_names), model.module.n_features)
    if (
        maps is None
        or hashes is None
        or maps.ndim != 3
        or maps.shape[1:] != shape
        or hashes.ndim != 1
        or hashes.dtype != np.int64
    ):
        raise ValueError(
            f"{path / WEIGHTS_FILE} holds cross-fitting arrays that do not fit the model "
            f"(maps {None if maps is None else maps.shape}, expected (folds, *{shape})); "
            "save the model again with this version of sccalmflow."
        )
    return {"maps": maps, "hashes": hashes}


def _saved_features(state: dict, scaling) -> PCAFeatures:
    return PCAFeatures.from_state_dict(
        {
            "mean": state["pca_mean"].numpy(),
            "components": state["pca_components"].numpy(),
            "scale": state["pca_scale"].numpy(),
        },
        scaling,
    )


class SaveLoadMixin:
    """:meth:`save` and :meth:`load` of :class:`~sccalmflow.CaLMFlowModel`."""

    def save(
        self,
        dir_path: str | Path,
        overwrite: bool = False,
        save_anndata: bool = False,
    ) -> None:
        """Save to a folder: weights (safetensors), JSON config and registry, prompt encoder.

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

        check_bool("overwrite", overwrite)
        check_bool("save_anndata", save_anndata)
        path = Path(dir_path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True.")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        cross = self._cross_fit()  # the cells of the PCA's fit, recognised in any data
        if cross is not None:
            state |= {f"{CROSS_FIT}.{k}": torch.from_numpy(v) for k, v in cross.items()}
        save_file(state, str(path / WEIGHTS_FILE))
        self.prompt_encoder.save(path / PROMPT_ENCODER_DIR)
        checksums = _checksums(path)
        write_json(
            path / CONFIG_FILE,
            {
                "class": type(self).__name__,
                "sccalmflow_version": __version__,
                "init_params": self.init_params_,
                "registry": self.adata_manager.registry,
                "var_names": np.asarray(self.var_names),
                "n_features": self.module.n_features,
                "backbone_config": self.backbone_config_,
                "is_trained": bool(getattr(self, "is_trained_", False)),
                "observed_values": getattr(self, "observed_values_", None),
                "additive_shift": (
                    self.additive_shift_.to_dict()
                    if getattr(self, "additive_shift_", None) is not None
                    else None
                ),
                "history": _history_to_json(getattr(self, "history_", None)),
                "training_summary": getattr(self, "training_summary_", None),
                "temperature": self.temperature,
                "temperature_calibration": getattr(self, "temperature_calibration_", None),
                "checksums": checksums,
            },
        )
        if save_anndata:
            self.adata_manager.adata.write_h5ad(path / ADATA_FILE)

    @classmethod
    def load(
        cls,
        dir_path: str | Path,
        adata: ad.AnnData | None = None,
        accelerator: str = "auto",
        device: int | str = "auto",
    ):
        """Load a saved model (no pickle, no network).

        The model is built by the same constructor as a new one, with the saved feature space
        and prompt encoder passed in, and then receives the saved weights.

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

        Returns
        -------
        The loaded model, in eval mode.
        """
        from safetensors.torch import load_file
        from scvi.model._utils import parse_device_args

        path = Path(dir_path)
        config = read_config(path, cls.__name__)
        _verify_checksums(path, config)
        adata = cls._adata_to_load(path, adata, config)
        registry = config["registry"]
        setup_method = getattr(cls, registry["setup_method_name"])
        setup_method(adata, source_registry=registry, **registry["setup_args"])
        init = config["init_params"]
        params = {**init.get("non_kwargs", {}), **init.get("kwargs", {}).get("kwargs", {})}
        state = load_file(str(path / WEIGHTS_FILE))
        cross = {
            k.split(".", 1)[1]: state.pop(k).numpy()
            for k in list(state)
            if k.startswith(f"{CROSS_FIT}.")
        }
        params.pop("prompt_encoder", None)  # its kind; the saved encoder is passed below
        if params.get("backbone") in ("gpt_neox", "gpt2") and "architecture" not in params:
            # saved before 0.x: `backbone` named the random-weight family
            params["architecture"] = params.pop("backbone")
        if params.get("head") in MEAN_HEADS and "head_mean" not in params:
            params["head_mean"] = "mlp"  # saved before head_mean existed: the MLP mean
        params.setdefault("pca_folds", None)  # saved before cross-fitting: own projections
        if params.get("backbone") is not None:
            # a pretrained backbone: rebuilt from its saved config, never fetched again
            params["pretrained_config"] = config.get("backbone_config")
            if not isinstance(params["pretrained_config"], dict):
                raise ValueError(
                    f"{path / CONFIG_FILE} lacks the pretrained backbone's config; save the "
                    "model again with this version of sccalmflow."
                )
        try:
            model = cls(
                adata,
                **params,
                features=_saved_features(state, params.get("pca_scaling", "global")),
                prompt_encoder=_saved_prompt_encoder(path, registry),
            )
            model.module.load_state_dict(state, strict=True)
        except (TypeError, ValueError, KeyError, RuntimeError) as err:
            raise ValueError(
                f"{path / CONFIG_FILE} and {path / WEIGHTS_FILE} do not describe a model this "
                f"version can build: {err}"
            ) from err
        model.cross_fit_ = _saved_cross_fit(cross, model, path)
        model.is_trained_ = bool(config.get("is_trained", False))
        if config.get("observed_values") is not None:
            model.observed_values_ = config["observed_values"]
        if config.get("additive_shift") is not None:
            model.additive_shift_ = AdditiveShift.from_dict(
                model.conditions, config["additive_shift"]
            )
        if config.get("history"):
            model.history_ = _history_from_json(config["history"])
        if config.get("training_summary") is not None:
            model.training_summary_ = config["training_summary"]
        if config.get("temperature") is not None:
            model.temperature = float(check_number("temperature", config["temperature"], minimum=0))
        if config.get("temperature_calibration") is not None:
            model.temperature_calibration_ = config["temperature_calibration"]
        _, _, dev = parse_device_args(
            accelerator=accelerator, devices=device, return_device="torch"
        )
        model.to_device(dev)
        model.module.eval()
        return model

    @staticmethod
    def load_registry(dir_path: str | Path, prefix: str | None = None) -> dict:
        """The registry saved with a model (read from ``config.json``; never unpickles).

        Parameters
        ----------
        dir_path
            Folder written by :meth:`save`.
        prefix
            Not used (scvi-tools' file prefix); must be ``None``.

        Returns
        -------
        The scvi-tools registry dict.
        """
        if prefix is not None:
            raise ValueError("sccalmflow saves no prefixed files; pass prefix=None.")
        path = Path(dir_path)
        config = _read_config_file(path, "model")
        if not isinstance(config.get("registry"), dict):
            raise ValueError(f"{path / CONFIG_FILE} holds no registry.")
        return config["registry"]

    @staticmethod
    def view_setup_args(dir_path: str | Path, prefix: str | None = None) -> None:
        """Print the ``setup_anndata`` arguments saved with a model (from ``config.json``)."""
        registry = SaveLoadMixin.load_registry(dir_path, prefix)
        print(f"{registry.get('setup_method_name')}: {registry.get('setup_args')}")

    @classmethod
    def convert_legacy_save(cls, *args, **kwargs) -> None:
        """Not available: sccalmflow never wrote scvi-tools' legacy (pickled) format."""
        raise NotImplementedError(
            "sccalmflow models are saved as safetensors + JSON and have no legacy format to "
            "convert; load them with CaLMFlowModel.load(dir_path, adata)."
        )

    @classmethod
    def _adata_to_load(cls, path: Path, adata, config: dict):
        """The AnnData to attach (given or saved), checked against the saved genes."""
        if adata is None:
            if not (path / ADATA_FILE).exists():
                raise ValueError("Pass `adata` (the model was saved without its AnnData).")
            adata = ad.read_h5ad(path / ADATA_FILE)
        if not (is_anndata(adata) or hasattr(adata, "mod")):
            raise TypeError(f"`adata` must be an AnnData or MuData, got {type(adata).__name__}.")
        saved_vars = pd.Index(config["var_names"])
        manager_vars = registered_var_names(adata, config["registry"])
        if not manager_vars.equals(saved_vars):
            raise ValueError(
                "The AnnData's genes differ from the saved model's "
                f"({len(manager_vars)} vs {len(saved_vars)} genes, or another order); "
                "subset/reorder with `adata = adata[:, saved_var_names]`."
            )
        return adata
