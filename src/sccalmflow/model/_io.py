"""JSON encoding of scvi-tools registries (numpy arrays included), so nothing is pickled."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def to_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, np.ndarray):
        kind = "str" if obj.dtype.kind in "OUS" else str(obj.dtype)
        data = obj.astype(str).tolist() if kind == "str" else obj.tolist()
        return {"__ndarray__": data, "dtype": kind}
    if isinstance(obj, pd.Index):
        return to_jsonable(np.asarray(obj))
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def from_jsonable(obj: Any) -> Any:
    if isinstance(obj, dict):
        if "__ndarray__" in obj:
            if obj["dtype"] == "str":
                return np.asarray(obj["__ndarray__"], dtype=object)
            return np.asarray(obj["__ndarray__"], dtype=obj["dtype"])
        return {k: from_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list):
        return [from_jsonable(v) for v in obj]
    return obj


def write_json(path: Path, obj: Any) -> None:
    path.write_text(json.dumps(to_jsonable(obj), indent=1))


def read_json(path: Path) -> Any:
    return from_jsonable(json.loads(path.read_text()))
