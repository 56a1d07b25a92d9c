"""A failed cell's console line: a user mistake in full (model, file, fix), a crash as its
last traceback line pointing at error.txt, never terminal colour codes."""

from bench.run.runner import user_message


def test_user_mistakes_are_shown_whole_and_crashes_by_their_last_line():
    mistake = "model 'mine': samples/mine.npz: labels 10..12 out of range\nthe dataset has classes 0..9"
    assert user_message(mistake) == mistake.replace("\n", "\n    ")
    crash = 'Traceback (most recent call last):\n  File "x.py", line 1\nKeyError: 101\n'
    assert user_message(crash) == "KeyError: 101  (traceback: error.txt of the cell's run)"
    assert user_message("\x1b[31mRuntimeError\x1b[0m: boom") == "RuntimeError: boom"


def test_compare_with_a_single_suite_run_says_so(write_suite, tmp_path, capsys):
    from bench.cli import main

    suite = write_suite("""\
name: once
datasets:
  digits: {source: digits}
models:
  r: {source: reference, kind: real}
metrics:
  test_constant: {}
""")
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress"]) == 0
    capsys.readouterr()
    assert main(["compare", str(suite), "--tracking-uri", uri]) == 2
    assert "fewer than two finished runs" in capsys.readouterr().err
    assert main(["nightly", str(suite), "--tracking-uri", uri, "--no-progress", "--history", "0"]) == 0


def test_callable_targets_can_be_restricted_for_shared_runners(monkeypatch):
    import pytest

    from bench.core.errors import BenchError
    from bench.models.callable_model import resolve_target

    assert resolve_target("os:getcwd")  # no allow-list: a suite is code, like a Makefile
    monkeypatch.setenv("BENCH_ALLOWED_MODULES", "bench.models, torchvision.models")
    with pytest.raises(BenchError, match="'os' is not in BENCH_ALLOWED_MODULES"):
        resolve_target("os:system")
    assert resolve_target("bench.models.cgan:CGAN")
