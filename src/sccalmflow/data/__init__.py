"""The data layer: everything between an AnnData and the tensors the module sees.

- :class:`ConditionSpec`: condition keys, control values, categories, contexts, groups and
  control pools (used by the model, the baselines and the metrics).
- :class:`PromptEncoder` (and :class:`LMPromptEncoder`, :class:`SentencePromptEncoder`,
  :class:`ConditionTokenEncoder`): conditions -> prompt text -> what the LM reads first.
- :class:`PCAFeatures` (with its cross-fitting, keyed by :func:`name_folds`) and
  :func:`least_squares_decoder`: the feature space and its way
  back to genes.
- :class:`SequenceDataModule`: per epoch, sources, OT coupling within a condition and N
  trajectories per sequence (optionally stratified over the condition's cells by
  :func:`stratified_sequences`).
- :data:`PCA_KEY`, :func:`write_pca`, :func:`check_same_pca`: the model's PCA coordinates
  in an AnnData, with the projection's fingerprint.
- :class:`AdditiveShift`: the shift vector arithmetic predicts for a condition (the
  Additive baseline and ``source="additive"``).
- :func:`get_matrix`: the one way to read ``X``, a layer or an ``.obsm`` entry.
- :func:`read_backed`, :class:`SparseRowWriter`, :class:`H5adRowWriter`: AnnData with the
  matrix on disk (``.h5ad`` or ``.zarr``), read and written a block of rows at a time.
"""

from ._conditions import (
    LABEL_SEPARATOR,
    ConditionSpec,
    as_condition_frame,
    check_condition_keys,
    condition_labels,
    is_control,
    observed_categories,
    rows_of,
)
from ._datamodule import (
    SequenceDataModule,
    distributed_rank,
    principal_strata,
    shard,
    stratified_sequences,
    stratified_split,
)
from ._disk import (
    ROW_BLOCK,
    STORE_SUFFIXES,
    H5adRowWriter,
    SparseRowWriter,
    check_h5ad_path,
    check_store_path,
    read_backed,
)
from ._features import PCAFeatures, Scaling, check_n_pca, least_squares_decoder, name_folds
from ._matrix import (
    READ_BLOCK,
    check_anndata,
    check_expression,
    dense,
    get_matrix,
    in_memory,
    is_anndata,
    matrix_location,
    read_rows,
    row_blocks,
)
from ._pca_space import (
    PCA_KEY,
    check_same_pca,
    pca_fingerprint,
    pca_uns_key,
    write_pca,
)
from ._prompt_encoders import (
    PROMPT_ENCODERS,
    ConditionTokenEncoder,
    LMPromptEncoder,
    PromptEncoder,
    SentencePromptEncoder,
    build_prompt_encoder,
    load_sentence_model,
    load_tokenizer,
)
from ._prompts import (
    PAD_TOKEN,
    UNCONDITIONAL_TEMPLATE,
    UNK_TOKEN,
    build_bpe_tokenizer,
    build_prompts,
    build_word_tokenizer,
    check_phrases,
    default_templates,
    normalize_templates,
    strip_placeholders,
    template_keys,
)
from ._sampling import interpolate_repeats, resample_pool, smooth_repeats, stratified_rows
from ._shifts import AdditiveShift

__all__ = [
    "PCA_KEY",
    "LABEL_SEPARATOR",
    "PAD_TOKEN",
    "PROMPT_ENCODERS",
    "READ_BLOCK",
    "ROW_BLOCK",
    "STORE_SUFFIXES",
    "UNCONDITIONAL_TEMPLATE",
    "UNK_TOKEN",
    "AdditiveShift",
    "ConditionSpec",
    "ConditionTokenEncoder",
    "H5adRowWriter",
    "LMPromptEncoder",
    "PCAFeatures",
    "PromptEncoder",
    "Scaling",
    "SentencePromptEncoder",
    "SequenceDataModule",
    "SparseRowWriter",
    "as_condition_frame",
    "build_bpe_tokenizer",
    "build_prompt_encoder",
    "build_prompts",
    "build_word_tokenizer",
    "check_same_pca",
    "check_condition_keys",
    "check_expression",
    "check_h5ad_path",
    "check_store_path",
    "check_n_pca",
    "check_phrases",
    "distributed_rank",
    "condition_labels",
    "default_templates",
    "get_matrix",
    "check_anndata",
    "dense",
    "interpolate_repeats",
    "is_anndata",
    "in_memory",
    "is_control",
    "load_sentence_model",
    "load_tokenizer",
    "least_squares_decoder",
    "name_folds",
    "matrix_location",
    "normalize_templates",
    "observed_categories",
    "pca_fingerprint",
    "pca_uns_key",
    "read_backed",
    "read_rows",
    "resample_pool",
    "smooth_repeats",
    "row_blocks",
    "rows_of",
    "shard",
    "principal_strata",
    "stratified_sequences",
    "stratified_rows",
    "strip_placeholders",
    "stratified_split",
    "template_keys",
    "write_pca",
]
