"""Export predictions and ground truth in the layout cell-eval's ``MetricsEvaluator`` expects."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ..data import condition_labels, get_matrix, is_anndata, is_control

#: Joins cell type and perturbation into one label (a character no label contains).
_SEP = "\x1f"


@dataclass
class CellEvalInputs:
    """AnnData pair ready for cell-eval (see :func:`to_cell_eval`).

    Attributes
    ----------
    pred, real
        Predicted and real cells: ``X`` float32 CSR log-normalised expression, identical
        ``var_names``, ``obs`` holding only ``pert_col`` (and ``celltype_col``) as strings,
        unique ``obs_names``.
    pert_col, control_pert, celltype_col
        What to pass to cell-eval.
    pred_path, real_path
        Where the ``.h5ad`` files were written (``None`` without ``outdir``).
    """

    pred: Any
    real: Any
    pert_col: str
    control_pert: str
    celltype_col: str | None = None
    pred_path: Path | None = None
    real_path: Path | None = None

    def command(self, outdir: str = "cell-eval-outdir", profile: str = "full") -> str:
        """The equivalent ``cell-eval run`` command line (needs the written files)."""
        if self.pred_path is None or self.real_path is None:
            raise ValueError("No files were written; call to_cell_eval(..., outdir=...).")
        cmd = (
            f"cell-eval run -ap {self.pred_path} -ar {self.real_path} "
            f"--pert-col {self.pert_col} --control-pert {self.control_pert} "
            f"--profile {profile} -o {outdir}"
        )
        if self.celltype_col:
            cmd += f" --celltype-col {self.celltype_col}"
        return cmd

    def run(
        self,
        outdir: str | Path,
        *,
        profile: str = "full",
        skip_de: bool = False,
        skip_metrics: list[str] | None = None,
        num_threads: int = 1,
        **evaluator_kwargs: Any,
    ) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Run cell-eval's :class:`~cell_eval.MetricsEvaluator` and return its tables.

        With ``celltype_col`` the pair is split per cell type and evaluated separately (as
        ``cell-eval run --celltype-col`` does); a ``celltype`` column is added.

        Parameters
        ----------
        outdir
            cell-eval's output directory (CSV files are written there).
        profile
            cell-eval metric profile (``"full"``, ``"minimal"``, ``"anndata"``, ...).
        skip_de
            Skip cell-eval's differential expression (and the DE metrics); much faster.
        skip_metrics
            cell-eval metric names to skip.
        num_threads
            Threads for cell-eval's DE.
        **evaluator_kwargs
            Passed to ``MetricsEvaluator``.

        Returns
        -------
        (pandas.DataFrame, pandas.DataFrame)
            Per-perturbation results and cell-eval's aggregate table.
        """
        from cell_eval import MetricsEvaluator

        if self.celltype_col:
            pairs = [
                (ct, self.pred[(self.pred.obs[self.celltype_col] == ct).to_numpy()].copy(),
                 self.real[(self.real.obs[self.celltype_col] == ct).to_numpy()].copy())
                for ct in sorted(self.real.obs[self.celltype_col].unique())
            ]  # fmt: skip
        else:
            pairs = [(None, self.pred.copy(), self.real.copy())]
        results, aggs = [], []
        for ct, p, r in pairs:
            ev = MetricsEvaluator(
                adata_pred=p,
                adata_real=r,
                control_pert=self.control_pert,
                pert_col=self.pert_col,
                num_threads=num_threads,
                outdir=str(outdir),
                prefix=None if ct is None else str(ct),
                skip_de=skip_de,
                **evaluator_kwargs,
            )
            res, agg = ev.compute(profile=profile, skip_metrics=skip_metrics)
            res, agg = res.to_pandas(), agg.to_pandas()
            if ct is not None:
                res.insert(0, "celltype", ct)
                agg.insert(0, "celltype", ct)
            results.append(res)
            aggs.append(agg)
        return pd.concat(results, ignore_index=True), pd.concat(aggs, ignore_index=True)


def _clean(adata, layer: str | None, cols: list[str], prefix: str):
    import anndata as ad

    x = get_matrix(adata, layer=layer, name=prefix)
    x = (
        sp.csr_matrix(x, dtype=np.float32)
        if sp.issparse(x)
        else sp.csr_matrix(np.asarray(x, dtype=np.float32))
    )
    if x.nnz and not np.isfinite(x.data).all():
        raise ValueError(f"{prefix} expression contains NaN or infinite values.")
    if x.nnz and x.data.min() < 0:
        raise ValueError(
            f"{prefix} expression has negative values; cell-eval expects log1p-normalised "
            "expression (>= 0). Clip decoded predictions at 0."
        )
    obs = pd.DataFrame(
        {c: adata.obs[c].astype(str).to_numpy() for c in cols},
        index=pd.Index([f"{prefix}-{i}" for i in range(adata.n_obs)]),
    )
    return ad.AnnData(X=x, obs=obs, var=pd.DataFrame(index=np.asarray(adata.var_names, dtype=str)))


def _restrict_real(p, r, pert_col: str, control_pert: str, celltype_col: str | None):
    """The real cells of the perturbations (per cell type) of ``p``, plus the control cells.

    A perturbation of ``p`` absent from ``r`` is an error.
    """
    keys = [celltype_col, pert_col] if celltype_col else [pert_col]
    pred_combos = set(condition_labels(p.obs, keys, sep=_SEP))
    real_combos = condition_labels(r.obs, keys, sep=_SEP)
    absent = sorted(pred_combos - set(real_combos))
    if absent:
        raise ValueError(
            f"Perturbation(s) of pred absent from real: {[a.replace(_SEP, '/') for a in absent]}."
        )
    is_ctrl_r = is_control(r.obs, {pert_col: control_pert})
    groups_p = set(p.obs[celltype_col]) if celltype_col else None
    keep = pd.Index(real_combos).isin(pred_combos) | (
        is_ctrl_r & (r.obs[celltype_col].isin(groups_p).to_numpy() if celltype_col else True)
    )
    return r[keep].copy()


def _with_real_controls(p, r, pert_col: str, control_pert: str, celltype_col: str | None):
    """``p`` plus the real control cells of the cell types (or data) where ``p`` has none."""
    import anndata as ad

    control = {pert_col: control_pert}
    pred_has_ctrl = set(p.obs.loc[is_control(p.obs, control), celltype_col or pert_col])
    ctrl = r[is_control(r.obs, control)]
    if celltype_col:
        ctrl = ctrl[~ctrl.obs[celltype_col].isin(pred_has_ctrl).to_numpy()]
    elif pred_has_ctrl:
        ctrl = ctrl[:0]
    if not ctrl.n_obs:
        return p
    ctrl = ctrl.copy()
    ctrl.obs_names = [f"pred-ctrl-{i}" for i in range(ctrl.n_obs)]
    p = ad.concat([p, ctrl], merge="same")
    p.var = r.var.copy()
    return p


def to_cell_eval(
    pred,
    real,
    *,
    pert_col: str = "condition",
    control_pert: str = "control",
    celltype_col: str | None = None,
    layer: str | None = None,
    copy_control: bool = True,
    outdir: str | Path | None = None,
) -> CellEvalInputs:
    """Prepare predictions and ground truth for cell-eval (`MetricsEvaluator`, 0.8).

    cell-eval compares a predicted and a real AnnData that must have (checked in its
    ``PerturbationAnndataPair``): the same ``var_names`` in the same order; a perturbation
    column ``pert_col`` in ``.obs`` with the **same set of labels** in both, including the
    control label ``control_pert``; control cells in **both** objects (predicted effects are
    taken against the predicted control mean); log1p-normalised expression in ``X`` (integer
    data would be re-normalised; values must be in [0, 15)). This function builds such a
    pair:

    - expression from ``X`` (or ``layer``) as float32 CSR; negative values are an error;
    - ``obs`` reduced to ``pert_col`` (and ``celltype_col``) as strings, new unique names;
    - ``real`` restricted to the perturbations (per cell type) present in ``pred``, plus the
      control cells; a perturbation of ``pred`` absent from ``real`` is an error;
    - if ``pred`` has no control cells (per cell type) and ``copy_control`` is true (the
      usual case for generative models), the real control cells are copied into ``pred``,
      so cell-eval's predicted effects equal ``pred mean - real control mean``;
    - with ``outdir``, writes ``outdir/pred.h5ad`` and ``outdir/real.h5ad``.

    Run cell-eval with :meth:`CellEvalInputs.run` or the command of
    :meth:`CellEvalInputs.command`. With ``celltype_col`` (e.g. Kang: ``pert_col=
    "condition"``, ``celltype_col="cell_type"``) cell-eval evaluates each cell type
    separately, each with its own control cells. Conditions spread over several other
    keys must be merged into one ``pert_col`` first.

    Parameters
    ----------
    pred, real
        :class:`~anndata.AnnData` of predicted and real cells.
    pert_col
        ``.obs`` column with perturbation labels.
    control_pert
        The control label.
    celltype_col
        Optional ``.obs`` column to evaluate separately.
    layer
        Expression layer instead of ``X``.
    copy_control
        Copy real control cells into ``pred`` when it has none.
    outdir
        Directory for the ``.h5ad`` files.

    Returns
    -------
    CellEvalInputs
    """
    if not (is_anndata(pred) and is_anndata(real)):
        raise TypeError("to_cell_eval expects AnnData objects.")
    cols = [pert_col] + ([celltype_col] if celltype_col else [])
    for name, a in (("pred", pred), ("real", real)):
        missing = [c for c in cols if c not in a.obs]
        if missing:
            raise KeyError(f"{name}.obs lacks column(s) {missing}.")
    if not np.array_equal(np.asarray(pred.var_names), np.asarray(real.var_names)):
        if set(pred.var_names) == set(real.var_names) and pred.n_vars == real.n_vars:
            pred = pred[:, real.var_names]
        else:
            raise ValueError("pred and real must have the same genes (var_names).")
    p = _clean(pred, layer, cols, "pred")
    r = _clean(real, layer, cols, "real")
    control = {pert_col: control_pert}
    if not is_control(r.obs, control).any():
        raise ValueError(f"real has no control cells ({pert_col} == {control_pert!r}).")
    r = _restrict_real(p, r, pert_col, control_pert, celltype_col)
    if copy_control:
        p = _with_real_controls(p, r, pert_col, control_pert, celltype_col)
    for name, a in (("pred", p), ("real", r)):
        if celltype_col:
            for ct in sorted(set(a.obs[celltype_col])):
                sub = a.obs.loc[a.obs[celltype_col] == ct]
                if not is_control(sub, control).any():
                    raise ValueError(f"{name} has no control cells for {celltype_col}={ct!r}.")
        elif not is_control(a.obs, control).any():
            raise ValueError(f"{name} has no control cells; use copy_control=True.")
    for a in (p, r):
        for c in cols:
            a.obs[c] = a.obs[c].astype(str)
    out = CellEvalInputs(p, r, pert_col, control_pert, celltype_col)
    if outdir is not None:
        outdir = Path(outdir)
        outdir.mkdir(parents=True, exist_ok=True)
        out.pred_path, out.real_path = outdir / "pred.h5ad", outdir / "real.h5ad"
        p.write_h5ad(out.pred_path)
        r.write_h5ad(out.real_path)
    return out
