"""Training curves of a CaLMFlow model."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from matplotlib.ticker import MaxNLocator

from ..utils import check_bool, check_int
from ._docs import COMMON_PANELS, doc_params
from ._utils import SET_COLORS, check_figure_output, finish, make_axes, style_axes

#: panel name -> (title, train key, validation key)
PANELS: dict[str, tuple[str, str, str]] = {
    "loss": ("total loss", "train_loss", "validation_loss"),
    "reconstruction": (
        "reconstruction loss",
        "reconstruction_loss_train",
        "reconstruction_loss_validation",
    ),
    "kl": ("KL divergence", "kl_local_train", "kl_local_validation"),
}

#: Title of the one panel drawn when the total loss is the reconstruction loss (no KL).
SAME_TITLE = "total = reconstruction loss\n(head without a latent: no KL)"

TRAIN_COLOR = SET_COLORS["real"]  # blue
VALID_COLOR = "#D55E00"  # vermillion


def _series(history: Mapping[str, pd.DataFrame], key: str) -> tuple[np.ndarray, np.ndarray] | None:
    if key not in history or history[key] is None or len(history[key]) == 0:
        return None
    frame = history[key]
    values = (frame.iloc[:, 0] if isinstance(frame, pd.DataFrame) else frame).to_numpy(float)
    epochs = np.asarray(frame.index, dtype=float)
    if not np.issubdtype(epochs.dtype, np.number) or len(np.unique(epochs)) != len(epochs):
        epochs = np.arange(len(values), dtype=float)
    ok = np.isfinite(values)
    return epochs[ok], values[ok]


def _same_curves(history: Mapping[str, pd.DataFrame], p: str, q: str) -> bool:
    """Do panels ``p`` and ``q`` hold the same train and validation curves?"""
    for kp, kq in zip(PANELS[p][1:], PANELS[q][1:], strict=True):
        sp, sq = _series(history, kp), _series(history, kq)
        if (sp is None) != (sq is None):
            return False
        if sp is not None and not (
            len(sp[1]) == len(sq[1])
            and np.array_equal(sp[0], sq[0])
            and np.allclose(sp[1], sq[1], rtol=1e-6, atol=1e-9)
        ):
            return False
    return True


@doc_params(**COMMON_PANELS)
def history(
    model,
    *,
    panels: Sequence[str] = ("loss", "reconstruction", "kl"),
    logy: bool = False,
    ncols: int = 3,
    ax=None,
    show: bool | None = None,
    save: bool | str | Path | None = None,
    return_fig: bool = False,
):
    """Training and validation curves: total loss, reconstruction loss and KL, per epoch.

    Parameters
    ----------
    model : sccalmflow.CaLMFlowModel or dict
        A trained model (its ``history``: scvi-tools' dict of one-column DataFrames indexed
        by epoch) or such a dict.
    panels : list of str
        Panels to draw, from ``"loss"`` (``train_loss`` / ``validation_loss``),
        ``"reconstruction"`` (``reconstruction_loss_train`` / ``_validation``) and
        ``"kl"`` (``kl_local_train`` / ``_validation``). Panels without data, or with only
        zeros (the KL of a head without a latent: ``"deterministic"``, ``"flow"``), are
        skipped. When the total loss equals the reconstruction loss (no KL), one panel titled
        "total = reconstruction loss (head without a latent: no KL)" replaces the two
        identical ones.
    logy : bool
        Logarithmic y axes.
    ncols : int
        Panels per row.
    {ax}
    {show_save_return}

    Returns
    -------
    {returns}

    Examples
    --------
    >>> model.train(max_epochs=50)
    >>> sccalmflow.pl.history(model)
    """
    check_figure_output(ax, show, save, return_fig)
    logy, ncols = check_bool("logy", logy), check_int("ncols", ncols, minimum=1)
    hist = model if isinstance(model, Mapping) else getattr(model, "history", None)
    if not hist:
        raise ValueError("No training history: train the model first.")
    panels = [panels] if isinstance(panels, str) else list(panels)
    unknown = [p for p in panels if p not in PANELS]
    if unknown:
        raise ValueError(f"Unknown panel(s) {unknown}; choose from {list(PANELS)}.")

    def has_data(p: str) -> bool:
        found = [_series(hist, k) for k in PANELS[p][1:]]
        found = [s for s in found if s is not None and len(s[1])]
        # the KL of the deterministic head is logged as 0: nothing to show
        return bool(found) and any(np.any(s[1] != 0) for s in found)

    drawn = [p for p in panels if has_data(p)]
    if not drawn:
        raise ValueError(
            f"The history has no non-zero values for panels {panels} (keys: {sorted(hist)})."
        )
    titles = {p: PANELS[p][0] for p in drawn}
    if {"loss", "reconstruction"} <= set(drawn) and _same_curves(hist, "loss", "reconstruction"):
        # no KL (deterministic head): the total loss is the reconstruction loss, one panel
        drawn.remove("reconstruction")
        titles["loss"] = SAME_TITLE
    fig, axes = make_axes(len(drawn), ax, ncols=ncols, panel_size=(3.8, 3.0))
    for a, p in zip(axes, drawn, strict=True):
        _, k_train, k_val = PANELS[p]
        title = titles[p]
        for key, label, color, ls in (
            (k_train, "train", TRAIN_COLOR, "-"),
            (k_val, "validation", VALID_COLOR, "--"),
        ):
            s = _series(hist, key)
            if s is None:
                continue
            a.plot(*s, ls=ls, color=color, lw=1.5, label=label,
                   marker="o" if len(s[0]) <= 30 else None, markersize=3)  # fmt: skip
        a.set_title(title)
        a.set_xlabel("epoch")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_ylabel("KL" if p == "kl" else "loss")
        if logy:
            a.set_yscale("log")
        style_axes(a, grid="both")
        a.legend(fontsize=8, frameon=False)
    return finish(fig, axes, name="history", ax_given=ax is not None, show=show, save=save,
                  return_fig=return_fig)  # fmt: skip
