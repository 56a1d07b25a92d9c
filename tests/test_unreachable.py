"""The tracking server going away mid-suite: the affected cell fails with a clear message
after MLflow's retries; it never takes the suite down silently."""

from conftest import TINY

from bench.config.suite import load_suite
from bench.executors.worker import Shared, run_cell


class FlakyTracker:
    """Stands in for Tracker: the store answers until `down` is set."""

    def __init__(self):
        self.down = False

    def __getattr__(self, name):
        def call(*a, **k):
            if self.down:
                raise ConnectionError("server at 127.0.0.1:5000 refused the connection")
            return "run-1" if name == "create_run" else None

        return call


def test_unreachable_store_fails_the_cell_with_a_message(write_suite, tmp_path):
    import torch

    from bench.run.cache import Cache

    cell = load_suite(write_suite(TINY)).cells[0]
    tracker = FlakyTracker()
    shared = Shared("tiny", tracker, "parent", Cache(tmp_path), torch.device("cpu"), 0, False)
    tracker.down = True
    out = run_cell(cell, tracker, "parent", shared, False)
    assert out.status == "failed" and "tracking store unreachable after retries" in out.error
    assert "run the suite again" in out.error


def test_store_lost_mid_cell_fails_that_cell_only(write_suite, tmp_path):
    import torch

    from bench.run.cache import Cache

    class DropsAtMetrics(FlakyTracker):
        def __getattr__(self, name):
            if name == "log_metrics":
                self.down = True
            return super().__getattr__(name)

    cell = next(c for c in load_suite(write_suite(TINY.replace("{epochs: 3}", "{epochs: 1}"))).cells
                if c.metric.key == "gan_test")
    tracker = DropsAtMetrics()
    shared = Shared("tiny", tracker, "parent", Cache(tmp_path), torch.device("cpu"), 0, False)
    out = run_cell(cell, tracker, "parent", shared, False)
    assert out.status == "failed"
    assert "refused the connection" in out.error and "could not be recorded in MLflow" in out.error
