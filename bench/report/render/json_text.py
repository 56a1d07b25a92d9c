"""A board as one JSON object on one line (the C encoder: a pretty-printed 10,000-model board
takes seconds to write; `python -m json.tool` shows it indented): the summary, the progress
line, and per dataset its values' declarations, failures, agreement, data values and rows,
each cell with its text and numbers rounded to 6 decimals (null: unknown)."""

from __future__ import annotations

import json
import math

from bench.report.board import Board, BoardTable, Cell, Column


def round6(x: float | None) -> float | None:
    """x to 6 decimals as numpy.round does it (round half to even of x * 1e6), never -0.0."""
    if x is None or math.isnan(x):
        return None
    if math.isinf(x):
        return x
    y = x * 1e6
    return (round(y) / 1e6 if math.isfinite(y) else x) + 0.0


def _meta(c: Column) -> dict:
    return {"role": c.role, "ideal": c.ideal, "aspect": c.aspect, "target": c.target,
            "primary": c.primary}


def _cell(c: Cell) -> dict:
    v = c.value
    return {"text": c.text, "bound": round6(v.bound) if v else None, "mean": round6(v.x) if v else None,
            "std": round6(c.std), "n": round6(c.n), "ci_low": round6(v.lo) if v else None,
            "ci_high": round6(v.hi) if v else None, "uncertainty95": round6(c.uncertainty),
            "rank": round6(c.rank)}


def _table(t: BoardTable) -> dict:
    rows = []
    for r in t.rows:
        row: dict = {"model": r.model, "reference": r.reference, "tier": r.tier, "state": r.state,
                     "flags": [f.to_json() for f in r.flags]}
        for col, c in zip(t.columns, r.cells, strict=True):
            row[col.name] = _cell(c)
        rows.append(row)
    return {"dataset": t.dataset, "sort_by": t.sort_by, "primaries": list(t.primaries),
            "held_out": t.held_out, "headline": t.headline,
            "values": {c.name: _meta(c) for c in t.columns},
            "failures": [{"model": f.model, "metric": f.metric, "repeat": f.repeat, "error": f.error}
                         for f in t.failures],
            "agreement": [{"a": a.a, "b": a.b, "rho": a.rho, "p": a.p, "models": a.models}
                          for a in t.agreement],
            "data": [{"value": d.value, "mean": round6(d.mean), "ci_low": round6(d.lo),
                      "ci_high": round6(d.hi)} for d in t.data],
            "rows": rows}


def render_json(board: Board) -> str:
    s = board.summary
    summary = [] if s is None else [
        {"model": r.model, "place": round6(r.place), "verdict": r.verdict, "headline": r.headline,
         **{a: round6(x) for a, x in r.aspects}, "ranked": r.ranked, "wins": r.wins} for r in s.rows]
    return json.dumps({"summary": summary, "in_progress": board.progress,
                       "tables": [_table(t) for t in board.tables]}) + "\n"
