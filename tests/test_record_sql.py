"""The board's SQL fast path (bench.record.sql) reads the same records as MLflow's own search:
statuses, suites, parents, NaN values, flags and declarations."""

import math

import pytest

from bench.metrics import METRICS
from bench.record.cell_record import CellRecord
from bench.record.flags import Flag
from bench.record.sql import SqlReader, Unsupported, is_sql
from bench.record.tracking import Tracker
from bench.record.values import Measured, decode, encode


def _write(tracker: Tracker, parent: str, suite: str, model: str, metric: str, status: str,
           values: dict[str, float], flags: list[Flag] | None = None) -> str:
    cls = METRICS.get(metric)
    rec = CellRecord(suite=suite, model=model, dataset="digits", metric=metric, cell_key=f"{suite}-{model}-{metric}",
                     metric_plugin=metric, primary=cls.primary, values=decode(values), declarations=cls.values,
                     flags=flags or [], error="boom" if status == "FAILED" else "")
    rid = tracker.create_run(f"{model} {metric}", rec.identity_tags(), parent)
    if values:
        tracker.log_metrics(rid, values)
    tracker.set_tags(rid, rec.result_tags())
    tracker.end(rid, status)
    return rid


@pytest.fixture
def store(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    p1 = tracker.create_parent("s1", {"bench.kind": "suite"})
    p2 = tracker.create_parent("s1 again", {"bench.kind": "suite"})
    _write(tracker, p1, "s1", "a", "fid", "FINISHED", {"fid": 3.5, "fid.lo": 3.0, "fid.hi": 4.0})
    _write(tracker, p1, "s1", "b", "fid", "FINISHED", {"fid": float("nan")},
           [Flag("constant", "all images alike", True)])
    _write(tracker, p1, "s1", "c", "fid", "FAILED", {})
    _write(tracker, p2, "s1", "a", "kid", "FINISHED", {"kid_mean": 0.01})
    _write(tracker, p2, "s2", "a", "fid", "FINISHED", {"fid": 9.0})
    _write(tracker, p2, "s1", "d", "fid", "RUNNING", {"fid": 1.0})  # never read
    return tracker, p1, p2


def _key(recs: list[CellRecord]) -> list[tuple]:
    return sorted((r.run_id, r.status, r.model, r.metric, r.suite, r.parent, r.start_time,
                   tuple(sorted((k, "nan" if math.isnan(v) else v) for k, v in encode(r.values).items())),
                   tuple(r.flags), tuple(sorted(r.declarations)), r.error, r.primary,
                   tuple(sorted(r.tags.items()))) for r in recs)


@pytest.mark.parametrize("kw", [dict(suite="s1"), dict(suite="s1", failed=True), dict(suite="s2"),
                                dict(suite=None, failed=True), dict(suite="s1", failed=True, parent="P1"),
                                dict(suite="s1", parent="P2")])
def test_sql_reads_what_mlflow_search_reads(store, kw):
    tracker, p1, p2 = store
    kw = {**kw}
    if "parent" in kw:
        kw["parent"] = {"P1": p1, "P2": p2}[kw["parent"]]
    assert tracker.sql is not None
    fast = tracker.records(**kw)
    tracker.sql = None  # MLflow's search_runs
    slow = tracker.records(**kw)
    assert fast and _key(fast) == _key(slow)
    assert [r.start_time for r in fast] == sorted((r.start_time for r in fast), reverse=True)


def test_sql_record_fields(store):
    tracker, p1, _ = store
    recs = {r.model: r for r in tracker.records(suite="s1", failed=True, parent=p1)}
    assert set(recs) == {"a", "b", "c"}
    assert recs["a"].values == {"fid": Measured(3.5, 3.0, 4.0)}
    assert recs["a"].declarations["fid"].ideal == "lower"
    assert math.isnan(recs["b"].values["fid"].x) and recs["b"].flags[0].kind == "constant"
    assert recs["c"].status == "FAILED" and recs["c"].error == "boom"


def test_an_unknown_schema_falls_back_to_mlflow(store, tmp_path):
    tracker, *_ = store
    assert is_sql("sqlite:///x.db") and is_sql("postgresql+psycopg2://h/db") and not is_sql("http://h:5000")
    with pytest.raises(Unsupported):
        SqlReader(f"sqlite:///{tmp_path / 'empty.db'}").read("0", "s1", ["FINISHED"])
    tracker.sql = SqlReader(f"sqlite:///{tmp_path / 'empty.db'}")
    with pytest.warns(UserWarning, match="MLflow's search"):
        recs = tracker.records(suite="s1")
    assert len(recs) == 3 and tracker.sql is None  # a/fid, b/fid and a/kid
