"""`published:` blocks: numbers from papers printed beside ours under the board, checked at
load time (names, units), never ranked."""

import json
import math

import pytest
from test_leaderboard import ACC, cell, runs

from bench.cli import main
from bench.config.published import PublishedBlock
from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.report.leaderboard import build_leaderboard, render
from bench.report.published import comparison, reading, with_published

SUITE = """\
name: pub
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  noisy: {source: reference, kind: noise, sigma: 0.5}
metrics:
  test_constant: {}
published:
  - source: "A paper, Table 1"
    dataset: digits
    values:
      real: {mean_pixel: %s}
      noisy: {mean_pixel: 1.0e6}
    note: their classifier differs
"""


def test_reading_uses_the_interval():
    assert reading(0.90, 0.02, math.nan, math.nan, 0.91).startswith("agrees")
    assert reading(0.90, 0.02, math.nan, math.nan, 0.95) == "ours lower"
    assert reading(0.90, 0.02, math.nan, math.nan, 0.85) == "ours higher"
    # a single run's logged (asymmetric, e.g. Wilson) interval wins over the half-width
    assert reading(0.90, 0.001, 0.85, 0.92, 0.86).startswith("agrees")
    assert reading(math.nan, math.nan, math.nan, math.nan, 0.9) == "no value"
    assert reading(0.9, math.nan, math.nan, math.nan, 0.8).startswith("no interval")


def test_comparison_beside_the_board_in_markdown_and_json():
    r = runs([cell("a", "gt", ACC, "acc", acc=(0.80, 0.78, 0.82), real_val_acc=(0.95, 0.94, 0.96)),
              cell("b", "gt", ACC, "acc", acc=(0.60, 0.58, 0.62), real_val_acc=(0.95, 0.94, 0.96))])
    tables = build_leaderboard(r)
    blocks = [PublishedBlock(source="Paper T1", dataset="d", note="ResNet",
                             values={"a": {"acc": 0.81, "real_val_acc": 0.928},
                                     "b": {"acc": 0.70}, "c": {"acc": 0.5}})]
    f = comparison(tables, blocks).set_index(["model", "value"])
    assert f.loc[("a", "acc"), "reading"].startswith("agrees")
    assert f.loc[("a", "real_val_acc"), "reading"] == "ours higher"  # the data section's value
    assert f.loc[("b", "acc"), "reading"] == "ours lower"
    assert f.loc[("b", "acc"), "difference"] == pytest.approx(-0.10)
    assert f.loc[("c", "acc"), "reading"] == "no value"
    md = with_published(render(tables, "markdown"), "markdown", tables, blocks)
    assert md.startswith(render(tables, "markdown").rstrip("\n"))  # the board is unchanged
    section = md[md.index("### Against published values"):]
    lines = {ln.split("|")[1].strip() + "/" + ln.split("|")[2].strip(): ln
             for ln in section.splitlines() if ln.startswith("| ")}
    assert "**Paper T1** on d (ResNet)" in section
    assert "0.6" in lines["b/acc"] and "-0.1 " in lines["b/acc"] and "ours lower" in lines["b/acc"]
    assert "— " in lines["c/acc"] and "no value" in lines["c/acc"]
    obj = json.loads(with_published(render(tables, "json"), "json", tables, blocks))
    assert {p["model"] for p in obj["published"]} == {"a", "b", "c"} and "tables" in obj
    assert [p["ours"] for p in obj["published"] if p["model"] == "c"] == [None]
    # CSV stays one table; no blocks, no section
    assert with_published(render(tables, "csv"), "csv", tables, blocks) == render(tables, "csv")
    assert with_published(render(tables, "markdown"), "markdown", tables, []) == render(tables, "markdown")


@pytest.mark.parametrize("change, needle", [
    (("dataset: digits", "dataset: digit"), "'digit' is not a dataset of this suite. Did you mean 'digits'?"),
    (("noisy: {mean_pixel", "nosy: {mean_pixel"), "'nosy' is not a model of this suite. Did you mean 'noisy'?"),
    (("noisy: {mean_pixel", "noisy: {mean_pixl"), "no metric of this suite logs 'mean_pixl'. Did you mean 'mean_pixel'?"),
    (("- source: \"A paper, Table 1\"\n    dataset", "- dataset"), "published.0.source"),
])
def test_bad_blocks_are_refused_at_load_time(write_suite, change, needle):
    text = (SUITE % "100").replace(*change)
    with pytest.raises(BenchError) as e:
        load_suite(write_suite(text))
    assert needle in str(e.value)


def test_an_accuracy_given_as_a_percentage_is_refused(write_suite):
    text = (SUITE % "100").replace("test_constant: {}", "gan_test: {classifier: {epochs: 1}}") \
        .replace("{mean_pixel: 1.0e6}", "{gan_test_acc: 92.8}")
    with pytest.raises(BenchError, match=r"write 0.928 for 92.8%"):
        load_suite(write_suite(text))


def test_bench_run_and_leaderboard_print_the_section(write_suite, tracking_uri, capsys):
    suite = write_suite(SUITE % "100")
    assert main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "### Against published values" in out and "**A paper, Table 1** on digits" in out
    assert main(["leaderboard", str(suite), "--tracking-uri", tracking_uri]) == 0
    board = capsys.readouterr().out
    section = board[board.index("### Against published values"):]
    assert section in out  # bench run and bench leaderboard print the same
    assert "ours lower" in section  # noisy's 1e6 is far above any mean pixel
    assert main(["leaderboard", str(suite), "--tracking-uri", tracking_uri, "--format", "json"]) == 0
    rows = json.loads(capsys.readouterr().out)["published"]
    assert [r["model"] for r in rows] == ["real", "noisy"] and rows[0]["ours"] > 0


def test_the_html_page_has_the_section(write_suite, tracking_uri, tmp_path, capsys):
    suite = write_suite(SUITE % "100")
    assert main(["run", str(suite), "--tracking-uri", tracking_uri, "--no-progress"]) == 0
    out = tmp_path / "board.html"
    assert main(["leaderboard", str(suite), "--tracking-uri", tracking_uri, "--format", "html",
                 "--out", str(out)]) == 0
    page = out.read_text()
    section = page[page.index('<section id="published">'):]
    section = section[:section.index("</section>")]
    assert "A paper, Table 1 on digits" in section and "their classifier differs" in section
    assert "<td>noisy</td><td>mean_pixel</td>" in section and "ours lower" in section
    assert 'href="#published"' in page
