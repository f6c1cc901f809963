"""An offline word-level prompt tokenizer (Hugging Face `tokenizers`)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

PAD_TOKEN = "[PAD]"
UNK_TOKEN = "[UNK]"


def build_word_tokenizer(texts: Iterable[str]):
    """A word-level tokenizer whose vocabulary is every word and punctuation mark in ``texts``.

    Words are split on whitespace and punctuation (``"IFN-beta"`` -> ``IFN``, ``-``, ``beta``),
    so values shared by several categories share tokens. Built from the templates and the
    registered categories; needs no download.

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


def load_tokenizer(path: str | Path):
    """Load a tokenizer saved with ``save_pretrained`` from a local folder (never the network)."""
    from transformers import PreTrainedTokenizerFast

    return PreTrainedTokenizerFast.from_pretrained(str(path), local_files_only=True)
