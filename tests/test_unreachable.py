"""The tracking server going away mid-suite: the affected cell fails with a clear message
after MLflow's retries; it never takes the suite down silently."""

from conftest import TINY

from bench.config.suite import load_suite
from bench.executors.worker import Shared, run_cell


def _writer(tmp_path):
    """The real writer over a real SQLite store; faults are injected at its MLflow client."""
    from bench.record.tracking import Tracker
    from bench.record.writer import RecordWriter

    tracker = Tracker(f"sqlite:///{tmp_path}/mlflow.db", "unreachable")
    return RecordWriter(tracker), tracker


def _refuse(*a, **k):
    raise ConnectionError("server at 127.0.0.1:5000 refused the connection")


def test_unreachable_store_fails_the_cell_with_a_message(write_suite, tmp_path, monkeypatch):
    import torch

    from bench.infra.cache import Cache

    cell = load_suite(write_suite(TINY)).cells[0]
    writer, tracker = _writer(tmp_path)
    shared = Shared("tiny", writer, "", Cache(tmp_path), torch.device("cpu"), 0, False)
    monkeypatch.setattr(tracker.client, "create_run", _refuse)
    out = run_cell(cell, writer, "", shared, False)
    assert out.status == "failed" and "tracking store unreachable after retries" in out.error
    assert "run the suite again" in out.error


def test_store_lost_mid_cell_fails_that_cell_only(write_suite, tmp_path, monkeypatch):
    import torch

    from bench.infra.cache import Cache

    cell = next(c for c in load_suite(write_suite(TINY.replace("{epochs: 3}", "{epochs: 1}"))).cells
                if c.metric.key == "gan_test")
    writer, tracker = _writer(tmp_path)
    log_batch = tracker.client.log_batch

    def drops_at_metrics(run_id, metrics=(), **k):
        if metrics:
            monkeypatch.setattr(tracker.client, "log_batch", _refuse)
            monkeypatch.setattr(tracker.client, "set_terminated", _refuse)
            _refuse()
        return log_batch(run_id, metrics=metrics, **k)

    monkeypatch.setattr(tracker.client, "log_batch", drops_at_metrics)
    shared = Shared("tiny", writer, "", Cache(tmp_path), torch.device("cpu"), 0, False)
    out = run_cell(cell, writer, "", shared, False)
    assert out.status == "failed"
    assert "refused the connection" in out.error and "tracking store unreachable" in out.error
    assert "next run retries the cell" in out.error
