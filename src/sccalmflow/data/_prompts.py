"""Prompts: text built from conditions with ``{key}`` templates, and their encoder.

:class:`PromptEncoder` turns the text into token ids for the language model.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd

from ._conditions import is_control

UNCONDITIONAL_TEMPLATE = "Generate a cell:"
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


def template_keys(template: str) -> list[str]:
    """The ``{key}`` placeholders of a template, in order."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f]


def default_templates(
    condition_keys: Sequence[str], control: Mapping[str, str] | None
) -> dict[str, str]:
    """The paper's two templates, generalised to any keys.

    With a control (perturbation) key, the first other key is read as the cell type and any
    further keys are appended as ``"and <key> <value>"`` (the paper's chronicity), as are
    perturbation keys after the first (``"stimulated with dex and dose 100"``):

    - perturbed: ``"Generate a {cell_type} cell stimulated with {condition}:"``
    - control: ``"Generate a {cell_type} cell with no stimulation:"``

    Without a control key: ``"Generate a cell with <key> {key} and <key2> {key2}:"``;
    without keys: ``"Generate a cell:"``.
    """
    keys = list(condition_keys)
    if not keys:
        return {"perturbed": UNCONDITIONAL_TEMPLATE}
    pert = [k for k in keys if control and k in control]
    ctx = [k for k in keys if k not in pert]
    if not pert:
        body = " and ".join(f"{k.replace('_', ' ')} {{{k}}}" for k in keys)
        return {"perturbed": f"Generate a cell with {body}:"}
    subject = f"{{{ctx[0]}}} cell" if ctx else "cell"
    extra = "".join(f" and {k.replace('_', ' ')} {{{k}}}" for k in ctx[1:])
    treat = f"{{{pert[0]}}}" + "".join(f" and {k.replace('_', ' ')} {{{k}}}" for k in pert[1:])
    return {
        "perturbed": f"Generate a {subject} stimulated with {treat}{extra}:",
        "control": f"Generate a {subject} with no stimulation{extra}:",
    }


def normalize_templates(
    template: str | Mapping[str, str] | None,
    condition_keys: Sequence[str],
    control: Mapping[str, str] | None,
) -> dict[str, str]:
    """Validate user templates (a string, or ``{"perturbed": ..., "control": ...}``)."""
    if template is None:
        return default_templates(condition_keys, control)
    if not isinstance(template, str | Mapping):
        raise TypeError(
            "`prompt_template` must be a string with {key} placeholders or a dict "
            "{'perturbed': ..., 'control': ...}, got "
            f"{type(template).__name__}."
        )
    templates = {"perturbed": template} if isinstance(template, str) else dict(template)
    if "perturbed" not in templates:
        raise ValueError(
            "A template dict needs a 'perturbed' entry (used for every non-control cell); "
            f"got keys {sorted(templates)}."
        )
    unknown = set(templates) - {"perturbed", "control"}
    if unknown:
        raise ValueError(
            f"Unknown template entries {sorted(unknown)}; use 'perturbed' and 'control'."
        )
    for name, tpl in templates.items():
        bad = [k for k in template_keys(tpl) if k not in condition_keys]
        if bad:
            raise ValueError(
                f"Template {name!r} uses placeholder(s) {bad} that are not condition keys "
                f"{list(condition_keys)}: {tpl!r}"
            )
    return templates


def build_prompts(
    frame: pd.DataFrame, templates: Mapping[str, str], control: Mapping[str, str] | None
) -> list[str]:
    """One prompt per row of ``frame`` (columns = condition keys).

    Rows whose perturbation keys equal the control values use the ``"control"`` template
    when there is one.
    """
    ctrl = is_control(frame, control) if "control" in templates else np.zeros(len(frame), bool)
    records = frame.astype(str).to_dict("records") if len(frame.columns) else [{}] * len(frame)
    return [
        templates["control" if c else "perturbed"].format_map(rec)
        for rec, c in zip(records, ctrl, strict=True)
    ]


def strip_placeholders(template: str) -> str:
    """The literal text of a template (placeholders removed)."""
    return "".join(lit for lit, *_ in string.Formatter().parse(template))


def build_word_tokenizer(texts: Iterable[str]):
    """A word-level tokenizer whose vocabulary is every word and punctuation mark in ``texts``.

    Words are split on whitespace and punctuation (``"IFN-beta"`` -> ``IFN``, ``-``, ``beta``),
    so values shared by several categories share tokens. Needs no download.

    Returns
    -------
    :class:`transformers.PreTrainedTokenizerFast` with ``[PAD]`` (id 0) and ``[UNK]`` (id 1).
    """
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    pre = pre_tokenizers.Whitespace()
    words: list[str] = []
    seen = set()
    for text in texts:
        for w, _ in pre.pre_tokenize_str(text):
            if w not in seen:
                seen.add(w)
                words.append(w)
    vocab = {PAD_TOKEN: 0, UNK_TOKEN: 1}
    for w in sorted(words):
        vocab.setdefault(w, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token=UNK_TOKEN))
    tok.pre_tokenizer = pre
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token=PAD_TOKEN, unk_token=UNK_TOKEN)


class PromptEncoder:
    """Conditions -> prompt text -> token ids of a fixed length.

    Holds the templates, the control values (which template a row uses), a word-level
    tokenizer whose vocabulary is the templates' words and the registered categories, and
    the prompt length: the longest prompt any combination of registered values can give.
    Prompts are left-padded with ``[PAD]`` to that length.

    Parameters
    ----------
    templates
        ``{"perturbed": ..., "control": ...}`` (see :func:`normalize_templates`).
    control
        ``{key: control value}`` or ``None``.
    categories
        Registered values of each condition key.
    tokenizer
        A saved tokenizer to use instead of building one (see :meth:`load`).
    """

    def __init__(
        self,
        templates: Mapping[str, str],
        control: Mapping[str, str] | None,
        categories: Mapping[str, Sequence[str]],
        tokenizer=None,
    ):
        self.templates = dict(templates)
        self.control = dict(control) if control else None
        self.categories = {k: [str(v) for v in vals] for k, vals in categories.items()}
        if tokenizer is None:
            tokenizer = build_word_tokenizer(self._vocabulary_texts())
        self.tokenizer = tokenizer
        self.prompt_length = self._max_prompt_length()

    def _vocabulary_texts(self) -> list[str]:
        texts = [strip_placeholders(t) for t in self.templates.values()]
        for values in self.categories.values():
            texts.extend(values)
        return texts

    def _n_tokens(self, text: str) -> int:
        return len(self.tokenizer(text, add_special_tokens=False)["input_ids"])

    def _max_prompt_length(self) -> int:
        per_key = {k: max(self._n_tokens(v) for v in vals) for k, vals in self.categories.items()}
        return max(
            self._n_tokens(strip_placeholders(tpl)) + sum(per_key[k] for k in template_keys(tpl))
            for tpl in self.templates.values()
        )

    @property
    def vocab_size(self) -> int:
        """Number of token ids."""
        return len(self.tokenizer)

    @property
    def pad_id(self) -> int:
        """Id of ``[PAD]``."""
        return int(self.tokenizer.convert_tokens_to_ids(PAD_TOKEN))

    def prompts(self, frame: pd.DataFrame) -> list[str]:
        """One prompt per row of a condition frame (:func:`build_prompts`)."""
        return build_prompts(frame, self.templates, self.control)

    def encode(self, prompts: Sequence[str]) -> np.ndarray:
        """Token ids ``(n, prompt_length)``, left-padded with ``[PAD]``."""
        out = np.full((len(prompts), self.prompt_length), self.pad_id, dtype=np.int64)
        encoded = self.tokenizer(list(prompts), add_special_tokens=False)["input_ids"]
        for i, ids in enumerate(encoded):
            if len(ids) > self.prompt_length:
                raise ValueError(
                    f"Prompt {prompts[i]!r} has {len(ids)} tokens, more than the model's "
                    f"{self.prompt_length}."
                )
            out[i, self.prompt_length - len(ids) :] = ids
        return out

    def save(self, path: str | Path) -> None:
        """Write the tokenizer files to the folder ``path`` (``save_pretrained``)."""
        self.tokenizer.save_pretrained(str(path))

    @classmethod
    def load(
        cls,
        path: str | Path,
        templates: Mapping[str, str],
        control: Mapping[str, str] | None,
        categories: Mapping[str, Sequence[str]],
    ) -> PromptEncoder:
        """An encoder with the tokenizer saved in the folder ``path`` (never the network)."""
        from transformers import PreTrainedTokenizerFast

        tokenizer = PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
        return cls(templates, control, categories, tokenizer=tokenizer)
