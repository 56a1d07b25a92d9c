"""MLproject: every entry point takes `threads`, and `mlflow run -P threads=N` reaches bench
(scripts/with_threads.sh); python_env.yaml installs the tested versions."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WRAPPER = ROOT / "scripts" / "with_threads.sh"
THREAD_VARS = ("BENCH_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS")


def _project():
    from mlflow.projects._project_spec import load_project

    return load_project(str(ROOT))


def test_every_entry_point_takes_threads_and_starts_through_the_wrapper(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)  # MLflow resolves `path` parameters from the working directory
    spec = yaml.safe_load((ROOT / "MLproject").read_text())
    project = _project()
    assert set(project._entry_points) == set(spec["entry_points"])
    for name, ep in project._entry_points.items():
        assert "threads" in ep.parameters, name
        assert ep.parameters["threads"].default == "auto", name
        # the command MLflow runs, with its own quoting of the value
        cmd = ep.compute_command({"threads": "3"}, str(tmp_path))
        assert cmd.startswith("bash scripts/with_threads.sh 3 python -m bench "), (name, cmd)
        cmd = ep.compute_command({}, str(tmp_path))
        assert cmd.startswith("bash scripts/with_threads.sh auto python -m bench "), (name, cmd)


def test_entry_point_commands_parse_with_the_cli(tmp_path, monkeypatch):
    """Each entry point's bench command line (defaults filled in) is one the CLI accepts."""
    import shlex

    monkeypatch.chdir(ROOT)
    from bench.cli import build_parser

    for name, ep in _project()._entry_points.items():
        words = shlex.split(ep.compute_command({}, str(tmp_path)))
        argv = words[words.index("bench") + 1:]
        args = build_parser().parse_args(argv)
        assert args.command == argv[0], name
        for p in ep.parameters.values():
            if p.type == "path":
                assert (ROOT / p.default).is_file(), (name, p.name, p.default)


def _wrapped(threads: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    code = f"import os; print(' '.join(os.environ.get(v, '-') for v in {THREAD_VARS!r}))"
    base = {k: v for k, v in os.environ.items() if k not in THREAD_VARS}
    return subprocess.run(["bash", str(WRAPPER), threads, sys.executable, "-c", code],
                          capture_output=True, text=True, env={**base, **(env or {})}, timeout=60)


def test_the_wrapper_sets_every_thread_variable():
    r = _wrapped("3")
    assert r.returncode == 0 and r.stdout.split() == ["3"] * 4, r.stderr


@pytest.mark.parametrize("value", ["auto", ""])
def test_auto_keeps_the_environment(value):
    assert _wrapped(value).stdout.split() == ["-"] * 4
    assert _wrapped(value, {"BENCH_THREADS": "2"}).stdout.split() == ["2", "-", "-", "-"]


@pytest.mark.parametrize("value", ["0", "-1", "two", "1.5", "07"])
def test_the_wrapper_refuses_a_bad_value_with_exit_2(value):
    r = _wrapped(value)
    assert r.returncode == 2 and r.stdout == ""
    assert r.stderr.startswith("error: threads:") and value in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("code", [0, 1, 2])
def test_the_wrapper_keeps_benchs_exit_code_where_mlflow_run_would_lose_it(tmp_path, code):
    out = tmp_path / "code"
    r = subprocess.run(["bash", str(WRAPPER), "auto", sys.executable, "-c", f"raise SystemExit({code})"],
                       capture_output=True, text=True, timeout=60,
                       env={"PATH": os.environ["PATH"], "BENCH_EXIT_CODE_FILE": str(out)})
    assert r.returncode == code and out.read_text().strip() == str(code)


def test_python_env_installs_the_tested_versions():
    env = yaml.safe_load((ROOT / "python_env.yaml").read_text())
    deps = env["dependencies"]
    assert "-c constraints.txt" in deps and (ROOT / "constraints.txt").is_file()
    assert any(d.startswith("-e .") for d in deps)


@pytest.mark.slow
def test_mlflow_run_threads_reaches_the_cells(tmp_path, sqlite_template):
    """`mlflow run . -P threads=1`: the cell ran with one thread (its `bench.threads` tag)."""
    from mlflow import MlflowClient

    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY.replace("{epochs: 3}", "{epochs: 1}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    if sqlite_template is not None:  # a migrated store (the subprocesses see no hook): 5-8 s
        shutil.copyfile(sqlite_template, tmp_path / "mlflow.db")
    env = {**{k: v for k, v in os.environ.items() if k not in THREAD_VARS},
           "MLFLOW_TRACKING_URI": uri, "PATH": f"{BIN}:{os.environ['PATH']}",
           "BENCH_CACHE_DIR": str(tmp_path / "cache")}
    r = subprocess.run([str(BIN / "mlflow"), "run", str(ROOT), "-P", f"suite={suite}", "-P", "threads=1",
                        "--env-manager", "local", "--experiment-name", "proj"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    client = MlflowClient(uri)
    (outer,) = client.search_runs([client.get_experiment_by_name("proj").experiment_id])
    assert outer.data.params["threads"] == "1"
    runs = client.search_runs([client.get_experiment_by_name("tiny").experiment_id])
    cells = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert len(cells) == 1 and cells[0].data.tags["bench.threads"] == "1"

    # a bad value: exit 2 before any work, one line
    r = subprocess.run([str(BIN / "mlflow"), "run", str(ROOT), "-e", "validate", "-P", f"suite={suite}",
                        "-P", "threads=0", "--env-manager", "local", "--experiment-name", "proj"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode != 0 and "error: threads: expected 'auto' or a positive number" in r.stderr
