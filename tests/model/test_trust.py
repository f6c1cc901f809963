"""Security and integrity of saved models, and input validation of the model (issue "Trust")."""

import inspect
import json
import pickle  # noqa: TID251  (only to plant payloads that must never be unpickled)
import warnings

import numpy as np
import pandas as pd
import pytest

from sccalmflow import CaLMFlowModel
from sccalmflow.datasets import kang2018_setup

KEYS = kang2018_setup()
MARKER = "sccalmflow_pwned"


class _Payload:
    """Unpickling this object creates a marker file: proof that pickle ran."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


@pytest.fixture(scope="module")
def saved(tmp_path_factory, kang_small_shared, tiny_config, quiet_train):
    adata = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(adata, **KEYS)
    model = CaLMFlowModel(adata, **tiny_config)
    quiet_train(model, max_epochs=1, batch_size=64)
    path = tmp_path_factory.mktemp("saved") / "model"
    model.save(path)
    return model, adata, path


def _loaders():
    """Every public callable of the class whose name says it reads something from disk."""
    words = ("load", "convert", "view_setup", "registry", "read", "from_")
    return sorted(
        n
        for n in dir(CaLMFlowModel)
        if not n.startswith("_")
        and any(w in n for w in words)
        and callable(getattr(CaLMFlowModel, n))
        and isinstance(inspect.getattr_static(CaLMFlowModel, n), classmethod | staticmethod)
    )


def test_the_loader_list_is_not_empty():
    assert {"load", "load_registry", "view_setup_args", "convert_legacy_save"} <= set(_loaders())


@pytest.mark.parametrize("name", _loaders())
def test_no_loader_unpickles_a_planted_payload(name, saved, tmp_path):
    model, adata, path = saved
    folder = tmp_path / "planted"
    folder.mkdir()
    for f in path.rglob("*"):
        if f.is_file():
            dest = folder / f.relative_to(path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.read_bytes())
    marker = tmp_path / MARKER
    payload = pickle.dumps(_Payload(marker))
    for planted in ("model.pt", "model.pkl", "adata.pkl", "registry.pkl", "tokenizer/model.pt"):
        (folder / planted).write_bytes(payload)
    config = json.loads((folder / "config.json").read_text())
    config["auto_map"] = {"AutoModel": "evil.EvilModel"}
    (folder / "config.json").write_text(json.dumps(config))
    (folder / "evil.py").write_text(f"open({str(marker)!r}, 'w')\n")
    call = getattr(CaLMFlowModel, name)
    args = {"load": (folder, adata)}.get(name, (folder,))
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            call(*args)
    except Exception:  # an error is fine; running the payload is not
        pass
    assert not marker.exists(), f"CaLMFlowModel.{name} executed code from the folder"


def test_load_registry_and_setup_args_read_json(saved, capsys):
    model, _, path = saved
    assert (
        CaLMFlowModel.load_registry(path)["setup_args"]["condition_keys"] == KEYS["condition_keys"]
    )
    CaLMFlowModel.view_setup_args(path)
    assert "condition_keys" in capsys.readouterr().out
    with pytest.raises(NotImplementedError, match="no legacy format"):
        CaLMFlowModel.convert_legacy_save(path, path)


def _copy(path, tmp_path):
    out = tmp_path / "copy"
    for f in path.rglob("*"):
        if f.is_file():
            dest = out / f.relative_to(path)
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(f.read_bytes())
    return out


def test_flipped_bytes_in_the_weights_are_refused(saved, tmp_path):
    _, adata, path = saved
    folder = _copy(path, tmp_path)
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-10] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))
    with pytest.raises(ValueError, match="model.safetensors has changed"):
        CaLMFlowModel.load(folder, adata=adata)


def _tamper_config(folder, edit):
    config = json.loads((folder / "config.json").read_text())
    edit(config)
    (folder / "config.json").write_text(json.dumps(config))


def _del(key):
    return lambda c: c.pop(key)


def _set(key, value):
    return lambda c: c.__setitem__(key, value)


def _set_init(name, value):
    return lambda c: c["init_params"]["non_kwargs"].__setitem__(name, value)


@pytest.mark.parametrize(
    ("edit", "error", "match"),
    [
        (None, ValueError, "not valid JSON"),
        (_del("registry"), ValueError, r"lacks \['registry'\]"),
        (_del("init_params"), ValueError, r"lacks \['init_params'\]"),
        (_set("class", "SCVI"), ValueError, "holds a SCVI"),
        (
            lambda c: c["registry"].__setitem__("setup_method_name", "__init__"),
            ValueError,
            "setup_method_name",
        ),
        (_set_init("n_time_points", "16"), ValueError, "n_time_points"),
        (_set_init("width", 32), ValueError, "do not describe a model"),
        (_set_init("unknown_argument", 1), ValueError, "unknown_argument"),
        (_del("checksums"), ValueError, "no file checksums"),
        (_set("temperature", "hot"), TypeError, "`temperature` must be a number"),
        (_set("temperature", -1.0), ValueError, "`temperature` must be at least 0"),
    ],
)
def test_tampered_config_gives_a_clear_error(saved, tmp_path, edit, error, match):
    _, adata, path = saved
    folder = _copy(path, tmp_path)
    if edit is None:
        (folder / "config.json").write_text("{not json")
    else:
        _tamper_config(folder, edit)
    with pytest.raises(error, match=match):
        CaLMFlowModel.load(folder, adata=adata)


def test_missing_tokenizer_folder(saved, tmp_path):
    _, adata, path = saved
    folder = _copy(path, tmp_path)
    for f in sorted((folder / "tokenizer").rglob("*"), reverse=True):
        f.unlink() if f.is_file() else f.rmdir()
    (folder / "tokenizer").rmdir()
    with pytest.raises(FileNotFoundError, match="tokenizer"):
        CaLMFlowModel.load(folder, adata=adata)


def test_condition_cells_do_not_depend_on_other_rows(saved):
    model, _, _ = saved
    alone = model.predict({"cell_type": ["B"], "condition": ["IFN-beta"]}, n_cells=20, seed=4)
    both = model.predict(
        {"cell_type": ["NK", "B"], "condition": ["IFN-beta", "IFN-beta"]}, n_cells=20, seed=4
    )
    np.testing.assert_array_equal(alone.obsm["X_calmflow_pca"], both.obsm["X_calmflow_pca"][20:])
    assert list(alone.obs["source_cell"]) == list(both.obs["source_cell"][20:])


def test_train_with_zero_epochs_is_refused(saved, quiet_train):
    model, _, _ = saved
    with pytest.raises(ValueError, match="max_epochs"):
        quiet_train(model, max_epochs=0)


def test_unused_category_warns_at_setup_and_errors_at_predict(kang_small, tiny, quiet_train):
    adata = kang_small
    adata.obs["cell_type"] = adata.obs["cell_type"].cat.add_categories(["Platelet"])
    with pytest.warns(UserWarning, match="categories without cells: \\['Platelet'\\]"):
        CaLMFlowModel.setup_anndata(adata, **KEYS)
    model = CaLMFlowModel(adata, **tiny)
    assert "Platelet" not in set(model.training_conditions["cell_type"])
    with pytest.raises(ValueError, match="no cell has them"):
        model.predict({"cell_type": ["Platelet"], "condition": ["IFN-beta"]}, n_cells=2)


def test_huge_request_is_refused_before_allocating(saved):
    model, _, _ = saved
    with pytest.raises(ValueError, match="decode=False"):
        model.predict({"cell_type": ["B"], "condition": ["control"]}, n_cells=10**9)


def test_fortran_ordered_x_is_warned_about(kang_small):
    adata = kang_small
    adata.X = np.asfortranarray(adata.X.toarray())
    with pytest.warns(UserWarning, match="Fortran-ordered"):
        CaLMFlowModel.setup_anndata(adata, **KEYS)


@pytest.mark.parametrize("bad", ["cell.type", "dose{x}", "a:b"])
def test_keys_that_cannot_be_placeholders_are_refused(kang_small, bad):
    adata = kang_small
    adata.obs = adata.obs.rename(columns={"cell_type": bad})
    with pytest.raises(ValueError, match="rename the column"):
        CaLMFlowModel.setup_anndata(
            adata, condition_keys=[bad, "condition"], control={"condition": "control"}
        )


def test_user_adata_untouched_by_failed_setup(kang_small):
    before = kang_small.obs.copy()
    with pytest.raises(KeyError):
        CaLMFlowModel.setup_anndata(kang_small, condition_keys=["nope"])
    pd.testing.assert_frame_equal(kang_small.obs, before)
