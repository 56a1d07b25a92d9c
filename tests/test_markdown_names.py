"""Names are inert in the markdown board (issue 28): a model, dataset, metric or value name
never becomes a tag, a link, emphasis, a heading or an extra table cell, and ordinary names
print exactly as before. The board is parsed as CommonMark with GFM tables (markdown-it-py)."""

import re

import pandas as pd
import pytest

from bench.core.safe_names import md_code, md_text
from bench.record.values import score
from bench.report import compare, formatting
from bench.report.leaderboard import build_leaderboard, render
from bench.report.render import markdown

HOSTILE = ["<script>alert(1)</script>", "<img src=x onerror=alert(1)>",
           "[click](javascript:alert(1))", "![i](http://e.example/x.png)", "a|b||c", "`tick` me",
           "**bold** _em_ ~~del~~", "# heading", "- item", "www.evil.example", "http://evil.example",
           "<http://evil.example>", "&#60;b&#62;", "$x^2$", "back\\slash", "two\nlines"]
ORDINARY = ["cgan_v2.1", "dcgan-mnist", "real (held-out)", "my_model", "R2", "fid@50%"]


def runs(rows):
    base = {"suite": "s", "cell_key": "k", "reference": False, "held_out": False, "repeat": 0,
            "status": "FINISHED", "error": ""}
    return pd.DataFrame([{**base, "start_time": i, **r} for i, r in enumerate(rows)])


def suite(models, dataset, value, metric):
    vals = {value: score("higher", "utility"), "fid": score("lower", "quality")}
    rows = []
    for i, m in enumerate(models):
        rows.append({"model": m, "dataset": dataset, "metric": metric, "values": vals,
                     "primary": value, f"m:{value}": 0.5 + 0.01 * i})
        rows.append({"model": m, "dataset": dataset, "metric": "fid", "values": vals,
                     "primary": "fid", "m:fid": 10.0 + i})
    # a failed cell and a declared model without a run: their names go into the notes
    rows.append({"model": models[0], "dataset": dataset, "metric": "other", "values": vals,
                 "primary": "", "status": "FAILED", "error": f"no such file: {models[1]}"})
    declared = {(dataset, m) for m in [*models, models[2] + " later"]}
    return build_leaderboard(runs(rows), declared=declared)


def parse(md):
    mdit = pytest.importorskip("markdown_it")
    return mdit.MarkdownIt("commonmark").enable(["table", "strikethrough"]).parse(md)


def test_ordinary_names_map_to_themselves():
    for n in ORDINARY:
        assert md_text(n) == n and md_code(n) == f"`{n}`"
    assert md_text("a -> b, x < y & z") == "a -> b, x < y & z"  # never a tag or entity


def test_hostile_names_are_escaped():
    assert md_text("<script>") == "&lt;script>" and md_text("a|b") == r"a\|b"
    assert md_text("[x](javascript:y)") == r"\[x\](javascript:y)"
    assert md_text("_em_") == r"\_em\_" and md_text("x_y") == "x_y"
    assert md_text("# h") == r"\# h" and md_text("-x") == r"\-x"
    assert md_text("http://e.example") == r"http\://e.example"
    assert md_text("www.e.example") == r"www\.e.example"
    assert md_text("a\nb") == r"a\\nb"  # the control character first, then its backslash
    assert md_code("a`b") == "``a`b``" and md_code("`x") == "`` `x ``"


def test_a_board_of_hostile_names_has_no_tag_no_link_and_whole_rows():
    tables = suite(HOSTILE, dataset="<b>ds</b>|x", value="<i>v</i>", metric="[m](javascript:x)")
    md = render(tables)
    outside_code = re.sub(r"(`+)(?!`).*?(?<!`)\1(?!`)", "", md)  # a code span shows its text as is
    for raw in ("<script", "<img", "<b>", "<i>", "<http", "\n# heading"):
        assert raw not in outside_code, raw
    assert not re.search(r"(?<!\\)\]\(", outside_code)  # every `](` of a link is escaped
    tokens = parse(md)
    kinds = {t.type for t in tokens} | {c.type for t in tokens for c in t.children or []}
    assert not kinds & {"html_inline", "html_block", "link_open", "image", "em_open", "s_open"}
    assert "strong_open" in kinds  # the board's own bold: numbers, titles
    for t in tokens:
        for a, b in zip(t.children or [], (t.children or [])[1:], strict=False):
            if a.type == "strong_open":
                assert (re.fullmatch(r"[\d.\[\], ]+", b.content)
                        or b.content.startswith(("Flags and failures", "Diagnostics"))), b.content
    # headings: the board's own (### ...), none from a name
    heads = [tokens[i + 1].content for i, t in enumerate(tokens) if t.type == "heading_open"]
    assert heads and all(h.startswith(("Summary over", md_text("<b>ds</b>|x") + " (")) for h in heads), heads
    assert not any(t.type == "bullet_list_open" and t.level for t in tokens)  # no nested list
    # every table: each row has as many cells as its header; the first column shows the names
    shown: set[str] = set()
    i, cells, widths, first = 0, 0, [], []
    for t in tokens:
        if t.type == "table_open":
            widths, first = [], []
        elif t.type == "tr_open":
            cells = 0
        elif t.type in ("th_open", "td_open"):
            cells += 1
        elif t.type == "inline" and cells == 1:
            first.append(t.content)
        elif t.type == "tr_close":
            widths.append(cells)
        elif t.type == "table_close":
            i += 1
            assert len(set(widths)) == 1, widths
            shown.update(first)
    assert i >= 2
    text = {re.sub(r"\\(.)", r"\1", s).replace("&lt;", "<").replace("&amp;", "&") for s in shown}
    for n in HOSTILE:
        assert n.replace("\n", "\\n") in text or f"{n} ✗".replace("\n", "\\n") in text, n


def test_ordinary_names_print_the_same_bytes_as_before():
    """The board of ordinary names is byte-identical to one rendered without the escapes
    (the old `|`-only table escape, plain backtick code spans)."""
    tables = suite(ORDINARY, dataset="digits_v2", value="gan_train_acc", metric="gan_train")
    now = render(tables)
    with pytest.MonkeyPatch.context() as mp:
        for module in (markdown, formatting):  # the renderer; the legend and summary note
            mp.setattr(module, "md_text", lambda s: str(s).replace("|", "\\|"))
            mp.setattr(module, "md_code", lambda s: f"`{s}`")
        before = render(tables)
    assert now == before
    assert "| cgan_v2.1 " in now and "`cgan_v2.1`" in now


def test_the_comparison_table_escapes_names():
    df = pd.DataFrame([{"status": "regression", "dataset": "d|x", "model": "<script>x</script>",
                        "metric": "[m](javascript:y)", "value": "v", "ideal": "↓", "base": 1.0,
                        "baseline": 1.0, "new": 2.0, "rel_change": 1.0, "z": 3.0, "noise": 0.1}])
    md = compare.render(df)
    assert "<script" not in md and not re.search(r"(?<!\\)\]\(", md)
    rows = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert len({len(re.split(r"(?<!\\)\|", r)) for r in rows}) == 1
