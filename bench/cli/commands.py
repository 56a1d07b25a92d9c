"""`main` and one function per command: each parses (bench.cli.parser), calls one function of
the API or a workflow (bench.api, bench.workflows), prints what it returns and says the exit
code. User mistakes print one clear message (no traceback) and exit 2; failed cells exit 1;
Ctrl-C exits 130."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from bench.cli.console import browse, emit, error, quiet_libraries, say
from bench.cli.parser import (
    build_parser,
    check_arguments,
    comparison_options,
    executor_overrides,
    features_option,
)
from bench.core.errors import BenchError
from bench.core.safe_names import printable


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.workflows.prepare import load_checked

    ready = load_checked(args.suite, args.tracking_uri)
    s = ready.suite
    print(f"{args.suite}: OK — suite '{s.name}', {len(s.datasets)} dataset(s), {len(s.models)} "
          f"model(s), {len(s.metrics)} metric(s), {len(s.cells)} cell run(s) "
          f"({s.repeats} repeat(s) each)"
          + (f"; {ready.registered} MLflow model(s) found at {ready.uri}" if ready.registered else ""))
    for c in s.cells:
        print(f"  {c.key}  {c.label}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.run.runner import run_suite
    from bench.workflows.prepare import build_executor, load_checked

    suite = load_checked(args.suite, args.tracking_uri).suite  # validated before any run exists
    report = run_suite(suite, tracking_uri=args.tracking_uri, force=args.force,
                       progress=not args.no_progress, cache_dir=args.cache_dir,
                       executor=build_executor(suite, args.executor, executor_overrides(args)),
                       artifact_root=args.artifact_root, timeout=args.timeout)
    print()
    if report.leaderboard:
        print(report.leaderboard)
        if args.out:
            Path(args.out).write_text(report.leaderboard)
    print(report.summary())
    print(f"\nMLflow: {report.tracking_uri}, experiment id {report.experiment_id}, "
          f"suite run {report.parent_run_id}  (browse: {browse(report)})")
    if report.interrupted:
        return 143 if report.terminated else 130  # 128 + SIGTERM / SIGINT, as a shell says
    return 0 if report.ok else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.workflows import api

    where = {"tracking_uri": args.tracking_uri, "experiment": args.experiment}
    if args.history:  # --model NAME --history (parser.check_arguments): one model over time
        from bench.report.leaderboard import render_history

        table = api.history(args.suite, args.model, **where)
        emit(render_history(table, args.model, args.format), args.out)
        return 0
    # the `leaderboard` entry point of `mlflow run` keeps its output in its run
    emit(api.leaderboard(args.suite, **where, run_id=args.run_id, sort=args.sort,
                         all_models=args.all, format=args.format, trends=args.trends,
                         ui_url=args.ui_url, images=args.images,
                         log_to=os.environ.get("MLFLOW_RUN_ID")), args.out)
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.workflows import api

    where = {"tracking_uri": args.tracking_uri, "experiment": args.experiment}
    if args.accept:
        name, rid = api.accept(args.suite, args.accept, **where)
        print(f"suite run {rid} of '{name}' is now the baseline: later comparisons measure changes "
              "from it, and the runs before it are no longer their history.")
        return 0
    result = api.compare(args.suite, args.base, args.new, **where, **comparison_options(args))
    emit(result.render(args.format), args.out)
    return 0 if result.ok else 1


def cmd_nightly(args: argparse.Namespace) -> int:
    """Run the suite afresh, compare with the previous run, write the leaderboard
    (bench.workflows.nightly); a live runner still holding the suite: skipped, exit 75."""
    from bench.workflows.nightly import SKIPPED_EXIT, SuiteInProgress, nightly

    html_out = bool(args.out) and args.out.lower().endswith((".html", ".htm"))
    try:
        res = nightly(args.suite, tracking_uri=args.tracking_uri, cache_dir=args.cache_dir,
                      executor=args.executor, executor_flags=executor_overrides(args),
                      artifact_root=args.artifact_root, timeout=args.timeout,
                      progress=not args.no_progress, trends=args.trends, page=html_out,
                      echo=say, **comparison_options(args))
    except SuiteInProgress as e:  # one line for the night's log; not a pass, not a broken set-up
        say(f"skipped: {e}; this night's run did not start (exit {SKIPPED_EXIT})")
        return SKIPPED_EXIT
    if args.out:
        Path(args.out).write_text(res.page if html_out and res.page is not None
                                  else res.report.leaderboard)
    return 0 if res.ok else 1


def cmd_score(args: argparse.Namespace) -> int:
    """Score generated images against real ones without a suite file (bench.api.evaluate:
    the same runner, store and cache as `bench run`)."""
    from bench.api import EvaluationFailed, evaluate

    features = features_option(args.features)
    try:
        res = evaluate(args.real, args.fake, [m.strip() for m in args.metrics.split(",") if m.strip()],
                       features, real_val=args.real_val, range=args.range, layout=args.layout,
                       num_samples=args.num_samples, image_size=args.image_size, seed=args.seed,
                       device=args.device, name=args.name, log=args.log or bool(args.tracking_uri),
                       tracking_uri=args.tracking_uri, experiment=args.experiment,
                       cache_dir=args.cache_dir, progress=args.progress, verbose=args.verbose)
    except EvaluationFailed as e:
        error(e)
        return 1
    if args.format == "json":
        import json

        print(json.dumps(res.to_json(), indent=1))
    else:
        # the values, then the verdict with each flag's reason (which may name class folders)
        print(printable(res, keep="\n"))
        if res.tracking_uri:
            print(f"\nMLflow: {res.tracking_uri}, experiment id {res.experiment_id}, suite run "
                  f"{res.suite_run_id}")
    if res.flagged:  # the numbers of a flagged model are not a score: a script must notice
        print(f"flagged: {printable(res.verdict)} (exit 1; the reasons are above)", file=sys.stderr)
        return 1
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    """Train one baseline model of a suite, log it to MLflow, optionally register it."""
    from bench.run.train import train_model

    res = train_model(args.suite, args.model, dataset=args.dataset, tracking_uri=args.tracking_uri,
                      register=args.register or None, cache_dir=args.cache_dir,
                      progress=not args.no_progress)
    print(f"training run {res.run_id}")
    print(res.model_uri)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    from bench.cli.lists import print_lists

    print_lists(args.kind)
    return 0


COMMANDS: dict[str, Callable[[argparse.Namespace], int]] = {
    "run": cmd_run, "validate": cmd_validate, "leaderboard": cmd_leaderboard,
    "compare": cmd_compare, "nightly": cmd_nightly, "train": cmd_train, "score": cmd_score,
    "list": cmd_list}
IN_PROCESS = {"score", "train"}  # compute in this process: --threads applies here


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    command = COMMANDS[args.command]
    try:
        with quiet_libraries():
            check_arguments(args)
            if getattr(args, "threads", None) and args.command in IN_PROCESS:
                from bench.executors.threads import applied

                with applied(args.threads):
                    return command(args)
            return command(args)
    except BenchError as e:
        error(e)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bench list | head`
        return 0
