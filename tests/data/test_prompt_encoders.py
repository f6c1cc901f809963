"""The prompt encoders: what a batch carries for each kind, phrases, saving and loading."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from sccalmflow.data import (
    PROMPT_ENCODERS,
    ConditionTokenEncoder,
    PromptEncoder,
    SentencePromptEncoder,
    build_prompt_encoder,
    check_phrases,
    default_templates,
)

CONTROL = {"condition": "control"}
CATS = {"cell_type": ["B", "NK"], "condition": ["IFN-beta", "control"]}
TEMPLATES = default_templates(["cell_type", "condition"], CONTROL)
FRAME = pd.DataFrame(
    {"cell_type": ["B", "NK", "B"], "condition": ["IFN-beta", "control"] + ["control"]}
)


def test_word_encoder_with_phrases_pads_to_the_longest_prompt(tmp_path):
    phrases = {"condition": {"IFN-beta": "interferon beta one"}}
    enc = PromptEncoder(TEMPLATES, CONTROL, CATS, phrases=phrases)
    assert enc.prompts(FRAME)[0] == "Generate a B cell stimulated with interferon beta one:"
    ids = enc.encode_conditions(FRAME)
    assert ids.shape == (3, enc.prompt_length) and ids.dtype == np.int64
    # the stimulated prompt is the longest: no padding; the control prompt is left-padded
    assert (ids[0] != enc.pad_id).all() and ids[1, 0] == enc.pad_id
    enc.save(tmp_path / "enc")
    back = PromptEncoder.load(tmp_path / "enc", TEMPLATES, CONTROL, CATS, phrases=phrases)
    assert type(back) is PromptEncoder
    np.testing.assert_array_equal(back.encode_conditions(FRAME), ids)
    # a folder saved before encoder.json existed holds a word-level encoder
    (tmp_path / "enc" / "encoder.json").unlink()
    assert type(PromptEncoder.load(tmp_path / "enc", TEMPLATES, CONTROL, CATS)) is PromptEncoder


def test_condition_tokens_are_offset_per_key(tmp_path):
    enc = ConditionTokenEncoder(TEMPLATES, CONTROL, CATS)
    np.testing.assert_array_equal(enc.encode_conditions(FRAME), [[0, 2], [1, 3], [0, 3]])
    assert enc.module_input == {"kind": "categories", "vocab_size": 4}
    with pytest.raises(ValueError, match=r"no token for condition=\['IL-6'\]"):
        enc.encode_conditions(pd.DataFrame({"cell_type": ["B"], "condition": ["IL-6"]}))
    with pytest.raises(TypeError, match="reads conditions, not text"):
        enc.encode(["Generate a B cell:"])
    enc.save(tmp_path / "enc")
    assert type(PromptEncoder.load(tmp_path / "enc", TEMPLATES, CONTROL, CATS)) is (
        ConditionTokenEncoder
    )


class _FakeSentenceModel:
    """Counts calls; embeds a text as its length and character sums (deterministic)."""

    def __init__(self):
        self.calls = 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        return np.array([[len(t), sum(map(ord, t)) % 97, 1.0] for t in texts], np.float32)


def test_sentence_encoder_caches_each_prompt_and_saves_the_cache(tmp_path):
    enc = SentencePromptEncoder(TEMPLATES, CONTROL, CATS, n_tokens=2, dim=3)
    fake = enc._encoder = _FakeSentenceModel()
    emb = enc.encode_conditions(FRAME)
    assert emb.shape == (3, 3) and emb.dtype == np.float32 and fake.calls == 1
    np.testing.assert_array_equal(emb[1], emb[1])
    enc.encode_conditions(FRAME)  # every prompt cached: the model is not called again
    assert fake.calls == 1 and len(enc.cache) == 3
    assert enc.module_input == {"kind": "embedding", "dim": 3, "n_tokens": 2}
    enc.save(tmp_path / "enc")
    back = PromptEncoder.load(tmp_path / "enc", TEMPLATES, CONTROL, CATS)
    assert isinstance(back, SentencePromptEncoder) and back._encoder is None
    np.testing.assert_array_equal(back.encode_conditions(FRAME), emb)
    assert back._encoder is None  # cached prompts need no sentence model


def test_factory_and_phrase_checks():
    assert PROMPT_ENCODERS == ("words", "lm", "sentence", "none")
    assert type(build_prompt_encoder("none", TEMPLATES, CONTROL, CATS)) is ConditionTokenEncoder
    with pytest.raises(ValueError, match="needs a pretrained `backbone`"):
        build_prompt_encoder("lm", TEMPLATES, CONTROL, CATS)
    with pytest.raises(ValueError, match="must be one of"):
        build_prompt_encoder("bert", TEMPLATES, CONTROL, CATS)
    assert check_phrases(None, CATS) is None
    assert check_phrases({"condition": {"IFN-beta": "interferon"}}, CATS) == {
        "condition": {"IFN-beta": "interferon"}
    }
    with pytest.raises(ValueError, match=r"names value\(s\) \['IFN'\]"):
        check_phrases({"condition": {"IFN": "interferon"}}, CATS)
