"""Registration: ``setup_anndata`` / ``setup_mudata`` with scvi-tools' ``AnnDataManager``."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence

import anndata as ad
import numpy as np
import pandas as pd
from scvi import REGISTRY_KEYS
from scvi.data import AnnDataManager, fields

from ..data import (
    ConditionSpec,
    check_condition_keys,
    check_expression,
    check_phrases,
    get_matrix,
    is_anndata,
    matrix_location,
    normalize_templates,
    observed_categories,
)

#: Registry key of the ``.obsm`` features given with ``features_key``.
FEATURES_KEY = "calmflow_features"


def check_features(adata: ad.AnnData, key: str) -> None:
    """``adata.obsm[key]`` exists and is a finite 2-d array."""
    Z = np.asarray(get_matrix(adata, obsm=key))
    if Z.ndim != 2 or not np.isfinite(Z).all():
        raise ValueError(f".obsm[{key!r}] must be a finite 2-d array (cells x features).")


#: Characters a condition key cannot hold: ``str.format`` reads them inside ``{key}``
#: placeholders, and scvi-tools' registry refuses dots.
_KEY_CHARACTERS = ".[]{}:!"


def check_registrable(adata, keys: Sequence[str] | str | None, where: str = "adata") -> None:
    """Problems scvi-tools would hit later (or silently paper over), named with their fix.

    A view, duplicate cell or gene names, condition keys that cannot be template
    placeholders, and a Fortran-ordered dense ``X`` (which scvi-tools rewrites in C order in
    place: warned, not refused).
    """
    if getattr(adata, "is_view", False):
        raise ValueError(
            f"`{where}` is a view of another AnnData (e.g. `adata[mask]`): register a copy, "
            f"`{where} = {where}.copy()`."
        )
    for axis, names in (("obs", adata.obs_names), ("var", adata.var_names)):
        if not names.is_unique:
            dup = names[names.duplicated()].unique()[:5].tolist()
            raise ValueError(
                f"`{where}.{axis}_names` has duplicates (e.g. {dup}): predictions name cells and "
                f"genes by them. Run `{where}.{axis}_names_make_unique()` first."
            )
    if isinstance(keys, str):
        keys = [keys]
    # anything else that is not a list is refused by check_condition_keys, with its message
    for k in keys if isinstance(keys, Sequence | np.ndarray) else []:
        bad = sorted({c for c in str(k) if c in _KEY_CHARACTERS})
        if bad:
            raise ValueError(
                f"Condition key {k!r} contains {' '.join(bad)}, which prompt templates cannot "
                f"hold: rename the column, e.g. `{where}.obs = {where}.obs.rename(columns="
                f"{{{k!r}: {str(k).translate({ord(c): '_' for c in _KEY_CHARACTERS})!r}}})`."
            )
    X = getattr(adata, "X", None)
    if isinstance(X, np.ndarray) and X.ndim == 2 and not X.flags["C_CONTIGUOUS"]:
        warnings.warn(
            f"`{where}.X` is a Fortran-ordered array: scvi-tools rewrites it in C order, in "
            f"place (same values). Pass `{where}.X = np.ascontiguousarray({where}.X)` to do it "
            "yourself and silence this.",
            UserWarning,
            stacklevel=3,
        )


def warn_unused_categories(obs: pd.DataFrame, keys: Sequence[str]) -> None:
    """Warn about categories of a condition key that no cell has (they stay registered)."""
    for k in keys:
        col = obs[k]
        if isinstance(col.dtype, pd.CategoricalDtype):
            unused = [str(c) for c in col.cat.categories if not (col == c).any()]
            if unused:
                warnings.warn(
                    f"Condition key {k!r} has categories without cells: {unused[:10]}. They are "
                    "registered but nothing can be learned about them; predicting them is an "
                    f"error. Drop them with `adata.obs[{k!r}] = "
                    f"adata.obs[{k!r}].cat.remove_unused_categories()`.",
                    UserWarning,
                    stacklevel=3,
                )


def registry_conditions(registry: dict) -> tuple[ConditionSpec, dict[str, str]]:
    """The condition spec and prompt templates a registry describes (live or saved)."""
    setup = registry["setup_args"]
    keys = list(setup.get("condition_keys") or [])
    control = setup.get("control")
    categories = {}
    if keys:
        state = registry["field_registries"][REGISTRY_KEYS.CAT_COVS_KEY]["state_registry"]
        categories = {k: [str(v) for v in state["mappings"][k]] for k in keys}
    templates = normalize_templates(setup.get("prompt_template"), keys, control)
    return ConditionSpec(tuple(keys), control, categories), templates


def registry_phrases(registry: dict) -> dict[str, dict[str, str]] | None:
    """The ``{key: {value: words}}`` phrase maps given at setup (``None``: none)."""
    return registry["setup_args"].get("phrases")


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
        phrases: Mapping[str, Mapping[str, str]] | None = None,
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
            sources when ``source="additive"`` or ``"control"``).
        prompt_template
            A template string with ``{key}`` placeholders, or ``{"perturbed": ..., "control":
            ...}``. Default: the paper's two templates (see
            :func:`~sccalmflow.data.default_templates`).
        features_key
            Use ``.obsm[features_key]`` as the flow's space instead of fitting PCA; predictions
            are mapped back to genes by a least-squares linear decoder. ``X`` (or ``layer``)
            then only needs to be finite (any continuous data, e.g. synthetic benchmarks).
        phrases
            Words to write in the prompt instead of a category code, per key:
            ``{"condition": {"IFN-beta": "interferon beta"}}`` (registered values only;
            values without a phrase are written as they are).
        **kwargs
            Passed to ``AnnDataManager.register_fields``.

        Notes
        -----
        As in scvi-tools, this adds ``uns["_scvi_uuid"]``, ``uns["_scvi_manager_uuid"]`` and
        the coded condition columns in ``obsm["_scvi_extra_categorical_covs"]`` to ``adata``;
        nothing else is changed, except that scvi-tools rewrites a Fortran-ordered dense
        ``X`` in C order (same values; a warning says so). Views, duplicate cell or gene
        names and condition keys with ``.[]{}:!`` are refused; categories without cells
        are warned about.
        """
        if not is_anndata(adata):
            raise TypeError(
                f"`adata` must be an AnnData, got {type(adata).__name__}"
                + (" (use setup_mudata for a MuData)." if hasattr(adata, "mod") else ".")
            )
        setup_method_args = cls._get_setup_method_args(**locals())
        check_registrable(adata, condition_keys)
        check_expression(
            get_matrix(adata, layer=layer),
            matrix_location(layer=layer),
            log_scale=features_key is None,
        )
        keys, control = check_condition_keys(adata.obs, condition_keys, control)
        warn_unused_categories(adata.obs, keys)
        normalize_templates(prompt_template, keys, control)
        phrases = check_phrases(phrases, {k: observed_categories(adata.obs[k]) for k in keys})
        setup_method_args["setup_args"].update(
            condition_keys=keys or None, control=control, phrases=phrases
        )
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
        phrases: Mapping[str, Mapping[str, str]] | None = None,
        **kwargs,
    ) -> None:
        """Register the RNA modality of a MuData (scvi-tools' ``modalities=`` convention).

        Parameters
        ----------
        mdata
            MuData with an RNA modality of log-normalised expression.
        rna_layer
            Layer of the RNA modality (``None``: its ``X``).
        condition_keys, control, prompt_template, phrases
            As in :meth:`setup_anndata`; condition columns are read from the global
            ``mdata.obs`` unless ``modalities["condition_keys"]`` names a modality.
        modalities
            ``{"rna_layer": "rna"}`` (required), optionally ``"condition_keys"``.
        **kwargs
            Passed to ``AnnDataManager.register_fields``.

        Examples
        --------
        Conditions in the RNA modality's ``obs``:

        >>> mdata = mudata.MuData({"rna": adata})
        >>> CaLMFlowModel.setup_mudata(mdata, condition_keys=["cell_type", "condition"],
        ...     control={"condition": "control"},
        ...     modalities={"rna_layer": "rna", "condition_keys": "rna"})
        """
        if not hasattr(mdata, "mod") or not hasattr(mdata, "obs"):
            raise TypeError(
                f"`mdata` must be a MuData, got {type(mdata).__name__} (use setup_anndata for "
                "an AnnData)."
            )
        setup_method_args = cls._get_setup_method_args(**locals())
        if not modalities or "rna_layer" not in modalities:
            raise ValueError("setup_mudata needs modalities={'rna_layer': <RNA modality name>}.")
        mods = cls._create_modalities_attr_dict(modalities, setup_method_args)
        if mods.rna_layer not in mdata.mod:
            raise KeyError(f"Modality {mods.rna_layer!r} not in mdata.mod ({list(mdata.mod)}).")
        rna = mdata.mod[mods.rna_layer]
        name = f"mdata.mod[{mods.rna_layer!r}]"
        check_registrable(rna, condition_keys, name)
        check_expression(get_matrix(rna, layer=rna_layer, name=name), name)
        cond_mod = getattr(mods, "condition_keys", None)
        obs = mdata.obs if cond_mod is None else mdata.mod[cond_mod].obs
        keys, control = check_condition_keys(obs, condition_keys, control)
        warn_unused_categories(obs, keys)
        normalize_templates(prompt_template, keys, control)
        phrases = check_phrases(phrases, {k: observed_categories(obs[k]) for k in keys})
        setup_method_args["setup_args"].update(
            condition_keys=keys or None, control=control, phrases=phrases
        )
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
