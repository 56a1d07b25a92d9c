"""What a board reads of a suite file (bench.config.board_suite), and `bench leaderboard
SUITE.yaml` without torch or any plugin imported."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from bench.config.board_suite import BoardSuite, declared_rows, read_board_suite
from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.record.values import Measured

ROOT = Path(__file__).resolve().parents[1]
SUITES = sorted((ROOT / "suites").glob("*.yaml"))

CELLS = """\
name: rows
experiment: rows-exp
datasets:
  digits: {source: digits}
  more: {source: digits}
models:
  real_val: {source: reference, kind: real, split: val}
  real_train: {source: reference, kind: real}
  noise: {source: reference, kind: noise}
metrics:
  fid: {}
  kid: {}
cells:
  - models: [real_val, noise]
    datasets: [digits]
    exclude: [{model: noise, metric: fid}]
  - models: all
    datasets: [more]
    metrics: [fid]
    exclude: [{model: real_train, metric: fid}]
published:
  - source: a paper, Table 1
    dataset: digits
    values: {real_val: {fid: 1.5}}
"""


def _same(view: BoardSuite, path: Path) -> None:
    suite = load_suite(path, check_resources=False)
    assert view.name == suite.name and view.experiment == suite.experiment
    assert view.tracking_uri == suite.tracking_uri
    assert view.declared == declared_rows(suite)
    assert view.published == suite.published


@pytest.mark.parametrize("path", SUITES, ids=[p.name for p in SUITES])
def test_the_board_view_of_each_suite_is_load_suites(path: Path) -> None:
    _same(read_board_suite(path), path)


def test_cells_blocks_and_exclusions_give_load_suites_rows(write_suite) -> None:
    path = write_suite(CELLS)
    view = read_board_suite(path)
    # noise keeps kid on digits; real_train has no metric left on `more`
    assert view.declared == {("digits", "real_val"), ("digits", "noise"), ("more", "real_val"),
                             ("more", "noise")}
    assert [b.source for b in view.published] == ["a paper, Table 1"]
    _same(view, path)


def test_a_file_it_cannot_read_plainly_goes_through_load_suite(write_suite) -> None:
    path = write_suite(CELLS.replace("models: [real_val, noise]", "models: [real_val, nosie]"))
    with pytest.raises(BenchError, match=r"suite.yaml:\d+: .*'nosie' is not defined"):
        read_board_suite(path)
    odd = write_suite("name: odd\n" + CELLS.split("\n", 1)[1].replace("experiment: rows-exp\n", ""),
                      "odd.yaml")
    assert read_board_suite(odd).experiment == "odd"  # the default: the suite's name


def _code(call: str) -> str:
    return (f"import sys\n{call}\n"
            "heavy = sorted(m for m in ('torch', 'torchvision', 'bench.metrics', 'bench.models', "
            "'bench.data', 'bench.features') if m in sys.modules)\n"
            "assert not heavy, heavy\n")


def test_reading_a_suite_for_a_board_imports_no_plugin() -> None:
    call = ("from bench.workflows.store import suite_file\n"
            f"assert suite_file({str(ROOT / 'suites/guardrails.yaml')!r}).name == 'guardrails'")
    r = subprocess.run([sys.executable, "-c", _code(call)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]


def test_bench_leaderboard_of_a_suite_file_imports_no_torch(write_suite, tracking_uri, tmp_path,
                                                           monkeypatch) -> None:
    from bench.metrics import METRICS
    from bench.record.cell_record import CellRecord
    from bench.record.tracking import Tracker

    monkeypatch.chdir(tmp_path)  # MLflow's default artifact root
    path = write_suite(CELLS)
    tracker = Tracker(tracking_uri, "rows-exp")
    parent = tracker.create_parent("rows", {"bench.kind": "suite", "bench.suite": "rows"})
    for model, fid in (("real_val", 1.0), ("noise", 30.0)):
        cls = METRICS.get("fid")
        rec = CellRecord(suite="rows", model=model, dataset="digits", metric="fid",
                         cell_key=f"k-{model}", metric_plugin="fid", metric_version=cls.version,
                         seed=0, version="0", primary=cls.primary, threads="1",
                         values={"fid": Measured(fid)}, declarations=cls.values)
        rid = tracker.create_run(f"{model} / digits / fid", rec.identity_tags(), parent)
        tracker.log_metrics(rid, rec.to_mlflow()[2])
        tracker.set_tags(rid, rec.result_tags())
        tracker.end(rid, "FINISHED")
    tracker.end(parent, "FINISHED")
    out = tmp_path / "board.md"
    call = ("from bench.cli import main\n"
            f"assert main(['leaderboard', {str(path)!r}, '--tracking-uri', {tracking_uri!r}, "
            f"'--out', {str(out)!r}]) == 0")
    r = subprocess.run([sys.executable, "-c", _code(call)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-2000:]
    board = out.read_text()
    assert "real_val" in board and "noise" in board and "30" in board
