"""Pretrained backbones (local folders), fine-tuning modes, prompt encoders, unseen values.

Every pretrained model here is a tiny GPT-NeoX or GPT-2 built from a config with a real
byte-level BPE tokenizer trained on prompt-like text, written with ``save_pretrained`` to a
temporary folder and loaded by path: nothing is downloaded.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
B_STIM = {"cell_type": ["B"], "condition": ["IFN-beta"]}
SMALL = dict(n_pca=8, n_time_points=4, head_hidden=16, tokenizer_hidden=16, latent_dim=4)
TRAIN = dict(max_epochs=2, batch_size=64, early_stopping=False, restore_best=False)
SIZES = {
    "gpt_neox": dict(
        hidden_size=16,
        num_hidden_layers=1,
        num_attention_heads=2,
        intermediate_size=32,
        max_position_embeddings=256,
    ),
    "gpt2": dict(
        n_embd=16,
        n_layer=1,
        n_head=2,
        n_inner=32,
        n_positions=256,
        bos_token_id=0,
        eos_token_id=0,
    ),
}
TEXT = [
    "Generate a B cell stimulated with IFN-beta and interferon beta:",
    "Generate a CD14 Mono cell with no stimulation:",
    "Generate a CD4 Naive T cell stimulated with interleukin 6:",
    "Generate a NK cell with no stimulation, stimulated with cytokines:",
]


def _save_tiny_lm(folder, family: str) -> None:
    from transformers import AutoConfig, AutoModel

    from sccalmflow.data import build_bpe_tokenizer

    fast = build_bpe_tokenizer(TEXT * 20, vocab_size=320)
    config = AutoConfig.for_model(family, vocab_size=len(fast), **SIZES[family])
    torch.manual_seed(0)
    AutoModel.from_config(config).save_pretrained(folder)
    fast.save_pretrained(folder)


@pytest.fixture(scope="module", params=["gpt_neox", "gpt2"])
def lm_folder(request, tmp_path_factory):
    folder = tmp_path_factory.mktemp(f"tiny_{request.param}")
    _save_tiny_lm(folder, request.param)
    return folder


@pytest.fixture(scope="module")
def train_adata(kang_small_shared):
    mask = (kang_small_shared.obs["cell_type"] == "B") & (
        kang_small_shared.obs["condition"] == "IFN-beta"
    )
    adata = kang_small_shared[~mask.to_numpy()].copy()
    CaLMFlowModel.setup_anndata(adata, **KEYS)
    return adata


def _backbone_weights(model) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in model.module.backbone.state_dict().items()}


def _roundtrip(model, adata, tmp_path, conditions=B_STIM, **predict):
    before = model.predict(conditions, n_cells=20, seed=3, **predict)
    model.save(tmp_path / "saved")
    loaded = CaLMFlowModel.load(tmp_path / "saved", adata)
    after = loaded.predict(conditions, n_cells=20, seed=3, **predict)
    np.testing.assert_array_equal(before.X, after.X)
    return loaded


@pytest.mark.parametrize("finetune", ["full", "frozen", "lora"])
def test_pretrained_backbone_from_a_folder_trains_and_reloads(
    lm_folder, train_adata, finetune, tmp_path, quiet_train
):
    model = CaLMFlowModel(train_adata, backbone=str(lm_folder), finetune=finetune, **SMALL)
    assert model.prompt_encoder.kind == "lm"
    # the prompt goes through the LM's own BPE tokenizer, not a word vocabulary
    ids = model.prompt_encoder.encode_conditions(model.conditions.validate(B_STIM))
    assert ids.max() < model.module.backbone.config.vocab_size
    start = _backbone_weights(model)
    quiet_train(model, **TRAIN)
    end = _backbone_weights(model)
    changed = {k for k in start if not torch.equal(start[k], end[k])}
    if finetune == "full":
        assert any("embed" in k or "wte" in k for k in changed)
    elif finetune == "frozen":
        assert changed == set()
    else:
        assert changed and all("lora_" in k for k in changed)
        assert any("lora_A" in k for k in start)
    trainable = sum(p.numel() for p in model.module.backbone.parameters() if p.requires_grad)
    assert (trainable == 0) == (finetune == "frozen")
    loaded = _roundtrip(model, train_adata, tmp_path)
    assert loaded.finetune == finetune
    assert loaded.module.backbone.config.model_type == model.module.backbone.config.model_type
    assert f"{finetune}" in str(model._model_summary_string)


def test_load_never_reads_the_pretrained_folder_again(lm_folder, train_adata, tmp_path):
    import shutil

    copy = tmp_path / "lm"
    shutil.copytree(lm_folder, copy)
    model = CaLMFlowModel(train_adata, backbone=str(copy), **SMALL)
    model.save(tmp_path / "saved")
    shutil.rmtree(copy)  # the model folder is self-contained: weights and tokenizer files
    loaded = CaLMFlowModel.load(tmp_path / "saved", train_adata)
    np.testing.assert_array_equal(
        model.predict(B_STIM, n_cells=5).X, loaded.predict(B_STIM, n_cells=5).X
    )


def test_unseen_values_need_a_language_prompt(lm_folder, train_adata, tiny):
    words = CaLMFlowModel(train_adata, **tiny)
    with pytest.raises(ValueError, match=r"Unknown value\(s\) \['interleukin 6'\].*Known values"):
        words.predict({"cell_type": ["B"], "condition": ["interleukin 6"]}, n_cells=5)
    with pytest.raises(ValueError, match="needs prompts that read language"):
        words.predict(
            {"cell_type": ["B"], "condition": ["interleukin 6"]}, n_cells=5, allow_unseen=True
        )
    lm = CaLMFlowModel(train_adata, backbone=str(lm_folder), **SMALL)
    request = {"cell_type": ["B", "B"], "condition": ["interleukin 6", "IFN-beta"]}
    with pytest.warns(UserWarning, match=r"Extrapolation: \{'condition': \['interleukin 6'\]\}"):
        pred = lm.predict(request, n_cells=5, allow_unseen=True)
    assert pred.n_obs == 10
    assert "Generate a B cell stimulated with interleukin 6:" in set(pred.obs["prompt"])
    with pytest.raises(TypeError, match="allow_unseen"):
        lm.predict(request, n_cells=5, allow_unseen="yes")


def test_phrases_replace_codes_in_every_prompt_encoder(kang_small_shared, lm_folder, tiny):
    adata = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(
        adata, **KEYS, phrases={"condition": {"IFN-beta": "interferon beta"}}
    )
    for model in (
        CaLMFlowModel(adata, **tiny),
        CaLMFlowModel(adata, backbone=str(lm_folder), **SMALL),
    ):
        assert model.prompts(B_STIM) == ["Generate a B cell stimulated with interferon beta:"]
    # the word vocabulary holds the phrase's words
    words = CaLMFlowModel(adata, **tiny).prompt_encoder
    assert words.tokenizer.convert_tokens_to_ids("interferon") != words.tokenizer.unk_token_id
    bad = kang_small_shared.copy()
    with pytest.raises(ValueError, match=r"names value\(s\) \['IFN-b'\].*known values"):
        CaLMFlowModel.setup_anndata(bad, **KEYS, phrases={"condition": {"IFN-b": "x"}})
    with pytest.raises(ValueError, match="not a condition key"):
        CaLMFlowModel.setup_anndata(bad, **KEYS, phrases={"donor": {"a": "x"}})
    with pytest.raises(TypeError, match="must be a dict"):
        CaLMFlowModel.setup_anndata(bad, **KEYS, phrases={"condition": "interferon"})
    with pytest.raises(ValueError, match="non-empty text"):
        CaLMFlowModel.setup_anndata(bad, **KEYS, phrases={"condition": {"IFN-beta": " "}})


def test_sentence_prompts_with_a_random_backbone(train_adata, tiny, tmp_path, quiet_train):
    model = CaLMFlowModel(train_adata, prompt_encoder="sentence", prompt_tokens=3, **tiny)
    enc = model.prompt_encoder
    assert enc.kind == "sentence" and enc.dim == 384 and model.prompt_length == 3
    frame = model.conditions.validate({"cell_type": ["B", "NK"], "condition": ["IFN-beta"] * 2})
    emb = enc.encode_conditions(frame)
    assert emb.shape == (2, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-4)  # MiniLM normalises
    assert not np.allclose(emb[0], emb[1])
    quiet_train(model, **TRAIN)
    assert set(enc.cache) >= set(model.prompts(model.training_conditions.drop(columns="n_cells")))
    loaded = _roundtrip(model, train_adata, tmp_path)
    assert set(loaded.prompt_encoder.cache) == set(enc.cache)
    # cached prompts need no sentence encoder after loading
    loaded.prompt_encoder._encoder = None
    loaded.predict(B_STIM, n_cells=3)
    assert loaded.prompt_encoder._encoder is None
    with pytest.warns(UserWarning, match="Extrapolation"):
        pred = loaded.predict(
            {"cell_type": ["NK"], "condition": ["interferon gamma"]}, n_cells=3, allow_unseen=True
        )
    assert pred.n_obs == 3 and "Generate a NK cell stimulated with interferon gamma:" in (
        loaded.prompt_encoder.cache
    )


def test_no_text_prompts_are_one_learned_token_per_value(train_adata, tiny, tmp_path, quiet_train):
    model = CaLMFlowModel(train_adata, prompt_encoder="none", **tiny)
    frame = model.conditions.validate({"cell_type": ["B", "NK"], "condition": ["IFN-beta"] * 2})
    ids = model.prompt_encoder.encode_conditions(frame)
    n_types = len(model.categories["cell_type"])
    assert ids.shape == (2, 2) and ids[0, 1] == ids[1, 1] and ids[0, 1] >= n_types
    assert model.module.condition_embedding.num_embeddings == n_types + len(
        model.categories["condition"]
    )
    quiet_train(model, **TRAIN)
    _roundtrip(model, train_adata, tmp_path)
    with pytest.raises(ValueError, match="needs prompts that read language"):
        model.predict({"cell_type": ["B"], "condition": ["IL-6"]}, allow_unseen=True)


def test_pretrained_folders_with_pickled_weights_are_refused(train_adata, tmp_path):
    from transformers import AutoConfig, AutoModel

    folder = tmp_path / "bin_only"
    folder.mkdir()
    config = AutoConfig.for_model("gpt2", vocab_size=300, **SIZES["gpt2"])
    config.save_pretrained(folder)
    torch.save(AutoModel.from_config(config).state_dict(), folder / "pytorch_model.bin")
    _save_tokenizer_only(folder)
    assert not (folder / "model.safetensors").exists()
    with pytest.raises(OSError, match=r"Could not load the pretrained backbone.*safetensors"):
        CaLMFlowModel(train_adata, backbone=str(folder), **SMALL)


def _save_tokenizer_only(folder) -> None:
    tmp = folder.parent / "tok_src"
    _save_tiny_lm(tmp, "gpt2")
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (folder / name).write_bytes((tmp / name).read_bytes())


def test_unsupported_families_are_named(tmp_path, train_adata):
    from transformers import AutoConfig, AutoModel

    folder = tmp_path / "bert"
    AutoModel.from_config(
        AutoConfig.for_model(
            "bert",
            vocab_size=300,
            hidden_size=16,
            num_hidden_layers=1,
            num_attention_heads=2,
            intermediate_size=32,
        )
    ).save_pretrained(folder)
    _save_tokenizer_only(folder)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match=r"is a 'bert' model; sccalmflow runs"):
            CaLMFlowModel(train_adata, backbone=str(folder), **SMALL)


def test_loading_a_pretrained_model_runs_no_code_from_the_folder(lm_folder, train_adata, tmp_path):
    import json
    import pickle  # noqa: TID251  (only to plant payloads that must never be unpickled)

    model = CaLMFlowModel(train_adata, backbone=str(lm_folder), finetune="lora", **SMALL)
    path = tmp_path / "saved"
    model.save(path)
    marker = tmp_path / "pwned"

    class _Payload:
        def __reduce__(self):
            return (open, (str(marker), "w"))

    for planted in ("pytorch_model.bin", "tokenizer/pytorch_model.bin", "tokenizer/vocab.pkl"):
        (path / planted).write_bytes(pickle.dumps(_Payload()))
    (path / "tokenizer" / "evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    config = json.loads((path / "config.json").read_text())
    config["backbone_config"]["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (path / "config.json").write_text(json.dumps(config))
    tok_config = json.loads((path / "tokenizer" / "tokenizer_config.json").read_text())
    tok_config["auto_map"] = {"AutoTokenizer": ["evil.EvilTokenizer", None]}
    (path / "tokenizer" / "tokenizer_config.json").write_text(json.dumps(tok_config))
    try:
        CaLMFlowModel.load(path, train_adata)
    except Exception:  # an error is fine (the tokenizer config's checksum); running code is not
        pass
    assert not marker.exists()


def test_conditions_sharing_a_prompt_are_named(kang_small, tiny):
    import sccalmflow as scf

    a = scf.datasets.synthetic_perturbation(
        n_cells=300, n_genes=30, n_cell_types=2, n_perturbations=1, doses=[0.1, 1.0]
    )
    setup = scf.datasets.synthetic_setup(doses=True)
    CaLMFlowModel.setup_anndata(
        a, **setup, prompt_template="Generate a {cell_type} cell treated with {perturbation}:"
    )
    with pytest.warns(UserWarning, match="shared by different registered conditions") as rec:
        CaLMFlowModel(a, **tiny)
    assert "'dose': '0.1'" in str(rec[0].message) and "'dose': '1'" in str(rec[0].message)
    CaLMFlowModel.setup_anndata(a, **setup)  # the default templates name every key
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)
        CaLMFlowModel(a, **tiny)
    CaLMFlowModel.setup_anndata(
        a, **setup, prompt_template="Generate a {cell_type} cell treated with {perturbation}:"
    )
    with warnings.catch_warnings():  # one token per value: no text to share
        warnings.simplefilter("error", UserWarning)
        CaLMFlowModel(a, **tiny, prompt_encoder="none")
