"""Natural-language prompts built from `.obs` with `{key}` templates."""

from __future__ import annotations

import string
from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

UNCONDITIONAL_TEMPLATE = "Generate a cell:"


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


def is_control(frame: pd.DataFrame, control: Mapping[str, str] | None) -> np.ndarray:
    """Rows whose values equal every control value."""
    if not control:
        return np.zeros(len(frame), dtype=bool)
    mask = np.ones(len(frame), dtype=bool)
    for k, v in control.items():
        mask &= frame[k].astype(str).to_numpy() == str(v)
    return mask


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
