"""The text renderers of a board: each reads a typed bench.report.board.Board and returns a
string; none reads a Table or pandas (an import-linter contract in pyproject.toml says so).
HTML is bench.report.html."""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps

from bench.report.board import PARTS, Board
from bench.report.render.csv_text import render_csv
from bench.report.render.gc_pause import paused_gc
from bench.report.render.json_text import render_json
from bench.report.render.latex import render_latex
from bench.report.render.markdown import render_markdown


def _paused(render: Callable[[Board], str]) -> Callable[[Board], str]:
    @wraps(render)
    def run(board: Board) -> str:
        with paused_gc():
            return render(board)
    return run


# the optional board parts (bench.report.board.PARTS) each format reads; build_board leaves
# out the others
NEEDS: dict[str, tuple[str, ...]] = {"markdown": PARTS, "csv": (), "json": PARTS, "latex": PARTS}

RENDERERS: dict[str, Callable[[Board], str]] = {
    name: _paused(f) for name, f in (("markdown", render_markdown), ("csv", render_csv),
                                     ("json", render_json), ("latex", render_latex))}
