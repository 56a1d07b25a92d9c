"""Command-line mistakes a user makes: each exits 2 with one line on stderr that names the fix,
no traceback, and before any work (no store created, no cell run)."""

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from tiny_suites import INSTANT

from bench.cli import main

BIN = Path(sys.executable).parent



# `fast` below: refused before any work (no store, no suite run), so in `make test-fast`
# although they call the CLI's `main` (tests/conftest.py)
def refused(capsys, argv: list[str], *needles: str) -> str:
    """`bench ARGV` exits 2 with one stderr line holding every needle; returns the line."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    assert len(err.splitlines()) == 1, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def suite(write_suite):
    return str(write_suite(INSTANT))


@pytest.fixture
def store(suite, tmp_path, capsys):
    """A SQLite store with two suite runs of the instant suite."""
    uri = f"sqlite:///{tmp_path}/runs.db"
    for _ in range(2):
        assert main(["run", suite, "--tracking-uri", uri, "--force", "--no-progress"]) == 0
    capsys.readouterr()
    return uri


@pytest.mark.parametrize("command", ["run", "validate", "nightly", "leaderboard", "compare"])
@pytest.mark.fast
def test_a_mistyped_uri_scheme_is_refused_before_any_work(command, suite, tmp_path, capsys):
    refused(capsys, [command, suite, "--tracking-uri", "htp://localhost:5000"],
            "unknown scheme 'htp'", "Did you mean 'http'?")


@pytest.mark.fast
def test_a_mistyped_scheme_in_the_environment_or_the_suite_is_refused(write_suite, monkeypatch, capsys):
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "sqlit:///x.db")
    refused(capsys, ["run", str(write_suite(INSTANT))], "MLFLOW_TRACKING_URI", "Did you mean 'sqlite'?")
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    bad = write_suite(INSTANT + "tracking_uri: htps://server:5000\n", "remote.yaml")
    refused(capsys, ["run", str(bad)], "the suite's tracking_uri", "Did you mean 'https'?")
    assert not Path("x.db").exists() and not Path("mlflow.db").exists()


@pytest.mark.parametrize("uri", ["http://localhost:5000", "https://mlflow.example.org", "sqlite:///mlflow.db",
                                 "sqlite:////abs/mlflow.db", "file:///tmp/mlruns", "mlruns", "/tmp/mlruns",
                                 "postgresql+psycopg2://u:p@db/mlflow", "mysql://u@db/mlflow",
                                 "databricks", "databricks://profile", r"C:\mlruns"])
def test_every_uri_form_mlflow_opens_is_accepted(uri):
    from bench.workflows.store import check_tracking_uri, local_store

    assert check_tracking_uri(uri) == uri
    if uri.startswith(("http", "postgresql", "mysql", "databricks")):
        assert local_store(uri) is None  # a server: never checked for a file


@pytest.mark.fast
def test_a_sqlite_uri_with_two_slashes_is_refused(suite, capsys):
    refused(capsys, ["run", suite, "--tracking-uri", "sqlite://runs.db"], "sqlite:///mlflow.db")


def test_the_mistyped_scheme_through_the_console_script(suite, tmp_path):
    r = subprocess.run([str(BIN / "bench"), "leaderboard", suite, "--tracking-uri", "htp://localhost:5000"],
                       capture_output=True, text=True, cwd=tmp_path)
    assert r.returncode == 2 and "Traceback" not in r.stderr
    assert r.stderr.strip().count("\n") == 0 and "Did you mean 'http'?" in r.stderr


@pytest.mark.parametrize("command", ["run", "nightly", "leaderboard", "compare"])
@pytest.mark.fast
def test_out_in_a_missing_folder_is_refused_before_any_work(command, suite, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/fresh.db"
    refused(capsys, [command, suite, "--tracking-uri", uri, "--out", "/nonexistent/dir/board.md"],
            "--out /nonexistent/dir/board.md", "mkdir -p /nonexistent/dir")
    assert not (tmp_path / "fresh.db").exists()  # nothing ran, no store was created


@pytest.mark.fast
def test_out_that_is_a_directory_is_refused(suite, tmp_path, capsys):
    refused(capsys, ["run", suite, "--out", str(tmp_path)], "is a directory", "board.md")


@pytest.mark.parametrize("command", ["run", "validate", "leaderboard", "compare"])
@pytest.mark.fast
def test_a_directory_given_as_the_suite_is_named_a_directory(command, write_suite, tmp_path, capsys):
    write_suite(INSTANT, "quick.yaml")
    refused(capsys, [command, str(tmp_path)], "is a directory, not a suite file", "quick.yaml")


@pytest.mark.parametrize("command", ["leaderboard", "compare"])
@pytest.mark.fast
def test_reading_a_missing_sqlite_store_does_not_create_it(command, suite, tmp_path, capsys):
    refused(capsys, [command, suite, "--tracking-uri", f"sqlite:///{tmp_path}/nope.db"],
            f"{tmp_path}/nope.db", "does not exist")
    assert not (tmp_path / "nope.db").exists()
    # the default store, from another folder than `bench run`'s
    refused(capsys, [command, "tiny"], "mlflow.db", "does not exist")
    assert not Path("mlflow.db").exists()


def test_an_unknown_sort_value_is_refused_with_did_you_mean(suite, store, capsys):
    refused(capsys, ["leaderboard", suite, "--tracking-uri", store, "--sort", "mean_pixl"],
            "--sort mean_pixl", "Did you mean 'mean_pixel'?")
    assert main(["leaderboard", suite, "--tracking-uri", store, "--sort", "mean_pixel"]) == 0


def test_an_unknown_threshold_name_is_refused_with_did_you_mean(suite, store, capsys):
    refused(capsys, ["compare", suite, "--tracking-uri", store, "--threshold-for", "mean_pixl=0.1"],
            "--threshold-for mean_pixl", "Did you mean 'mean_pixel'?")
    refused(capsys, ["compare", suite, "--tracking-uri", store, "--threshold-for", "mean_pixel"],
            "VALUE=FRACTION")
    assert main(["compare", suite, "--tracking-uri", store, "--threshold-for", "mean_pixel=0.1"]) == 0


@pytest.mark.fast
def test_nightly_refuses_an_unknown_threshold_name_before_running(suite, tmp_path, capsys):
    refused(capsys, ["nightly", suite, "--tracking-uri", f"sqlite:///{tmp_path}/n.db",
                     "--threshold-for", "mean_pixl=0.1"], "Did you mean 'mean_pixel'?")
    assert not (tmp_path / "n.db").exists()


@pytest.mark.parametrize("flags, needle", [
    (["--history"], "--history and --model go together"),
    (["--model", "real"], "--history and --model go together"),
    (["--model", "real", "--history", "--run-id", "abc"], "drop --run-id"),
    (["--model", "real", "--history", "--format", "html"], "use --format markdown|csv|json|latex"),
])
@pytest.mark.fast
def test_leaderboard_history_flags_are_checked_before_the_store_is_read(flags, needle, suite, tmp_path,
                                                                        capsys):
    refused(capsys, ["leaderboard", suite, "--tracking-uri", f"sqlite:///{tmp_path}/nope.db", *flags],
            needle)


# ---------------------------------------------------------------- registry URIs at validate time
REGISTERED = """\
name: registry
datasets:
  digits: {source: digits}
models:
  champion: {source: mlflow, uri: "URI"}
metrics:
  test_constant: {}
"""


@pytest.fixture
def registry(tmp_path):
    """A store with model `digits-cgan` (versions 1 and 2, alias `champion` -> 2)."""
    uri = f"sqlite:///{tmp_path}/registry.db"
    client = MlflowClient(uri)
    client.create_registered_model("digits-cgan")
    for _ in range(2):
        client.create_model_version("digits-cgan", source=str(tmp_path / "model"))
    client.set_registered_model_alias("digits-cgan", "champion", "2")
    return uri


@pytest.mark.parametrize("uri", ["models:/digits-cgan/2", "models:/digits-cgan@champion",
                                 "models:/digits-cgan/latest"])
def test_validate_finds_registered_models(uri, registry, write_suite, capsys):
    path = write_suite(REGISTERED.replace("URI", uri))
    assert main(["validate", str(path), "--tracking-uri", registry]) == 0
    assert "1 MLflow model(s) found" in capsys.readouterr().out


@pytest.mark.parametrize(("uri", "needles"), [
    ("models:/digits-cgan/7", ("no version 7", "versions: 1, 2")),
    ("models:/digits-cgan@champoin", ("no alias 'champoin'", "Did you mean 'champion'?")),
    ("models:/digits-gan/1", ("no registered model 'digits-gan'", "Did you mean 'digits-cgan'?")),
    ("runs:/0123456789abcdef/cgan", ("runs:/0123456789abcdef/cgan", "is not in the store")),
])
def test_validate_refuses_missing_registered_models(uri, needles, registry, write_suite, capsys):
    path = write_suite(REGISTERED.replace("URI", uri))
    refused(capsys, ["validate", str(path), "--tracking-uri", registry], "models.champion", *needles)


def test_validate_uses_the_environment_store_and_never_creates_one(registry, write_suite, monkeypatch,
                                                                   tmp_path, capsys):
    path = str(write_suite(REGISTERED.replace("URI", "models:/digits-cgan@champion")))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry)
    assert main(["validate", path]) == 0
    monkeypatch.delenv("MLFLOW_TRACKING_URI")
    refused(capsys, ["validate", path], "mlflow.db", "does not exist")  # the default store
    assert not Path("mlflow.db").exists()


def test_run_refuses_a_missing_registered_model_before_any_work(registry, write_suite, tmp_path, capsys):
    path = str(write_suite(REGISTERED.replace("URI", "models:/digits-cgan/9")))
    refused(capsys, ["run", path, "--tracking-uri", registry], "no version 9")
    client = MlflowClient(registry)
    assert client.get_experiment_by_name("registry") is None  # no suite run was created


@pytest.mark.fast
def test_a_bare_sqlite_file_name_is_given_its_scheme(suite, capsys):
    refused(capsys, ["run", suite, "--tracking-uri", "x.db"], "sqlite:///x.db")
    assert not Path("x.db").exists()


@pytest.mark.fast
def test_image_size_on_arrays_is_refused_not_ignored(tmp_path, capsys):
    import numpy as np

    np.savez(tmp_path / "r.npz", images=np.zeros((20, 8, 8), np.uint8))
    refused(capsys, ["score", str(tmp_path / "r.npz"), str(tmp_path / "r.npz"), "--image-size", "16"],
            "--image-size", "resizes folder images only")


@pytest.mark.parametrize("bad", ["0", "-2", "x"])
@pytest.mark.fast
def test_threads_must_be_positive(bad, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["score", str(tmp_path), str(tmp_path), "--threads", bad])
    assert e.value.code == 2 and "expected a whole number >= 1" in capsys.readouterr().err
