"""Prompts: text built from conditions with ``{key}`` templates (and phrase maps).

:class:`PromptEncoder` turns the text into token ids for the language model.
"""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from ._conditions import is_control

UNCONDITIONAL_TEMPLATE = "Generate a cell:"
PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


#: How the default templates name a key whose word is not its column name (the paper writes
#: "and exposure acute" for the chronicity key).
KEY_WORDS = {"chronicity": "exposure"}


def _key_word(key: str) -> str:
    return KEY_WORDS.get(key, key.replace("_", " "))


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

    A key named ``chronicity`` is written as the paper writes it (:data:`KEY_WORDS`):
    ``"Generate a {cell_type} cell stimulated with {perturbation} and exposure
    {chronicity}:"``.

    Without a control key: ``"Generate a cell with <key> {key} and <key2> {key2}:"``;
    without keys: ``"Generate a cell:"``.
    """
    keys = list(condition_keys)
    if not keys:
        return {"perturbed": UNCONDITIONAL_TEMPLATE}
    pert = [k for k in keys if control and k in control]
    ctx = [k for k in keys if k not in pert]
    if not pert:
        body = " and ".join(f"{_key_word(k)} {{{k}}}" for k in keys)
        return {"perturbed": f"Generate a cell with {body}:"}
    subject = f"{{{ctx[0]}}} cell" if ctx else "cell"
    extra = "".join(f" and {_key_word(k)} {{{k}}}" for k in ctx[1:])
    treat = f"{{{pert[0]}}}" + "".join(f" and {_key_word(k)} {{{k}}}" for k in pert[1:])
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
    frame: pd.DataFrame,
    templates: Mapping[str, str],
    control: Mapping[str, str] | None,
    phrases: Mapping[str, Mapping[str, str]] | None = None,
) -> list[str]:
    """One prompt per row of ``frame`` (columns = condition keys).

    Rows whose perturbation keys equal the control values use the ``"control"`` template
    when there is one. ``phrases`` (``{key: {value: words}}``) puts words in place of
    category codes (``"IFN-beta"`` -> ``"interferon beta"``); other values are written as
    they are.
    """
    ctrl = is_control(frame, control) if "control" in templates else np.zeros(len(frame), bool)
    records = frame.astype(str).to_dict("records") if len(frame.columns) else [{}] * len(frame)
    phrases = phrases or {}
    return [
        templates["control" if c else "perturbed"].format_map(
            {k: phrases.get(k, {}).get(v, v) for k, v in rec.items()}
        )
        for rec, c in zip(records, ctrl, strict=True)
    ]


def check_phrases(
    phrases: Mapping[str, Mapping[str, str]] | None,
    categories: Mapping[str, Sequence[str]],
) -> dict[str, dict[str, str]] | None:
    """Validate ``{key: {value: phrase}}``: condition keys, registered values, non-empty text.

    Returns a plain JSON-able copy (``None`` stays ``None``).
    """
    if phrases is None:
        return None
    if not isinstance(phrases, Mapping) or not all(
        isinstance(m, Mapping) for m in phrases.values()
    ):
        raise TypeError(
            "`phrases` must be a dict {condition key: {value: words}}, e.g. "
            "{'condition': {'IFN-beta': 'interferon beta'}}."
        )
    out: dict[str, dict[str, str]] = {}
    for key, mapping in phrases.items():
        if key not in categories:
            raise ValueError(
                f"`phrases` has key {key!r}, which is not a condition key {list(categories)}."
            )
        known = [str(v) for v in categories[key]]
        unknown = sorted(str(v) for v in mapping if str(v) not in known)
        if unknown:
            raise ValueError(
                f"`phrases[{key!r}]` names value(s) {unknown} that .obs[{key!r}] does not have; "
                f"known values: {known}."
            )
        for value, text in mapping.items():
            if not isinstance(text, str) or not text.strip():
                raise ValueError(
                    f"`phrases[{key!r}][{value!r}]` must be non-empty text, got {text!r}."
                )
        out[str(key)] = {str(v): str(t) for v, t in mapping.items()}
    return out


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


def build_bpe_tokenizer(texts: Iterable[str], vocab_size: int = 400):
    """A byte-level BPE tokenizer (GPT-2 style) trained on ``texts``, offline.

    For a small language model of your own (tests, benchmarks, a local backbone folder):
    ``<|endoftext|>`` is its end-of-text token; any text can be encoded.

    Returns
    -------
    :class:`transformers.PreTrainedTokenizerFast`.
    """
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,  # its progress bar writes blank lines to stdout
    )
    tok.train_from_iterator(list(texts), trainer)
    return PreTrainedTokenizerFast(tokenizer_object=tok, eos_token="<|endoftext|>")
