"""CPU thread budget (bench.executors.threads): worker processes split the cores instead of each
running one thread per core; `threads` / `--threads` / BENCH_THREADS override it; every
cell records its thread count as the run tag `bench.threads`."""

from __future__ import annotations

import os

import pytest
import torch
from mlflow import MlflowClient

from bench.cli import build_parser
from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.executors import EXECUTORS, ExecutorConfig, threads
from bench.executors.local import LocalExecutor, LocalOptions, start_worker
from bench.run.runner import run_suite

SUITE = """\
name: threads
datasets:
  digits: {source: digits}
models:
  real: {source: reference}
metrics:
  test_constant: {}
"""


def _in_worker() -> tuple[int, str | None, str | None]:
    return threads.current(), os.environ.get("OMP_NUM_THREADS"), os.environ.get("MKL_NUM_THREADS")


@pytest.fixture
def two_cores(monkeypatch):
    monkeypatch.setattr(threads, "cores", lambda: 2)
    monkeypatch.delenv(threads.ENV, raising=False)


def test_budget_splits_the_cores_and_can_be_overridden(two_cores, monkeypatch):
    assert threads.budget(1) == 2 and threads.budget(2) == 1 and threads.budget(5) == 1
    assert threads.budget(2, override=3) == 3
    monkeypatch.setenv(threads.ENV, "4")
    assert threads.budget(2) == 4 and threads.budget(2, override=1) == 1  # option beats env
    monkeypatch.setenv(threads.ENV, "many")
    with pytest.raises(BenchError, match="BENCH_THREADS"):
        threads.budget(2)


@pytest.mark.heavy  # starts a pool of worker processes
def test_a_pool_of_two_workers_gets_one_thread_each(two_cores, monkeypatch):
    seen = {}

    def fake_pool(self, cells, env, on_result, n):
        seen["threads"], seen["omp"] = n, os.environ.get("OMP_NUM_THREADS")
        return False

    monkeypatch.setattr(LocalExecutor, "_pool", fake_pool)
    before = os.environ.get("OMP_NUM_THREADS")
    LocalExecutor(LocalOptions(workers=2)).run([], None, lambda *a: None)  # type: ignore[arg-type]
    assert seen == {"threads": 1, "omp": "1"}  # the workers are spawned with it in their env
    assert os.environ.get("OMP_NUM_THREADS") == before  # and this process's env is restored
    LocalExecutor(LocalOptions(workers=2, threads=2)).run([], None, lambda *a: None)  # type: ignore[arg-type]
    assert seen["threads"] == 2
    # what such a worker runs with, read back inside it
    worker = start_worker("cpu", 1)
    try:
        assert worker.call(_in_worker, timeout=300) == (1, "1", "1")
    finally:
        worker.stop()


def test_override_reaches_the_in_process_executor_and_the_cell_tag(write_suite, tracking_uri,
                                                                   monkeypatch):
    monkeypatch.delenv(threads.ENV, raising=False)
    path = write_suite(SUITE)
    before = torch.get_num_threads()
    local = EXECUTORS.get("local")
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False,
                       executor=local(local.Options(threads=1)))
    assert report.ok and torch.get_num_threads() == before  # restored after the run
    run = MlflowClient(tracking_uri).get_run(report.outcomes[0].run_id)
    assert run.data.tags["bench.threads"] == "1"
    # no override: the process's own setting is used and recorded
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False, force=True)
    run = MlflowClient(tracking_uri).get_run(report.outcomes[0].run_id)
    assert run.data.tags["bench.threads"] == str(before)
    monkeypatch.setenv(threads.ENV, "1")  # the environment variable overrides too
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False, force=True)
    run = MlflowClient(tracking_uri).get_run(report.outcomes[0].run_id)
    assert run.data.tags["bench.threads"] == "1" and torch.get_num_threads() == before


def test_threads_option_from_the_suite_and_the_command_line():
    args = build_parser().parse_args(["run", "suite.yaml", "--threads", "3"])
    assert args.threads == 3
    cfg = ExecutorConfig.parse({"name": "local", "workers": 2, "threads": 2})
    assert cfg.options.threads == 2  # type: ignore[attr-defined]
    assert cfg.override(flags={"--threads": 1}).options.threads == 1  # type: ignore[attr-defined]
    with pytest.raises(ValueError):
        ExecutorConfig.parse({"name": "local", "threads": 0})
