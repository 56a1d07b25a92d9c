"""One tie order everywhere (bench.report.leaderboard.tie_key): models that tie are listed by
the sort value, better first, then by name, in every table, every format and the summary."""

from __future__ import annotations

import csv
import io
import json

import pandas as pd

from bench.record.values import score
from bench.report.html import render_html
from bench.report.leaderboard import build_leaderboard, render, summarize

ACC = {"acc": score("higher", "utility")}


def _board():
    # all four tie within their uncertainty; "zeta" has the best value, "m2" and "m1" the
    # same value (m2's run first), "alpha" the worst: by value, then by name
    rows = []
    for i, (m, x) in enumerate((("m2", 0.80), ("alpha", 0.79), ("m1", 0.80), ("zeta", 0.81))):
        rows.append({"suite": "s", "cell_key": "k", "reference": False, "held_out": False,
                     "start_time": i, "dataset": "d", "model": m, "metric": "acc", "repeat": 0,
                     "values": ACC, "primary": "acc", "m:acc": x, "m:acc.lo": x - 0.1,
                     "m:acc.hi": x + 0.1})
    return build_leaderboard(pd.DataFrame(rows))


def _in_text_order(text: str, names: list[str]) -> list[str]:
    return sorted(names, key=text.index)


def test_every_format_lists_tied_models_in_one_order():
    tables = _board()
    (t,) = tables
    expected = ["zeta", "m1", "m2", "alpha"]
    summary = summarize(tables)
    assert set(summary["place"]) == {1.0}  # a four-way tie
    assert list(t.ranked) == expected and list(summary.index) == expected
    js = json.loads(render(tables, "json"))
    assert [r["model"] for r in js["summary"]] == expected
    assert [r["model"] for r in js["tables"][0]["rows"]] == expected
    models = [r["model"] for r in csv.DictReader(io.StringIO(render(tables, "csv")))]
    assert list(dict.fromkeys(models)) == expected
    md = render(tables, "markdown")
    summary_md, _, table_md = md.partition("### d")
    assert _in_text_order(summary_md, expected) == expected
    assert _in_text_order(table_md, expected) == expected
    assert _in_text_order(render(tables, "latex"), expected) == expected
    page = render_html(tables)
    summary_html, _, table_html = page.partition('id="summary-table"')[2].partition("</table>")
    assert _in_text_order(summary_html, expected) == expected
    assert _in_text_order(table_html, expected) == expected
