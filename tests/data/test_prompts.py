import pandas as pd
import pytest

from sccalmflow.data import (
    build_prompts,
    build_word_tokenizer,
    default_templates,
    normalize_templates,
)


def test_paper_templates():
    t = default_templates(["cell_type", "condition"], {"condition": "control"})
    frame = pd.DataFrame(
        {"cell_type": ["CD4 T", "CD14 Mono"], "condition": ["IFN-beta", "control"]}
    )
    assert build_prompts(frame, t, {"condition": "control"}) == [
        "Generate a CD4 T cell stimulated with IFN-beta:",
        "Generate a CD14 Mono cell with no stimulation:",
    ]


def test_chronicity_template():
    t = default_templates(["cell_type", "drug", "time"], {"drug": "DMSO"})
    frame = pd.DataFrame({"cell_type": ["A549"], "drug": ["dex"], "time": ["24h"]})
    assert build_prompts(frame, t, {"drug": "DMSO"}) == [
        "Generate a A549 cell stimulated with dex and time 24h:"
    ]


def test_several_perturbation_keys_are_named():
    control = {"drug": "DMSO", "dose": "0"}
    t = default_templates(["cell_line", "drug", "dose"], control)
    frame = pd.DataFrame(
        {"cell_line": ["A549", "A549"], "drug": ["dex", "DMSO"], "dose": ["100", "0"]}
    )
    assert build_prompts(frame, t, control) == [
        "Generate a A549 cell stimulated with dex and dose 100:",
        "Generate a A549 cell with no stimulation:",
    ]


def test_no_control_and_unconditional():
    t = default_templates(["cell_type"], None)
    assert build_prompts(pd.DataFrame({"cell_type": ["B"]}), t, None) == [
        "Generate a cell with cell type B:"
    ]
    t0 = default_templates([], None)
    assert build_prompts(pd.DataFrame(index=range(2)), t0, None) == ["Generate a cell:"] * 2


def test_user_template():
    t = normalize_templates("A {cell_type} under {condition}.", ["cell_type", "condition"], None)
    frame = pd.DataFrame({"cell_type": ["B"], "condition": ["IFN-beta"]})
    assert build_prompts(frame, t, None) == ["A B under IFN-beta."]
    with pytest.raises(ValueError, match="'perturbed' entry"):
        normalize_templates({"control": "x"}, ["cell_type"], None)


def test_word_tokenizer_shares_words():
    tok = build_word_tokenizer(["Generate a cell stimulated with :", "IFN-beta", "IFN-gamma"])
    ids = tok("stimulated with IFN-beta:", add_special_tokens=False)["input_ids"]
    assert len(ids) == 6  # stimulated, with, IFN, -, beta, :
    g = tok("IFN-gamma", add_special_tokens=False)["input_ids"]
    assert g[0] == ids[2]  # "IFN" is one token shared by both values
    assert tok.convert_tokens_to_ids("[PAD]") == 0
    assert tok("unknownword", add_special_tokens=False)["input_ids"] == [1]


def test_the_papers_chronicity_templates():
    control = {"perturbation": "control"}
    t = default_templates(["cell_type", "perturbation", "chronicity"], control)
    frame = pd.DataFrame(
        {
            "cell_type": ["CD4 T", "B"],
            "perturbation": ["IL-6", "control"],
            "chronicity": ["acute", "chronic"],
        }
    )
    assert build_prompts(frame, t, control) == [
        "Generate a CD4 T cell stimulated with IL-6 and exposure acute:",
        "Generate a B cell with no stimulation and exposure chronic:",
    ]
