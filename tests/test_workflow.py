""".github/workflows/nightly.yml against the repository: what it installs, caches, runs and
uploads exists and fits together; its `bench` commands parse with the CLI's own parser, and
(slow) its run steps work, twice, on a tiny suite with a SQLite store, as on the runner."""

import os
import re
import shlex
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest
import yaml
from conftest import TINY

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
WORKFLOW = ROOT / ".github" / "workflows" / "nightly.yml"
SUITE = "suites/nightly.yaml"
CPU_INDEX = "https://download.pytorch.org/whl/cpu"


@pytest.fixture(scope="module")
def wf() -> dict:
    return yaml.safe_load(WORKFLOW.read_text())


def _job(wf: dict) -> dict:
    (job,) = wf["jobs"].values()
    return job


def _step(wf: dict, *, name: str | None = None, uses: str | None = None) -> dict:
    for s in _job(wf)["steps"]:
        if (name and s.get("name") == name) or (uses and s.get("uses", "").startswith(uses)):
            return s
    raise AssertionError(f"no step {name or uses}")


def _expr_free(text: str) -> str:
    """`${{ ... }}` expressions replaced by a placeholder word (what a shell parser can read)."""
    return re.sub(r"\$\{\{.*?\}\}", "EXPR", text)


def _commands(wf: dict, program: str) -> list[list[str]]:
    """Every command line of the run steps that starts with `program`."""
    out = []
    for s in _job(wf)["steps"]:
        for line in _expr_free(s.get("run", "")).splitlines():
            line = line.split(" || ")[0].strip()
            if line.startswith(program + " "):
                out.append(shlex.split(line))
    return out


def test_it_runs_on_a_schedule_and_by_hand(wf):
    on = wf.get("on", wf.get(True))  # YAML 1.1 reads the key `on` as true
    (cron,) = [c["cron"] for c in on["schedule"]]
    assert len(cron.split()) == 5
    assert "workflow_dispatch" in on
    assert _job(wf)["env"]["BENCH_THREADS"] == "${{ inputs.threads }}"
    assert "threads" in on["workflow_dispatch"]["inputs"]


def test_python_is_the_projects(wf):
    version = str(_step(wf, uses="actions/setup-python")["with"]["python-version"])
    spec = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["requires-python"]
    assert spec == ">=3.11" and version == "3.11"
    assert str(yaml.safe_load((ROOT / "python_env.yaml").read_text())["python"]) == version


def test_install_uses_the_constraints_and_the_cpu_index(wf):
    pips = [c for c in _commands(wf, "python") if c[1:4] == ["-m", "pip", "install"]]
    assert pips and all(c[c.index("-c") + 1] == "constraints.txt" for c in pips)
    assert (ROOT / "constraints.txt").is_file()
    torch_cmd = next(c for c in pips if "torch" in c)
    assert torch_cmd[torch_cmd.index("--index-url") + 1] == CPU_INDEX and "--no-deps" in torch_cmd
    project = next(c for c in pips if any(w.startswith(".[") for w in c))
    assert pips.index(project) > pips.index(torch_cmd)
    extras = next(w for w in project if w.startswith(".["))[2:-1].split(",")
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    assert set(extras) <= set(declared)
    pins = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", (ROOT / "constraints.txt").read_text(), re.M))
    assert {"torch", "torchvision"} <= set(pins)


def test_the_store_and_the_cache_are_carried_between_runs(wf):
    env = _job(wf)["env"]
    restore = _step(wf, uses="actions/cache/restore")["with"]
    save_step = _step(wf, uses="actions/cache/save")
    save = save_step["with"]
    paths = set(restore["path"].split())
    assert paths == set(save["path"].split())
    # what is cached is where the store and the cache are
    assert "format('sqlite:///{0}/mlflow.db', github.workspace)" in env["MLFLOW_TRACKING_URI"]
    assert "mlflow.db" in paths and "mlruns" in paths  # a SQLite store keeps artifacts in ./mlruns
    assert env["BENCH_CACHE_DIR"] == "${{ github.workspace }}/.bench_cache" and ".bench_cache" in paths
    # a key of its own every run, and the newest earlier one restored by prefix
    assert restore["key"] == save["key"] and "github.run_id" in save["key"]
    (prefix,) = restore["restore-keys"].split()
    assert save["key"].startswith(prefix)
    # saved after a regression too (the next night compares with it)
    assert save_step["if"] in ("${{ !cancelled() }}", "always()", "${{ always() }}")
    steps = _job(wf)["steps"]
    nightly = _step(wf, name="bench nightly")
    assert steps.index(_step(wf, uses="actions/cache/restore")) < steps.index(nightly) < steps.index(save_step)


def test_bench_commands_parse_with_the_cli_and_name_files_that_exist(wf):
    from bench.cli import build_parser

    cmds = _commands(wf, "bench")
    assert {c[1] for c in cmds} >= {"nightly", "leaderboard", "compare"}
    for c in cmds:
        args = build_parser().parse_args(c[1:])  # SystemExit on an unknown flag or choice
        assert args.suite == SUITE and (ROOT / SUITE).is_file()


def test_the_nightly_step_fails_the_job_on_a_regression(wf):
    step = _step(wf, name="bench nightly")
    assert "continue-on-error" not in step and "if" not in step
    (cmd,) = [c for c in _commands(wf, "bench") if c[1] == "nightly"]
    assert not re.search(r"\|\|\s*(true|:|exit 0)", step["run"])
    assert "set +e" not in step["run"]
    # the CLI says what the step relies on (exit 1 on a regression), and has the step's flags
    r = subprocess.run([str(BIN / "bench"), "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "exit 1 on a regression" in " ".join(r.stdout.split())
    r = subprocess.run([str(BIN / "bench"), "nightly", "--help"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0
    for flag in (w for w in cmd if w.startswith("--")):
        assert flag in r.stdout, flag


def test_the_boards_are_uploaded(wf):
    upload = _step(wf, uses="actions/upload-artifact")
    assert upload.get("if") == "${{ !cancelled() }}"
    folder = upload["with"]["path"].rstrip("/")
    outs = [c[c.index("--out") + 1] for c in _commands(wf, "bench") if "--out" in c]
    assert outs and all(Path(o).parent.as_posix() == folder for o in outs)
    kinds = {Path(o).suffix for o in outs}
    assert {".md", ".html"} <= kinds


def _run_steps(wf: dict, names: list[str], env: dict[str, str], cwd: Path) -> list[subprocess.CompletedProcess]:
    out = []
    for name in names:
        script = _step(wf, name=name)["run"].replace(SUITE, str(cwd / "tiny.yaml"))
        # GitHub runs `run:` with `bash -e {0}`
        out.append(subprocess.run(["bash", "-e", "-c", script], capture_output=True, text=True,
                                  env=env, cwd=cwd, timeout=900))
    return out


@pytest.mark.slow
def test_the_run_steps_work_twice_on_a_tiny_suite(wf, tmp_path):
    """The workflow's own `bench nightly` and boards steps, as the runner runs them (the
    workspace as the working directory, the SQLite store there), on a one-cell suite: the first
    night has nothing to compare, the second compares with the first."""
    suite = tmp_path / "tiny.yaml"
    suite.write_text(TINY.replace("{epochs: 3}", "{epochs: 1}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n")
    summary = tmp_path / "summary.md"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MLFLOW_", "BENCH_"))}
    env |= {"PATH": f"{BIN}:{env['PATH']}", "GITHUB_STEP_SUMMARY": str(summary),
            "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path}/mlflow.db",
            "BENCH_CACHE_DIR": str(tmp_path / ".bench_cache"), "BENCH_THREADS": "1"}
    first, boards = _run_steps(wf, ["bench nightly", "boards"], env, tmp_path)
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    assert "nothing to compare yet" in first.stdout
    assert boards.returncode == 0, boards.stdout[-2000:] + boards.stderr[-2000:]
    assert "compare: exit 2" in boards.stdout  # no earlier night: told, not failed
    assert (tmp_path / "boards" / "leaderboard.md").is_file()
    assert (tmp_path / "boards" / "leaderboard.html").is_file()
    # what the cache steps carry is there
    assert (tmp_path / "mlflow.db").is_file() and (tmp_path / "mlruns").is_dir()
    assert (tmp_path / ".bench_cache").is_dir()

    second, boards = _run_steps(wf, ["bench nightly", "boards"], env, tmp_path)
    assert second.returncode in (0, 1), second.stdout[-2000:] + second.stderr[-2000:]
    assert "base " in second.stdout and "-> new " in second.stdout
    assert boards.returncode == 0, boards.stdout[-2000:] + boards.stderr[-2000:]
    assert (tmp_path / "boards" / "compare.md").is_file()
    assert "gan_test_acc" in summary.read_text()
