"""Store faults get one clear message before any work: a read-only SQLite file, a tracking
server that does not answer (probed with a short timeout instead of minutes of retries)."""

import socket
import subprocess
import sys
import time

from conftest import TINY

from bench.cli import main


def test_read_only_sqlite_store_is_one_clear_message(write_suite, tmp_path, capsys):
    suite = write_suite(TINY + "cells:\n  - models: [real]\n    metrics: [gan_test]\n")
    db = tmp_path / "mlflow.db"
    uri = f"sqlite:///{db}"
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress"]) == 0
    capsys.readouterr()
    # read-only as SQLite itself sees it (file permissions do not stop root, who runs CI)
    ro = f"sqlite:///file:{db}?mode=ro&uri=true"
    r = subprocess.run([sys.executable, "-m", "bench", "run", str(suite), "--tracking-uri", ro,
                        "--no-progress", "--force"], capture_output=True, text=True, timeout=300)
    assert r.returncode == 2, r.stderr[-2000:]
    assert "refused to create the suite run" in r.stderr and "read-only" in r.stderr
    assert "Traceback" not in r.stderr + r.stdout and "INSERT INTO" not in r.stderr + r.stdout


def test_an_unreachable_server_is_reported_in_seconds(write_suite, capsys):
    with socket.socket() as s:  # a free loopback port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    suite = write_suite(TINY)
    t0 = time.perf_counter()
    assert main(["run", str(suite), "--tracking-uri", f"http://127.0.0.1:{port}", "--no-progress"]) == 2
    assert time.perf_counter() - t0 < 30
    assert "does not answer" in capsys.readouterr().err


def test_probe_passes_for_sqlite_uris():
    from bench.record.tracking import probe

    probe("sqlite:///x.db")  # no network for a file store
