"""Bad and edge inputs a new user might give, and what each gets back (issue "Trust").

Every case states its outcome: an exception of a given type whose message names the problem
(and the argument), or, for a legitimate edge case, a call that succeeds with a checked
property. Each case carries the class it had when it was written:

- ``CLEAR``: a clear error; ``OK``: correct behaviour;
- ``UNCLEAR`` (an error, but an internal message), ``SILENT`` (a wrong result without an
  error) and ``CRASH`` (an uncaught internal error deep inside): these assert the wanted
  behaviour and are marked ``xfail(strict=True)``, so the suite stays green and the mark
  has to go once the code is fixed.

``before`` records the class of the metrics cases fixed with this battery.
Failing calls are also checked not to modify what the user passed in.
"""

from __future__ import annotations

import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass

import anndata as ad
import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from sccalmflow import CaLMFlowModel
from sccalmflow import metrics as scm
from sccalmflow.baselines import CFM, Additive, Control, TrainMean
from sccalmflow.data import PCAFeatures

KEYS = {"condition_keys": ["cell_type", "condition"], "control": {"condition": "control"}}
B_STIM = {"cell_type": ["B"], "condition": ["IFN-beta"]}
BAD = ("UNCLEAR", "SILENT", "CRASH")

# ============================================================================ harness
#: (group, case id, class now, class before the metrics fixes) of every case
REGISTRY: list[tuple[str, str, str, str]] = []


@dataclass(frozen=True)
class Raises:
    """The call raises ``exc`` with a message matching ``match``."""

    exc: type[BaseException] | tuple[type[BaseException], ...]
    match: str


@dataclass(frozen=True)
class Ok:
    """The call succeeds; ``check(result, *context)`` asserts a real property."""

    check: Callable | None = None
    warns: tuple[type[Warning], str] | None = None


#: What each UNCLEAR case raises today: an ``AssertionError`` when the exception type is
#: the wanted one but its message does not match, else the exception that escapes. A
#: SILENT case fails with pytest's "DID NOT RAISE". The xfails accept only these, so a case
#: that starts failing for another reason is reported.
UNCLEAR_NOW: dict[str, type[BaseException]] = {}


def case(group, id_, call, expect, status="CLEAR", why="", before=None):
    """One parametrised case; UNCLEAR/SILENT/CRASH cases are strict xfails."""
    assert status in ("CLEAR", "OK", *BAD), status
    assert (status == "OK") == isinstance(expect, Ok) or status in BAD, id_
    REGISTRY.append((group, id_, status, before or status))
    marks = []
    if status in BAD:
        now = pytest.fail.Exception if status == "SILENT" else UNCLEAR_NOW[id_]
        marks.append(pytest.mark.xfail(strict=True, raises=now, reason=f"{status}: {why}"))
    return pytest.param(call, expect, id=id_, marks=marks)


def _copy(obj):
    if isinstance(obj, ad.AnnData):
        return obj.copy()
    if isinstance(obj, pd.DataFrame | np.ndarray) or sp.issparse(obj):
        return obj.copy()
    return None


def _same_matrix(a, b) -> None:
    if sp.issparse(a) or sp.issparse(b):
        assert sp.issparse(a) and sp.issparse(b)
        a, b = a.toarray(), b.toarray()
    a, b = np.asarray(a), np.asarray(b)
    assert a.dtype == b.dtype and a.shape == b.shape
    np.testing.assert_array_equal(a, b)


def assert_unchanged(before, after) -> None:
    """``after`` holds what ``before`` (a copy taken before the call) held."""
    if before is None:
        return
    if isinstance(after, ad.AnnData):
        _same_matrix(before.X, after.X)
        for attr in ("obs", "var"):
            pd.testing.assert_frame_equal(
                pd.DataFrame(getattr(before, attr)),
                pd.DataFrame(getattr(after, attr)),
                check_frame_type=False,
            )
        for attr in ("layers", "obsm"):
            assert set(getattr(before, attr)) == set(getattr(after, attr)), attr
            for k in getattr(before, attr):
                _same_matrix(getattr(before, attr)[k], getattr(after, attr)[k])
        assert set(before.uns) == set(after.uns)
    elif isinstance(after, pd.DataFrame):
        pd.testing.assert_frame_equal(before, after)
    else:
        _same_matrix(before, after)


def run(call, expect, *context, watch=()):
    """Run one case; ``watch``: objects the call must leave unchanged."""
    saved = [_copy(w) for w in watch]
    if isinstance(expect, Raises):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with pytest.raises(expect.exc, match=expect.match):
                call(*context)
        for b, w in zip(saved, watch):
            assert_unchanged(b, w)
        return None
    if expect.warns is not None:
        with pytest.warns(expect.warns[0], match=expect.warns[1]):
            result = call(*context)
    else:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            result = call(*context)
    if expect.check is not None:
        verdict = expect.check(result, *context)
        assert verdict is None or bool(verdict), f"the result fails its check: {result!r}"
    return result


# ============================================================================ data
def make_synthetic(n_cells=240, n_genes=60, seed=0) -> ad.AnnData:
    """Log-normalised cells of types A/B/C, control/drug (like the conftest ``synthetic``)."""
    rng = np.random.default_rng(seed)
    ct, pert = rng.choice(3, n_cells), rng.choice(2, n_cells)
    base = rng.gamma(2.0, 1.0, (3, n_genes))
    effect = np.zeros((2, n_genes))
    effect[1, 7:17] = 3.0
    counts = rng.poisson(base[ct] + effect[pert]).astype(np.float32)
    X = np.log1p(counts / np.maximum(counts.sum(1, keepdims=True), 1) * 1e3).astype(np.float32)
    obs = pd.DataFrame(
        {
            "cell_type": pd.Categorical(np.array(["A", "B", "C"])[ct], categories=["A", "B", "C"]),
            "condition": pd.Categorical(
                np.array(["control", "drug"])[pert], categories=["control", "drug"]
            ),
        },
        index=[f"cell{i}" for i in range(n_cells)],
    )
    var = pd.DataFrame(index=[f"gene{j}" for j in range(n_genes)])
    return ad.AnnData(X=X, obs=obs, var=var, layers={"counts": counts})


@pytest.fixture(scope="module")
def kang(kang_small_shared):
    """Registered copy of the small Kang data (module-wide; cases must not modify it)."""
    adata = kang_small_shared.copy()
    CaLMFlowModel.setup_anndata(adata, **KEYS)
    return adata


@pytest.fixture(scope="module")
def untrained(kang, tiny_config):
    return CaLMFlowModel(kang, **tiny_config)


@pytest.fixture(scope="module")
def trained(kang, tiny_config, quiet_train):
    model = CaLMFlowModel(kang, **tiny_config)
    quiet_train(model, max_epochs=1, batch_size=64)
    return model


# ============================================================ setup_anndata / setup_mudata
def _setup(mutate=None, **kwargs):
    """A case call: ``mutate(adata)`` (may return a new object), then ``setup_anndata``."""
    params = {**KEYS, **kwargs}

    def prepare(adata):
        target = mutate(adata) if mutate is not None else adata
        return target, params

    return prepare


def _obs(**columns):
    def mutate(a):
        for k, v in columns.items():
            a.obs[k] = v(a) if callable(v) else v
        return a

    return mutate


def _x(f):
    def mutate(a):
        a.X = f(a)
        return a

    return mutate


def _rename(old, new):
    def mutate(a):
        a.obs = a.obs.rename(columns={old: new})
        return a

    return mutate


def _nan_first(a):
    col = a.obs["cell_type"].astype(object)
    col.iloc[0] = np.nan
    return col


def _dup_names(axis):
    def mutate(a):
        names = list(getattr(a, f"{axis}_names"))
        names[1] = names[0]
        setattr(a, f"{axis}_names", names)
        return a

    return mutate


def _one_control_cell(a):
    return a[np.flatnonzero(a.obs["condition"] == "control")[:1]].copy()


def _registered(result, adata, params):
    assert "_scvi_uuid" in adata.uns
    return result


def _registered_keys(keys):
    def check(result, adata, params):
        assert "_scvi_uuid" in adata.uns
        assert CaLMFlowModel(adata, source="noise", n_pca=5).condition_keys == keys

    return check


def _fortran(a):
    a.X = np.asfortranarray(a.X)
    return a


def _x_dtype(a, dtype):
    a.X = np.clip(a.layers["counts"], 0, 5).astype(dtype)
    return a


S = "setup"
SETUP_CASES = [
    case(S, "adata-is-ndarray", _setup(lambda a: a.X), Raises(TypeError, r"adata.*AnnData"),
         "CLEAR", "AttributeError: 'numpy.ndarray' object has no attribute 'obs_names'", before="UNCLEAR"),
    case(S, "adata-is-dataframe", _setup(lambda a: a.obs), Raises(TypeError, r"adata.*AnnData"),
         "CLEAR", "AttributeError deep in check_registrable", before="UNCLEAR"),
    case(S, "adata-is-None", _setup(lambda a: None), Raises(TypeError, r"adata.*AnnData"),
         "CLEAR", "AttributeError: 'NoneType' object has no attribute 'obs_names'", before="UNCLEAR"),
    case(S, "keys-a-single-string", _setup(condition_keys="cell_type", control=None),
         Ok(_registered_keys(["cell_type"])), "OK"),
    case(S, "keys-a-tuple", _setup(condition_keys=("cell_type", "condition")),
         Ok(_registered_keys(["cell_type", "condition"])), "OK"),
    case(S, "keys-missing-column", _setup(condition_keys=["cell_type", "donor"]),
         Raises(KeyError, r"\['donor'\] not found in \.obs")),
    case(S, "keys-duplicated", _setup(condition_keys=["cell_type", "cell_type"], control=None),
         Raises(ValueError, "condition_keys has duplicates")),
    case(S, "keys-an-int", _setup(condition_keys=5, control=None),
         Raises(TypeError, r"condition_keys.*list"), "CLEAR", "TypeError: 'int' object is not iterable", before="UNCLEAR"),
    case(S, "keys-contain-None", _setup(condition_keys=["cell_type", None], control=None),
         Raises(KeyError, r"\[None\] not found")),
    case(S, "keys-empty-list-unconditional", _setup(condition_keys=[], control=None),
         Ok(_registered_keys([])), "OK"),
    case(S, "key-with-NaN", _setup(_obs(cell_type=_nan_first)),
         Raises(ValueError, r"\.obs\['cell_type'\] has 1 missing value")),
    case(S, "key-with-dot", _setup(_rename("cell_type", "cell.type"),
                                   condition_keys=["cell.type", "condition"]),
         Raises(ValueError, r"'cell\.type' contains \.")),
    case(S, "key-with-braces", _setup(_rename("cell_type", "{ct}"),
                                      condition_keys=["{ct}", "condition"]),
         Raises(ValueError, r"contains \{ \}")),
    case(S, "key-with-colon", _setup(_rename("cell_type", "ct:1"),
                                     condition_keys=["ct:1", "condition"]),
         Raises(ValueError, r"contains :")),
    case(S, "key-with-bang", _setup(_rename("cell_type", "ct!"), condition_keys=["ct!", "condition"]),
         Raises(ValueError, r"contains !")),
    case(S, "control-value-absent", _setup(control={"condition": "ctrl"}),
         Raises(ValueError, r"control value 'ctrl' does not occur")),
    case(S, "control-key-not-a-condition-key", _setup(control={"donor": "x"}),
         Raises(ValueError, r"control key 'donor' is not one of condition_keys")),
    case(S, "control-on-every-key", _setup(condition_keys=["condition"]),
         Raises(ValueError, "Every condition key is a control key")),
    case(S, "control-a-list", _setup(control=["condition"]),
         Raises(TypeError, r"`control` must be a dict")),
    case(S, "control-a-string", _setup(control="control"),
         Raises(TypeError, r"`control` must be a dict")),
    case(S, "control-empty-dict", _setup(control={}), Raises(TypeError, r"`control` must be a dict")),
    case(S, "control-without-keys", _setup(condition_keys=None),
         Raises(ValueError, r"control key 'condition' is not one of condition_keys \[\]")),
    case(S, "control-int-on-int-column",
         _setup(_obs(dose=lambda a: np.where(a.obs["condition"] == "control", 0, 10)),
                condition_keys=["cell_type", "dose"], control={"dose": 0}),
         Ok(_registered_keys(["cell_type", "dose"])), "OK"),
    case(S, "control-int-on-string-column", _setup(control={"condition": 1}),
         Raises(ValueError, r"control value '1' does not occur")),
    case(S, "object-dtype-key-column-kept",
         _setup(_obs(condition=lambda a: a.obs["condition"].astype(str))),
         Ok(lambda r, a, p: a.obs["condition"].dtype == object), "OK"),
    case(S, "unused-category", _setup(_obs(
        cell_type=lambda a: a.obs["cell_type"].cat.add_categories(["D"]))),
         Ok(_registered, warns=(UserWarning, r"categories without cells: \['D'\]")), "OK"),
    case(S, "layer-missing", _setup(layer="log"), Raises(KeyError, r"layer 'log' not found")),
    case(S, "layer-an-int", _setup(layer=0), Raises(KeyError, r"layer 0 not found")),
    case(S, "layer-of-raw-counts", _setup(layer="counts"),
         Raises(ValueError, r"adata\.layers\['counts'\] looks like raw counts")),
    case(S, "X-raw-counts", _setup(_x(lambda a: a.layers["counts"])),
         Raises(ValueError, r"adata\.X looks like raw counts")),
    case(S, "X-integer-dtype-counts", _setup(_x(lambda a: a.layers["counts"].astype(np.int64))),
         Raises(ValueError, "integer dtype int64: it looks like raw counts")),
    case(S, "X-integer-dtype-small-counts", _setup(lambda a: _x_dtype(a, np.int32)),
         Raises(ValueError, r"integer"), "CLEAR", "integer-typed counts with max <= 10 pass as log-normalised expression", before="SILENT"),
    case(S, "X-object-dtype", _setup(lambda a: _x_dtype(a, object)),
         Raises(TypeError, r"must be numeric, got dtype object")),
    case(S, "X-negative-scaled", _setup(_x(lambda a: a.X - a.X.mean(0))),
         Raises(ValueError, r"negative values.*z-scored")),
    case(S, "X-with-NaN", _setup(_x(lambda a: np.where(np.arange(a.n_vars) == 3, np.nan, a.X))),
         Raises(ValueError, r"contains 240 NaN and 0 infinite")),
    case(S, "X-with-inf", _setup(_x(lambda a: np.where(np.eye(*a.shape) > 0, np.inf, a.X))),
         Raises(ValueError, r"0 NaN and 60 infinite")),
    case(S, "X-all-zero-dense", _setup(_x(lambda a: np.zeros(a.shape, np.float32))),
         Raises(ValueError, "all zeros")),
    case(S, "X-all-zero-sparse", _setup(_x(lambda a: sp.csr_matrix(a.shape, dtype=np.float32))),
         Raises(ValueError, "all zeros")),
    case(S, "X-sparse-ok", _setup(_x(lambda a: sp.csr_matrix(a.X))), Ok(_registered), "OK"),
    case(S, "X-fortran-ordered", _setup(_fortran),
         Ok(_registered, warns=(UserWarning, "Fortran-ordered")), "OK"),
    case(S, "a-view", _setup(lambda a: a[:100]), Raises(ValueError, r"is a view.*\.copy\(\)")),
    case(S, "duplicate-cell-names", _setup(_dup_names("obs")),
         Raises(ValueError, r"obs_names` has duplicates.*obs_names_make_unique")),
    case(S, "duplicate-gene-names", _setup(_dup_names("var")),
         Raises(ValueError, r"var_names` has duplicates.*var_names_make_unique")),
    case(S, "no-cells", _setup(lambda a: a[:0].copy()), Raises(ValueError, r"adata\.X is empty")),
    case(S, "no-genes", _setup(lambda a: a[:, :0].copy()), Raises(ValueError, r"adata\.X is empty")),
    case(S, "one-cell", _setup(_one_control_cell, condition_keys=["cell_type"], control=None),
         Ok(_registered), "OK"),
    case(S, "prompt-template-unknown-placeholder", _setup(prompt_template="A {donor} cell"),
         Raises(ValueError, r"donor")),
    case(S, "prompt-template-an-int", _setup(prompt_template=5),
         Raises(TypeError, r"`prompt_template` must be"), "CLEAR", "TypeError: 'int' object is not iterable (normalize_templates)", before="UNCLEAR"),
    case(S, "features-key-missing", _setup(features_key="X_emb"),
         Raises(KeyError, r"obsm key 'X_emb' not found")),
    case(S, "features-key-with-NaN",
         _setup(lambda a: (a.obsm.__setitem__("X_emb", np.full((a.n_obs, 3), np.nan)), a)[1],
                features_key="X_emb"),
         Raises(ValueError, r"\.obsm\['X_emb'\] must be a finite 2-d array")),
]  # fmt: skip


@pytest.mark.parametrize(("prepare", "expect"), SETUP_CASES)
def test_setup_anndata(prepare, expect):
    adata = make_synthetic()
    target, params = prepare(adata)
    watch = (target,) if isinstance(expect, Raises) and isinstance(target, ad.AnnData) else ()
    run(lambda t, p: CaLMFlowModel.setup_anndata(t, **p), expect, target, params, watch=watch)


def _mdata(mutate=None):
    import mudata as md

    rna = make_synthetic()
    if mutate is not None:
        rna = mutate(rna)
    mdata = md.MuData({"rna": rna})
    mdata.obs = rna.obs.copy()
    return mdata


M = "setup_mudata"
MUDATA_CASES = [
    case(M, "mudata-ok", lambda: CaLMFlowModel.setup_mudata(
        _mdata(), modalities={"rna_layer": "rna"}, **KEYS), Ok(), "OK"),
    case(M, "mudata-no-modalities", lambda: CaLMFlowModel.setup_mudata(_mdata(), **KEYS),
         Raises(ValueError, r"modalities=\{'rna_layer'")),
    case(M, "mudata-unknown-modality", lambda: CaLMFlowModel.setup_mudata(
        _mdata(), modalities={"rna_layer": "gex"}, **KEYS),
         Raises(KeyError, r"Modality 'gex' not in mdata\.mod")),
    case(M, "mudata-raw-counts", lambda: CaLMFlowModel.setup_mudata(
        _mdata(_x(lambda a: a.layers["counts"])), modalities={"rna_layer": "rna"}, **KEYS),
         Raises(ValueError, r"mdata\.mod\['rna'\] looks like raw counts")),
    case(M, "mudata-missing-key", lambda: CaLMFlowModel.setup_mudata(
        _mdata(), modalities={"rna_layer": "rna"}, condition_keys=["donor"]),
         Raises(KeyError, r"\['donor'\] not found")),
    case(M, "mudata-not-a-mudata", lambda: CaLMFlowModel.setup_mudata(
        make_synthetic(), modalities={"rna_layer": "rna"}, **KEYS),
         Raises(TypeError, r"MuData"), "CLEAR", "AttributeError: 'AnnData' object has no attribute 'mod'", before="UNCLEAR"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), MUDATA_CASES)
def test_setup_mudata(call, expect):
    run(call, expect)


# ============================================================================ constructor
def _init(**overrides):
    def call(adata, tiny):
        return CaLMFlowModel(adata, **{**tiny, **overrides})

    return call


def _int_cases(name, bad_min=0):
    return [
        case("init", f"{name}={bad_min}", _init(**{name: bad_min}),
             Raises(ValueError, rf"`{name}` must be at least")),
        case("init", f"{name}-float", _init(**{name: 2.0}),
             Raises(TypeError, rf"`{name}` must be an integer, got 2\.0")),
        case("init", f"{name}-string", _init(**{name: "8"}),
             Raises(TypeError, rf"`{name}` must be an integer, got '8'")),
    ]  # fmt: skip


C = "init"
INIT_CASES = [
    *_int_cases("n_pca"),
    case(C, "n_pca=-1", _init(n_pca=-1), Raises(ValueError, r"`n_pca` must be at least 1")),
    case(C, "n_pca-None", _init(n_pca=None), Raises(TypeError, r"`n_pca` must be an integer")),
    case(C, "n_pca-True", _init(n_pca=True), Raises(TypeError, r"`n_pca` must be an integer")),
    case(C, "n_pca-NaN", _init(n_pca=float("nan")), Raises(TypeError, r"`n_pca`.*nan")),
    case(C, "n_pca-beyond-the-data", _init(n_pca=10**6),
         Raises(ValueError, r"n_pca=1000000 is more than the data allow.*pass n_pca=299")),
    case(C, "pca_scaling-unknown", _init(pca_scaling="zscore"),
         Raises(ValueError, r"`pca_scaling` must be one of")),
    case(C, "pca_scaling-None", _init(pca_scaling=None),
         Raises(ValueError, r"`pca_scaling` must be one of")),
    case(C, "source-unknown", _init(source="gaussian"),
         Raises(ValueError, r"`source` must be one of \['control', 'additive', 'noise'\]")),
    case(C, "source-noise", _init(source="noise"), Ok(lambda m, a, t: m.source == "noise"), "OK"),
    *_int_cases("n_time_points", 1),
    case(C, "n_time_points=0", _init(n_time_points=0),
         Raises(ValueError, r"`n_time_points` must be at least 2")),
    *_int_cases("n_space_tokens"),
    *_int_cases("n_trajectories"),
    case(C, "n_trajectories-negative", _init(n_trajectories=-2),
         Raises(ValueError, r"`n_trajectories` must be at least 1, got -2")),
    *_int_cases("latent_dim"),
    *_int_cases("head_hidden"),
    *_int_cases("tokenizer_hidden"),
    case(C, "sigma_min-negative", _init(sigma_min=-0.1),
         Raises(ValueError, r"`sigma_min` must be at least 0")),
    case(C, "sigma_min-NaN", _init(sigma_min=float("nan")),
         Raises(ValueError, r"`sigma_min` must be finite")),
    case(C, "sigma_min-string", _init(sigma_min="0"),
         Raises(TypeError, r"`sigma_min` must be a number")),
    case(C, "kl_weight-negative", _init(kl_weight=-1),
         Raises(ValueError, r"`kl_weight` must be at least 0")),
    case(C, "kl_weight-inf", _init(kl_weight=float("inf")),
         Raises(ValueError, r"`kl_weight` must be finite")),
    case(C, "kl_free_bits-negative", _init(kl_free_bits=-1.0),
         Raises(ValueError, r"`kl_free_bits` must be at least 0")),
    case(C, "temperature-negative", _init(temperature=-1),
         Raises(ValueError, r"`temperature` must be at least 0")),
    case(C, "temperature-string", _init(temperature="1"),
         Raises(TypeError, r"`temperature` must be a number")),
    case(C, "temperature-bool", _init(temperature=True),
         Raises(TypeError, r"`temperature` must be a number")),
    case(C, "ot_coupling-int", _init(ot_coupling=1),
         Raises(TypeError, r"`ot_coupling` must be True, False or 'sequence', got int 1")),
    case(C, "ot_coupling-unknown", _init(ot_coupling="batch"),
         Raises(ValueError, r"`ot_coupling` must be True, False or 'sequence', got str 'batch'")),
    case(C, "ot_coupling-sequence-one-trajectory", _init(ot_coupling="sequence"),
         Ok(lambda model, *_: model.ot_coupling == "sequence",
            warns=(UserWarning, r"with n_trajectories=1 there is nothing to pair")), "OK"),
    case(C, "sequence_targets-unknown", _init(sequence_targets="balanced"),
         Raises(ValueError, r"`sequence_targets` must be one of \['stratified', 'independent'\]")),
    case(C, "sequence_targets-bool", _init(sequence_targets=True),
         Raises(ValueError, r"`sequence_targets` must be one of")),
    case(C, "head-unknown", _init(head="mixture"),
         Raises(ValueError, r"`head` must be one of \['deterministic', 'variational'")),
    case(C, "head-bool", _init(head=True), Raises(ValueError, r"`head` must be one of")),
    case(C, "path-unknown", _init(path="curved"),
         Raises(ValueError, r"`path` must be one of \['straight', 'bridge'\]")),
    case(C, "seed-negative", _init(seed=-1), Raises(ValueError, r"`seed` must be at least 0")),
    case(C, "seed-None", _init(seed=None), Raises(TypeError, r"`seed`.*got None")),
    case(C, "seed-float", _init(seed=1.5), Raises(TypeError, r"`seed` must be an integer")),
    case(C, "seed-2**32", _init(seed=2**32), Raises(ValueError, r"`seed` must be at most")),
    case(C, "seed-numpy-int", _init(seed=np.int64(3)), Ok(lambda m, a, t: m.seed == 3), "OK"),
    case(C, "architecture-unknown", _init(architecture="llama"),
         Raises(ValueError, r"`architecture` must be one of \['gpt_neox', 'gpt2'\]")),
    case(C, "backbone-not-text", _init(backbone=3),
         Raises(TypeError, r"`backbone` must be a pretrained model's hub name")),
    case(C, "backbone-missing-folder", _init(backbone="/nonexistent/pythia", local_files_only=True),
         Raises(OSError, r"Could not load the pretrained backbone")),
    case(C, "backbone-and-config", _init(backbone="x", backbone_config={"model_type": "gpt2"}),
         Raises(ValueError, r"either `backbone` \(pretrained\) or `backbone_config`")),
    case(C, "finetune-unknown", _init(finetune="half"),
         Raises(ValueError, r"`finetune` must be one of \['full', 'frozen', 'lora'\]")),
    case(C, "finetune-frozen-random", _init(finetune="frozen"),
         Raises(ValueError, r"needs a pretrained `backbone`")),
    case(C, "prompt-encoder-unknown", _init(prompt_encoder="bert"),
         Raises(ValueError, r"`prompt_encoder` must be one of \['words', 'lm'")),
    case(C, "prompt-encoder-lm-random", _init(prompt_encoder="lm"),
         Raises(ValueError, r"prompt_encoder='lm' uses a pretrained LM's tokenizer")),
    case(C, "prompt-encoder-object", _init(prompt_encoder=3),
         Raises(TypeError, r"`prompt_encoder` must be 'words'")),
    case(C, "prompt_tokens=0", _init(prompt_tokens=0),
         Raises(ValueError, r"`prompt_tokens` must be at least 1")),
    case(C, "architecture-gpt2", _init(architecture="gpt2"),
         Ok(lambda m, a, t: m.backbone_config_["model_type"] == "gpt2"), "OK"),
    case(C, "width-not-a-multiple-of-heads", _init(width=15),
         Raises(ValueError, r"`width` \(15\) must be a multiple of `n_heads` \(2\)")),
    case(C, "width=0", _init(width=0), Raises(ValueError, r"`width` must be at least 1")),
    case(C, "n_layers=0", _init(n_layers=0), Raises(ValueError, r"`n_layers` must be at least 1")),
    case(C, "n_heads=0", _init(n_heads=0), Raises(ValueError, r"`n_heads` must be at least 1")),
    case(C, "ffn-float", _init(ffn=0.5), Raises(TypeError, r"`ffn` must be an integer")),
    case(C, "backbone_config-a-string", _init(backbone_config="gpt2"),
         Raises(TypeError, r"`backbone_config` must be a dict with a 'model_type'")),
    case(C, "backbone_config-without-model_type", _init(backbone_config={"hidden_size": 16}),
         Raises(TypeError, r"`backbone_config` must be a dict with a 'model_type'")),
    case(C, "unknown-keyword", _init(n_pcs=10), Raises(TypeError, r"unexpected keyword.*n_pcs")),
    case(C, "features-garbage", _init(features="pca"), Raises(TypeError, r"`features`.*PCAFeatures"),
         "CLEAR", "AttributeError: 'str' object has no attribute 'n_components'", before="UNCLEAR"),
    case(C, "features-unfitted", _init(features=PCAFeatures(5)),
         Raises(ValueError, r"`features`.*not fitted"), "CLEAR", "TypeError from torch.from_numpy(None) deep in the constructor", before="UNCLEAR"),
    case(C, "adata-None", lambda a, t: CaLMFlowModel(None, **t),
         Raises(ValueError, r"adata or registry must be provided")),
    case(C, "adata-not-registered", lambda a, t: CaLMFlowModel(make_synthetic(), **t),
         Raises(ValueError, r"setup_anndata")),
    case(C, "source-control-without-control", lambda a, t: CaLMFlowModel(
        (lambda s: (CaLMFlowModel.setup_anndata(s, condition_keys=["cell_type"]), s)[1])(
            make_synthetic()), **{**t, "source": "control"}),
         Raises(ValueError, r"source='control' needs control cells.*source='noise'")),
    case(C, "source-additive-without-control", lambda a, t: CaLMFlowModel(
        (lambda s: (CaLMFlowModel.setup_anndata(s, condition_keys=["cell_type"]), s)[1])(
            make_synthetic()), **{**t, "source": "additive"}),
         Raises(ValueError, r"source='additive' needs control cells.*source='noise'")),
    case(C, "one-cell", lambda a, t: CaLMFlowModel(
        (lambda s: (CaLMFlowModel.setup_anndata(s, condition_keys=["cell_type"]), s)[1])(
            _one_control_cell(make_synthetic())), **{**t, "source": "noise", "n_pca": 1}),
         Raises(ValueError, r"1 cell\(s\).*at least 2 cells"), "CLEAR",
         "'n_pca=1 is more than the data allow ...; pass n_pca=1 or fewer' (contradicted itself)",
         before="UNCLEAR"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), INIT_CASES)
def test_constructor(call, expect, kang, tiny):
    run(call, expect, kang, tiny, watch=(kang.obs,))


# ============================================================================ train
T = "train"


def _train(**kwargs):
    def call(model):
        kwargs.setdefault("enable_progress_bar", False)
        kwargs.setdefault("accelerator", "cpu")
        return model.train(**{"max_epochs": 1, **kwargs})

    return call


TRAIN_CASES = [
    case(T, "batch_size=0", _train(batch_size=0), Raises(ValueError, r"`batch_size` must be at least 1")),
    case(T, "batch_size-negative", _train(batch_size=-64),
         Raises(ValueError, r"`batch_size` must be at least 1")),
    case(T, "batch_size-float", _train(batch_size=64.0),
         Raises(TypeError, r"`batch_size` must be an integer")),
    case(T, "batch_size-string", _train(batch_size="64"),
         Raises(TypeError, r"`batch_size` must be an integer")),
    case(T, "batch_size-None", _train(batch_size=None),
         Raises(TypeError, r"`batch_size` must be an integer")),
    case(T, "max_epochs=0", _train(max_epochs=0), Raises(ValueError, r"`max_epochs` must be at least 1")),
    case(T, "max_epochs-float", _train(max_epochs=1.5),
         Raises(TypeError, r"`max_epochs` must be an integer")),
    case(T, "max_epochs-bool", _train(max_epochs=True),
         Raises(TypeError, r"`max_epochs` must be an integer")),
    case(T, "lr=0", _train(lr=0), Raises(ValueError, r"`lr` must be greater than 0")),
    case(T, "lr-negative", _train(lr=-1e-3), Raises(ValueError, r"`lr` must be greater than 0")),
    case(T, "lr-NaN", _train(lr=float("nan")), Raises(ValueError, r"`lr` must be finite")),
    case(T, "lr-string", _train(lr="1e-3"), Raises(TypeError, r"`lr` must be a number")),
    case(T, "validation_size=1", _train(validation_size=1.0),
         Raises(ValueError, r"`validation_size` must be less than 1")),
    case(T, "validation_size-negative", _train(validation_size=-0.1),
         Raises(ValueError, r"`validation_size` must be at least 0")),
    case(T, "validation_size-percent", _train(validation_size=10),
         Raises(ValueError, r"`validation_size` must be less than 1")),
    case(T, "validation_size-string", _train(validation_size="0.1"),
         Raises(TypeError, r"`validation_size` must be a number")),
    case(T, "early_stopping-without-validation", _train(validation_size=0.0, early_stopping=True),
         Raises(ValueError, r"early_stopping needs validation_size > 0")),
    case(T, "early_stopping-string", _train(early_stopping="yes"),
         Raises(TypeError, r"`early_stopping` must be True or False")),
    case(T, "restore_best-without-validation", _train(validation_size=0.0, restore_best=True),
         Raises(ValueError, r"restore_best needs validation_size > 0")),
    case(T, "restore_best-string", _train(restore_best=1),
         Raises(TypeError, r"`restore_best` must be True or False")),
    case(T, "early_stopping_patience=0", _train(early_stopping_patience=0),
         Raises(ValueError, r"`early_stopping_patience` must be at least 1")),
    case(T, "n_steps_kl_warmup-negative", _train(n_steps_kl_warmup=-1),
         Raises(ValueError, r"`n_steps_kl_warmup` must be at least 0")),
    case(T, "ot_batch_size=0", _train(ot_batch_size=0),
         Raises(ValueError, r"`ot_batch_size` must be at least 1")),
    case(T, "plan_kwargs-a-string", _train(plan_kwargs="lr=0.1"),
         Raises(TypeError, r"`plan_kwargs` must be a dict"), "CLEAR", "TypeError: 'str' object is not a mapping (from **plan_kwargs)", before="UNCLEAR"),
    case(T, "plan_kwargs-unknown-key", _train(plan_kwargs={"learning_rate": 0.1}),
         Raises(TypeError, r"`plan_kwargs`.*'learning_rate'"), "CLEAR", "TypeError: CaLMFlowModule.loss() got an unexpected keyword argument 'learning_rate' "
         "(raised at the first training step)", before="UNCLEAR"),
    case(T, "plan_kwargs-negative-lr", _train(plan_kwargs={"lr": -1.0}),
         Raises(ValueError, r"Invalid learning rate: -1")),
    case(T, "accelerator-unknown", _train(accelerator="tpux"), Raises(Exception, r"tpux")),
    case(T, "unknown-trainer-keyword", _train(max_epoch=3), Raises(TypeError, r"max_epoch")),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), TRAIN_CASES)
def test_train(call, expect, untrained):
    run(call, expect, untrained)


# ============================================================================ predict
P = "predict"


def _predict(conditions=B_STIM, **kwargs):
    def call(model, kang):
        return model.predict(conditions, **kwargs)

    return call


def _n_rows(n):
    return lambda pred, *_: pred.n_obs == n or pytest.fail(f"{pred.n_obs} cells, wanted {n}")


def _same_blocks(pred, *_):
    half = pred.n_obs // 2
    np.testing.assert_allclose(pred.X[:half], pred.X[half:], atol=1e-5)


def _batch_invariant(pred, model, kang):
    np.testing.assert_allclose(pred.X, model.predict(B_STIM, n_cells=6, seed=0).X, atol=1e-5)


def _source_call(subset=None, mutate=None, **kwargs):
    def call(model, kang):
        src = kang[kang.obs["condition"] == "control"].copy()
        src = src[:, subset] if subset is not None else src
        src = mutate(src) if mutate is not None else src
        return model.predict(B_STIM, n_cells=4, source_cells=src, **kwargs)

    return call


def _with_nan(a):
    a = a.copy()
    X = a.X.toarray() if sp.issparse(a.X) else a.X.copy()
    X[0, 0] = np.nan
    a.X = X
    return a


def _scaled(a):
    a = a.copy()
    X = a.X.toarray() if sp.issparse(a.X) else a.X
    a.X = X - X.mean(0)
    return a


def _frame_unchanged(frame):
    before = frame.copy()

    def call(model, kang):
        pred = model.predict(frame, n_cells=2)
        pd.testing.assert_frame_equal(frame, before)
        return pred

    return call


_CAT_FRAME = pd.DataFrame(
    {
        "cell_type": pd.Categorical(["NK", "B"]),
        "condition": pd.Categorical(["IFN-beta", "control"]),
        "note": ["x", "y"],
    },
    index=["first", "second"],
)

PREDICT_CASES = [
    case(P, "conditions-a-list", _predict([["B", "IFN-beta"]]),
         Raises(TypeError, r"`conditions` must be a pandas DataFrame or a dict")),
    case(P, "conditions-a-series", _predict(pd.Series({"cell_type": "B", "condition": "IFN-beta"})),
         Raises(TypeError, r"`conditions` must be a pandas DataFrame or a dict of lists, not Series")),
    case(P, "conditions-dict-of-sets", _predict({"cell_type": {"B"}, "condition": {"IFN-beta"}}),
         Raises(ValueError, r"Unknown value\(s\) \[\"\{'B'\}\"\]")),
    case(P, "conditions-dict-of-tuples", _predict({"cell_type": ("B",), "condition": ("IFN-beta",)},
                                                  n_cells=2), Ok(_n_rows(2)), "OK"),
    case(P, "get_pca-wrong-genes", lambda m, k: m.get_pca(k[:, :10].copy()),
         Raises(ValueError, r"adata must have the model's 300 genes.*adata\[:, model\.var_names\]")),
    case(P, "conditions-a-string", _predict("B"),
         Raises(TypeError, r"`conditions` must be a pandas DataFrame or a dict")),
    case(P, "conditions-None", _predict(None),
         Raises(ValueError, r"conditioned on \['cell_type', 'condition'\]; pass `conditions`")),
    case(P, "conditions-empty-frame", _predict(pd.DataFrame(columns=["cell_type", "condition"])),
         Raises(ValueError, r"`conditions` has no rows")),
    case(P, "conditions-frame-without-columns", _predict(pd.DataFrame()),
         Raises(KeyError, r"lack column\(s\) \['cell_type', 'condition'\]")),
    case(P, "conditions-empty-dict", _predict({}),
         Raises(KeyError, r"lack column\(s\) \['cell_type', 'condition'\]")),
    case(P, "unknown-value", _predict({"cell_type": ["Z"], "condition": ["IFN-beta"]}),
         Raises(ValueError, r"Unknown value\(s\) \['Z'\] for condition key 'cell_type'")),
    case(P, "value-with-wrong-case", _predict({"cell_type": ["b"], "condition": ["IFN-beta"]}),
         Raises(ValueError, r"Unknown value\(s\) \['b'\].*Known values")),
    case(P, "NaN-value", _predict({"cell_type": [np.nan], "condition": ["IFN-beta"]}),
         Raises(ValueError, r"Unknown value\(s\) \['nan'\]")),
    case(P, "missing-key", _predict({"cell_type": ["B"]}),
         Raises(KeyError, r"lack column\(s\) \['condition'\]")),
    case(P, "extra-key-ignored-with-a-warning", _predict({**B_STIM, "donor": ["d1"]}, n_cells=2),
         Ok(lambda p, *_: list(p.obs.columns[:2]) == ["cell_type", "condition"]
            and "donor" not in p.obs,
            warns=(UserWarning, r"\['donor'\] are not condition keys.*ignored")), "OK"),
    case(P, "misspelled-key", _predict({"cell_type": ["B"], "conditon": ["IFN-beta"]}),
         Raises(KeyError, r"lack column\(s\) \['condition'\].*Unexpected column\(s\) "
                          r"\['conditon'\]: misspelled\?")),
    case(P, "unequal-lists", _predict({"cell_type": ["B", "NK"], "condition": ["IFN-beta"]}),
         Raises(ValueError, r"same length; got \{'cell_type': 2, 'condition': 1\}")),
    case(P, "scalars-one-row", _predict({"cell_type": "B", "condition": "IFN-beta"}, n_cells=3),
         Ok(_n_rows(3)), "OK"),
    case(P, "control-condition", _predict({"cell_type": ["B"], "condition": ["control"]}, n_cells=2),
         Ok(_n_rows(2)), "OK"),
    case(P, "repeated-row-same-cells",
         _predict({"cell_type": ["B", "B"], "condition": ["IFN-beta"] * 2}, n_cells=3),
         Ok(_same_blocks), "OK"),
    case(P, "frame-with-index-and-extra-column-unchanged", _frame_unchanged(_CAT_FRAME),
         Ok(_n_rows(4)), "OK"),
    case(P, "n_cells=0", _predict(n_cells=0), Raises(ValueError, r"`n_cells` must be at least 1")),
    case(P, "n_cells-negative", _predict(n_cells=-5),
         Raises(ValueError, r"`n_cells` must be at least 1")),
    case(P, "n_cells-float", _predict(n_cells=2.7), Raises(TypeError, r"`n_cells` must be an integer")),
    case(P, "n_cells-string", _predict(n_cells="10"),
         Raises(TypeError, r"`n_cells` must be an integer")),
    case(P, "n_cells-None", _predict(n_cells=None), Raises(TypeError, r"`n_cells` must be an integer")),
    case(P, "n_cells-True", _predict(n_cells=True), Raises(TypeError, r"`n_cells` must be an integer")),
    case(P, "n_cells-numpy-int", _predict(n_cells=np.int32(3)), Ok(_n_rows(3)), "OK"),
    case(P, "n_cells-huge", _predict(n_cells=10**9),
         Raises(ValueError, r"GiB.*fewer cells per call.*decode=False")),
    case(P, "seed-negative", _predict(seed=-1), Raises(ValueError, r"`seed` must be at least 0")),
    case(P, "seed-None", _predict(seed=None), Raises(TypeError, r"`seed`.*got None")),
    case(P, "seed-float", _predict(seed=1.5), Raises(TypeError, r"`seed` must be an integer")),
    case(P, "seed-string", _predict(seed="0"), Raises(TypeError, r"`seed` must be an integer")),
    case(P, "seed-2**32", _predict(seed=2**32), Raises(ValueError, r"`seed` must be at most")),
    case(P, "temperature-negative", _predict(temperature=-1.0),
         Raises(ValueError, r"`temperature` must be at least 0")),
    case(P, "temperature-NaN", _predict(temperature=float("nan")),
         Raises(ValueError, r"`temperature` must be finite")),
    case(P, "temperature-string", _predict(temperature="1"),
         Raises(TypeError, r"`temperature` must be a number")),
    case(P, "temperature-zero", _predict(temperature=0.0, n_cells=2), Ok(_n_rows(2)), "OK"),
    case(P, "batch_size=0", _predict(batch_size=0), Raises(ValueError, r"`batch_size` must be at least 1")),
    case(P, "batch_size=-1", _predict(batch_size=-1),
         Raises(ValueError, r"`batch_size` must be at least 1"), "CLEAR",
         "skipped generation and returned uninitialised memory as cells", before="SILENT"),
    case(P, "batch_size-float", _predict(batch_size=1.5),
         Raises(TypeError, r"`batch_size` must be an integer")),
    case(P, "batch_size=1-same-cells", _predict(batch_size=1, n_cells=6, seed=0),
         Ok(_batch_invariant), "OK"),
    case(P, "return_trajectories-string", _predict(return_trajectories="yes"),
         Raises(TypeError, r"`return_trajectories` must be True or False")),
    case(P, "decode-int", _predict(decode=0), Raises(TypeError, r"`decode` must be True or False")),
    case(P, "decode-False", _predict(decode=False, n_cells=2),
         Ok(lambda p, *_: p.n_vars == 0 and p.obsm["X_calmflow_pca"].shape == (2, 10)), "OK"),
    case(P, "use_cache-None", _predict(use_cache=None),
         Raises(TypeError, r"`use_cache` must be True or False")),
    case(P, "chain-bool", _predict(chain=True), Raises(TypeError, r"`chain` must be an integer")),
    case(P, "chain-zero", _predict(chain=0), Raises(ValueError, r"`chain` must be at least 1")),
    case(P, "chain-one-trajectory", _predict(chain=1),
         Raises(ValueError, r"this model has n_trajectories=1.*Leave chain=None")),
    case(P, "oversample-unknown", _predict(oversample="smote"),
         Raises(ValueError, r"`oversample` must be one of \['repeat', 'interpolate', 'smooth'\]")),
    case(P, "oversample-None-is-the-default", _predict(oversample=None, n_cells=3),
         Ok(_n_rows(3)), "OK"),
    case(P, "oversample-interpolate", _predict(oversample="interpolate", n_cells=3),
         Ok(_n_rows(3)), "OK"),
    case(P, "source_cells-wrong-genes", _source_call(subset=slice(0, 100)),
         Raises(ValueError, r"source_cells must have the model's 300 genes.*model\.var_names")),
    case(P, "source_cells-reordered-genes", _source_call(subset=slice(None, None, -1)),
         Raises(ValueError, r"source_cells must have the model's 300 genes in the same order")),
    case(P, "source_cells-with-NaN", _source_call(mutate=_with_nan),
         Raises(ValueError, r"source_cells.*1 NaN")),
    case(P, "source_cells-scaled", _source_call(mutate=_scaled),
         Raises(ValueError, r"source_cells.*negative values")),
    case(P, "source_cells-no-cells", _source_call(mutate=lambda a: a[:0].copy()),
         Raises(ValueError, r"source_cells.*empty")),
    case(P, "source_cells-an-array",
         lambda m, k: m.predict(B_STIM, source_cells=np.ones((5, 300), np.float32)),
         Raises(TypeError, r"`source_cells` must be an AnnData"), "CLEAR", "AttributeError: 'numpy.ndarray' object has no attribute 'var_names'", before="UNCLEAR"),
    case(P, "source_cells-one-cell-interpolate",
         _source_call(mutate=lambda a: a[:1].copy(), oversample="interpolate"),
         Ok(lambda p, *_: _n_rows(4)(p) and (p.obs["source_cell"] == p.obs["source_cell"][0]).all()),
         "OK"),
    case(P, "source_cells-one-cell-smooth",
         _source_call(mutate=lambda a: a[:1].copy(), oversample="smooth"),
         Ok(lambda p, *_: _n_rows(4)(p) and (p.obs["source_cell"] == p.obs["source_cell"][0]).all()),
         "OK"),
    case(P, "source_cells-a-view-ok", _source_call(mutate=lambda a: a[:20]), Ok(_n_rows(4)), "OK"),
    case(P, "source_layer-missing", _source_call(source_layer="log"),
         Raises(KeyError, r"source_cells: layer 'log' not found")),
    case(P, "source_layer-without-source_cells", _predict(source_layer="log"),
         Raises(ValueError, r"source_layer.*source_cells"), "CLEAR", "source_layer is ignored when source_cells is None", before="SILENT"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), PREDICT_CASES)
def test_predict(call, expect, trained, kang):
    run(call, expect, trained, kang, watch=(kang.obs,))


# ============================================================================ save / load
L = "save_load"


@pytest.fixture(scope="module")
def saved(trained, tmp_path_factory):
    path = tmp_path_factory.mktemp("bad_inputs") / "model"
    trained.save(path)
    return path


def _fresh(kang_small_shared):
    return kang_small_shared.copy()


def _new_category(a):
    a = a.copy()
    a.obs["cell_type"] = a.obs["cell_type"].cat.add_categories(["Z"])
    a.obs.iloc[:5, a.obs.columns.get_loc("cell_type")] = "Z"
    return a


def _roundtrip(model, trained, *_):
    np.testing.assert_allclose(
        model.predict(B_STIM, n_cells=3).X, trained.predict(B_STIM, n_cells=3).X, atol=1e-5
    )


SAVE_LOAD_CASES = [
    case(L, "save-into-non-empty-folder", lambda m, p, a, t: m.save(p),
         Raises(FileExistsError, r"exists and is not empty; pass overwrite=True")),
    case(L, "save-onto-a-file", lambda m, p, a, t: m.save(
        (lambda f: (f.write_text("x"), f)[1])(t / "a_file")),
         Raises((FileExistsError, NotADirectoryError), r"a_file")),
    case(L, "save-overwrite-string", lambda m, p, a, t: m.save(t / "new", overwrite="no"),
         Raises(TypeError, r"`overwrite` must be True or False"), "CLEAR", "overwrite is not checked (any truthy value overwrites)", before="SILENT"),
    case(L, "load-missing-folder", lambda m, p, a, t: CaLMFlowModel.load(t / "nowhere", a),
         Raises(FileNotFoundError, r"nowhere has no config\.json")),
    case(L, "load-wrong-genes", lambda m, p, a, t: CaLMFlowModel.load(p, a[:, :100].copy()),
         Raises(ValueError, r"genes differ from the saved model's \(100 vs 300")),
    case(L, "load-reordered-genes", lambda m, p, a, t: CaLMFlowModel.load(p, a[:, ::-1].copy()),
         Raises(ValueError, r"genes differ.*another order")),
    case(L, "load-without-adata", lambda m, p, a, t: CaLMFlowModel.load(p),
         Raises(ValueError, r"Pass `adata`")),
    case(L, "load-adata-an-array", lambda m, p, a, t: CaLMFlowModel.load(p, a.X),
         Raises(TypeError, r"adata.*AnnData"), "CLEAR", "AttributeError: 'ndarray' object has no attribute 'var_names'", before="UNCLEAR"),
    case(L, "load-adata-without-key", lambda m, p, a, t: CaLMFlowModel.load(
        p, (lambda b: (b.obs.pop("condition"), b)[1])(a.copy())),
         Raises(KeyError, r"condition")),
    case(L, "load-adata-raw-counts", lambda m, p, a, t: CaLMFlowModel.load(
        p, (lambda b: (setattr(b, "X", np.round(b.X.toarray() * 20) if sp.issparse(b.X)
                                else np.round(b.X * 20)), b)[1])(a.copy())),
         Raises(ValueError, r"looks like raw counts")),
    case(L, "load-adata-with-a-new-category", lambda m, p, a, t: CaLMFlowModel.load(
        p, _new_category(a)), Raises(ValueError, r"\.obs\[\"cell_type\"\].*Received categories.*'Z'")),
    case(L, "load-roundtrip", lambda m, p, a, t: CaLMFlowModel.load(p, a.copy()),
         Ok(lambda model, m, *_: _roundtrip(model, m)), "OK"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), SAVE_LOAD_CASES)
def test_save_load(call, expect, trained, saved, kang_small_shared, tmp_path):
    run(call, expect, trained, saved, kang_small_shared, tmp_path, watch=(kang_small_shared,))


# ============================================================================ baselines
BL = "baselines"
FIT = dict(KEYS, n_pca=5)


@pytest.fixture(scope="module")
def additive(kang_small_shared):
    return Additive().fit(kang_small_shared, **FIT)


def _fit(cls=Additive, data=None, **kwargs):
    def call(model, kang):
        adata = kang if data is None else data(kang)
        return cls().fit(adata, **{**FIT, **kwargs})

    return call


def _bpredict(conditions=B_STIM, **kwargs):
    return lambda model, kang: model.predict(conditions, **kwargs)


def _mutate_copy(f):
    def data(kang):
        a = kang.copy()
        f(a)
        return a

    return data


def _set_x(f):
    return _mutate_copy(lambda a: setattr(a, "X", f(a.X.toarray() if sp.issparse(a.X) else a.X)))


def _fit_unchanged(cls):
    def call(model, kang):
        adata = kang.copy()
        before = adata.copy()
        cls().fit(adata, **FIT)
        assert_unchanged(before, adata)

    return call


def _cfm(**kwargs):
    return lambda model, kang: CFM(**kwargs)


BASELINE_CASES = [
    case(BL, "fit-no-condition-keys", _fit(condition_keys=[]),
         Raises(ValueError, r"`condition_keys` must name at least one obs column")),
    case(BL, "fit-control-None", _fit(control=None), Raises(ValueError, r"`control` must be a non-empty dict")),
    case(BL, "fit-control-absent", _fit(control={"condition": "ctrl"}),
         Raises(ValueError, r"control value 'ctrl' does not occur")),
    case(BL, "fit-missing-key", _fit(condition_keys=["cell_type", "donor"]),
         Raises(KeyError, r"\['donor'\] not found")),
    case(BL, "fit-n_pca=0", _fit(n_pca=0), Raises(ValueError, r"`n_pca` must be at least 1")),
    case(BL, "fit-n_pca-float", _fit(n_pca=5.0), Raises(TypeError, r"`n_pca` must be an integer")),
    case(BL, "fit-n_pca-beyond-the-data", _fit(n_pca=10**4, data=lambda k: k[:40].copy()),
         Raises(ValueError, r"n_pca=10000 is more than the data allow"), "CLEAR", "PCAFeatures.fit clips n_pca to min(n_cells, n_genes) - 1 (here 39) without a word", before="SILENT"),
    case(BL, "fit-seed-negative", _fit(seed=-1), Raises(ValueError, r"`seed` must be at least 0")),
    case(BL, "fit-seed-None", _fit(seed=None), Raises(TypeError, r"`seed`.*got None")),
    case(BL, "fit-pca_scaling-unknown", _fit(pca_scaling="zscore"),
         Raises(ValueError, r"scaling must be 'global', 'component' or 'none'")),
    case(BL, "fit-log_normalised-string", _fit(log_normalised="yes"),
         Raises(TypeError, r"`log_normalised` must be True or False")),
    case(BL, "fit-layer-missing", _fit(layer="log"), Raises(KeyError, r"layer 'log' not found")),
    case(BL, "fit-raw-counts", _fit(data=_set_x(lambda X: np.round(X * 20))),
         Raises(ValueError, r"looks like raw counts")),
    case(BL, "fit-NaN", _fit(data=_set_x(lambda X: np.where(X > 3, np.nan, X))),
         Raises(ValueError, r"NaN")),
    case(BL, "fit-one-cell", _fit(data=lambda k: k[np.flatnonzero(k.obs["condition"] == "control")[:1]].copy()),
         Raises(ValueError, r"at least (two|2) cells")),
    case(BL, "fit-adata-an-array", _fit(data=lambda k: k.X),
         Raises(TypeError, r"adata.*AnnData"), "CLEAR", "AttributeError: 'csr_matrix' object has no attribute 'obs'", before="UNCLEAR"),
    case(BL, "fit-a-view-ok", _fit(data=lambda k: k[:300]),
         Ok(lambda m, *_: m.training_summary["n_cells"] == 300), "OK"),
    case(BL, "fit-does-not-modify-adata", _fit_unchanged(TrainMean), Ok(), "OK"),
    case(BL, "additive-a-single-context", lambda m, k: Additive().fit(
        k[k.obs["cell_type"] == "B"].copy(), **FIT).predict(B_STIM),
         Raises(ValueError, r"Additive: no context other than \{'cell_type': 'B'\}")),
    case(BL, "predict-before-fit", lambda m, k: Control().predict(B_STIM),
         Raises(RuntimeError, r"Control is not fitted; call `fit` first")),
    case(BL, "predict-unknown-value", _bpredict({"cell_type": ["Z"], "condition": ["IFN-beta"]}),
         Raises(ValueError, r"Unknown value\(s\) \['Z'\]")),
    case(BL, "predict-missing-key", _bpredict({"cell_type": ["B"]}),
         Raises(KeyError, r"lack column\(s\) \['condition'\]")),
    case(BL, "predict-conditions-a-list", _bpredict(["B", "IFN-beta"]),
         Raises(TypeError, r"`conditions` must be a pandas DataFrame")),
    case(BL, "predict-n_cells=0", _bpredict(n_cells=0), Raises(ValueError, r"`n_cells` must be at least 1")),
    case(BL, "predict-n_cells-wrong-length", _bpredict(n_cells=[1, 2]),
         Raises(ValueError, r"`n_cells` has 2 entries but there are 1 conditions")),
    case(BL, "predict-n_cells-per-row-ok",
         _bpredict({"cell_type": ["B", "NK"], "condition": ["IFN-beta"] * 2}, n_cells=[2, 3]),
         Ok(lambda p, *_: list(p.obs["cell_type"]) == ["B"] * 2 + ["NK"] * 3), "OK"),
    case(BL, "predict-n_cells-float", _bpredict(n_cells=2.7),
         Raises(TypeError, r"`n_cells` must be an integer"), "CLEAR", "TypeError: 'float' object is not iterable", before="UNCLEAR"),
    case(BL, "predict-n_cells-string", _bpredict(n_cells="5"),
         Raises(TypeError, r"`n_cells` must be an integer"), "CLEAR", "'5' is read as the list ['5'] and converted to 5 cells", before="SILENT"),
    case(BL, "predict-n_cells-True", _bpredict(n_cells=True),
         Raises(TypeError, r"`n_cells` must be an integer"), "CLEAR", "True gives 1 cell", before="SILENT"),
    case(BL, "predict-seed-float", _bpredict(seed=1.5),
         Raises(TypeError, r"`seed` must be an integer"), "CLEAR", "int(1.5) = 1 is used", before="SILENT"),
    case(BL, "predict-seed-None", _bpredict(seed=None),
         Raises(TypeError, r"`seed`.*got None"), "CLEAR", "TypeError: int() argument must be ... not 'NoneType'", before="UNCLEAR"),
    case(BL, "predict-seed-negative", _bpredict(seed=-1),
         Raises(ValueError, r"`seed` must be at least 0"), "CLEAR", "numpy's 'expected non-negative integer'", before="UNCLEAR"),
    case(BL, "cfm-variant-unknown", _cfm(variant="fm"), Raises(ValueError, r"variant must be 'icfm', 'otcfm' or 'sbcfm'")),
    case(BL, "cfm-activation-unknown", _cfm(activation="relu"), Raises(ValueError, r"activation must be one of")),
    case(BL, "cfm-width=0", _cfm(width=0), Raises(ValueError, r"`width` must be at least 1")),
    case(BL, "cfm-width-float", _cfm(width=2.5), Raises(TypeError, r"`width` must be an integer"),
         "CLEAR", "int(2.5) = 2 hidden units", before="SILENT"),
    case(BL, "cfm-lr-string", _cfm(lr="1e-3"), Raises(TypeError, r"`lr` must be a number"),
         "CLEAR", "TypeError: '<=' not supported between 'str' and 'int'", before="UNCLEAR"),
    case(BL, "cfm-lr-NaN", _cfm(lr=float("nan")), Raises(ValueError, r"`lr` must be finite"),
         "CLEAR", "nan passes `lr <= 0`", before="SILENT"),
    case(BL, "cfm-n_steps-bool", _cfm(n_steps=True), Raises(TypeError, r"`n_steps` must be an integer"),
         "CLEAR", "True is taken as 1 step", before="SILENT"),
    case(BL, "cfm-sigma-negative", _cfm(sigma=-1.0), Raises(ValueError, r"`sigma` must be at least 0"),
         "CLEAR", "a negative noise level is accepted", before="SILENT"),
    case(BL, "cfm-atol-string", _cfm(atol="x"), Raises(TypeError, r"`atol` must be a number"),
         "CLEAR", "ValueError: could not convert string to float: 'x'", before="UNCLEAR"),
    case(BL, "cfm-tiny-fit-predict", lambda m, k: CFM(width=8, depth=1, n_steps=3, batch_size=64)
         .fit(k, **FIT).predict(B_STIM, n_cells=3),
         Ok(lambda p, *_: p.shape == (3, 300) and np.isfinite(p.X).all()), "OK"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), BASELINE_CASES)
def test_baselines(call, expect, additive, kang_small_shared):
    run(call, expect, additive, kang_small_shared, watch=(kang_small_shared,))


# ============================================================================ metrics
MT = "metrics"
RNG = np.random.default_rng(0)
X10 = RNG.normal(size=(10, 4))
Y12 = RNG.normal(size=(12, 4)) + 0.5


def _m(f, x=None, y=None, **kwargs):
    """A metric call on copies of the module arrays (or on ``x``, ``y``)."""
    return lambda: f(X10 if x is None else x, Y12 if y is None else y, **kwargs)


def _nan(a):
    a = a.copy()
    a[0, 0] = np.nan
    return a


def _approx(value):
    return lambda r: r == pytest.approx(value, abs=1e-9) or pytest.fail(f"{r} != {value}")


DISTANCES = [("mmd", scm.mmd), ("energy_distance", scm.energy_distance),
             ("wasserstein2", scm.wasserstein2), ("adaptive_mmd", scm.adaptive_mmd)]  # fmt: skip


def _for_every_distance():
    out = []
    for name, f in DISTANCES:
        out += [
            case(MT, f"{name}-empty", _m(f, x=np.empty((0, 4))), Raises(ValueError, r"x is empty")),
            case(
                MT,
                f"{name}-feature-mismatch",
                _m(f, y=Y12[:, :3]),
                Raises(ValueError, r"same number of features; got 4 and 3"),
            ),
            case(
                MT,
                f"{name}-NaN",
                _m(f, y=_nan(Y12)),
                Raises(ValueError, r"y contains 1 NaN or infinite"),
            ),
            case(MT, f"{name}-1-D", _m(f, x=X10[:, 0]), Raises(ValueError, r"x must be a 2-D")),
            case(
                MT,
                f"{name}-a-string",
                _m(f, x="cells"),
                Raises(TypeError, r"`x` must be a numeric"),
                before="UNCLEAR",
            ),
            case(MT, f"{name}-identical-sets-zero", _m(f, y=X10), Ok(_approx(0.0)), "OK"),
        ]
    return out


def _ad(x, **obsm):
    a = ad.AnnData(np.abs(x).astype(np.float32))
    for k, v in obsm.items():
        a.obsm[k] = v
    return a


def _w2_pair_value(r):
    expected = float(np.linalg.norm(X10[0] - Y12[0]))
    assert r == pytest.approx(expected)


METRIC_CASES = [
    *_for_every_distance(),
    case(MT, "mmd-None", lambda: scm.mmd(None, Y12),
         Raises(TypeError, r"`x` must be a numeric"), before="UNCLEAR"),
    case(MT, "mmd-string-array", lambda: scm.mmd(X10.astype(str), Y12),
         Raises(TypeError, r"`x` must be a numeric.*dtype"), before="SILENT"),
    case(MT, "mmd-complex", lambda: scm.mmd(X10 + 1j, Y12),
         Raises(TypeError, r"`x` must be a numeric.*complex"), before="SILENT"),
    case(MT, "mmd-3-D", lambda: scm.mmd(X10[None], Y12), Raises(ValueError, r"x must be a 2-D")),
    case(MT, "mmd-list-of-lists-ok", lambda: scm.mmd([[0.0, 1.0], [1.0, 0.0]], [[0.0, 1.0]]),
         Ok(lambda r: r > 0), "OK"),
    case(MT, "mmd-dataframe-and-sparse-ok", lambda: scm.mmd(pd.DataFrame(X10), sp.csr_matrix(Y12)),
         Ok(lambda r: r == pytest.approx(scm.mmd(X10, Y12))), "OK"),
    case(MT, "mmd-integer-arrays-ok", lambda: scm.mmd(np.arange(8).reshape(4, 2), np.ones((3, 2), int)),
         Ok(lambda r: r > 0), "OK"),
    case(MT, "mmd-gammas-empty", _m(scm.mmd, gammas=[]), Raises(ValueError, r"`gammas` must be a non-empty")),
    case(MT, "mmd-gammas-negative", _m(scm.mmd, gammas=[1.0, -1.0]),
         Raises(ValueError, r"`gammas\[1\]` must be greater than 0"), before="CLEAR"),
    case(MT, "mmd-gammas-NaN", _m(scm.mmd, gammas=[float("nan")]),
         Raises(ValueError, r"`gammas\[0\]` must be finite"), before="CLEAR"),
    case(MT, "mmd-gammas-a-number", _m(scm.mmd, gammas=0.5),
         Raises(TypeError, r"`gammas` must be a sequence of numbers.*\[0\.5\]"), before="UNCLEAR"),
    case(MT, "mmd-gammas-strings", _m(scm.mmd, gammas=["a"]),
         Raises(TypeError, r"`gammas\[0\]` must be a number"), before="UNCLEAR"),
    case(MT, "mmd-gammas-None", _m(scm.mmd, gammas=None),
         Raises(TypeError, r"`gammas` must be a sequence"), before="UNCLEAR"),
    case(MT, "mmd-kernel-unknown", _m(scm.mmd, kernel="linear"),
         Raises(ValueError, r"`kernel` must be one of \['rbf'\]"), before="CLEAR"),
    case(MT, "mmd-unbiased-string", _m(scm.mmd, unbiased="yes"),
         Raises(TypeError, r"`unbiased` must be True or False"), before="SILENT"),
    case(MT, "mmd-unbiased-one-cell", _m(scm.mmd, x=X10[:1], unbiased=True),
         Raises(ValueError, r"unbiased MMD needs at least 2 cells")),
    case(MT, "mmd-obsm-on-array", _m(scm.mmd, obsm="X_pca"),
         Raises(TypeError, r"`obsm`/`layer` are only meaningful for AnnData")),
    case(MT, "mmd-missing-obsm-key", lambda: scm.mmd(_ad(X10), _ad(Y12), obsm="X_pca"),
         Raises(KeyError, r"obsm key 'X_pca' not found")),
    case(MT, "mmd-anndata-obsm-ok",
         lambda: scm.mmd(_ad(X10, X_pca=X10), _ad(Y12[:10], X_pca=X10), obsm="X_pca"),
         Ok(_approx(0.0)), "OK"),
    case(MT, "energy-squared-string", _m(scm.energy_distance, squared="no"),
         Raises(TypeError, r"`squared` must be True or False"), before="SILENT"),
    case(MT, "energy-self_pairs-None", _m(scm.energy_distance, self_pairs=None),
         Raises(TypeError, r"`self_pairs` must be True or False"), before="SILENT"),
    case(MT, "energy-self_pairs-False-one-cell", _m(scm.energy_distance, x=X10[:1], self_pairs=False),
         Raises(ValueError, r"self_pairs=False needs at least 2 cells")),
    case(MT, "energy-symmetric", _m(scm.energy_distance),
         Ok(lambda r: r == pytest.approx(scm.energy_distance(Y12, X10)) and r > 0), "OK"),
    case(MT, "energy-one-cell-each", _m(scm.energy_distance, x=X10[:1], y=Y12[:1]),
         Ok(lambda r: r == pytest.approx(2 * np.linalg.norm(X10[0] - Y12[0]))), "OK"),
    case(MT, "w2-one-cell-each", _m(scm.wasserstein2, x=X10[:1], y=Y12[:1]), Ok(_w2_pair_value), "OK"),
    case(MT, "w2-seed-negative", _m(scm.wasserstein2, seed=-1),
         Raises(ValueError, r"`seed` must be at least 0"), before="UNCLEAR"),
    case(MT, "w2-seed-None", _m(scm.wasserstein2, seed=None),
         Raises(TypeError, r"`seed`.*got None"), before="SILENT"),
    case(MT, "w2-seed-float", _m(scm.wasserstein2, seed=1.5),
         Raises(TypeError, r"`seed` must be an integer"), before="UNCLEAR"),
    case(MT, "w2-max_exact=0", _m(scm.wasserstein2, max_exact=0),
         Raises(ValueError, r"`max_exact` must be at least 1"), before="UNCLEAR"),
    case(MT, "w2-max_exact-negative", _m(scm.wasserstein2, max_exact=-5),
         Raises(ValueError, r"`max_exact` must be at least 1"), before="UNCLEAR"),
    case(MT, "w2-max_exact-float", _m(scm.wasserstein2, max_exact=2.5),
         Raises(TypeError, r"`max_exact` must be an integer"), before="SILENT"),
    case(MT, "w2-max_exact-string", _m(scm.wasserstein2, max_exact="10"),
         Raises(TypeError, r"`max_exact` must be an integer"), before="UNCLEAR"),
    case(MT, "w2-max_exact-subsamples", _m(scm.wasserstein2, max_exact=3, return_info=True),
         Ok(lambda r: r[1]["n_x_used"] == 3 and r[1]["subsampled"]), "OK"),
    case(MT, "w2-reg=0", _m(scm.wasserstein2, exact=False, reg=0.0),
         Raises(ValueError, r"`reg` must be greater than 0"), before="SILENT"),
    case(MT, "w2-reg-string", _m(scm.wasserstein2, exact=False, reg="0.05"),
         Raises(TypeError, r"`reg` must be a number"), before="SILENT"),
    case(MT, "w2-exact-string", _m(scm.wasserstein2, exact="no"),
         Raises(TypeError, r"`exact` must be True or False"), before="SILENT"),
    case(MT, "w2-return_info-int", _m(scm.wasserstein2, return_info=1),
         Raises(TypeError, r"`return_info` must be True or False"), before="SILENT"),
    case(MT, "adaptive_mmd-k=0", _m(scm.adaptive_mmd, k=0), Raises(ValueError, r"`k` must be at least 1"),
         before="CLEAR"),
    case(MT, "adaptive_mmd-k-float", _m(scm.adaptive_mmd, k=2.5),
         Raises(TypeError, r"`k` must be an integer"), before="SILENT"),
    case(MT, "adaptive_mmd-k-string", _m(scm.adaptive_mmd, k="5"),
         Raises(TypeError, r"`k` must be an integer"), before="SILENT"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), METRIC_CASES)
def test_distances(call, expect):
    x, y = X10.copy(), Y12.copy()
    run(call, expect)
    np.testing.assert_array_equal(X10, x)
    np.testing.assert_array_equal(Y12, y)


# ----------------------------------------------------------- mean expression and top DE
GENES = [f"g{i}" for i in range(6)]
P6 = np.abs(RNG.normal(1.0, 0.5, size=(8, 6)))
T6 = np.abs(RNG.normal(1.0, 0.5, size=(9, 6)))


def _ad6(x, names=GENES):
    return ad.AnnData(x.astype(np.float32), var=pd.DataFrame(index=names))


def _r2(pred=None, true=None, **kwargs):
    return lambda: scm.mean_expression_r2(
        P6 if pred is None else pred, T6 if true is None else true, **kwargs
    )


def _de_adata():
    rng = np.random.default_rng(1)
    x = rng.normal(1.0, 0.3, size=(40, 12)).clip(0)
    x[:20, :3] += 2.0
    return ad.AnnData(
        x.astype(np.float32),
        obs=pd.DataFrame(
            {"cond": ["stim"] * 20 + ["ctrl"] * 20}, index=[f"c{i}" for i in range(40)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(12)]),
    )


DE = _de_adata()


def _de(adata=None, **kwargs):
    params = {"groupby": "cond", "group": "stim", "reference": "ctrl", "n": 3, **kwargs}
    return lambda: scm.top_de_genes(DE if adata is None else adata, **params)


CORRELATION_CASES = [
    case(MT, "r2-gene-mismatch", _r2(true=T6[:, :5]),
         Raises(ValueError, r"same genes; got 6 and 5 genes")),
    case(MT, "r2-var_names-differ", _r2(_ad6(P6), _ad6(T6, GENES[::-1])),
         Raises(ValueError, r"different var_names")),
    case(MT, "r2-NaN", _r2(pred=_nan(P6)), Raises(ValueError, r"pred contains 1 NaN")),
    case(MT, "r2-empty", _r2(pred=np.empty((0, 6))), Raises(ValueError, r"pred is empty")),
    case(MT, "r2-names-without-var_names", _r2(genes=["g0", "g1"]),
         Raises(ValueError, r"gene names of the data are unknown")),
    case(MT, "r2-unknown-gene", _r2(_ad6(P6), _ad6(T6), genes=["g0", "g99"]),
         Raises(KeyError, r"1 gene\(s\) not found, e\.g\. \['g99'\]"), before="CLEAR"),
    case(MT, "r2-gene-position-out-of-range", _r2(genes=[0, 6]),
         Raises(IndexError, r"Gene positions out of range for 6 genes")),
    case(MT, "r2-genes-empty", _r2(genes=[]), Raises(ValueError, r"`genes` is empty")),
    case(MT, "r2-genes-mask-wrong-length", _r2(genes=np.ones(5, bool)),
         Raises(ValueError, r"boolean `genes` mask must have length 6")),
    case(MT, "r2-genes-a-string", _r2(_ad6(P6), _ad6(T6), genes="g0"),
         Raises(TypeError, r"`genes` must be a list.*\['g0'\]"), before="UNCLEAR"),
    case(MT, "r2-var_names-too-many", _r2(genes=["g8"], var_names=[f"g{i}" for i in range(10)]),
         Raises(ValueError, r"`var_names` has 10 names but the data have 6 genes"), before="CRASH"),
    case(MT, "r2-var_names-too-few", _r2(genes=["g1", "g2"], var_names=["g0", "g1", "g2"]),
         Raises(ValueError, r"`var_names` has 3 names but the data have 6 genes"), before="SILENT"),
    case(MT, "r2-one-gene", _r2(genes=[0]), Raises(ValueError, r"At least 2 genes")),
    case(MT, "r2-control-wrong-genes", _r2(control=T6[:, :4]),
         Raises(ValueError, r"control has 4 genes, expected 6")),
    case(MT, "r2-layer-on-arrays", _r2(layer="counts"),
         Raises(TypeError, r"only meaningful for AnnData")),
    case(MT, "r2-constant-prediction-nan", _r2(pred=np.ones((3, 6))),
         Ok(lambda r: np.isnan(r["pearson"]) and np.isfinite(r["r2_sklearn"])), "OK"),
    case(MT, "r2-perfect", _r2(pred=T6),
         Ok(lambda r: r["r2_pearson"] == pytest.approx(1) and r["r2_sklearn"] == pytest.approx(1)), "OK"),
    case(MT, "r2-1-D-profiles-ok", _r2(pred=T6.mean(0), true=T6),
         Ok(lambda r: r["r2_sklearn"] == pytest.approx(1)), "OK"),
    case(MT, "de-groupby-missing", _de(groupby="treatment"),
         Raises(KeyError, r"'treatment' is not a column of adata\.obs")),
    case(MT, "de-group-absent", _de(group="drug"), Raises(ValueError, r"No cells with cond == 'drug'")),
    case(MT, "de-group-equals-reference", _de(group="ctrl"),
         Raises(ValueError, r"`group` and `reference` must differ")),
    case(MT, "de-n=0", _de(n=0), Raises(ValueError, r"`n` must be at least 1"), before="CLEAR"),
    case(MT, "de-n-float", _de(n=2.5), Raises(TypeError, r"`n` must be an integer"), before="SILENT"),
    case(MT, "de-n-string", _de(n="3"), Raises(TypeError, r"`n` must be an integer"), before="SILENT"),
    case(MT, "de-n-None", _de(n=None), Raises(TypeError, r"`n` must be an integer"), before="UNCLEAR"),
    case(MT, "de-method-unknown", _de(method="deseq2"),
         Raises(ValueError, r"`method` must be one of \['logreg', 't-test'"), before="CLEAR"),
    case(MT, "de-rankby_abs-string", _de(rankby_abs="yes"),
         Raises(TypeError, r"`rankby_abs` must be True or False"), before="SILENT"),
    case(MT, "de-adata-an-array", lambda: scm.top_de_genes(DE.X, groupby="cond", group="stim", reference="ctrl"),
         Raises(TypeError, r"`adata` must be an AnnData"), before="UNCLEAR"),
    case(MT, "de-layer-missing", _de(layer="log"), Raises(KeyError, r"layer 'log' not found")),
    case(MT, "de-one-cell-per-group", _de(adata=DE[[0, 25]].copy()),
         Raises(ValueError, r"only contain one sample")),
    case(MT, "de-n-beyond-the-genes", _de(n=100),
         Ok(lambda r: len(r) == 12 and set(r[:3]) == {"g0", "g1", "g2"}), "OK"),
    case(MT, "de-finds-the-planted-genes", _de(),
         Ok(lambda r: set(r) == {"g0", "g1", "g2"}), "OK"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), CORRELATION_CASES)
def test_correlation(call, expect):
    p, t, de = P6.copy(), T6.copy(), DE.copy()
    run(call, expect)
    np.testing.assert_array_equal(P6, p)
    np.testing.assert_array_equal(T6, t)
    assert_unchanged(de, DE)


# ------------------------------------------------------------------------------ evaluate
def _eval_data():
    """Real cells of 2 cell types x {control, stim}; pred = the stim cells (perfect)."""
    rng = np.random.default_rng(2)
    rows, obs = [], []
    for i, ct in enumerate(["B", "T"]):
        for cond in ["control", "stim"]:
            rows.append(np.abs(rng.normal(1 + 0.5 * i + 0.8 * (cond == "stim"), 0.3, (12, 8))))
            obs += [(ct, cond)] * 12
    real = ad.AnnData(
        np.vstack(rows).astype(np.float32),
        obs=pd.DataFrame(
            obs, columns=["cell_type", "condition"], index=[f"r{i}" for i in range(48)]
        ),
        var=pd.DataFrame(index=[f"g{i}" for i in range(8)]),
    )
    real.obsm["X_calmflow_pca"] = np.asarray(real.X, np.float64)[:, :3]
    return real[real.obs["condition"] == "stim"].copy(), real


PRED, REAL = _eval_data()
EVAL_KEYS = {"condition_keys": ["cell_type", "condition"], "control": {"condition": "control"}}


def _eval(pred=None, real=None, **kwargs):
    params = {**EVAL_KEYS, "space": "pca", "metrics": ("mean_expression", "mmd"), **kwargs}
    return lambda: scm.evaluate(
        PRED if pred is None else pred, REAL if real is None else real, **params
    )


def _without(a, attr, key):
    a = a.copy()
    getattr(a, attr).pop(key)
    return a


EVALUATE_CASES = [
    case(MT, "evaluate-arrays", _eval(pred=PRED.X), Raises(TypeError, r"expects AnnData objects")),
    case(MT, "evaluate-unknown-metric", _eval(metrics=["mmd", "r2"]),
         Raises(ValueError, r"Unknown metric\(s\) \['r2'\]; choose from")),
    case(MT, "evaluate-metric-a-string-ok", _eval(metrics="mmd"),
         Ok(lambda df: set(df["metric"]) == {"mmd"} and (df["value"].abs() < 1e-9).all()), "OK"),
    case(MT, "evaluate-metrics-empty", _eval(metrics=[]),
         Raises(ValueError, r"`metrics` is empty"), before="SILENT"),
    case(MT, "evaluate-metrics-None", _eval(metrics=None),
         Raises(TypeError, r"`metrics` must be"), before="UNCLEAR"),
    case(MT, "evaluate-unknown-space", _eval(space="tsne"), Raises(ValueError, r"Unknown space 'tsne'")),
    case(MT, "evaluate-space-empty-with-distances", _eval(space=[]),
         Raises(ValueError, r"`space` is empty"), before="SILENT"),
    case(MT, "evaluate-missing-obsm", _eval(real=_without(REAL, "obsm", "X_calmflow_pca")),
         Raises(KeyError, r"real lack\(s\) obsm\['X_calmflow_pca'\].*pca='joint'")),
    case(MT, "evaluate-pca-unknown-string", _eval(pca="shared"),
         Raises(TypeError, r"`pca` must be None, 'joint' or a callable")),
    case(MT, "evaluate-missing-condition-key", _eval(real=_without(REAL, "obs", "cell_type")),
         Raises(KeyError, r"real\.obs lacks condition key\(s\) \['cell_type'\]")),
    case(MT, "evaluate-control-key-not-a-condition-key", _eval(control={"dose": "0"}),
         Raises(ValueError, r"control keys \['dose'\] must be among condition_keys")),
    case(MT, "evaluate-control-a-list", _eval(control=["condition"]),
         Raises(TypeError, r"`control` must be a dict"), before="UNCLEAR"),
    case(MT, "evaluate-condition-absent-from-real",
         _eval(real=REAL[REAL.obs["cell_type"] == "B"].copy()),
         Raises(ValueError, r"of pred have no real cells")),
    case(MT, "evaluate-only-control-in-pred", _eval(pred=REAL[REAL.obs["condition"] == "control"].copy()),
         Raises(ValueError, r"no non-control condition to score")),
    case(MT, "evaluate-pred-without-cells", _eval(pred=PRED[:0].copy()), Raises(ValueError, r"pred has no cells")),
    case(MT, "evaluate-var_names-differ", _eval(pred=PRED[:, ::-1].copy()),
         Raises(ValueError, r"same var_names in the same order")),
    case(MT, "evaluate-unknown-gene", _eval(genes=["g0", "nope"]), Raises(KeyError, r"not found.*nope")),
    case(MT, "evaluate-layer-missing", _eval(layer="log"), Raises(KeyError, r"layer 'log' not found")),
    case(MT, "evaluate-n_max=0", _eval(n_max=0), Raises(ValueError, r"`n_max` must be at least 1"),
         before="UNCLEAR"),
    case(MT, "evaluate-n_max-negative", _eval(n_max=-1), Raises(ValueError, r"`n_max` must be at least 1"),
         before="UNCLEAR"),
    case(MT, "evaluate-n_max-float", _eval(n_max=2.5), Raises(TypeError, r"`n_max` must be an integer"),
         before="SILENT"),
    case(MT, "evaluate-n_max-subsamples", _eval(n_max=5, metrics="mmd"),
         Ok(lambda df: (df["n_used_pred"] == 5).all() and df["subsampled"].all()), "OK"),
    case(MT, "evaluate-seed-negative", _eval(seed=-1), Raises(ValueError, r"`seed` must be at least 0"),
         before="UNCLEAR"),
    case(MT, "evaluate-seed-None", _eval(seed=None), Raises(TypeError, r"`seed`.*got None"),
         before="UNCLEAR"),
    case(MT, "evaluate-seed-float", _eval(seed=0.5), Raises(TypeError, r"`seed` must be an integer"),
         before="CLEAR"),
    case(MT, "evaluate-max_exact=0", _eval(metrics="w2", max_exact=0),
         Raises(ValueError, r"`max_exact` must be at least 1"), before="UNCLEAR"),
    case(MT, "evaluate-n_pcs_joint=0", _eval(pca="joint", n_pcs_joint=0),
         Raises(ValueError, r"`n_pcs_joint` must be at least 1"), before="UNCLEAR"),
    case(MT, "evaluate-top_de=0", _eval(top_de=0), Raises(ValueError, r"`top_de` must be at least 1"),
         before="UNCLEAR"),
    case(MT, "evaluate-top_de-string", _eval(top_de="5"),
         Raises(TypeError, r"`top_de` must be"), before="CLEAR"),
    case(MT, "evaluate-one-condition-for-all", _eval(condition_keys=None, control=None, metrics="mmd"),
         Ok(lambda df: len(df) == 1 and df["n_pred"].iloc[0] == 24), "OK"),
    case(MT, "evaluate-perfect-prediction", _eval(),
         Ok(lambda df: df.loc[df["metric"] == "r2_sklearn", "value"].gt(0.999).all()), "OK"),
]  # fmt: skip


@pytest.mark.parametrize(("call", "expect"), EVALUATE_CASES)
def test_evaluate(call, expect):
    pred, real = PRED.copy(), REAL.copy()
    run(call, expect)
    assert_unchanged(pred, PRED)
    assert_unchanged(real, REAL)


# ============================================================================ the battery
def test_the_battery_has_at_least_110_distinct_cases():
    ids = [(g, i) for g, i, _, _ in REGISTRY]
    assert len(ids) == len(set(ids)), [x for x, n in Counter(ids).items() if n > 1]
    assert len(ids) >= 110
    now = Counter(s for *_, s, _ in REGISTRY)
    before = Counter(b for *_, b in REGISTRY)
    print(f"\n{len(ids)} cases; now {dict(now)}; before the fixes {dict(before)}")
