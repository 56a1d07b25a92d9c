"""The board as typed, immutable data: everything a renderer prints, computed once.

`bench.report.board_builder.build_board(tables)` turns the built tables
(bench.report.leaderboard.build_leaderboard: pandas frames) into a `Board` of frozen
dataclasses with no DataFrame in them (this module imports neither pandas nor numpy); the
renderers (bench.report.render: markdown, CSV, JSON, LaTeX) read only this module's types, so what a
board says (ranks, bold, text of each number, notes) is decided here and nowhere else.

API (all fields read-only; tuples, not lists; None where a number is unknown, never NaN):

- `Board`: `tables` (one `BoardTable` per dataset, sorted by name), `summary` (`Summary` or
  None when nothing is ranked or reported), `progress` (the line above a board read while a
  runner holds the suite, or None), `parts` (the optional parts built, `PARTS` by default:
  a renderer that reads no text or summary, CSV, is given a board without them).
- `Summary`: `datasets` (how many tables), `aspects` (the aspect columns, in order),
  `headers` (display headers after "model": "place ↓", "verdict", "<aspect> ↓", "clear
  wins ↑"), `note` (the paragraph above it, markdown: names in backticks), `rows`
  (`SummaryRow`: model, place, verdict, headline, `aspects` ((aspect, mean rank | None)...),
  ranked, wins, `display`: the cells' texts in `headers` order), in the summary's order.
- `BoardTable`: dataset, sort_by, headline, headline_pair, held_out, `primaries` (the
  ranked primaries), `columns` (`Column`), `rows` (`Row`, in the table's order: by tier, then
  the sort value, then name; `ranked` / `references` pick the two kinds), `groups`
  (`ColumnGroup`: the score and diagnostic tables as markdown and HTML show them: title,
  columns with a value, bold or not, the rows shown), `data` (`DataValue`: reference-role
  values, once per dataset), `notes` (`Note`: flags, failures, models without a run;
  `Note.text(text, code)` writes one line, with `text` for free text and `code` for
  names), `failures` (`Failure`), `agreement` (`Agreement`), `unranked` (score columns
  that cannot be ranked), `legend` (the line under the table, markdown), `repeats`.
- `Column`: name, header (with its ideal's mark: "fid ↓", "auth →ref"), role, ideal,
  aspect, target (where the target comes from, or None), primary, rankable, metric (the
  metric that logs it).
- `Row`: model, label (marked ✗ when gated or failed), reference, held_out, tier (0 pass,
  1 gated, 2 failed, 3 pending / not run), state (PENDING, NOT_RUN or None), place (None:
  not placed), verdict (the summary's, or None for reference rows), flags (bench.record.flags
  .Flag), failure (the 'metric: first error line' text), `cells` (one `Cell` per column, in
  `columns` order).
- `Cell`: `value` (`Number(x, lo, hi, bound)` or None: no value), std, n (runs behind the
  mean), uncertainty (95% half-width), target (the value's target here), rank (dominance
  rank, None where not ranked), best (bold: separated winner), failed (a failed cell of
  this model would fill it), text (the value as printed: digits from its uncertainty, ⚠
  when a warning flag concerns it).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.record.flags import Flag

__all__ = ["NOT_RUN", "PARTS", "PENDING", "REFERENCE_LABEL", "UNRUN_STATES", "Agreement", "Board",
           "BoardTable", "Cell", "Column", "ColumnGroup",
           "DataValue", "Failure", "Note", "Number", "Row", "Summary", "SummaryRow"]

REFERENCE_LABEL = "reference (not ranked)"
# a declared model with no recorded run: its cells are still to come while a suite run is in
# progress, else they never started (the run was interrupted, or stopped before them). Neither
# is a failure: such a model is shown, never ranked, and sorted after every model with a run
PENDING, NOT_RUN = "pending", "not run"
UNRUN_STATES = (PENDING, NOT_RUN)


@dataclass(frozen=True)
class Number:
    """A value: x, its logged 95% interval (mean over repeats) and whether x is a bound
    (-1.0: at most x, +1.0: at least x, None: a number)."""

    x: float
    lo: float | None = None
    hi: float | None = None
    bound: float | None = None


@dataclass(frozen=True)
class Cell:
    value: Number | None
    std: float | None
    n: float | None
    uncertainty: float | None
    target: float | None
    rank: float | None
    best: bool
    failed: bool
    text: str


@dataclass(frozen=True)
class Column:
    name: str
    header: str
    role: str
    ideal: str
    aspect: str | None
    target: str | None
    primary: bool
    rankable: bool
    metric: str


@dataclass(frozen=True)
class Row:
    model: str
    label: str
    reference: bool
    held_out: bool
    tier: int
    state: str | None
    place: float | None
    verdict: str | None
    flags: tuple[Flag, ...]
    failure: str
    cells: tuple[Cell, ...]


@dataclass(frozen=True)
class ColumnGroup:
    """One table as markdown and HTML show it: `columns` (indices into the table's columns,
    only those with a value), `bold` (scores: a separated winner is bold), `ranked` and
    `references` (indices into the table's rows of the models shown)."""

    title: str
    columns: tuple[int, ...]
    bold: bool
    ranked: tuple[int, ...]
    references: tuple[int, ...]


@dataclass(frozen=True)
class DataValue:
    value: str
    mean: float
    std: float | None
    n: float | None
    lo: float | None
    hi: float | None
    min: float
    max: float
    text: str


@dataclass(frozen=True)
class Note:
    """A line under a table: a flag (`kind` "flag"), failed cells of a model ("failure"),
    or the models without a run in one state ("unrun")."""

    kind: str
    mark: str
    models: tuple[str, ...]
    label: str = ""  # the flag's kind; the unrun state
    value: str = ""  # the value a flag concerns
    metrics: tuple[str, ...] = ()  # the failed metrics
    reason: str = ""  # the flag's reason; the first error line; why a model has no run

    def text(self, text: Callable[[str], str] = str, code: Callable[[str], str] = str) -> str:
        """The line, with `text` for free text (reasons, error lines) and `code` for names."""
        if self.kind == "flag":
            return (f"{self.mark} {code(self.models[0])} {text(self.label)}"
                    + (f" ({code(self.value)})" if self.value else "") + f": {text(self.reason)}")
        if self.kind == "failure":
            metrics = ", ".join(code(x) for x in self.metrics)
            return f"{self.mark} {code(self.models[0])} failed ({metrics}): {text(self.reason)}"
        return (f"{self.mark} {self.label} ({self.reason}; not ranked, not failed): "
                + ", ".join(code(m) for m in self.models))


@dataclass(frozen=True)
class Failure:
    model: str
    metric: str
    repeat: object  # as recorded (an int; NaN for a run without one)
    error: str


@dataclass(frozen=True)
class Agreement:
    a: str
    b: str
    rho: float
    p: float
    models: int


@dataclass(frozen=True)
class BoardTable:
    dataset: str
    sort_by: str | None
    headline: str | None
    headline_pair: tuple[str, ...]
    held_out: str | None
    primaries: tuple[str, ...]
    columns: tuple[Column, ...]
    rows: tuple[Row, ...]
    groups: tuple[ColumnGroup, ...]
    data: tuple[DataValue, ...]
    notes: tuple[Note, ...]
    failures: tuple[Failure, ...]
    agreement: tuple[Agreement, ...]
    unranked: tuple[str, ...]
    legend: str
    repeats: int

    @property
    def ranked(self) -> tuple[Row, ...]:
        """The competing rows, in table order."""
        return tuple(r for r in self.rows if not r.reference)

    @property
    def references(self) -> tuple[Row, ...]:
        return tuple(r for r in self.rows if r.reference)

    @property
    def scores(self) -> tuple[int, ...]:
        """Indices of the score columns."""
        return tuple(j for j, c in enumerate(self.columns) if c.role == "score")


@dataclass(frozen=True)
class SummaryRow:
    model: str
    place: float | None
    verdict: str
    headline: str
    aspects: tuple[tuple[str, float | None], ...]
    ranked: int
    wins: int
    display: tuple[str, ...]


@dataclass(frozen=True)
class Summary:
    datasets: int
    aspects: tuple[str, ...]
    headers: tuple[str, ...]
    note: str
    rows: tuple[SummaryRow, ...]


# what build_board may leave out when a renderer does not read it: "texts" (Cell.text and
# DataValue.text), "summary" (Board.summary, Row.place, Row.verdict)
PARTS = ("summary", "texts")


@dataclass(frozen=True)
class Board:
    tables: tuple[BoardTable, ...]
    summary: Summary | None
    progress: str | None
    parts: tuple[str, ...] = PARTS  # the optional parts built, sorted (PARTS: all)
