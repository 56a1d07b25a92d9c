"""Crash safety: SIGKILL in the middle of a suite loses no finished cell, leaves no cell
with two FINISHED runs, and the killed cell's run is marked FAILED on the next start;
cache entries written by two processes at once are never half-written."""

import multiprocessing as mp
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from conftest import child_env
from mlflow import MlflowClient

from bench.infra.cache import Cache

BIN = Path(sys.executable).parent
SUITE = """\
name: crash
datasets:
  digits: {source: digits}
models:
  real: {source: reference}
  slow: {source: callable, target: "slowgen:G", latent_dim: 8}
metrics:
  gan_test: {classifier: {epochs: 3}}
"""
# a generator that hangs while a flag file exists: the cell is RUNNING when the runner dies,
# and the same cell (same key) is quick on the restart
SLOWGEN = """\
import os, time, torch

class G(torch.nn.Module):
    def __init__(self):
        super().__init__()
        self.emb = torch.nn.Embedding(10, 64)

    def forward(self, z, y):
        while os.path.exists(os.environ["SLOW_FLAG"]):
            time.sleep(0.2)
        return torch.tanh(self.emb(y) + z.sum(1, keepdim=True)).view(-1, 1, 8, 8)
"""


def _statuses(uri: str) -> dict[str, list[str]]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("crash")
    if exp is None:
        return {}
    out: dict[str, list[str]] = {}
    for r in client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'cell'"):
        out.setdefault(r.data.tags["bench.model"], []).append(r.info.status)
    return out


@pytest.mark.slow
def test_sigkill_then_resume(tmp_path, sqlite_template):
    suite = tmp_path / "s.yaml"
    suite.write_text(SUITE)
    (tmp_path / "slowgen.py").write_text(SLOWGEN)
    flag = tmp_path / "hang"
    flag.touch()
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    if sqlite_template is not None:  # a migrated store (the subprocess sees no hook): 5-8 s
        shutil.copyfile(sqlite_template, tmp_path / "mlflow.db")
    env = child_env(BENCH_CACHE_DIR=str(tmp_path / "cache"), SLOW_FLAG=str(flag),
                    PYTHONPATH=str(tmp_path))  # with this process's share of the cores
    cmd = [str(BIN / "bench"), "run", str(suite), "--tracking-uri", uri, "--no-progress"]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 300
    while time.time() < deadline:  # wait until the real cell finished and the slow one started
        st = _statuses(uri)
        if st.get("real") == ["FINISHED"] and "RUNNING" in st.get("slow", []):
            break
        time.sleep(1)
    else:
        proc.kill()
        pytest.fail(f"the suite did not reach the slow cell: {_statuses(uri)}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert _statuses(uri) == {"real": ["FINISHED"], "slow": ["RUNNING"]}
    assert not list((tmp_path / "cache").rglob("*.tmp"))  # nothing half-written was left
    # restart: the same suite, the generator no longer hangs; finished work is kept
    flag.unlink()
    r = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "cached" in r.stdout and "marked FAILED" in r.stdout
    st = _statuses(uri)
    assert st["real"] == ["FINISHED"]
    assert sorted(st["slow"]) == ["FAILED", "FINISHED"]
    # the killed runner's suite run is closed too (its process is gone: no need to wait out
    # the heartbeat), not left RUNNING forever
    from mlflow import MlflowClient

    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("crash")
    suites = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'suite'")
    assert sorted(r.info.status for r in suites) == ["FINISHED", "KILLED"]


def _writer(root: str, i: int) -> None:
    cache = Cache(root)
    path = cache.path("thing", {"k": 1}, ".pt")
    for _ in range(20):
        cache.save_torch(path, {"who": i, "data": torch.full((20000,), float(i))})


def test_cache_written_by_two_processes_at_once(tmp_path):
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), i)) for i in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(120)
        assert p.exitcode == 0
    path = Cache(tmp_path).path("thing", {"k": 1}, ".pt")
    obj = torch.load(path, weights_only=True)  # a whole entry from one writer, never a mix
    assert obj["who"] in (0, 1) and bool((obj["data"] == obj["who"]).all())
    assert not list(tmp_path.rglob("*.tmp"))
