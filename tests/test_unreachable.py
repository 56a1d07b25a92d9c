"""The tracking store going away mid-cell: a cell that has not computed anything fails with a
clear message; a computed cell's record is kept on disk and written once the store is back
(bench.record.spool), never thrown away. Faults are injected at the writer's raw MLflow client
and the outage is waited out on an injected clock (bench.record.outage)."""

from conftest import TINY
from tiny_suites import INSTANT as CONSTANT

from bench.config.suite import load_suite
from bench.executors.worker import Shared, run_cell
from bench.record.values import encode


def _writer(tmp_path, monkeypatch, spool=None, said=None):
    """The real writer over a real SQLite store, with an outage clock that never sleeps."""
    from bench.record import outage
    from bench.record.tracking import Tracker
    from bench.record.writer import RecordWriter

    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setitem(outage._OUTAGES, uri, outage.Outage(
        uri, patience=30, sleep=lambda s: None, say=(said if said is not None else []).append))
    tracker = Tracker(uri, "unreachable")
    return RecordWriter(tracker, spool), tracker


def _refuse(*a, **k):
    raise ConnectionError("server at 127.0.0.1:5000 refused the connection")


def test_unreachable_store_fails_the_cell_with_a_message(write_suite, tmp_path, monkeypatch):
    import torch

    from bench.infra.cache import Cache

    cell = load_suite(write_suite(TINY)).cells[0]
    said: list[str] = []
    writer, tracker = _writer(tmp_path, monkeypatch, said=said)  # no spool: nowhere to keep it
    shared = Shared("tiny", writer, "", Cache(tmp_path), torch.device("cpu"), 0, False)
    monkeypatch.setattr(tracker.client.raw, "create_run", _refuse)
    out = run_cell(cell, writer, "", shared, False)
    assert out.status == "failed" and f"tracking store {tracker.uri} unreachable" in out.error
    assert "refused the connection" in out.error and "run the suite again" in out.error
    assert len(said) == 1 and "unreachable" in said[0]  # retried, said once


def test_store_lost_mid_cell_keeps_the_computed_record(write_suite, tmp_path, monkeypatch):
    import torch

    from bench.infra.cache import Cache
    from bench.record.spool import Spool
    from bench.record.writer import Keeper

    cell = load_suite(write_suite(CONSTANT)).cells[0]
    spool = Spool(tmp_path / "spool")
    writer, tracker = _writer(tmp_path, monkeypatch, spool)
    raw = tracker.client.raw
    log_batch, set_terminated = raw.log_batch, raw.set_terminated
    down, went = [False], [False]

    def drops_at_metrics(run_id, metrics=(), **k):
        if metrics and not went[0]:
            went[0] = down[0] = True  # from the cell's values on, the store is away
        if down[0]:
            _refuse()
        return log_batch(run_id, metrics=metrics, **k)

    def ends(*a, **k):
        if down[0]:
            _refuse()
        return set_terminated(*a, **k)

    monkeypatch.setattr(raw, "log_batch", drops_at_metrics)
    monkeypatch.setattr(raw, "set_terminated", ends)
    shared = Shared("tiny", writer, "", Cache(tmp_path), torch.device("cpu"), 0, False)
    out = run_cell(cell, writer, "", shared, False)
    assert out.status == "finished" and out.error.startswith("kept: ")
    assert "refused the connection" in out.error and spool.keys() == [cell.key]

    down[0] = False  # the store is back
    assert tracker.run_status(out.run_id) == "RUNNING"
    keeper = Keeper(tracker, spool)
    written = keeper.write({cell.key})
    assert written == {cell.key: out.run_id} and spool.keys() == [], keeper.last_error
    run = tracker.client.get_run(out.run_id)
    assert run.info.status == "FINISHED"
    assert run.data.metrics == encode(out.values)
    assert run.data.tags["bench.cell_key"] == cell.key and "bench.values" in run.data.tags
