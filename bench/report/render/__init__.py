"""The text renderers of a board: each reads a typed bench.report.board.Board and returns a
string; none reads a Table or pandas (an import-linter contract in pyproject.toml says so).
HTML is bench.report.html."""

from __future__ import annotations

from collections.abc import Callable

from bench.report.board import Board
from bench.report.render.csv_text import render_csv
from bench.report.render.json_text import render_json
from bench.report.render.latex import render_latex
from bench.report.render.markdown import render_markdown

RENDERERS: dict[str, Callable[[Board], str]] = {
    "markdown": render_markdown, "csv": render_csv, "json": render_json, "latex": render_latex}
