"""`bench run | validate | list | leaderboard`: the command line. User mistakes print one
clear message (no traceback) and exit 2; failed cells exit 1; Ctrl-C exits 130."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from bench.errors import BenchError


def _quiet_libraries() -> None:
    # MLflow's store migrations and git warnings are noise for a benchmark user
    os.environ.setdefault("GIT_PYTHON_REFRESH", "quiet")
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    for name in ("alembic", "mlflow", "mlflow.store", "mlflow.tracking"):
        logging.getLogger(name).setLevel(logging.ERROR)


def cmd_validate(args: argparse.Namespace) -> int:
    from bench.suite import load_suite

    s = load_suite(args.suite)
    print(f"{args.suite}: OK — suite '{s.name}', {len(s.datasets)} dataset(s), {len(s.models)} "
          f"model(s), {len(s.metrics)} metric(s), {len(s.cells)} cell run(s) "
          f"({s.repeats} repeat(s) each)")
    for c in s.cells:
        print(f"  {c.key}  {c.label}")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from bench.runner import run_suite
    from bench.suite import load_suite

    suite = load_suite(args.suite)  # validates everything before any run exists
    report = run_suite(suite, tracking_uri=args.tracking_uri, force=args.force,
                       progress=not args.no_progress, cache_dir=args.cache_dir)
    print()
    if report.leaderboard:
        print(report.leaderboard)
        if args.out:
            Path(args.out).write_text(report.leaderboard)
    print(report.summary())
    print(f"\nMLflow: {report.tracking_uri}, experiment id {report.experiment_id}, "
          f"suite run {report.parent_run_id}  (browse: mlflow ui --backend-store-uri {report.tracking_uri})")
    if report.interrupted:
        return 130
    return 0 if report.ok else 1


def cmd_leaderboard(args: argparse.Namespace) -> int:
    from bench.leaderboard import build_leaderboard, render
    from bench.tracking import Tracker, resolve_uri

    target = args.suite
    suite_uri = None
    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from bench.suite import load_suite

        s = load_suite(target, check_resources=False)
        name, experiment, suite_uri = s.name, args.experiment or s.experiment, s.tracking_uri
    else:
        name, experiment = target, args.experiment or target
    uri = resolve_uri(args.tracking_uri, suite_uri)
    # under `mlflow run`, read the experiment the run lives in unless told otherwise
    env_exp = os.environ.get("MLFLOW_EXPERIMENT_ID") if not args.experiment else None
    tracker = Tracker(uri, experiment_id=env_exp or _experiment_id(uri, experiment))
    if args.run_id:
        cells = tracker.suite_cells(args.run_id)
        ids = [c["run_id"] for c in (cells or {}).values() if c["status"] in ("finished", "cached")]
        runs = tracker.cell_runs(run_ids=ids) if cells else tracker.cell_runs(parent=args.run_id)
    else:
        runs = tracker.cell_runs(suite=name)
    if runs.empty:
        raise BenchError(f"no finished cell runs of suite '{name}' in experiment '{experiment}' at "
                         f"{uri}. Run `bench run` first, or pass --tracking-uri / --experiment.")
    text = render(build_leaderboard(runs, sort_by=args.sort), args.format)
    if os.environ.get("MLFLOW_RUN_ID"):  # the `leaderboard` entry point keeps its output
        ext = {"markdown": "md"}.get(args.format, args.format)
        tracker.log_text(os.environ["MLFLOW_RUN_ID"], text, f"leaderboard.{ext}")
    if args.out:
        Path(args.out).write_text(text)
        print(f"wrote {args.out}", file=sys.stderr)
    else:
        print(text)
    return 0


def _experiment_id(uri: str, name: str) -> str:
    from mlflow import MlflowClient

    exp = MlflowClient(uri).get_experiment_by_name(name)
    if exp is None:
        raise BenchError(f"no MLflow experiment '{name}' at {uri}. Check the name, or pass "
                         "--tracking-uri (the store `bench run` used).")
    return exp.experiment_id


def cmd_list(args: argparse.Namespace) -> int:
    import inspect

    from bench.classifiers import CLASSIFIERS
    from bench.data import DATASETS
    from bench.metrics import METRICS
    from bench.models import MODELS
    from bench.registry import describe_options

    kinds = [("datasets", DATASETS), ("models", MODELS), ("metrics", METRICS)]
    for title, reg in kinds:
        if args.kind and args.kind != title:
            continue
        print(f"\n{title}:")
        for name, cls in reg.items():
            print(f"  {name:<18} {cls.summary()}")
            for opt, typ, default, desc in describe_options(cls.Options):
                d = f" — {desc}" if desc else ""
                print(f"      {opt}: {typ} = {default if isinstance(default, str) and default.startswith(('(', '{')) else repr(default)}{d}")
    if not args.kind or args.kind == "classifiers":
        print("\nclassifiers (metric option `classifier: {name: ..., epochs: ..., ...}`):")
        for name, fn in CLASSIFIERS.items():
            doc = (fn.__doc__ or "").strip().splitlines()[0] if fn.__doc__ else ""
            params = [p for p in inspect.signature(fn).parameters
                      if p not in ("in_chans", "num_classes", "image_size")]
            print(f"  {name:<18} {doc}" + (f"  (args: {', '.join(params)})" if params else ""))
        from bench.classifiers.train import ClassifierConfig

        print("  training options of every classifier:")
        for opt, typ, default, desc in describe_options(ClassifierConfig):
            print(f"      {opt}: {typ} = {default!r}" + (f" — {desc}" if desc else ""))
    return 0


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
    r.add_argument("--no-progress", action="store_true", help="no progress bars")
    r.add_argument("--out", help="also write the leaderboard (markdown) here")
    r.set_defaults(func=cmd_run)

    v = sub.add_parser("validate", help="check a suite without running anything")
    v.add_argument("suite")
    v.set_defaults(func=cmd_validate)

    lb = sub.add_parser("leaderboard", help="tables of a suite's finished runs")
    lb.add_argument("suite", help="suite YAML file or suite name")
    lb.add_argument("--experiment", help="MLflow experiment (default: the suite's)")
    lb.add_argument("--run-id", help="one suite run instead of the latest run of every cell")
    lb.add_argument("--sort", help="value to sort by (default: the first metric's main value)")
    lb.add_argument("--format", choices=["markdown", "csv", "json"], default="markdown")
    lb.add_argument("--out", help="write to this file instead of stdout")
    lb.add_argument("--tracking-uri")
    lb.set_defaults(func=cmd_leaderboard)

    ls = sub.add_parser("list", help="registered datasets, models, metrics, classifiers")
    ls.add_argument("kind", nargs="?", choices=["datasets", "models", "metrics", "classifiers"])
    ls.set_defaults(func=cmd_list)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    _quiet_libraries()
    try:
        return args.func(args)
    except BenchError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `bench list | head`
        return 0


if __name__ == "__main__":
    sys.exit(main())
