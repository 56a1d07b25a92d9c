"""A board as long CSV: one row per (dataset, model, value) with its declaration, numbers and
rank (`rank`/`best` blank where not ranked), then the data's reference values as model
`(data)`. Written as pandas' DataFrame.to_csv wrote it before: floats in their shortest
exact form, missing numbers blank."""

from __future__ import annotations

import csv
import io
import math

from bench.report.board import Board

HEADER = ["dataset", "model", "reference", "value", "role", "ideal", "aspect", "target", "primary",
          "mean", "std", "n", "ci_low", "ci_high", "uncertainty95", "target_value", "rank", "best",
          "state"]


def _field(x: object) -> object:
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return ""
    return repr(x) if isinstance(x, float) else x


def render_csv(board: Board) -> str:
    # a cell row's fields go to csv.writer as they are: it writes None as "" and a float as
    # its repr (str), which is what _field makes of them, and a board's cells hold None, never
    # NaN (bench.report.board); the few data rows still go through _field
    rows: list[list[object]] = []
    for t in board.tables:
        for r in t.rows:
            state = r.state or ""
            for col, c in zip(t.columns, r.cells, strict=True):
                v = c.value
                rows.append([t.dataset, r.model, r.reference, col.name, col.role, col.ideal, col.aspect,
                             col.target, col.primary, v.x if v else None, c.std,
                             0 if c.n is None else int(c.n), v.lo if v else None, v.hi if v else None,
                             c.uncertainty, c.target, c.rank, "" if c.rank is None else c.best, state])
        for d in t.data:
            rows.append([_field(x) for x in (
                t.dataset, "(data)", True, d.value, "reference", "", None, None, False, d.mean,
                d.std, 0 if d.n is None else int(d.n), d.lo, d.hi, None, None, None, "", "")])
    out = io.StringIO()
    if not rows:  # pandas' empty frame
        return "\n"
    w = csv.writer(out, lineterminator="\n")
    w.writerow(HEADER)
    w.writerows(rows)
    return out.getvalue()
