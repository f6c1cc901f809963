"""Registration: ``setup_anndata`` / ``setup_mudata`` with scvi-tools' ``AnnDataManager``."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields

from ..data import (
    check_condition_keys,
    check_expression,
    get_matrix,
    matrix_location,
    normalize_templates,
)

#: Registry key of the ``.obsm`` features given with ``features_key``.
FEATURES_KEY = "calmflow_features"


def check_features(adata: ad.AnnData, key: str) -> None:
    """``adata.obsm[key]`` exists and is a finite 2-d array."""
    Z = np.asarray(get_matrix(adata, obsm=key))
    if Z.ndim != 2 or not np.isfinite(Z).all():
        raise ValueError(f".obsm[{key!r}] must be a finite 2-d array (cells x features).")


def registered_var_names(adata, registry: dict) -> pd.Index:
    """The genes of the registered layer of ``adata`` (the RNA modality of a MuData)."""
    x_reg = registry["field_registries"][REGISTRY_KEYS.X_KEY]
    mod = x_reg["data_registry"].get("mod_key")
    target = adata.mod[mod] if mod is not None and hasattr(adata, "mod") else adata
    return pd.Index(target.var_names)


class RegistrationMixin:
    """``setup_anndata`` and ``setup_mudata`` of :class:`~sccalmflow.CaLMFlowModel`."""

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
            ...}``. Default: the paper's two templates (see
            :func:`~sccalmflow.data.default_templates`).
        features_key
            Use ``.obsm[features_key]`` as the flow's space instead of fitting PCA; predictions
            are mapped back to genes by a least-squares linear decoder. ``X`` (or ``layer``)
            then only needs to be finite (any continuous data, e.g. synthetic benchmarks).
        **kwargs
            Passed to ``AnnDataManager.register_fields``.

        Notes
        -----
        As in scvi-tools, this adds ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]`` and
        the coded condition columns in ``obsm["_scvi_extra_categorical_covs"]`` to ``adata``;
        nothing else is changed.
        """
        setup_method_args = cls._get_setup_method_args(**locals())
        check_expression(
            get_matrix(adata, layer=layer),
            matrix_location(layer=layer),
            log_scale=features_key is None,
        )
        keys, control = check_condition_keys(adata.obs, condition_keys, control)
        normalize_templates(prompt_template, keys, control)
        setup_method_args["setup_args"].update(condition_keys=keys or None, control=control)
        anndata_fields = [fields.LayerField(REGISTRY_KEYS.X_KEY, layer, is_count_data=False)]
        if keys:
            anndata_fields.append(fields.CategoricalJointObsField(REGISTRY_KEYS.CAT_COVS_KEY, keys))
        if features_key is not None:
            check_features(adata, features_key)
            anndata_fields.append(fields.ObsmField(FEATURES_KEY, features_key))
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
        **kwargs
            Passed to ``AnnDataManager.register_fields``.

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
        name = f"mdata.mod[{mods.rna_layer!r}]"
        check_expression(get_matrix(rna, layer=rna_layer, name=name), name)
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
