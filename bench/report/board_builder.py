"""Tables (bench.report.table.Table, pandas frames) -> the typed board (bench.report.board):
every number, rank, bold mark, text and note a renderer prints, computed here once."""

from __future__ import annotations

import math
from collections.abc import Collection

import numpy as np

from bench.report.board import (
    PARTS,
    Agreement,
    Board,
    BoardTable,
    Cell,
    Column,
    ColumnGroup,
    DataValue,
    Failure,
    Number,
    Row,
    Summary,
    SummaryRow,
)
from bench.report.table import Table


def _opt(x: object) -> float | None:
    """A frame's number as a float, None for NaN / missing."""
    if x is None:
        return None
    f = float(x)  # type: ignore[arg-type]
    return None if math.isnan(f) else f


def _floats(a: np.ndarray) -> list[list[float | None]]:
    """A float array's rows as lists of Python floats, None for NaN (one tolist, no per-cell
    numpy scalar)."""
    return [[None if x != x else x for x in row] for row in a.tolist()]


def _table(t: Table, verdicts: dict[str, str], parts: frozenset[str]) -> BoardTable:
    from bench.report.formatting import (
        _data_text,
        _diagnostic_groups,
        _failed_columns,
        _score_groups,
        cell_texts,
        legend,
        model_label,
        note_items,
    )
    from bench.report.ranking import best_mask, column_ranks, places, ranking_agreement

    names = [str(c) for c in t.mean.columns]
    index = [str(m) for m in t.mean.index]
    shape = (len(index), len(names))

    def arr(f) -> np.ndarray:
        if f.empty and not len(f.index):
            return np.full(shape, np.nan)
        return f.reindex(index=t.mean.index, columns=t.mean.columns).to_numpy(dtype=float)

    unc = t.uncertainty()
    has_any = ~np.isnan(arr(t.mean))
    a = {k: _floats(arr(f)) for k, f in (("mean", t.mean), ("std", t.std), ("n", t.n), ("lo", t.lo),
                                         ("hi", t.hi), ("u", unc), ("bound", t.bound),
                                         ("target", t.targets), ("rank", column_ranks(t)))}
    best = best_mask(t).reindex(index=t.mean.index, columns=t.mean.columns).to_numpy(dtype=bool).tolist()
    texts = (cell_texts(t, unc).to_numpy().tolist() if "texts" in parts
             else [[""] * len(names) for _ in index])
    failed_cols = _failed_columns(t)
    place = places(t).to_dict() if "summary" in parts else {}
    primaries = set(t.rank_columns)
    columns = tuple(Column(c, t.header(c), t.values[c].role, t.values[c].ideal, t.values[c].aspect,
                           t.target_source.get(c), c in primaries, t.rankable(c),
                           t.metric_of.get(c, "")) for c in names)
    rows = []
    for i, m in enumerate(index):
        failed = failed_cols.get(m, set())
        mean, lo, hi, bound = a["mean"][i], a["lo"][i], a["hi"][i], a["bound"][i]
        rank, text, good = a["rank"][i], texts[i], best[i]
        cells = tuple(Cell(None if mean[j] is None else Number(mean[j], lo[j], hi[j], bound[j]),  # type: ignore[arg-type]
                           a["std"][i][j], a["n"][i][j], a["u"][i][j], a["target"][i][j], rank[j],
                           good[j] and rank[j] is not None, c in failed, str(text[j]))
                      for j, c in enumerate(names))
        rows.append(Row(m, model_label(t, m), bool(t.reference.get(m, False)), m == t.held_out,
                        t.tier(m), t.state(m), _opt(place.get(m)),
                        verdicts.get(m), tuple(t.flags.get(m, [])), t.failure_text(m), cells))
    row_of = {m: i for i, m in enumerate(index)}
    col_of = {c: j for j, c in enumerate(names)}
    groups = []
    for title, cols, bold in (*_score_groups(t), *_diagnostic_groups(t)):
        cols = [c for c in cols if has_any[:, col_of[c]].any()]
        if not cols:
            continue
        js = [col_of[c] for c in cols]
        has = has_any[:, js].any(axis=1)

        def shown(ms: list[str], has: np.ndarray = has) -> tuple[int, ...]:
            return tuple(row_of[m] for m in ms if has[row_of[m]] or t.failed(m) or t.state(m))

        groups.append(ColumnGroup(title, tuple(js), bold, shown(t.ranked), shown(t.references)))
    data = tuple(DataValue(str(r["value"]), float(r["mean"]), _opt(r["std"]), _opt(r["n"]), _opt(r["lo"]),
                           _opt(r["hi"]), float(r["min"]), float(r["max"]),
                           _data_text(r) if "texts" in parts else "")
                 for _, r in t.data.iterrows())
    failures = tuple(Failure(str(r["model"]), str(r["metric"]), r["repeat"], str(r["error"]))
                     for r in t.failures.to_dict("records"))
    agreement = tuple(Agreement(str(r["a"]), str(r["b"]), float(r["rho"]), float(r["p"]), int(r["models"]))
                      for r in ranking_agreement(t).to_dict("records"))
    return BoardTable(t.dataset, t.sort_by, t.headline, tuple(t.headline_pair), t.held_out,
                      tuple(t.rank_columns), columns, tuple(rows), tuple(groups), data, note_items(t),
                      failures, agreement, tuple(c for c in t.scores if not t.rankable(c)),
                      legend(t), t.repeats)


def _summary(tables: list[Table]) -> Summary | None:
    from bench.report.formatting import summary_frame, summary_note
    from bench.report.ranking import summarize

    s = summarize(tables)
    if s.empty:
        return None
    aspects = tuple(str(a) for a in s.columns if a not in ("place", "verdict", "headline", "ranked", "wins"))
    display = summary_frame(s)
    col = {c: s[c].tolist() for c in s.columns}  # columns as lists: no per-row pandas lookup
    rows = tuple(SummaryRow(str(m), _opt(col["place"][i]), str(col["verdict"][i]), str(col["headline"][i]),
                            tuple((a, _opt(col[a][i])) for a in aspects), int(col["ranked"][i]),
                            int(col["wins"][i]), tuple(str(v) for v in d))
                 for i, (m, d) in enumerate(zip(s.index, display.values.tolist(), strict=True)))
    return Summary(len(tables), aspects, tuple(str(c) for c in display.columns), summary_note(tables), rows)


def build_board(tables: list[Table], parts: Collection[str] = PARTS) -> Board:
    """The typed board of `tables` (bench.report.leaderboard.build_leaderboard), with the
    optional `parts` (bench.report.board.PARTS) a renderer reads: without "texts" every
    cell's and data value's `text` is "", without "summary" the summary, places and verdicts
    are None (CSV reads neither: they were a third of its CPU). `Board.parts` says which."""
    from bench.report.formatting import progress_note
    from bench.report.render.gc_pause import paused_gc

    built = frozenset(parts)
    if not built <= set(PARTS):
        raise ValueError(f"unknown board parts {sorted(built - set(PARTS))}; use some of {PARTS}")
    with paused_gc():  # a million small objects, no cycle among them (render.gc_pause)
        summary = _summary(tables) if "summary" in built else None
        verdicts = {r.model: r.verdict for r in summary.rows} if summary else {}
        return Board(tuple(_table(t, verdicts, built) for t in tables), summary, progress_note(tables),
                     tuple(sorted(built)))
