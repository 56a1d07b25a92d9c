"""docs/metrics.md's values table is generated from the metrics' declarations (bench.report.docgen)."""

from __future__ import annotations

import difflib

import pytest

from bench.record.values import Value
from bench.report import docgen


def _row(metric: str, value: str) -> list[str]:
    for line in docgen.values_table().splitlines():
        cells = [c.strip() for c in line.strip("|").split(" | ")]
        if cells[0] == f"`{metric}`" and cells[1].split(" ")[0] == f"`{value}`":
            return cells
    raise AssertionError(f"no row for {metric}/{value}")


def test_docs_metrics_table_matches_declarations():
    text = docgen.DOC.read_text(encoding="utf-8")
    new = docgen.render(text)
    if new != text:
        diff = "".join(list(difflib.unified_diff(
            text.splitlines(True), new.splitlines(True), "docs/metrics.md", "declarations", n=0))[:40])
        pytest.fail("docs/metrics.md's values table differs from the metrics' declarations; "
                    "run `python -m bench.report.docgen` to regenerate it.\n" + diff)


def test_known_rows():
    assert _row("fid", "fid")[1:6] == ["`fid` (primary)", "score", "↓", "", "quality"]
    gt = _row("gan_test", "gan_test_acc")
    assert gt[1:6] == ["`gan_test_acc` (primary)", "score", "→ref", "→real_val_acc", "quality"]
    dc = _row("data_copying", "data_copying_ct")
    assert dc[3:5] == ["→ref", "→0"]
    assert _row("authenticity", "authenticity")[4] == "not ranked"
    header = docgen.values_table().splitlines()[0]
    assert header == ("| metric | value (or prefix) | role | ideal | without a held-out row "
                      "| aspect | why |")


def test_every_declared_value_has_a_row_in_declaration_order():
    from bench.metrics import METRICS

    table = docgen.values_table()
    for name, cls in METRICS.items():
        if not cls.__module__.startswith("bench."):  # conftest's test metrics are left out
            assert f"`{name}`" not in table
            continue
        rows = [line for line in table.splitlines() if line.startswith(f"| `{name}` |")]
        assert [r.split(" | ")[1].split(" ")[0].strip("`") for r in rows] == list(cls.values)
        if cls.primary:
            assert sum("(primary)" in r for r in rows) == 1, name
    metrics = [line.split(" | ")[0].strip("| `") for line in table.splitlines()[2:]]
    assert metrics == sorted(metrics)


def test_without_held_out_column():
    assert docgen.without_held_out(Value("score", "higher")) == ""
    assert docgen.without_held_out(Value("score", "target", target=0.0)) == ""
    assert docgen.without_held_out(Value("score", "target", ref=True, target=1.0)) == "→1"
    assert docgen.without_held_out(Value("score", "target", ref=True, target=0.0,
                                         fallback="x")) == "→x"  # as the leaderboard tries them
    assert docgen.without_held_out(Value("score", "target", ref=True)) == "not ranked"


def test_update_and_check(tmp_path, capsys):
    doc = tmp_path / "m.md"
    doc.write_text(f"# t\n\nintro\n{docgen.START}\n| stale |\n{docgen.END}\n\nafter | x\n",
                   encoding="utf-8")
    assert docgen.main([str(doc), "--check"]) == 1
    assert "python -m bench.report.docgen" in capsys.readouterr().err
    assert docgen.update(doc) is True
    text = doc.read_text(encoding="utf-8")
    assert "| stale |" not in text and text.startswith("# t\n\nintro\n")
    assert text.endswith(f"{docgen.END}\n\nafter | x\n")
    assert docgen.values_table() in text
    assert docgen.update(doc) is False
    assert docgen.main([str(doc), "--check"]) == 0
    doc.write_text("no markers\n", encoding="utf-8")
    with pytest.raises(ValueError, match="values-table"):
        docgen.update(doc)


def test_note_cell_is_one_escaped_line():
    assert docgen._cell("a | b\n  c") == "a \\| b c"
