"""`bench run | validate | list | leaderboard | compare | nightly | score`: the command line. User mistakes print one
clear message (no traceback) and exit 2; failed cells exit 1; Ctrl-C exits 130."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import get_args

from bench.core.errors import BenchError
from bench.core.safe_names import printable
from bench.report.compare import FORMATS as COMPARE_FORMATS
from bench.report.html import IMAGE_MODELS
from bench.report.leaderboard import FORMATS as LEADERBOARD_FORMATS
from bench.workflows.history import HISTORY_RUNS, TREND_RUNS
from bench.workflows.store import (
    check_registry_models,
    check_tracking_uri,
    open_suite_store,
    suite_file,
    suite_uri,
    uri_origin,
)


def _count(text: str) -> int:
    """A non-negative integer argument (argparse reports anything else as a usage error, exit 2)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got '{text}'")
    return int(text)


_QUIET_ENV = {"GIT_PYTHON_REFRESH": "quiet", "MLFLOW_LOGGING_LEVEL": "WARNING",
              "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR": "false"}
_QUIET_LOGGERS = ("alembic", "mlflow", "mlflow.store", "mlflow.tracking")


@contextmanager
def _quiet_libraries() -> Iterator[None]:
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


# ---------------------------------------------------------------- arguments checked before any work
def check_out(out: str | None) -> None:
    """`--out` can be written, checked before any work (not after every cell has run)."""
    if not out:
        return
    p = Path(out)
    if p.is_dir():
        raise BenchError(f"--out {out} is a directory: give a file path, e.g. {p / 'board.md'}.")
    parent = p.parent if str(p.parent) else Path(".")
    if not parent.is_dir():
        raise BenchError(f"--out {out}: the folder {parent} does not exist. Create it "
                         f"(mkdir -p {parent}) or choose another path.")
    if not os.access(parent, os.W_OK) or (p.exists() and not os.access(p, os.W_OK)):
        raise BenchError(f"--out {out}: not writable. Choose another path, or fix the permissions.")


def _check_arguments(args: argparse.Namespace) -> None:
    """What the command line alone can tell is wrong, before a suite is read or a store opened."""
    check_out(getattr(args, "out", None))
    if getattr(args, "tracking_uri", None):
        check_tracking_uri(args.tracking_uri)
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        check_tracking_uri(os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI")
    if getattr(args, "threshold_for", None):
        _threshold_pairs(args.threshold_for)
    _check_compare_numbers(args)


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.config.suite import load_suite

    s = load_suite(args.suite)
    uri = suite_uri(args.tracking_uri, s)
    registered = check_registry_models(s, uri, uri_origin(args.tracking_uri, s.tracking_uri))
    print(f"{args.suite}: OK — suite '{s.name}', {len(s.datasets)} dataset(s), {len(s.models)} "
          f"model(s), {len(s.metrics)} metric(s), {len(s.cells)} cell run(s) "
          f"({s.repeats} repeat(s) each)"
          + (f"; {registered} MLflow model(s) found at {uri}" if registered else ""))
    for c in s.cells:
        print(f"  {c.key}  {c.label}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    suite = load_suite(args.suite)  # validates everything before any run exists
    uri = suite_uri(args.tracking_uri, suite)
    check_registry_models(suite, uri, uri_origin(args.tracking_uri, suite.tracking_uri))
    report = run_suite(suite, tracking_uri=args.tracking_uri, force=args.force,
                       progress=not args.no_progress, cache_dir=args.cache_dir,
                       executor=_executor(args, suite), artifact_root=args.artifact_root,
                       timeout=args.timeout)
    print()
    if report.leaderboard:
        print(report.leaderboard)
        if args.out:
            Path(args.out).write_text(report.leaderboard)
    print(report.summary())
    print(f"\nMLflow: {report.tracking_uri}, experiment id {report.experiment_id}, "
          f"suite run {report.parent_run_id}  (browse: {_browse(report)})")
    if report.interrupted:
        return 143 if report.terminated else 130  # 128 + SIGTERM / SIGINT, as a shell says
    return 0 if report.ok else 1


def _browse(report) -> str:
    """Where to look at a suite run: the MLflow UI's page of it (an http store, or
    BENCH_UI_URL), else the command that starts a UI on the store. MLflow's own per-run
    "View run" lines are silenced (bench.record.outage.http_defaults): this is said once."""
    from urllib.parse import quote

    from bench.report.html import default_ui_url

    ui = default_ui_url(report.tracking_uri)
    if ui:
        return (f"{ui.rstrip('/')}/#/experiments/{quote(str(report.experiment_id), safe='')}"
                f"/runs/{quote(report.parent_run_id, safe='')}")
    return f"mlflow ui --backend-store-uri {report.tracking_uri}"


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.workflows.leaderboard import leaderboard

    tracker, name = open_suite_store(args.suite, args.tracking_uri, args.experiment)
    if args.history or args.model:
        return _leaderboard_history(args, tracker, name)
    # the `leaderboard` entry point of `mlflow run` keeps its output in its run
    _emit(leaderboard(tracker, name, suite=suite_file(args.suite), run_id=args.run_id,
                      sort=args.sort, all_models=args.all, fmt=args.format, trends=args.trends,
                      ui_url=args.ui_url, images=args.images,
                      log_to=os.environ.get("MLFLOW_RUN_ID")), args.out)
    return 0


def _leaderboard_history(args: argparse.Namespace, tracker, name: str) -> int:
    """`--model NAME --history`: one model's values over the suite's finished runs, oldest
    first, so that a slow drift shows that a night-to-night comparison would miss."""
    from bench.report.leaderboard import TEXT_FORMATS, render_history
    from bench.workflows.history import model_history

    if not (args.model and args.history):
        raise BenchError("--history and --model go together: `bench leaderboard SUITE --model NAME --history`.")
    if args.run_id or args.format not in TEXT_FORMATS:
        raise BenchError(f"--history covers every suite run: drop --run-id, use --format "
                         f"{'|'.join(TEXT_FORMATS)}.")
    _emit(render_history(model_history(tracker, name, args.model), args.model, args.format), args.out)
    return 0


def _say(text: object = "") -> None:
    """print, with control characters in names shown as escapes (safe_names.printable)."""
    print(printable(text, keep="\n"))


def _emit(text: str, out: str | None) -> None:
    if out:
        Path(out).write_text(text)
        print(f"wrote {out}", file=sys.stderr)
    else:
        print(printable(text, keep="\n"))  # names from the store never drive the terminal


def _compare_config(args: argparse.Namespace):
    from bench.report.compare import CompareConfig

    return CompareConfig(threshold=args.threshold, thresholds=_threshold_pairs(args.threshold_for),
                         z=args.z, history=args.history)


_COMPARE_NUMBERS = {  # option -> what a valid value is (all must be >= 0)
    "threshold": "a relative change >= 0 (e.g. 0.05 for 5%)",
    "z": "a number of standard deviations >= 0 (default 4)",
    "history": "a number of earlier suite runs >= 0 (0: the repeats' spread only)",
    "trends": "a number of suite runs >= 0 (0: no trends)",
}


def _check_compare_numbers(args: argparse.Namespace) -> None:
    """compare / nightly / leaderboard: a negative (or NaN) threshold, z, history or trends
    count is refused in one line (a negative history reached MLflow as max_results)."""
    for opt, what in _COMPARE_NUMBERS.items():
        v = getattr(args, opt, None)
        if isinstance(v, bool) or not isinstance(v, int | float):
            continue  # absent, or `bench leaderboard --history` (a switch)
        if not v >= 0:
            raise BenchError(f"--{opt} {v:g}: expected {what}.")


def _threshold_pairs(items: list[str] | None) -> dict[str, float]:
    per = {}
    for item in items or []:
        k, _, v = item.partition("=")
        try:
            per[k.strip()] = float(v)
        except ValueError:
            raise BenchError(f"--threshold-for expects VALUE=FRACTION (e.g. fid=0.1), got '{item}'") from None
        if not k.strip() or not per[k.strip()] >= 0:
            raise BenchError(f"--threshold-for expects VALUE=FRACTION with a fraction >= 0 (e.g. "
                             f"fid=0.1), got '{item}'")
    return per


def _check_threshold_names(args: argparse.Namespace, suite) -> None:
    """`bench nightly`: each `--threshold-for` name is a value the suite's metrics declare
    (exactly, or under a declared prefix such as `swd`), checked before the suite runs."""
    from bench.core.registry import did_you_mean

    declared = list(dict.fromkeys(v for spec in suite.metrics.values() for v in spec.cls.values))
    for name in _threshold_pairs(args.threshold_for):
        if not any(name == d or name.startswith(d) for d in declared):
            raise BenchError(f"--threshold-for {name}: no metric of suite '{suite.name}' logs this "
                             f"value.{did_you_mean(name, declared)} Values: {', '.join(declared)}.")


def _accept(tracker, name: str, which: str) -> int:
    """`bench compare SUITE --accept [RUN]`: make a suite run the baseline on purpose."""
    from bench.workflows.compare import accept

    rid = accept(tracker, name, which)
    print(f"suite run {rid} of '{name}' is now the baseline: later comparisons measure changes from "
          "it, and the runs before it are no longer their history.")
    return 0


def cmd_compare(args: argparse.Namespace) -> int:
    from bench.report.compare import render
    from bench.workflows.compare import compare_runs

    tracker, name = open_suite_store(args.suite, args.tracking_uri, args.experiment)
    if args.accept:
        return _accept(tracker, name, args.accept)
    if args.base == args.new:
        raise BenchError(f"base and new are both '{args.new}': compare two suite runs, e.g. "
                         f"`bench compare {name} previous latest`.")
    cfg = _compare_config(args)
    base_id, new_id, table = compare_runs(tracker, name, args.base, args.new, args.history, cfg)
    text = render(table, args.format, suite=name, base=base_id, new=new_id, cfg=cfg)
    _emit((f"base {base_id} -> new {new_id}\n\n" if args.format == "markdown" else "") + text, args.out)
    return 1 if (table["status"] == "regression").any() else 0


def cmd_nightly(args: argparse.Namespace) -> int:
    """Run the suite afresh, compare with the previous run, write the leaderboard
    (bench.workflows.nightly)."""
    from bench.config.suite import load_suite
    from bench.workflows.nightly import nightly

    suite = load_suite(args.suite)
    uri = suite_uri(args.tracking_uri, suite)
    check_registry_models(suite, uri, uri_origin(args.tracking_uri, suite.tracking_uri))
    _check_threshold_names(args, suite)
    html_out = bool(args.out) and args.out.lower().endswith((".html", ".htm"))
    res = nightly(suite, tracking_uri=args.tracking_uri, cache_dir=args.cache_dir,
                  executor=_executor(args, suite), artifact_root=args.artifact_root,
                  timeout=args.timeout, progress=not args.no_progress, cfg=_compare_config(args),
                  history=args.history, trends=args.trends, page=html_out, echo=_say)
    if args.out:
        Path(args.out).write_text(res.page if html_out and res.page is not None
                                  else res.report.leaderboard)
    return 0 if res.ok else 1


def cmd_score(args: argparse.Namespace) -> int:
    """Score generated images against real ones without a suite file (bench.api.evaluate:
    the same runner, store and cache as `bench run`)."""
    from bench.api import EvaluationFailed, evaluate

    features = args.features
    if features.lstrip().startswith("{"):  # options of the extractor, as YAML/JSON
        import yaml

        try:
            features = yaml.safe_load(features)
        except yaml.YAMLError as e:
            raise BenchError(f"--features: not a valid mapping ({e}); e.g. "
                             "--features '{name: timm, model: resnet50, weights: w.pth}'") from None
    try:
        res = evaluate(args.real, args.fake, [m.strip() for m in args.metrics.split(",") if m.strip()],
                       features, real_val=args.real_val, range=args.range, layout=args.layout,
                       num_samples=args.num_samples, image_size=args.image_size, seed=args.seed,
                       device=args.device, name=args.name, log=args.log or bool(args.tracking_uri),
                       tracking_uri=args.tracking_uri, experiment=args.experiment,
                       cache_dir=args.cache_dir, progress=args.progress, verbose=args.verbose)
    except EvaluationFailed as e:
        print(f"error: {printable(e, keep=chr(10))}", file=sys.stderr)
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


# `bench list KIND`: where each kind's registry lives, imported only when listed
LISTS = {"datasets": "bench.data:DATASETS", "models": "bench.models:MODELS",
         "metrics": "bench.metrics:METRICS", "classifiers": "bench.classifiers:CLASSIFIERS",
         "features": "bench.features:FEATURES", "executors": "bench.executors:EXECUTORS"}


def cmd_list(args: argparse.Namespace) -> int:
    import importlib

    from bench.core.registry import Registry, describe_options

    for kind, where in LISTS.items():
        if args.kind and args.kind != kind:
            continue
        module, _, attr = where.partition(":")
        reg: Registry = getattr(importlib.import_module(module), attr)
        if kind == "classifiers":
            _list_classifiers(reg)
        else:
            print(f"\n{kind}:")
            for name, cls in reg.items():
                print(f"  {name:<18} {cls.summary()}")
                for opt, typ, default, desc in describe_options(cls.Options):
                    flag = (cls.Options.model_fields[opt].json_schema_extra or {}).get("cli")
                    d = (f" — {desc}" if desc else "") + (f" (`bench run {flag}`)" if flag else "")
                    print(f"      {opt}: {typ} = {default if isinstance(default, str) and default.startswith(('(', '{')) else repr(default)}{d}")
        for name, why in reg.failures().items():
            print(f"  {name:<18} unavailable: {why}")
    return 0


def _list_classifiers(reg) -> None:
    import inspect

    from bench.classifiers.train import ClassifierConfig
    from bench.core.registry import describe_options

    print("\nclassifiers (metric option `classifier: {name: ..., epochs: ..., ...}`):")
    for name, cls in reg.items():
        doc = (cls.__doc__ or "").strip().splitlines()[0] if cls.__doc__ else ""
        params = [p for p in inspect.signature(cls).parameters
                  if p not in ("in_chans", "num_classes", "image_size")]
        own = " [own recipe and trainer]" if cls.has_own_trainer() else ""
        print(f"  {name:<18} {doc}{own}" + (f"  (args: {', '.join(params)})" if params else ""))
    print("  training options of every classifier:")
    for opt, typ, default, desc in describe_options(ClassifierConfig):
        print(f"      {opt}: {typ} = {default!r}" + (f" — {desc}" if desc else ""))


def _executor(args: argparse.Namespace, suite):
    """The suite's executor (validated with the suite), overridden by the command line."""
    from pydantic import ValidationError

    from bench.executors import executor_flags

    flags = {flag: getattr(args, _dest(flag)) for flag in executor_flags()}
    try:
        return suite.executor.override(args.executor, flags).build()
    except ValidationError as e:
        name = args.executor or suite.executor.name
        raise BenchError(f"executor '{name}': {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def _dest(flag: str) -> str:
    return flag.lstrip("-").replace("-", "_")


def _executor_arguments(p: argparse.ArgumentParser) -> None:
    """`--executor` and the flags the executors' options declare (`cli_flag`), from the registry."""
    from bench.executors import EXECUTORS, executor_flags

    p.add_argument("--executor", choices=EXECUTORS.names(),
                   help="where cells run (default: the suite's `executor:`, else local)")
    for flag, uses in executor_flags().items():
        kinds = {t for _, _, f in uses for t in get_args(f.annotation) or (f.annotation,)} - {type(None)}
        typ = int if kinds == {int} else float if kinds <= {int, float} else str
        p.add_argument(flag, dest=_dest(flag), type=typ, metavar=_dest(flag).upper(),
                       help="; ".join(f"{ex}: {f.description or opt}" for ex, opt, f in uses))


# per cell: a hung cell must not hold the night; a suite whose cells take longer (a CIFAR
# reproduction trained on a CPU) sets its own `timeout`
NIGHTLY_TIMEOUT_S = 6 * 3600


def _seconds(v: str) -> float:
    try:
        t = float(v)
    except ValueError:
        t = -1.0
    if not t > 0:
        raise argparse.ArgumentTypeError(f"expected seconds, a number > 0, got '{v}'")
    return t


def _threads_argument(p: argparse.ArgumentParser) -> None:
    """`--threads N` for a command that computes in this process (bench run and nightly take
    it from the local executor's options)."""
    p.add_argument("--threads", type=_positive, metavar="N", help="CPU threads of this "
                   "process (default: $BENCH_THREADS, else every core); on a machine shared "
                   "with other heavy jobs, fewer is faster (bench.executors.threads)")


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'")
    return int(text)


def _bool(v: str | bool) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{v}'")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="bench", description="How good is my GAN? Benchmark suites "
                                "of generative image models, tracked in MLflow.")
    sub = p.add_subparsers(dest="command", required=True)

    r = sub.add_parser("run", help="validate and run a suite, log every cell to MLflow")
    r.add_argument("suite", help="suite YAML file")
    r.add_argument("--tracking-uri", help="MLflow tracking URI (default: env, suite, sqlite:///mlflow.db)")
    r.add_argument("--force", nargs="?", const=True, default=False, type=_bool,
                   help="re-run cells that already have a finished run (also --force=true|false)")
    r.add_argument("--cache-dir", help="cache of trained classifiers/baselines (default .bench_cache)")
    r.add_argument("--artifact-root", help="where a new experiment keeps its runs' artifacts "
                   "(default: MLflow's ./mlruns; an existing experiment keeps its own)")
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--out", help="also write the leaderboard (markdown) here")
    r.add_argument("--timeout", type=_seconds, metavar="SECONDS", help="stop a cell after this "
                   "long (it fails, the suite goes on) when the suite sets no `timeout`; on a "
                   "shared runner also the most a suite may set (default: no limit)")
    _executor_arguments(r)
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a suite without running anything")
    v.add_argument("suite")
    v.add_argument("--tracking-uri", help="the store whose model registry holds the suite's "
                   "models:/ URIs (default: env, suite, sqlite:///mlflow.db)")
    v.set_defaults(func=cmd_validate)

    lb = sub.add_parser("leaderboard", help="tables of a suite's finished runs")
    lb.add_argument("suite", help="suite YAML file or suite name")
    lb.add_argument("--experiment", help="MLflow experiment (default: the suite's)")
    lb.add_argument("--run-id", help="one suite run instead of the latest run of every cell")
    lb.add_argument("--sort", help="value to sort by within each tier (default: the headline, "
                    "gan_train_acc when present, else the first metric's main value)")
    lb.add_argument("--all", action="store_true", help="with a suite file: also show models no "
                    "longer declared in it (default: the suite as declared)")
    lb.add_argument("--format", choices=LEADERBOARD_FORMATS, default="markdown",
                    help="html: one self-contained page with the runs' plots (use with --out)")
    lb.add_argument("--out", help="write to this file instead of stdout")
    lb.add_argument("--tracking-uri")
    lb.add_argument("--ui-url", help="MLflow UI base URL for run links in HTML (default: "
                    "$BENCH_UI_URL, or the tracking URI when it is an http(s) server)")
    lb.add_argument("--model", help="with --history: the model to follow")
    lb.add_argument("--history", action="store_true",
                    help="one model's values over the suite's finished runs, oldest first")
    lb.add_argument("--trends", type=int, default=TREND_RUNS, metavar="N",
                    help=f"html: each ranked value over the last N suite runs, with compare's noise "
                    f"band and regressions marked (default {TREND_RUNS}; 0: none)")
    lb.add_argument("--images", type=_count, default=IMAGE_MODELS, metavar="N",
                    help=f"html: embed the images of the first N models of each dataset's board "
                    f"and of the reference rows (default {IMAGE_MODELS}; 0: none)")
    lb.set_defaults(func=cmd_leaderboard)

    def compare_opts(p: argparse.ArgumentParser) -> None:
        p.add_argument("--history", type=int, default=HISTORY_RUNS,
                       help="known-good earlier suite runs (the base and the runs before it, without "
                       "those whose nightly found the cell regressed) whose median is the baseline "
                       f"and whose spread is the noise band (default {HISTORY_RUNS}; 0: the base run "
                       "and the repeats' spread only)")
        p.add_argument("--threshold", type=float, default=0.05, help="relative change that counts (0.05)")
        p.add_argument("--threshold-for", action="append", metavar="VALUE=FRACTION",
                       help="per-value threshold, e.g. fid=0.1 (repeatable)")
        p.add_argument("--z", type=float, default=4.0, help="noise band in standard deviations (4)")

    cp = sub.add_parser("compare", help="per-cell changes between two suite runs; exit 1 on regression")
    cp.add_argument("suite", help="suite YAML file or suite name")
    cp.add_argument("base", nargs="?", default="previous", help="suite run id, `latest` or `previous`")
    cp.add_argument("new", nargs="?", default="latest", help="suite run id, `latest` or `previous`")
    cp.add_argument("--experiment")
    cp.add_argument("--tracking-uri")
    cp.add_argument("--format", choices=COMPARE_FORMATS, default="markdown")
    cp.add_argument("--out")
    cp.add_argument("--accept", nargs="?", const="latest", metavar="RUN",
                    help="make a suite run (default latest) the baseline on purpose (tag "
                    "bench.baseline=accepted): a deliberate change stops being reported as a "
                    "regression; compares nothing")
    compare_opts(cp)
    cp.set_defaults(func=cmd_compare)

    nt = sub.add_parser("nightly", help="run a suite afresh, compare with the previous run, "
                        "exit 1 on a regression or a failed cell")
    nt.add_argument("suite")
    nt.add_argument("--tracking-uri")
    nt.add_argument("--cache-dir")
    nt.add_argument("--artifact-root", help="as for `bench run`")
    nt.add_argument("--out", help="write the leaderboard here: markdown, or the HTML page (with "
                    "the trends) for a name ending in .html")
    nt.add_argument("--trends", type=int, default=TREND_RUNS, metavar="N",
                    help=f"suite runs in the HTML board's trends (default {TREND_RUNS}; 0: none)")
    nt.add_argument("--no-progress", action="store_true", help="no progress bars (as in `bench run`)")
    nt.add_argument("--timeout", type=_seconds, metavar="SECONDS", default=NIGHTLY_TIMEOUT_S,
                    help=f"as for `bench run` (default {NIGHTLY_TIMEOUT_S} s: a hung cell must "
                    "not stop the night)")
    _executor_arguments(nt)
    compare_opts(nt)
    nt.set_defaults(func=cmd_nightly)

    tr = sub.add_parser("train", help="train a baseline model of a suite, log it to MLflow and "
                        "print its model URI (register it with --register NAME)")
    tr.add_argument("suite", help="suite YAML file")
    tr.add_argument("--model", required=True, help="the suite's model (source baseline or cgan)")
    tr.add_argument("--dataset", help="the suite's dataset to train on (default: its first)")
    tr.add_argument("--register", help="register the model under this name (models:/NAME/VERSION)")
    tr.add_argument("--tracking-uri")
    tr.add_argument("--cache-dir")
    tr.add_argument("--no-progress", action="store_true")
    _threads_argument(tr)
    tr.set_defaults(func=cmd_train)

    sc = sub.add_parser("score", help="score generated images against real ones, no suite "
                        "file: two folders (by class or flat) or .npz files")
    sc.add_argument("real", help="real images: a folder (class sub-folders, or flat) or an .npz "
                    "(`images`, optional `labels`); every image is the reference")
    sc.add_argument("fake", help="generated images: a folder or an .npz, as for REAL")
    sc.add_argument("--metrics", default="fid", help="comma-separated metrics (default fid), "
                    "e.g. fid,kid,precision_recall (see `bench list metrics`)")
    sc.add_argument("--features", default="inception", help="feature extractor of the metrics: "
                    "a name (default inception), or its options as '{name: timm, model: ...}'")
    sc.add_argument("--real-val", help="held-out real images (folder or .npz), for metrics that "
                    "compare with them (data_copying, the classifier protocol)")
    sc.add_argument("--num-samples", type=int, help="generated images per metric (default: all)")
    sc.add_argument("--range", help='value range of float .npz images: "[0, 1]", "[-1, 1]", '
                    '"[0, 255]"')
    sc.add_argument("--layout", choices=["auto", "nchw", "nhwc"], default="auto",
                    help="axis order of 4-d .npz images (default: auto, when unambiguous)")
    sc.add_argument("--image-size", type=int, help="resize real folder images to this square side")
    sc.add_argument("--seed", type=int, default=0)
    sc.add_argument("--device", default="auto", help="auto (GPU when present), cpu, cuda:N")
    sc.add_argument("--log", action="store_true", help="record the runs in MLflow (--tracking-uri, "
                    "else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db); default: in memory, nothing written")
    sc.add_argument("--tracking-uri", help="MLflow store for --log (implies --log)")
    sc.add_argument("--experiment", default="bench-score", help="MLflow experiment of --log")
    sc.add_argument("--name", default="fake", help="the model's name in MLflow (--log)")
    sc.add_argument("--cache-dir", help="bench cache (real features across calls; default "
                    "$BENCH_CACHE_DIR or .bench_cache)")
    sc.add_argument("--format", choices=["text", "json"], default="text")
    sc.add_argument("--progress", action=argparse.BooleanOptionalAction, default=True,
                    help="progress bars with an estimate of the time left, on a terminal "
                    "(default; never in logs or CI); --no-progress: none")
    _threads_argument(sc)
    sc.add_argument("--verbose", action="store_true", help="the runner's console lines")
    sc.set_defaults(func=cmd_score)

    ls = sub.add_parser("list", help=f"registered {', '.join(LISTS)}, with their options")
    ls.add_argument("kind", nargs="?", choices=list(LISTS))
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with _quiet_libraries():
            _check_arguments(args)
            if getattr(args, "threads", None) and args.func in (cmd_score, cmd_train):
                from bench.executors.threads import applied

                with applied(args.threads):
                    return args.func(args)
            return args.func(args)
    except BenchError as e:
        print(f"error: {printable(e, keep=chr(10))}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bench list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
