"""What the commands print through: names from suites and stores shown with their control
characters as escapes (bench.core.safe_names.printable), `--out` files, and third-party
libraries quieted for the length of one command."""

from __future__ import annotations

import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from bench.core.safe_names import printable

_QUIET_ENV = {"GIT_PYTHON_REFRESH": "quiet", "MLFLOW_LOGGING_LEVEL": "WARNING",
              "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_QUIET_LOGGERS = ("alembic", "mlflow", "mlflow.store", "mlflow.tracking")


@contextmanager
def quiet_libraries() -> Iterator[None]:
    """MLflow's store migrations and git warnings are noise for a benchmark user: quiet for
    one command, then as they were (`main` is also called in-process, by tests and by users'
    scripts, whose own logging must not change under them). A variable the user set wins."""
    import warnings

    env = {k: os.environ.get(k) for k in _QUIET_ENV}
    levels = [(lg, lg.level) for lg in map(logging.getLogger, _QUIET_LOGGERS)]
    for k, v in _QUIET_ENV.items():
        os.environ.setdefault(k, v)
    for lg, _ in levels:
        lg.setLevel(logging.ERROR)
    show = warnings.showwarning

    def show_printable(message, category, filename, lineno, file=None, line=None):
        # a warning may quote a class folder or file name: its control characters as escapes
        show(printable(message, keep="\n"), category, filename, lineno, file, line)

    warnings.showwarning = show_printable
    try:
        yield
    finally:
        warnings.showwarning = show
        for lg, lv in levels:
            lg.setLevel(lv)
        for k, old in env.items():
            if old is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = old


def say(text: object = "") -> None:
    """print, with control characters in names shown as escapes (safe_names.printable)."""
    print(printable(text, keep="\n"))


def error(text: object) -> None:
    """`error: ...` on stderr, escaped as `say` does."""
    print(f"error: {printable(text, keep=chr(10))}", file=sys.stderr)


def emit(text: str, out: str | None) -> None:
    """`text` to the file `out` (and `wrote OUT` on stderr), else to stdout."""
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(printable(text, keep="\n"))  # names from the store never drive the terminal


def browse(report) -> str:
    """Where to look at a suite run: the MLflow UI's page of it (an http store, or
    BENCH_UI_URL), else the command that starts a UI on the store. MLflow's own per-run
    "View run" lines are silenced (bench.record.outage.MLFLOW_ENV_DEFAULTS): this is said once."""
    from urllib.parse import quote

    from bench.report.html import default_ui_url

    ui = default_ui_url(report.tracking_uri)
    if ui:
        return (f"{ui.rstrip('/')}/#/experiments/{quote(str(report.experiment_id), safe='')}"
                f"/runs/{quote(report.parent_run_id, safe='')}")
    return f"mlflow ui --backend-store-uri {report.tracking_uri}"
