"""Saving and loading :class:`~sccalmflow.CaLMFlowModel`: safetensors + JSON, never pickle."""

from __future__ import annotations

from pathlib import Path

import anndata as ad
import numpy as np
import pandas as pd
from scvi import REGISTRY_KEYS

from .. import __version__
from ..data import PCAFeatures, PromptEncoder, normalize_templates
from ._io import read_json, write_json
from ._registration import registered_var_names

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PROMPT_ENCODER_DIR = "tokenizer"
ADATA_FILE = "adata.h5ad"


def _history_to_json(history: dict | None) -> dict:
    return {k: v.reset_index().to_dict(orient="list") for k, v in (history or {}).items()}


def _history_from_json(history: dict) -> dict[str, pd.DataFrame]:
    return {
        k: pd.DataFrame(v).set_index("epoch") if "epoch" in v else pd.DataFrame(v)
        for k, v in history.items()
    }


def _saved_prompt_encoder(path: Path, registry: dict) -> PromptEncoder:
    """The prompt encoder saved in ``path`` with the saved registry's templates and values."""
    setup = registry["setup_args"]
    keys = setup.get("condition_keys") or []
    control = setup.get("control")
    categories = {}
    if keys:
        maps = registry["field_registries"][REGISTRY_KEYS.CAT_COVS_KEY]["state_registry"]
        categories = {k: [str(v) for v in maps["mappings"][k]] for k in keys}
    templates = normalize_templates(setup.get("prompt_template"), keys, control)
    return PromptEncoder.load(path / PROMPT_ENCODER_DIR, templates, control, categories)


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

        path = Path(dir_path)
        if path.exists() and any(path.iterdir()) and not overwrite:
            raise FileExistsError(f"{path} exists and is not empty; pass overwrite=True.")
        path.mkdir(parents=True, exist_ok=True)
        state = {k: v.detach().cpu().contiguous() for k, v in self.module.state_dict().items()}
        save_file(state, str(path / WEIGHTS_FILE))
        self.prompt_encoder.save(path / PROMPT_ENCODER_DIR)
        write_json(
            path / CONFIG_FILE,
            {
                "class": type(self).__name__,
                "sccalmflow_version": __version__,
                "init_params": self.init_params_,
                "registry": self.adata_manager.registry,
                "var_names": np.asarray(self.var_names),
                "n_features": self.module.n_features,
                "is_trained": bool(getattr(self, "is_trained_", False)),
                "history": _history_to_json(getattr(self, "history_", None)),
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
        if not (path / CONFIG_FILE).exists():
            raise FileNotFoundError(f"{path} has no {CONFIG_FILE}: not a saved {cls.__name__}.")
        config = read_json(path / CONFIG_FILE)
        if config.get("class") != cls.__name__:
            raise ValueError(f"{path} holds a {config.get('class')}, not a {cls.__name__}.")
        adata = cls._adata_to_load(path, adata, config)
        registry = config["registry"]
        setup_method = getattr(cls, registry["setup_method_name"])
        setup_method(adata, source_registry=registry, **registry["setup_args"])
        init = config["init_params"]
        params = {**init.get("non_kwargs", {}), **init.get("kwargs", {}).get("kwargs", {})}
        state = load_file(str(path / WEIGHTS_FILE))
        model = cls(
            adata,
            **params,
            features=_saved_features(state, params.get("pca_scaling", "global")),
            prompt_encoder=_saved_prompt_encoder(path, registry),
        )
        model.module.load_state_dict(state, strict=True)
        model.is_trained_ = bool(config.get("is_trained", False))
        if config.get("history"):
            model.history_ = _history_from_json(config["history"])
        _, _, dev = parse_device_args(
            accelerator=accelerator, devices=device, return_device="torch"
        )
        model.to_device(dev)
        model.module.eval()
        return model

    @classmethod
    def _adata_to_load(cls, path: Path, adata, config: dict):
        """The AnnData to attach (given or saved), checked against the saved genes."""
        if adata is None:
            if not (path / ADATA_FILE).exists():
                raise ValueError("Pass `adata` (the model was saved without its AnnData).")
            adata = ad.read_h5ad(path / ADATA_FILE)
        saved_vars = pd.Index(config["var_names"])
        manager_vars = registered_var_names(adata, config["registry"])
        if not manager_vars.equals(saved_vars):
            raise ValueError(
                "The AnnData's genes differ from the saved model's "
                f"({len(manager_vars)} vs {len(saved_vars)} genes, or another order); "
                "subset/reorder with `adata = adata[:, saved_var_names]`."
            )
        return adata
