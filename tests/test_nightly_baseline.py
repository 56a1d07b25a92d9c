"""A regression cannot blind the nightly: each night is compared with a baseline of known-good
nights (the nightly's verdict is remembered as a tag on its suite run), so a regression that
persists or comes back is reported every night until it is fixed or accepted, and a slow drift
is caught once it leaves the baseline's threshold and band. Replayed through `bench nightly`
and `bench compare` against an in-memory store (no MLflow: the suite run is faked, the CLI's
own comparison, history walk and tags are what is tested)."""

from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

from bench.cli import main
from bench.record.values import score
from bench.report.compare import (
    CompareConfig,
    Night,
    compare,
    marks_of,
    regressed_keys,
    trends,
    verdict_tags,
)
from bench.report.html import trends_section

DECL = {"fid": score("lower", "quality"), "recall": score("higher", "diversity")}
GOOD, BAD = {"fid": 3.871, "recall": 0.4990}, {"fid": 8.328, "recall": 0.0155}  # the nights
SUITE = """\
name: s
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
metrics:
  test_constant: {}
"""


def cells(values: dict[str, float], run: str) -> pd.DataFrame:
    """One suite run's cell runs: model g on dataset d, metric m, one repeat."""
    return pd.DataFrame([{"run_id": f"{run}/cell", "dataset": "d", "model": "g", "metric": "m", "repeat": 0,
                          "metric_version": "1", "values": DECL, "held_out": False, "primary": "fid",
                          "reference": False, **{f"m:{k}": v for k, v in values.items()}}])


class MemoryStore:
    """What bench compare and bench nightly read and write through bench.record.tracking.Tracker, in memory: finished
    suite runs (newest first), their cell runs and cells.json, tags, logged texts."""

    def __init__(self) -> None:
        self.uri, self.experiment_id = "memory://", "0"
        self.order: list[str] = []  # oldest first
        self.frames: dict[str, pd.DataFrame] = {}
        self.tags: dict[str, dict[str, str]] = {}
        self.texts: dict[tuple[str, str], str] = {}
        self.client = SimpleNamespace(get_run=lambda rid: SimpleNamespace(
            info=SimpleNamespace(start_time=1_800_000_000_000 + 86_400_000 * self.order.index(rid)),
            data=SimpleNamespace(tags=dict(self.tags[rid]))))

    def add(self, values: dict[str, float]) -> str:
        rid = f"night{len(self.order) + 1}"
        self.order.append(rid)
        self.frames[rid], self.tags[rid] = cells(values, rid), {}
        return rid

    def suite_runs(self, suite: str, limit: int = 50) -> list[str]:
        return self.order[::-1][:limit]

    def cell_runs(self, suite: str | None = None, parent: str | None = None, run_ids=None,
                  failed: bool = False) -> pd.DataFrame:
        return pd.concat(self.frames.values(), ignore_index=True)

    def suite_cells(self, parent: str) -> dict | None:
        return {"d/g/m": {"run_id": f"{parent}/cell", "status": "finished"}} if parent in self.frames else None

    def set_tags(self, run_id: str, tags) -> None:
        self.tags[run_id].update({k: str(v) for k, v in tags.items()})

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.texts[(run_id, name)] = text


@pytest.fixture
def store(monkeypatch, write_suite) -> MemoryStore:
    """The store, wired into `bench compare` and `bench nightly`; `store.night(values)` runs
    one nightly whose suite run logs `values` and returns its exit code."""
    import bench.record.tracking
    import bench.run.runner
    import bench.workflows.api

    mem = MemoryStore()
    monkeypatch.setattr(bench.workflows.api, "open_suite_store", lambda *args, **kw: (mem, "s"))
    monkeypatch.setattr(bench.record.tracking, "Tracker", lambda uri, experiment_id=None: mem)
    tonight: dict[str, float] = {}

    def run_suite(suite, **kw):
        rid = mem.add(dict(tonight))
        return SimpleNamespace(leaderboard="", summary=lambda: "", ok=True, parent_run_id=rid,
                               tracking_uri=mem.uri, experiment_id=mem.experiment_id)

    monkeypatch.setattr(bench.run.runner, "run_suite", run_suite)
    path = str(write_suite(SUITE))
    uri = f"sqlite:///{path}.db"

    def night(values: dict[str, float], *flags: str) -> int:
        tonight.clear()
        tonight.update(values)
        return main(["nightly", path, "--tracking-uri", uri, "--no-progress", "--trends", "0", *flags])

    mem.night = night  # type: ignore[attr-defined]
    return mem


def wobble(values: dict[str, float], rng, sd: float = 0.003) -> dict[str, float]:
    """The same model rerun: each value moves by ~0.3%."""
    return {k: v * (1 + rng.normal(0, sd)) for k, v in values.items()}


def test_a_regression_that_comes_back_fails_every_night_it_is_there(store, capsys):
    rng = np.random.default_rng(0)
    plan = [GOOD, GOOD, GOOD, GOOD, BAD, GOOD, BAD]
    codes = [store.night(wobble(v, rng)) for v in plan]
    out = capsys.readouterr().out
    assert codes == [0, 0, 0, 0, 1, 0, 1], out
    # the verdict is remembered on each suite run; night 6 and 7 measured from nights 1-4 (and 6)
    regressed = [marks_of(store.tags[r])[0] for r in store.order]
    assert regressed[4] == regressed[6] == {("d", "g", "m", "fid"), ("d", "g", "m", "recall")}
    assert regressed[5] == frozenset() and all(r == frozenset() for r in regressed[:4])
    night7 = json.loads(store.texts[(store.order[6], "compare.json")])
    rows = {r["value"]: r for r in night7["rows"]}
    assert rows["fid"]["status"] == rows["recall"]["status"] == "regression"
    assert rows["fid"]["n_baseline"] == 5 and abs(rows["fid"]["baseline"] - 3.871) < 0.03
    assert rows["fid"]["rel_change"] > 1.0 and night7["regressions"] == 2
    night6 = json.loads(store.texts[(store.order[5], "compare.json")])
    assert {r["status"] for r in night6["rows"]} == {"unchanged"}  # not an "improvement" over night 5
    assert "1 regressed run(s) left out of the baseline" in store.texts[(store.order[5], "compare.md")]

    # `bench compare` says the same of the last night, and keeps saying it
    assert main(["compare", "s"]) == 1
    assert store.night(wobble(BAD, rng)) == 1  # night 8: still there, still reported
    # until it is accepted on purpose: the newest run is the baseline from then on
    capsys.readouterr()
    assert main(["compare", "s", "--accept"]) == 0
    assert store.tags[store.order[-1]]["bench.baseline"] == "accepted"
    assert "is now the baseline" in capsys.readouterr().out
    assert store.night(wobble(BAD, rng)) == 0 and main(["compare", "s"]) == 0
    assert store.night(wobble(GOOD, rng)) == 0  # the good model again: an improvement, no alarm
    assert json.loads(store.texts[(store.order[-1], "compare.json")])["improvements"] == 2


def test_the_history_of_compare_a_b_is_the_runs_before_a(store, capsys):
    rng = np.random.default_rng(1)
    for v in [GOOD] * 6 + [BAD, BAD]:
        store.night(wobble(v, rng))
    n3, n4 = store.order[2], store.order[3]
    capsys.readouterr()
    assert main(["compare", "s", n3, n4, "--format", "json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    fid = next(r for r in doc["rows"] if r["value"] == "fid")
    assert fid["n_baseline"] == 3  # nights 3, 2, 1: not the newest runs
    runs = {r: store.frames[r] for r in store.order}
    direct = compare(runs[n3], runs[n4], [runs[n3], runs[store.order[1]], runs[store.order[0]]],
                     CompareConfig(history=10)).set_index("value").loc["fid"]
    assert fid["z"] == pytest.approx(direct["z"]) and fid["baseline"] == pytest.approx(direct["baseline"])
    # --history 2: at most two known-good runs, and the same numbers from the library
    assert main(["compare", "s", n3, n4, "--format", "json", "--history", "2"]) == 0
    assert json.loads(capsys.readouterr().out)["history"] == 2


def test_a_slow_drift_is_flagged_once_it_leaves_the_baseline(store, capsys):
    """fid 2% worse every night: no night-to-night step passes the 5% threshold, but the drift
    from the known-good baseline does, and from then on every night is reported."""
    rng = np.random.default_rng(2)
    fids = [20.0 * 1.02 ** k for k in range(9)]
    codes = [store.night(wobble({"fid": f, "recall": 0.5}, rng, sd=0.001)) for f in fids]
    first = codes.index(1)
    assert 3 <= first <= 5 and all(c == 1 for c in codes[first:]), codes
    frames = [store.frames[r] for r in store.order]
    # what a comparison with the night before alone says: never a regression
    assert all((compare(a, b)["status"] != "regression").all() for a, b in zip(frames, frames[1:], strict=False))
    last = json.loads(store.texts[(store.order[-1], "compare.json")])
    fid = next(r for r in last["rows"] if r["value"] == "fid")
    assert fid["status"] == "regression" and fid["baseline"] < fids[first - 1]


def points(plan: list[dict[str, float]], seed: int = 0) -> list[tuple[str, str, pd.DataFrame]]:
    rng = np.random.default_rng(seed)
    return [(f"2026-12-{i + 1:02d}", f"night{i + 1}", cells(wobble(v, rng), f"night{i + 1}"))
            for i, v in enumerate(plan)]


@pytest.mark.parametrize("recorded", [False, True])
def test_the_trends_mark_every_night_a_regression_is_there(recorded):
    """The HTML trends judge each night as the nightly did: nights 5 and 7 red, 6 not, whether
    the verdicts are read from the suite runs' tags or found again."""
    pts = points([GOOD, GOOD, GOOD, GOOD, BAD, GOOD, BAD])
    marks = None
    if recorded:  # the tags a nightly would have written, night by night
        nights: list[Night] = []
        marks = {}
        for _, rid, df in pts:
            table = compare(nights[-1], df, nights[::-1], CompareConfig(history=10)) if nights else None
            regressed = regressed_keys(table) if table is not None else frozenset()
            marks[rid] = marks_of(verdict_tags(table) if table is not None else {"bench.regressions": "0"})
            assert marks[rid] == (regressed, False)
            nights.append(Night(df, regressed))
    t = trends(pts, history=10, last=7, marks=marks)
    fid = t[t["value"] == "fid"].sort_values("i")
    assert list(fid["status"]) == ["first", "unchanged", "unchanged", "unchanged", "regression",
                                   "unchanged", "regression"]
    html = trends_section(t)
    assert html.count('class="regression"') == 2  # fid is g's only ranked value: nights 5 and 7
    assert "2 regression(s) over these runs, 1 in the latest" in html


def test_the_trends_mark_a_slow_drift():
    pts = points([{"fid": 20.0 * 1.02 ** k, "recall": 0.5} for k in range(9)])
    t = trends(pts, history=10)
    status = list(t[t["value"] == "fid"].sort_values("i")["status"])
    first = status.index("regression")
    assert 3 <= first <= 5 and set(status[first:]) == {"regression"}


def test_one_outlying_night_neither_moves_the_baseline_nor_widens_the_band():
    """A night at 10x among nine at 20 +- 1% (not flagged: no verdict recorded): the baseline
    stays 20 and 23 (+15%) is a regression; the mean and SD of the same nights (38, 57) would
    have let it pass."""
    rng = np.random.default_rng(3)
    calm = [cells({"fid": 20 * (1 + rng.normal(0, 0.01)), "recall": 0.5}, f"n{i}") for i in range(9)]
    calm.insert(3, cells({"fid": 200.0, "recall": 0.5}, "outlier"))
    row = compare(calm[0], cells({"fid": 23.0, "recall": 0.5}, "new"), calm).set_index("value").loc["fid"]
    assert abs(row["baseline"] - 20) < 0.3 and row["status"] == "regression"


@pytest.mark.parametrize("argv, needle", [
    (["--threshold", "-0.5"], "--threshold -0.5: expected a relative change >= 0"),
    (["--z", "-1"], "--z -1: expected a number of standard deviations >= 0"),
    (["--history", "-3"], "--history -3: expected a number of earlier suite runs >= 0"),
    (["--threshold", "nan"], "--threshold nan"),
])
def test_compare_refuses_negative_numbers_in_one_line(argv, needle, capsys):
    assert main(["compare", "s", *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert needle in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_nightly_and_leaderboard_refuse_a_negative_trends(capsys):
    for command in ("nightly", "leaderboard"):
        assert main([command, "s", "--trends", "-1"]) == 2
        err = capsys.readouterr().err.strip()
        assert "--trends -1: expected a number of suite runs >= 0" in err and len(err.splitlines()) == 1


def test_compare_refuses_the_same_run_twice(store, capsys):
    for v in (GOOD, GOOD):
        store.night(v)
    capsys.readouterr()
    for argv in (["latest", "latest"], [store.order[0], store.order[0]]):
        assert main(["compare", "s", *argv]) == 2
        err = capsys.readouterr().err.strip()
        assert "same suite run" in err or "are both" in err
        assert len(err.splitlines()) == 1


def test_the_workflow_can_accept_the_last_night_before_running_the_next():
    """The store of the shipped workflow lives in the Actions cache: accepting a change is a
    dispatch input, run on the restored store before the night."""
    from pathlib import Path

    import yaml

    from bench.cli import build_parser

    wf = yaml.safe_load((Path(__file__).resolve().parents[1] / ".github/workflows/nightly.yml").read_text())
    on = wf.get("on", wf.get(True))
    assert on["workflow_dispatch"]["inputs"]["accept"]["type"] == "boolean"
    (job,) = wf["jobs"].values()
    names = [s.get("name", s.get("uses", "")) for s in job["steps"]]
    step = next(s for s in job["steps"] if "--accept" in s.get("run", ""))
    assert step["if"] == "${{ inputs.accept }}"
    assert names.index("restore the store and the cache") < names.index(step["name"]) < names.index("bench nightly")
    args = build_parser().parse_args(step["run"].split()[1:])
    assert args.accept == "latest" and args.command == "compare"

