"""Suite -> MLflow: resume from finished runs, recover stale ones, isolate failures,
survive Ctrl-C; the cells themselves run through an executor (bench/executors/).

One parent run per suite invocation (or the run `mlflow run` created, which we attach to),
one child run per cell and repeat. Work shared between cells (datasets, generators, the
real-trained classifier) is built once per process and cached on disk across processes.
"""

from __future__ import annotations

import json
import os
import re
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, replace
from datetime import UTC, datetime

from tqdm.auto import tqdm

from bench.config.suite import Cell, Suite, declared_pairs
from bench.core import allowlist
from bench.core.safe_names import printable
from bench.executors import EXECUTORS, CellTimeout, Executor, check_store
from bench.executors.worker import CellOutcome, Shared, WorkerEnv
from bench.infra.cache import Cache
from bench.record.cell_record import SuiteRunRecord
from bench.record.lease import Lease
from bench.record.suite_log import MlflowSuiteLog, SuiteLog
from bench.record.tracking import Tracker, git_commit, package_version, resolve_uri
from bench.record.values import Measured, is_interval
from bench.record.writer import Keeper, suite_fault


@dataclass
class SuiteReport:
    suite: Suite
    parent_run_id: str
    tracking_uri: str
    experiment_id: str
    outcomes: list[CellOutcome]
    leaderboard: str = ""
    interrupted: bool = False
    terminated: bool = False  # interrupted by SIGTERM (a scheduler, `timeout`, `kill`)
    local: Shared | None = None  # the state of the cells run in this process (cache, store)

    def count(self, status: str) -> int:
        return sum(o.status == status for o in self.outcomes)

    @property
    def ok(self) -> bool:
        # "kept": computed, its record still on disk waiting for the store (bench.record.spool)
        return not self.interrupted and self.count("failed") == 0 and self.count("kept") == 0

    def summary(self) -> str:
        import pandas as pd

        rows = [{"cell": o.cell.label, "status": o.status, "seconds": round(o.seconds, 1),
                 "run_id": o.run_id or "", "error": user_message(o.error).splitlines()[0][:80] if o.error else ""}
                for o in self.outcomes]
        head = (f"{self.count('finished')} finished, {self.count('cached')} cached, "
                f"{self.count('failed')} failed, {self.count('killed')} killed"
                + (f", {self.count('kept')} kept on disk until the store is back"
                   if self.count("kept") else "")
                + f"{' (interrupted)' if self.interrupted else ''}")
        return head + "\n\n" + pd.DataFrame(rows).to_markdown(index=False) if rows else head


_ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")


def user_message(error: str) -> str:
    """What the console shows for a failed cell: a user mistake (BenchError) in full, with its
    model and file; a crash as its last traceback line (the whole traceback is the run's
    error.txt). Terminal colour codes from third-party messages are removed."""
    text = _ANSI.sub("", error).strip()
    if text.startswith("Traceback"):
        return text.splitlines()[-1] + "  (traceback: error.txt of the cell's run)"
    return text.replace("\n", "\n    ")


def _log(msg: str) -> None:
    tqdm.write(printable(msg, keep="\n"))  # model, dataset and class names never drive the terminal


class Terminated(KeyboardInterrupt):
    """SIGTERM, raised where a Ctrl-C's KeyboardInterrupt would be, so that it ends the same
    way: the cells in flight KILLED, the suite run closed, one line said."""


@contextmanager
def sigterm_as_interrupt() -> Iterator[list[bool]]:
    """While inside, SIGTERM raises `Terminated` in the main thread (elsewhere Python cannot
    set handlers: nothing changes). Yields a one-item list set True once it came."""
    got = [False]
    if threading.current_thread() is not threading.main_thread():
        yield got
        return

    def handler(signum: int, frame: object) -> None:
        got[0] = True
        raise Terminated()

    before = signal.signal(signal.SIGTERM, handler)
    try:
        yield got
    finally:
        signal.signal(signal.SIGTERM, before if before is not None else signal.SIG_DFL)


def cell_limit(suite_limit: float | None, command_limit: float | None) -> float | None:
    """A cell's time limit: the suite's (its metric's, else its own `timeout`), else the
    command's. On a shared runner the command's is also a ceiling the suite cannot raise."""
    if suite_limit is None or command_limit is None:
        return suite_limit if suite_limit is not None else command_limit
    return min(suite_limit, command_limit) if allowlist.shared_mode() else suite_limit


def _shown(values: dict[str, Measured], k: str) -> str:
    """A value on the console line as the board prints it: the digits its interval supports,
    float noise around an exact 0 as 0 (an identical-set FID is not -7.1e-13)."""
    from bench.report.leaderboard import fmt_value  # the one number format (report layer)

    lo, hi = values[k].interval
    return fmt_value(values[k].x, u=(hi - lo) / 2)


def run_suite(suite: Suite, tracking_uri: str | None = None, force: bool = False,
              progress: bool = True, cache_dir: str | None = None,
              executor: Executor | None = None, artifact_root: str | None = None,
              timeout: float | None = None, log: SuiteLog | None = None,
              boards: bool = True) -> SuiteReport:
    """Run a suite's pending cells under one suite run. Before any run exists: the store is
    reachable, the experiment's artifact root can be written (`artifact_root`: where a new
    experiment keeps its artifacts) and no live runner holds the suite (bench.record.lease).
    `timeout`: seconds a cell may run when the suite sets no limit (`cell_limit`). SIGTERM
    ends the run as Ctrl-C does. `log`: where the records go (bench.record.suite_log; default
    the MLflow store at `tracking_uri`); `boards=False`: no leaderboard, HTML or figures."""
    with sigterm_as_interrupt() as terminated:
        return _run_suite(suite, tracking_uri, force, progress, cache_dir, executor,
                          artifact_root, timeout, terminated, log, boards)


def _run_suite(suite: Suite, tracking_uri: str | None, force: bool, progress: bool,
               cache_dir: str | None, executor: Executor | None, artifact_root: str | None,
               timeout: float | None, terminated: list[bool], log: SuiteLog | None = None,
               boards: bool = True) -> SuiteReport:
    executor = executor or EXECUTORS.get("local")()
    if log is None:
        uri = resolve_uri(tracking_uri, suite.tracking_uri)
        if executor.distributed():
            check_store(uri, executor.name)  # before any run exists
        # $MLFLOW_RUN_ID: set by `mlflow run` for its entry point; attached to only when it is
        # in the suite's experiment, else linked to the suite's own parent run both ways
        log = MlflowSuiteLog(Tracker(uri, suite.experiment, artifact_root=artifact_root),
                             suite.experiment, os.environ.get("MLFLOW_RUN_ID"))
    elif (records := log.record_store()) is not None:
        executor.use_records(records)  # refuses an executor whose cells run elsewhere
    uri = log.uri
    log.check_writable()  # before the suite run: a run left RUNNING helps nobody
    suite_tags = SuiteRunRecord(suite.name, package_version(), str(suite.path),
                                git_commit(suite.path.resolve().parent)).identity_tags()
    lease = Lease(log, suite.name)
    lease.take_over()  # refuses while another live runner holds the suite
    # suite runs are told apart by when they ran, e.g. "quickstart 2026-12-05 13:40 UTC"
    run_name = f"{suite.name} {datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    parent = log.open_suite(run_name, suite_tags, {
        "seed": str(suite.seed), "repeats": str(suite.repeats), "device": suite.device,
        "suite_file": str(suite.path), "num_cells": str(len(suite.cells))})
    lease.hold(parent)
    log.log_text(parent, suite.text, "suite.yaml")
    cache = Cache(cache_dir or suite.cache_dir)
    env = WorkerEnv(uri, log.experiment_id, parent, suite.name, suite.seed, suite.device,
                    str(cache.root), progress)
    _log(f"suite '{suite.name}': {len(suite.cells)} cells, executor {executor.name}; tracking {uri} "
         f"(experiment id {log.experiment_id}, parent run {parent})")
    # finished cells whose records waited out a store outage on disk: written, not computed again
    keeper, keys = Keeper.of(log, cache.root), {c.key for c in suite.cells}
    waiting = _write_kept(keeper, keys, {}) if keeper is not None else set()

    done: dict[str, CellOutcome] = {}
    pending: list[Cell] = []
    for cell in suite.cells:
        existing = None if force else log.finished_cell_run(cell.key)
        if existing:
            done[cell.key] = CellOutcome(cell, "cached", existing)
            _log(f"{cell.label}: cached (run {existing})")
            continue
        if cell.key in waiting:  # computed; its record waits for the store (bench.record.spool)
            done[cell.key] = CellOutcome(cell, "kept", error="kept on disk until the store is back")
            continue
        if log.fail_stale_runs(cell.key, "stale: its runner stopped without ending it (killed?)"):
            _log(f"{cell.label}: an earlier run of this cell was left RUNNING by a killed runner; "
                 "marked FAILED, running it again")
        pending.append(replace(cell, timeout=cell_limit(cell.timeout, timeout)))

    def on_result(cell: Cell, result: CellOutcome | BaseException) -> None:
        if isinstance(result, CellTimeout):  # stopped at its limit: its run ends FAILED
            log.fail_stale_runs(cell.key, str(result)[:500])
            result = CellOutcome(cell, "failed", error=str(result), seconds=result.seconds)
        elif isinstance(result, BaseException):  # the worker itself was lost, not the metric
            msg = f"worker lost: {type(result).__name__}: {result}"
            log.fail_stale_runs(cell.key, msg[:500])
            result = CellOutcome(cell, "failed", error=msg)
        kept = result.status == "finished" and result.error.startswith("kept: ")
        if kept:  # the outage was said once; the cell says only where its record is
            result = replace(result, status="kept", error="kept on disk until the store is back")
        done[cell.key] = result
        n = sum(o.status != "cached" for o in done.values())
        vals = "  ".join(f"{k}={_shown(result.values, k)}" for k in result.values if not is_interval(k))
        fault = result.status == "failed" and suite_fault(result.error)
        _log(f"[{n}/{len(pending)}] {cell.label}: {result.status} in {result.seconds:.1f}s  {vals}"
             + (f"\n    {user_message(result.error)}" if result.error and not kept and not fault
                else ""))
        if fault:  # every later cell would meet it too: said once, for the suite
            raise SuiteStopped(result.error.split("; the next run")[0])
        if keeper is not None and not kept and result.status != "failed":  # the store answers
            _write_kept(keeper, keys, done, patience=0)

    stopped = ""
    try:
        interrupted = executor.run(pending, env, on_result) if pending else False
    except KeyboardInterrupt:  # between two cells, or in an executor that does not catch it
        interrupted = True
    except SuiteStopped as e:  # a full disk, a read-only artifact folder
        interrupted, stopped = False, str(e)
        left = [c for c in pending if c.key not in done]
        _log(f"{stopped}. The suite stops here ({len(left)} cell(s) not run; finished cells "
             "are kept).")
        for cell in pending:  # no run is left RUNNING, where the store still takes that much
            if done.get(cell.key) is None or done[cell.key].status == "failed":
                with suppress(Exception):
                    log.fail_stale_runs(cell.key, stopped[:500])
    unwritten = _write_kept(keeper, keys, done) if keeper is not None else set()
    if unwritten:
        _log(f"{len(unwritten)} finished cell(s) kept in {keeper.spool.root if keeper else ''}: the "
             "tracking store is still unreachable. Run the suite again once it is back: they are "
             "written, not computed again.")
    quiet = bool(stopped or unwritten)  # closing writes would only say the same again
    if interrupted:
        why = "terminated (SIGTERM)" if terminated[0] else "interrupted (Ctrl-C)"
        _log(f"{why}; run the suite again to finish the remaining cells")
        for cell in pending:  # runs a worker left RUNNING are ended, not orphaned
            if cell.key not in done:
                log.fail_stale_runs(cell.key, why, status="KILLED")
    outcomes = [done[c.key] for c in suite.cells if c.key in done]

    report = SuiteReport(suite, parent, uri, log.experiment_id, outcomes, interrupted=interrupted,
                         terminated=terminated[0], local=executor.local_state(env))
    cells_map = {o.cell.key: {"run_id": o.run_id, "status": o.status, "label": o.cell.label}
                 for o in outcomes}
    try:
        if not quiet:
            log.log_text(parent, json.dumps(cells_map, indent=1), "cells.json")
    except Exception as e:  # noqa: BLE001 - the store went away after the cells ran
        _log(f"cells.json could not be logged ({_why(log, e)})")
    run_ids = [o.run_id for o in outcomes if o.status in ("finished", "cached", "failed") and o.run_id]
    if boards and not quiet:
        try:
            _log_boards(report, log, parent, suite, run_ids, uri)
        except Exception as e:  # noqa: BLE001 - the cells are logged; a board can be rebuilt later
            _log(f"the leaderboard could not be written ({_why(log, e)}); the "
                 f"cell runs are kept: rebuild it with `bench leaderboard {suite.path}`")
    try:
        if not quiet:
            _close(report, log, parent, env)
    except Exception as e:  # noqa: BLE001 - e.g. the store turned read-only mid-run
        _log(f"the suite run could not be closed in MLflow ({_why(log, e)}); "
             "the next run of the suite closes it")
    lease.release()
    try:
        log.close_suite(parent, "KILLED" if interrupted else ("FINISHED" if report.ok else "FAILED"),
                        report.leaderboard)
    except Exception:  # noqa: BLE001 - reported above; the lease expires and is taken over
        pass
    return report


class SuiteStopped(Exception):
    """A fault every later cell would meet (bench.record.writer.suite_fault): the suite stops."""


def _write_kept(keeper: Keeper, keys: set[str], done: dict[str, CellOutcome],
                patience: float | None = None) -> set[str]:
    """Write the kept records of `keys` the store takes now (their outcomes in `done` get the
    run ids); returns the keys still waiting."""
    if not keeper.kept(keys):
        return set()
    written = keeper.write(keys, patience)
    for key, run_id in written.items():
        if key in done:
            done[key] = replace(done[key], status="finished", run_id=run_id, error="")
    if written:
        _log(f"{len(written)} finished cell(s) kept through a store outage written to the store")
    return keeper.kept(keys)


def _why(log: SuiteLog, e: BaseException) -> str:
    """A write's failure in one line: "disk full: <path>, <free> free", or the error's first line."""
    full = log.store_fault(e)
    if full is not None:
        return full
    lines = [ln for ln in str(e).strip().splitlines() if ln.strip()]
    return f"{type(e).__name__}: {(lines[0] if lines else '')[:300]}"


def _log_boards(report: SuiteReport, log: SuiteLog, parent: str, suite: Suite,
                run_ids: list[str], uri: str) -> None:
    from bench.record.cell_record import frame
    from bench.report.html import default_ui_url
    from bench.report.leaderboard import build_leaderboard, render
    from bench.report.page import board_page
    from bench.report.published import with_published

    if run_ids:
        runs = frame([r for r in log.records(run_ids) if r.suite == suite.name])
        board = build_leaderboard(runs, declared=declared_pairs(suite))
        report.leaderboard = with_published(render(board, "markdown"), "markdown", board,
                                            suite.published)
        for line in verdict_lines(board):
            _log(line)
        log.log_text(parent, report.leaderboard, "leaderboard.md")
        log.log_text(parent, render(board, "csv"), "leaderboard.csv")
        client = log.artifact_client()
        if client is None:  # no artifacts kept (an in-memory log): no page of images
            return
        page, figures = board_page(board, runs, client, name=suite.name,
                                   experiment_id=log.experiment_id, ui_url=default_ui_url(uri),
                                   published=suite.published)
        log.log_files(parent, figures, "figures")
        log.log_text(parent, page, "leaderboard.html")


def verdict_lines(board: list) -> list[str]:
    """One console line per model a gate flags or whose cells failed (the board says more)."""
    from bench.report.leaderboard import UNRUN_STATES, summarize

    s = summarize(board)
    return [f"verdict: {m}: {v}" for m, v in zip(s.index, s["verdict"], strict=True)
            if v != "pass" and v not in UNRUN_STATES]  # no run is no verdict (the summary counts it)


def _close(report: SuiteReport, log: SuiteLog, parent: str, env: WorkerEnv) -> None:
    log.log_text(parent, report.summary(), "summary.md")
    log.set_tags(parent, SuiteRunRecord.counts_tags(report.count("finished"),
                                                        report.count("cached"), report.count("failed")))
    local = report.local  # workers in other processes keep their own counts
    _log(f"{local.cache.report()}\n{local.store.report()}" if local
         else f"cache: {env.cache_dir} (hits counted in the workers)")
