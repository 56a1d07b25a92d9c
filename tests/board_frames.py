"""A board's input (the cell-runs frame build_leaderboard reads) as plain JSON and back.

The golden boards (tests/data/boards/) keep their inputs in this form rather than as pickles:
readable, diffable, and independent of the pandas version. Every cell is written with its
type (a declaration, a flag, NaN, a timestamp), so decoding gives back an equal frame with
the same dtypes, which is what makes "the same board from the same input" checkable.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from bench.record.flags import Flag
from bench.record.values import Value

BOARDS = Path(__file__).resolve().parent / "data" / "boards"


def _enc(x: Any) -> Any:
    if isinstance(x, np.generic):
        x = x.item()
    if x is None or isinstance(x, bool | str | int):
        return x
    if isinstance(x, float):
        return {"float": repr(x)} if not math.isfinite(x) else x
    if isinstance(x, Value):
        return {"Value": asdict(x)}
    if isinstance(x, Flag):
        return {"Flag": asdict(x)}
    if isinstance(x, pd.Timestamp):
        return {"Timestamp": x.isoformat()}
    if isinstance(x, dict):
        return {"dict": {str(k): _enc(v) for k, v in x.items()}}
    if isinstance(x, list | tuple):
        return {"list": [_enc(v) for v in x]}
    raise TypeError(f"cannot encode {type(x).__name__}: {x!r}")


def _dec(x: Any) -> Any:
    if not isinstance(x, dict):
        return x
    ((kind, v),) = x.items()
    if kind == "float":
        return float(v)
    if kind == "Value":
        return Value(**v)
    if kind == "Flag":
        return Flag(**v)
    if kind == "Timestamp":
        return pd.Timestamp(v)
    if kind == "dict":
        return {k: _dec(e) for k, e in v.items()}
    if kind == "list":
        return [_dec(e) for e in v]
    raise ValueError(f"unknown cell kind {kind!r}")


def encode_frame(df: pd.DataFrame) -> dict:
    return {"index": [_enc(i) for i in df.index],
            "columns": [{"name": str(c), "dtype": str(df[c].dtype),
                         "data": [_enc(x) for x in df[c]]} for c in df.columns]}


def decode_frame(d: dict) -> pd.DataFrame:
    index = [_dec(i) for i in d["index"]]
    cols = {}
    for c in d["columns"]:
        data = [_dec(x) for x in c["data"]]
        cols[c["name"]] = pd.Series(data, index=index, dtype=c["dtype"] if c["dtype"] != "object"
                                    else object)
    return pd.DataFrame(cols, index=index, columns=[c["name"] for c in d["columns"]])


def write_input(name: str, runs: pd.DataFrame, declared=None, in_progress: str | None = None) -> Path:
    path = BOARDS / f"{name}.input.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({
        "runs": encode_frame(runs),
        "declared": None if declared is None else sorted([list(p) for p in declared]),
        "in_progress": in_progress}, indent=0, sort_keys=True) + "\n")
    return path


def read_input(name: str) -> tuple[pd.DataFrame, list[tuple[str, str]] | None, str | None]:
    d = json.loads((BOARDS / f"{name}.input.json").read_text())
    declared = None if d["declared"] is None else [tuple(p) for p in d["declared"]]
    return decode_frame(d["runs"]), declared, d["in_progress"]
