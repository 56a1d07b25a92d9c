"""A board as markdown: the summary, then per dataset the score tables (bold: a separated
winner), the diagnostics (never bold), the data's reference values, the notes, the ranking
agreement and the legend. Names are escaped (bench.core.safe_names.md_text): no tag, link,
emphasis or extra cell from a model's name."""

from __future__ import annotations

from tabulate import tabulate

from bench.core.safe_names import md_code, md_text
from bench.report.board import REFERENCE_LABEL, Board, BoardTable, Row


def _pipe(index: list[str], headers: list[str], rows: list[list[str]]) -> str:
    """A pipe table with a `model` column first, as pandas' DataFrame.to_markdown writes it."""
    return tabulate([[i, *r] for i, r in zip(index, rows, strict=True)], headers=["model", *headers],
                    tablefmt="pipe", disable_numparse=True)


def render_markdown(board: Board) -> str:
    if not board.tables:
        return "(no finished runs)\n"
    out = []
    if board.progress is not None:
        out.append(f"**In progress.** {md_text(board.progress)}\n")
    s = board.summary
    if s is not None:
        verdict = s.headers.index("verdict")
        rows = [[md_text(v) if k == verdict else v for k, v in enumerate(r.display)] for r in s.rows]
        out.append(f"### Summary over {s.datasets} dataset(s)\n\n{s.note}\n\n"
                   + _pipe([md_text(r.model) for r in s.rows], list(s.headers), rows) + "\n")
    out.extend(_table(t) for t in board.tables)
    return "\n".join(out)


def _cells(r: Row, cols: tuple[int, ...], bold: bool) -> list[str]:
    if r.state is not None:
        return [r.state] * len(cols)
    out = []
    for j in cols:
        c = r.cells[j]
        v = c.text or ("failed" if c.failed else "")
        out.append(f"**{v}**" if bold and not r.reference and v and v != "failed" and c.best else v)
    return out


def _table(t: BoardTable) -> str:
    parts = [f"### {md_text(t.dataset)} (passing models first, then by {md_text(t.sort_by)})\n"]
    for g in t.groups:
        labels = [md_text(t.rows[i].label) for i in g.ranked]
        rows = [_cells(t.rows[i], g.columns, g.bold) for i in g.ranked]
        if g.references:
            labels.append(f"*{REFERENCE_LABEL}*")
            rows.append([""] * len(g.columns))
            for i in g.references:
                r = t.rows[i]
                tag = "held-out reference" if r.held_out else "reference"
                labels.append(f"{md_text(r.label)} ({tag})")
                rows.append(_cells(r, g.columns, g.bold))
        body = _pipe(labels, [md_text(t.columns[j].header) for j in g.columns], rows)
        parts.append((f"**{g.title}**\n\n" if g.title else "") + body + "\n")
    if t.data:
        parts.append("**Data reference (a property of the data, the same for every model)**: "
                     + "; ".join(f"{md_code(d.value)} {d.text}" for d in t.data) + "\n")
    if t.notes:
        parts.append("**Flags and failures** (✗ keeps a model below every model that passes; "
                     "⚠ marks a value to read with care)\n\n"
                     + "\n".join(f"- {n.text(md_text, md_code)}" for n in t.notes) + "\n")
    if t.agreement:
        items = [f"{md_code(a.a)} vs {md_code(a.b)} ρ = {a.rho:+.2f} (p = {a.p:.2g}, {a.models} models)"
                 for a in t.agreement]
        parts.append("**Ranking agreement** (Spearman's ρ of the two rankings, each oriented best-first; "
                     "1 = same order): " + "; ".join(items) + "\n")
    if t.unranked:
        parts.append("Not ranked (target needs a held-out real row, e.g. "
                     "`{source: reference, kind: real, split: val}`): "
                     + ", ".join(md_code(c) for c in t.unranked) + "\n")
    parts.append(t.legend + "\n")
    return "\n".join(parts)
