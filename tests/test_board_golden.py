"""The text boards are byte-identical to the golden files (tests/data/boards/, written by
capture.py there): the guard-rail suite's and the quickstart's stores and a few synthetic
frames (pending and not-run models, failures, hostile names, ties, bounds, every kind of
target, repeats, wide tables), in markdown, CSV, JSON and LaTeX. A change of the board's text
is then a change of these files, made on purpose and reviewed as a diff."""

from __future__ import annotations

import dataclasses
import math

import pytest
from board_frames import BOARDS, read_input

from bench.record.flags import Flag
from bench.report.board_builder import build_board
from bench.report.leaderboard import build_leaderboard, render

NAMES = sorted(p.name.removesuffix(".input.json") for p in BOARDS.glob("*.input.json"))
EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json", "latex": "tex"}


def test_the_golden_boards_are_there():
    assert {"guardrails", "quickstart", "states", "states_not_run", "ties", "mixed"} <= set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_every_text_format_is_byte_identical_to_its_golden_file(name):
    runs, declared, in_progress = read_input(name)
    tables = build_leaderboard(runs, declared=declared, in_progress=in_progress)
    for fmt, ext in EXTENSIONS.items():
        expected = (BOARDS / f"{name}.{ext}").read_text()
        assert render(tables, fmt) == expected, f"{name}.{ext}"


def _leaves(x):
    """Every value inside a board, walking its dataclasses and tuples."""
    if dataclasses.is_dataclass(x) and not isinstance(x, Flag):
        for f in dataclasses.fields(x):
            yield from _leaves(getattr(x, f.name))
    elif isinstance(x, tuple):
        for v in x:
            yield from _leaves(v)
    else:
        yield x


def test_the_board_is_typed_plain_data_and_immutable():
    runs, declared, in_progress = read_input("mixed")
    board = build_board(build_leaderboard(runs, declared=declared, in_progress=in_progress))
    kinds = {type(v) for v in _leaves(board)}
    assert kinds <= {str, int, float, bool, type(None), Flag}, kinds  # no frame, no numpy scalar
    assert not any(isinstance(v, float) and math.isnan(v) for v in _leaves(board))  # None, not NaN
    with pytest.raises(dataclasses.FrozenInstanceError):
        board.tables[0].rows[0].model = "x"  # type: ignore[misc]
    d = board.tables[0]
    for r in d.rows:
        for c in r.cells:
            assert not c.best or (c.rank == 1 and not r.reference and r.tier == 0)
    assert d.held_out == "held" and [r.model for r in d.references] == ["real", "held"]
    assert any(n.kind == "flag" and n.mark == "✗" for n in d.notes)
