"""The text boards are byte-identical to the golden files (tests/data/boards/, written by
capture.py there): the guard-rail suite's and the quickstart's stores and a few synthetic
frames (pending and not-run models, failures, hostile names, ties, bounds, every kind of
target, repeats, wide tables), in markdown, CSV, JSON and LaTeX. A change of the board's text
is then a change of these files, made on purpose and reviewed as a diff."""

from __future__ import annotations

import pytest
from board_frames import BOARDS, read_input

from bench.report.leaderboard import build_leaderboard, render

NAMES = sorted(p.name.removesuffix(".input.json") for p in BOARDS.glob("*.input.json"))
EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json", "latex": "tex"}


def test_the_golden_boards_are_there():
    assert {"quickstart", "states", "states_not_run", "ties", "mixed"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_text_format_is_byte_identical_to_its_golden_file(name):
    runs, declared, in_progress = read_input(name)
    tables = build_leaderboard(runs, declared=declared, in_progress=in_progress)
    for fmt, ext in EXTENSIONS.items():
        expected = (BOARDS / f"{name}.{ext}").read_text()
        assert render(tables, fmt) == expected, f"{name}.{ext}"
