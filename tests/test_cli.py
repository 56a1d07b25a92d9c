"""The command line as a user meets it: clear errors without tracebacks, no MLflow run for
a bad suite, `bench list`, `bench leaderboard`, and `mlflow run` on the MLproject."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from conftest import TINY, child_env
from mlflow import MlflowClient

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent


def test_validate_ok(write_suite, capsys):
    assert main(["validate", str(write_suite(TINY))]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "4 cell run(s)" in out


def test_bad_suite_exits_2_without_traceback_and_creates_no_run(write_suite, tmp_path, capsys):
    bad = write_suite(TINY.replace("source: digits", "source: digts"))
    uri = f"sqlite:///{tmp_path}/store.db"
    assert main(["run", str(bad), "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err
    assert "Did you mean 'digits'" in err and "Traceback" not in err
    assert not (tmp_path / "store.db").exists()


def test_bad_suite_through_the_real_console_script(write_suite, tmp_path):
    bad = write_suite("name: x\nmodels: {}\n")
    r = subprocess.run([str(BIN / "bench"), "validate", str(bad)], capture_output=True, text=True,
                       cwd=tmp_path)
    assert r.returncode == 2
    assert "datasets: required option 'datasets' missing" in r.stderr and "Traceback" not in r.stderr


def test_list_names_every_registered_plugin(capsys):
    assert main(["list"]) == 0
    out = capsys.readouterr().out
    for name in ("digits", "reference", "samples", "cgan", "gan_train", "gan_test", "small_cnn", "epochs"):
        assert name in out


def test_run_then_leaderboard(write_suite, tmp_path, capsys):
    text = TINY.replace("{epochs: 3}", "{epochs: 6}") + "cells:\n  - metrics: [gan_test]\n"
    suite = write_suite(text)
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "gan_test_acc →real_val_acc" in out and "2 finished" in out
    csv = tmp_path / "board.csv"
    assert main(["leaderboard", str(suite), "--tracking-uri", uri, "--format", "csv", "--out", str(csv)]) == 0
    lines = csv.read_text().splitlines()
    assert lines[0].startswith("dataset,model,reference,value,role,ideal,aspect,target,primary,mean")
    assert any(line.startswith("digits,real,True,gan_test_acc") for line in lines)
    assert main(["leaderboard", "tiny", "--tracking-uri", uri]) == 0
    md = capsys.readouterr().out
    assert md.index("real (reference)") < md.index("noisy")  # sorted by gan_test_acc, higher first
    assert main(["leaderboard", "nope", "--tracking-uri", uri]) == 2


def test_failed_cell_exits_1(write_suite, tmp_path):
    text = TINY + "  broken: {source: test_failing}\ncells:\n  - models: [real]\n    metrics: [broken]\n"
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["run", str(write_suite(text)), "--tracking-uri", uri, "--no-progress"]) == 1


@pytest.mark.slow
def test_mlflow_run_on_the_mlproject(tmp_path, sqlite_template):
    """`mlflow run . -P suite=... --env-manager local`: the suite attaches to MLflow's run."""
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY.replace("{epochs: 3}", "{epochs: 2}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    if sqlite_template is not None:  # a migrated store (the subprocesses see no hook): 5-8 s
        shutil.copyfile(sqlite_template, tmp_path / "mlflow.db")
    # this process's share of the cores (with_threads.sh's `auto` keeps BENCH_THREADS)
    env = child_env(MLFLOW_TRACKING_URI=uri, PATH=f"{BIN}:{os.environ['PATH']}",
                    BENCH_CACHE_DIR=str(tmp_path / "cache"))
    r = subprocess.run([str(BIN / "mlflow"), "run", str(ROOT), "-P", f"suite={suite}",
                        "--env-manager", "local", "--experiment-name", "proj"],
                       capture_output=True, text=True, env=env, cwd=tmp_path, timeout=600)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("proj")
    (outer,) = client.search_runs([exp.experiment_id])
    assert outer.info.status == "FINISHED" and outer.data.params["suite"] == str(suite)
    # the cells land in the suite's own experiment, where `bench leaderboard|compare` look
    suite_exp = client.get_experiment_by_name("tiny")
    runs = client.search_runs([suite_exp.experiment_id])
    parents = [x for x in runs if "mlflow.parentRunId" not in x.data.tags]
    kids = [x for x in runs if "mlflow.parentRunId" in x.data.tags]
    assert len(parents) == 1 and len(kids) == 1
    parent = parents[0]
    assert parent.info.status == "FINISHED" and parent.info.run_name.startswith("tiny 20")
    assert outer.data.tags["bench.suite_run_id"] == parent.info.run_id
    assert parent.data.tags["bench.suite"] == "tiny"
    assert kids[0].data.metrics["gan_test_acc"] > 0.5
    # bench sees what mlflow run did: the leaderboard reads it, a re-run is all cached
    assert main(["leaderboard", str(suite), "--tracking-uri", uri]) == 0
    r = subprocess.run([str(BIN / "bench"), "run", str(suite), "--no-progress"], capture_output=True,
                       text=True, env=env, cwd=tmp_path, timeout=300)
    assert r.returncode == 0 and "1 cached" in r.stdout + r.stderr, r.stdout[-2000:] + r.stderr[-2000:]
    # the validate and leaderboard entry points
    r = subprocess.run([str(BIN / "mlflow"), "run", str(ROOT), "-e", "leaderboard", "-P", f"suite={suite}",
                        "-P", f"out={tmp_path / 'lb.md'}", "--env-manager", "local",
                        "--experiment-name", "proj"], capture_output=True, text=True, env=env,
                       cwd=tmp_path, timeout=300)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "gan_test_acc" in (tmp_path / "lb.md").read_text()
    lb_run = client.search_runs([exp.experiment_id], "params.format = 'markdown'")[0]
    assert "leaderboard.md" in {a.path for a in client.list_artifacts(lb_run.info.run_id)}


def _parse(*argv):
    from bench.cli import build_parser

    return build_parser().parse_args(["run", "suite.yaml", *argv])


def test_executor_flags_override_the_suites_executor(write_suite):
    from bench.cli.parser import executor_overrides
    from bench.config.suite import load_suite
    from bench.core.errors import BenchError
    from bench.workflows.prepare import build_executor

    def _executor(args, suite):  # what `bench run` and `bench nightly` build
        return build_executor(suite, args.executor, executor_overrides(args))

    suite = load_suite(write_suite(TINY + "executor: {name: slurm, time_min: 5, cluster: local}\n"))
    ex = _executor(_parse("--slurm-time", "9", "--gpus-per-task", "2", "--workers", "3"), suite)
    assert ex.name == "slurm" and ex.options.model_dump(include={"time_min", "gpus_per_task", "cluster"}) \
        == {"time_min": 9, "gpus_per_task": 2, "cluster": "local"}  # --workers: not slurm's
    ex = _executor(_parse("--executor", "local", "--workers", "2"), suite)  # another executor:
    assert ex.name == "local" and ex.options.workers == 2  # its own defaults, not slurm's options
    ex = _executor(_parse("--executor", "ray", "--gpus-per-task", "0.5"), suite)
    assert ex.name == "ray" and ex.options.num_gpus == 0.5 and ex.options.address is None
    with pytest.raises(BenchError, match=r"executor 'slurm': \('time_min',\): Input should be greater"):
        _executor(_parse("--slurm-time", "0"), suite)


def test_cli_choices_come_from_the_registries_and_format_constants():
    import importlib

    from bench.cli.parser import LISTS, build_parser
    from bench.executors import EXECUTORS
    from bench.report import compare, leaderboard

    commands = build_parser()._subparsers._group_actions[0].choices

    def choices(command, dest):
        return next(a.choices for a in commands[command]._actions if a.dest == dest)

    assert choices("run", "executor") == EXECUTORS.names()
    assert tuple(choices("leaderboard", "format")) == leaderboard.FORMATS
    assert tuple(choices("compare", "format")) == compare.FORMATS
    assert list(choices("list", "kind")) == list(LISTS)
    for kind, where in LISTS.items():
        module, _, attr = where.partition(":")
        assert getattr(importlib.import_module(module), attr).kind == kind


def test_list_features_and_executors(capsys):
    assert main(["list", "features"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("inception", "timm", "classifier")) and "digits" not in out
    assert main(["list", "executors"]) == 0
    out = capsys.readouterr().out
    assert all(name in out for name in ("local", "ray", "slurm", "(`bench run --workers`)"))


def test_main_leaves_the_callers_logging_and_environment_as_they_were(monkeypatch):
    """`bench` quiets MLflow's loggers for its own command only: called in-process (a
    script, a notebook), it hands them back as they were."""
    import logging
    import os

    monkeypatch.delenv("MLFLOW_LOGGING_LEVEL", raising=False)
    lg = logging.getLogger("mlflow")
    monkeypatch.setattr(lg, "level", logging.DEBUG)
    assert main(["list", "datasets"]) == 0
    assert lg.level == logging.DEBUG and "MLFLOW_LOGGING_LEVEL" not in os.environ
