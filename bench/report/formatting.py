"""A leaderboard's numbers and marks as text, the same in every format: each value with the
digits its uncertainty supports (`fmt_value`, `cell_texts`), the legend, the notes under a
table (flags, failures, models without a run), the column groups of wide tables and the
summary's display strings. bench.report.board reads these once per board; the renderers
read the board."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd

from bench.core.safe_names import md_code, md_text
from bench.report.board import Note
from bench.report.table import NOT_RUN, PENDING, UNRUN_STATES, Table, first_line


def decimals_for(u: float) -> int | None:
    """Decimals an uncertainty supports: one significant digit of it (two when it starts
    with 1, so 0.012 keeps 0.012 rather than 0.01). None: no uncertainty known."""
    if u is None or pd.isna(u) or not np.isfinite(u) or u <= 0:
        return None
    e = math.floor(math.log10(u))
    lead = u / 10 ** e
    return int(min(8, max(0, -e + (1 if lead < 2 else 0))))


SIGNIFICANT = 4  # never more significant digits than this, whatever the uncertainty


FLOAT_NOISE = 1e-9  # a value or a half-width below this is float noise around an exact 0


def _scale_cap(m: float) -> int | None:
    """Decimals that give SIGNIFICANT significant digits of m (None for 0)."""
    if m == 0 or not np.isfinite(m):
        return None
    return max(0, SIGNIFICANT - 1 - math.floor(math.log10(abs(m))))


def _fixed(x: float, d: int) -> str:
    return f"{0.0 if round(x, d) == 0 else x:.{d}f}"  # no "-0.00"


def fmt_value(m: float, s: float = np.nan, n: float = 1, lo: float = np.nan, hi: float = np.nan,
              u: float = np.nan, bound: float = np.nan) -> str:
    """One value as text, the same in every format:

    - repeats: `1.13 ± 0.11`, the spread (std over repeats) with two significant digits and
      the mean to match, so a nonzero spread never reads `± 0`;
    - one run with a logged 95% interval: `0.91 [0.89, 0.93]`, the digits its half-width `u`
      supports, never more than four significant digits of the value;
    - a bound: `≤ 179` (bench.record.values.bounded);
    - nothing known: four significant digits (`0.9103`); float noise of an exact 0 reads 0,
      with its interval too when that is float noise (`0 [0, 0]`)."""
    if pd.isna(m):
        return ""
    if not pd.isna(bound) and bound != 0:
        return f"{'≤' if bound < 0 else '≥'} {m:.4g}"
    cap = _scale_cap(m)
    if n > 1 and not pd.isna(s):
        if s > 0:
            ds = max(0, 1 - math.floor(math.log10(s)))  # two significant digits of the spread
            return f"{_fixed(m, ds)} ± {s:.{ds}f}"
        d = decimals_for(u)
        d = min(d, cap) if d is not None and cap is not None else (d if d is not None else 2)
        return f"{_fixed(m, d)} ± 0"
    d = decimals_for(u)
    if d is None:
        return f"{0.0 if abs(m) < FLOAT_NOISE else m:.4g}"
    if abs(m) < FLOAT_NOISE and u < FLOAT_NOISE:  # an exact 0 (copies' intra-FID): no 0.00000000
        return "0 [0, 0]" if not pd.isna(lo) and not pd.isna(hi) else "0"
    if cap is not None:
        d = min(d, cap)
    if not pd.isna(lo) and not pd.isna(hi):
        return f"{_fixed(m, d)} [{_fixed(lo, d)}, {_fixed(hi, d)}]"
    return _fixed(m, d)


def cell_texts(t: Table, unc: pd.DataFrame | None = None) -> pd.DataFrame:
    """Every cell of t (models x columns) with the digits its own uncertainty supports: a value
    prints the same whoever else is on the board, in every format (markdown, LaTeX, HTML,
    bench run and bench leaderboard alike). A cell whose value carries a non-gate flag (a
    possible leak) is marked ⚠; the reason is under the table. Read from numpy arrays once:
    a board of 10,000 models does no per-cell pandas lookup. Computed once per table (with
    the table's own uncertainty) and shared by every format that renders it."""
    if unc is None or unc is t._memo.get("uncertainty"):
        if "texts" not in t._memo:
            t._memo["texts"] = _cell_texts(t, t.uncertainty())
        return t._memo["texts"].copy()
    return _cell_texts(t, unc)


def _cell_texts(t: Table, unc: pd.DataFrame) -> pd.DataFrame:
    cols = list(t.mean.columns)
    # as lists of Python floats: fmt_value's round() and pd.isna of a numpy scalar cost
    # several times theirs of a float (about half of the texts' CPU)
    arr = {k: (f.reindex(index=t.mean.index, columns=cols).to_numpy(dtype=float)
               if (not f.empty or len(f.index)) else np.full(t.mean.shape, np.nan)).tolist()
           for k, f in (("m", t.mean), ("s", t.std), ("n", t.n), ("lo", t.lo), ("hi", t.hi),
                        ("u", unc), ("b", t.bound))}
    warned = {(m, f.value) for m, fl in t.flags.items() for f in fl if not f.gate and f.value}
    rows = []
    for i, m in enumerate(t.mean.index):
        row = []
        for j, c in enumerate(cols):
            text = fmt_value(arr["m"][i][j], arr["s"][i][j], arr["n"][i][j], arr["lo"][i][j],
                             arr["hi"][i][j], arr["u"][i][j], arr["b"][i][j])
            row.append(text + " ⚠" if text and (m, c) in warned else text)
        rows.append(row)
    return pd.DataFrame(rows, index=t.mean.index, columns=cols, dtype=object)


def _data_text(r: pd.Series) -> str:
    u = (r["hi"] - r["lo"]) / 2 if not pd.isna(r["lo"]) else np.nan
    text = fmt_value(r["mean"], r["std"], r["n"], r["lo"], r["hi"], u)
    if r["max"] - r["min"] > 1e-9:
        text += f" (varies by model: {r['min']:.4g} to {r['max']:.4g})"
    return text


def arrow(higher: bool) -> str:
    return "↑" if higher else "↓"


def _num(x: float) -> float | None:
    return None if pd.isna(x) else float(np.round(x, 6)) + 0.0  # + 0.0: no -0.0


def md_escape(text: object) -> str:
    """A model, dataset or value name as markdown text (a table cell, a heading): no tag, link,
    emphasis or extra cell from it (bench.core.safe_names.md_text)."""
    return md_text(text)


def legend(t: Table) -> str:
    """What the marks in a table's header mean, and where targets come from."""
    parts = ["↑ higher is better, ↓ lower is better, →x: closest to x is best"]
    if any(v == "ref" for v in t.target_source.values()):
        parts.append(f"→ref: the held-out real row ({md_code(t.held_out)}) in this suite")
    if t.repeats > 1:
        parts.append(f"mean ± std over {t.repeats} repeats (trainable generators retrained per repeat)")
    else:
        parts.append("[95% interval] where the metric logs one")
    parts.append("bold: best, separated from the runner-up beyond the combined 95% uncertainty")
    return "; ".join(parts) + "."


def _rank(x: float, decimals: int = 2) -> str:
    return "" if pd.isna(x) else f"{x:.{decimals}f}"


def _ranks(xs: pd.Series) -> list[str]:
    """A summary column of places or mean ranks: whole numbers as such (one dataset's place is
    1, not 1.00, which would claim digits nobody measured), two decimals once any mean is not."""
    whole = all(pd.isna(x) or float(x).is_integer() for x in xs)
    return [_rank(x, 0 if whole else 2) for x in xs]


def summary_frame(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary as display strings (shared by markdown and HTML)."""
    body = pd.DataFrame(index=summary.index)
    body["place ↓"] = _ranks(summary["place"])
    body["verdict"] = [v if v == "pass" or v in UNRUN_STATES else f"✗ {v}" for v in summary["verdict"]]
    aspects = [a for a in summary.columns if a not in ("place", "verdict", "headline", "ranked", "wins")]
    for a in aspects:
        body[f"{a} ↓"] = _ranks(summary[a])
    body["clear wins ↑"] = [f"{int(w)}/{int(r)}" for w, r in zip(summary["wins"], summary["ranked"], strict=True)]
    return body


def summary_note(tables: list[Table]) -> str:
    heads = list(dict.fromkeys(" + ".join(md_code(h) for h in t.headline_pair)
                               for t in tables if t.headline_pair))
    head = ", ".join(heads) or "none (no ranked value)"
    return ("Order: models that pass every gate first, then those flagged by a gate (copying the "
            "training data, ignoring their labels, broken output: the verdict says which and why), "
            "then failed ones, then those without a run (pending while a suite run is in "
            "progress, else not run: never ranked). Within each, `place` is ordered by the headline pair "
            f"({head}; mean over datasets): 1 + the number of models in a better group or "
            "better beyond the combined 95% uncertainty on one of the pair and worse on neither "
            "(a model better on one and worse on the other ties with it). The aspect columns are mean dominance "
            "ranks per aspect: a view of strengths, not the order. Wins: primaries where the "
            "model alone is best. Reference rows are not ranked.")


def progress_note(tables: list[Table]) -> str | None:
    """The line above a board read while a runner holds the suite (None when none does)."""
    note = next((t.in_progress for t in tables if t.in_progress), None)
    if note is None:
        return None
    pending = sorted({m for t in tables for m, s in t.unrun.items() if s == PENDING})
    return (f"{note}: this board may still change; {len(pending)} model(s) without a run yet "
            "are pending (shown, not ranked, not failed).")


def model_label(t: Table, m: str) -> str:
    """A model's name, marked ✗ when a gate flags it or it failed (reasons under the table)."""
    return f"{m} ✗" if t.tier(m) in (1, 2) else m


def _failed_columns(t: Table) -> dict[str, set[str]]:
    """model -> the columns its failed cells would have filled (as other models' runs of the
    same metric show; a failed metric nobody finished has no column and is listed below)."""
    out: dict[str, set[str]] = {}
    if t.failures.empty:
        return out
    by_metric: dict[str, set[str]] = {}
    for c, metric in t.metric_of.items():
        by_metric.setdefault(metric, set()).add(c)
    for m, metric in zip(t.failures["model"], t.failures["metric"], strict=True):
        cols = set(t.mean.columns) if metric == "(all)" else by_metric.get(metric, set())
        out.setdefault(m, set()).update(cols)
    return out


def note_items(t: Table) -> tuple[Note, ...]:
    """The reasons behind the marks, as data (bench.report.board.Note): each model's flags
    (✗: a gate, ⚠: a warning on a value), failed cells with their first error line (one line
    per model and error: a broken model fails every cell alike), and the models without a run."""
    out = []
    for m in t.mean.index:
        for f in t.flags.get(m, []):
            out.append(Note("flag", "✗" if f.gate else "⚠", (str(m),), f.kind, f.value, reason=f.reason))
    if not t.failures.empty:
        f = t.failures.assign(line=[first_line(e) for e in t.failures["error"]])
        for (m, line), g in f.groupby(["model", "line"], sort=False):
            out.append(Note("failure", "✗", (str(m),), metrics=tuple(dict.fromkeys(map(str, g["metric"]))),
                            reason=str(line)))
    for state, why in ((PENDING, "no run recorded yet; the suite run in progress has not "
                        "reached it"), (NOT_RUN, "no run recorded: the suite run ended or was "
                        "interrupted before its cells started")):
        models = tuple(m for m, s in t.unrun.items() if s == state)
        if models:
            out.append(Note("unrun", "○", models, state, reason=why))
    return tuple(out)


def notes(t: Table, text: Any = str, code: Any = md_code) -> list[str]:
    """`note_items` as lines. `text`: how free text (reasons, error lines, which quote names)
    is written (markdown: `md_text`); `code`: how a name is set apart (markdown: a code span;
    HTML, which escapes the line itself: `str`)."""
    return [n.text(text, code) for n in note_items(t)]


WIDE = 8  # score columns beyond which a table is split by aspect


def _score_groups(t: Table) -> list[tuple[str, list[str], bool]]:
    """The score columns as one table, or one per aspect when there are more than WIDE."""
    if len(t.scores) <= WIDE:
        return [("", t.scores, True)]
    groups: dict[str, list[str]] = {}
    for c in t.scores:
        groups.setdefault(t.values[c].aspect or "other", []).append(c)
    return [(f"Scores: {a}", cols, True) for a, cols in groups.items()]


def _diagnostic_groups(t: Table) -> list[tuple[str, list[str], bool]]:
    """The diagnostics as one table, or, when wider than WIDE, one per metric (the paper's
    layout: augmentation by fraction, balancing by arm, the curve by size)."""
    title = "Diagnostics (shown, not ranked)"
    if len(t.diagnostics) <= WIDE:
        return [(title, t.diagnostics, False)]
    groups: dict[str, list[str]] = {}
    for c in t.diagnostics:
        groups.setdefault(t.metric_of.get(c, "other"), []).append(c)
    return [(f"{title}: {m}", cols, False) for m, cols in groups.items()]
