"""A real MLflow tracking server on loopback, two runners logging to it at once: the
shared-leaderboard setup that docker/compose.yaml stands up, minus the containers."""

import subprocess
import sys
from pathlib import Path

import pytest
from conftest import child_env
from mlflow import MlflowClient

BIN = Path(sys.executable).parent
SUITE = """\
name: {name}
datasets:
  digits: {{source: digits}}
models:
  real: {{source: reference}}
  noisy: {{source: reference, kind: noise, sigma: 0.3}}
metrics:
  gan_test: {{classifier: {{epochs: 3}}}}
"""


@pytest.mark.slow
def test_two_runners_log_to_one_server(server, tmp_path):
    procs = []
    for name in ("team_a", "team_b"):
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(SUITE.format(name=name))
        env = child_env(BENCH_CACHE_DIR=str(tmp_path / f"cache_{name}"))
        procs.append(subprocess.Popen(
            [str(BIN / "bench"), "run", str(suite), "--tracking-uri", server, "--no-progress"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    for p in procs:
        out, err = p.communicate(timeout=600)
        assert p.returncode == 0, err[-2000:]
        # MLflow's own two lines per run are silenced; our summary names the suite run's page
        assert "View run" not in out + err and "View experiment" not in out + err
        assert f"(browse: {server}/#/experiments/" in out
    client = MlflowClient(server)
    for name in ("team_a", "team_b"):
        exp = client.get_experiment_by_name(name)
        cells = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'cell'")
        assert len(cells) == 2 and {r.info.status for r in cells} == {"FINISHED"}
        parent = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'suite'")[0]
        arts = {a.path for a in client.list_artifacts(parent.info.run_id)}
        assert {"leaderboard.md", "cells.json"} <= arts  # artifacts went through the server
    # and the leaderboard reads back over HTTP
    r = subprocess.run([str(BIN / "bench"), "leaderboard", "team_a", "--tracking-uri", server],
                       capture_output=True, text=True, cwd=tmp_path, timeout=120)
    assert r.returncode == 0 and "real (reference)" in r.stdout


@pytest.mark.slow
def test_postgres_backed_server_with_worker_pools_and_compare(pg_server, tmp_path):
    """The production store: an MLflow server on PostgreSQL, two suites run at once, each with
    `--executor local --workers 2`, then a second run and `bench compare` over HTTP."""
    def run(name: str) -> subprocess.Popen:
        suite = tmp_path / f"{name}.yaml"
        suite.write_text(SUITE.format(name=name))
        env = child_env(BENCH_CACHE_DIR=str(tmp_path / f"cache_{name}"))
        return subprocess.Popen(
            [str(BIN / "bench"), "run", str(suite), "--tracking-uri", pg_server, "--no-progress",
             "--executor", "local", "--workers", "2"],
            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    procs = [run("pg_a"), run("pg_b")]
    for p in procs:
        out, err = p.communicate(timeout=900)
        assert p.returncode == 0, out[-2000:] + err[-2000:]
    client = MlflowClient(pg_server)
    for name in ("pg_a", "pg_b"):
        exp = client.get_experiment_by_name(name)
        cells = client.search_runs([exp.experiment_id], "tags.`bench.kind` = 'cell'")
        assert len(cells) == 2 and {r.info.status for r in cells} == {"FINISHED"}
    again = run("pg_a")
    out, err = again.communicate(timeout=900)
    assert again.returncode == 0, err[-2000:]
    r = subprocess.run([str(BIN / "bench"), "compare", "pg_a", "--tracking-uri", pg_server],
                       capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "0 regression(s)" in r.stdout, r.stdout[-2000:] + r.stderr[-2000:]
