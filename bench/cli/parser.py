"""The command line's arguments: the parser of every `bench` command, its argument types, and
what the arguments alone can tell is wrong (checked before a suite is read or a store opened).
`args.command` names the subcommand; bench.cli.commands.COMMANDS maps it to its function."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import Any, get_args

from bench.core.errors import BenchError
from bench.report.formats import COMPARE_FORMATS, IMAGE_MODELS, TEXT_FORMATS
from bench.report.formats import FORMATS as LEADERBOARD_FORMATS
from bench.workflows.history import HISTORY_RUNS, TREND_RUNS
from bench.workflows.store import check_tracking_uri

# `bench list KIND`: where each kind's registry lives, imported only when listed
LISTS = {"datasets": "bench.data:DATASETS", "models": "bench.models:MODELS",
         "metrics": "bench.metrics:METRICS", "classifiers": "bench.classifiers:CLASSIFIERS",
         "features": "bench.features:FEATURES", "executors": "bench.executors:EXECUTORS"}

# per cell: a hung cell must not hold the night; a suite whose cells take longer (a CIFAR
# reproduction trained on a CPU) sets its own `timeout`
NIGHTLY_TIMEOUT_S = 6 * 3600


# ---------------------------------------------------------------- argument types (usage errors, exit 2)
def _count(text: str) -> int:
    """A non-negative integer argument (argparse reports anything else as a usage error, exit 2)."""
    if not text.isdigit():
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got '{text}'")
    return int(text)


def _positive(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 1, got '{text}'")
    return int(text)


def _seconds(v: str) -> float:
    try:
        t = float(v)
    except ValueError:
        t = -1.0
    if not t > 0:
        raise argparse.ArgumentTypeError(f"expected seconds, a number > 0, got '{v}'")
    return t


def _bool(v: str | bool) -> bool:
    if isinstance(v, bool):
        return v
    if v.lower() in ("1", "true", "yes", "on"):
        return True
    if v.lower() in ("0", "false", "no", "off", ""):
        return False
    raise argparse.ArgumentTypeError(f"expected true or false, got '{v}'")


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


def threshold_pairs(items: list[str] | None) -> dict[str, float]:
    """`--threshold-for fid=0.1 ...` as {value name: fraction}."""
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


def _check_history(args: argparse.Namespace) -> None:
    """`bench leaderboard SUITE --model NAME --history`: both, over every suite run, as text."""
    if args.command != "leaderboard" or not (args.history or args.model):
        return
    if not (args.model and args.history):
        raise BenchError("--history and --model go together: `bench leaderboard SUITE --model NAME --history`.")
    if args.run_id or args.format not in TEXT_FORMATS:
        raise BenchError(f"--history covers every suite run: drop --run-id, use --format "
                         f"{'|'.join(TEXT_FORMATS)}.")


def check_arguments(args: argparse.Namespace) -> None:
    """What the command line alone can tell is wrong, before a suite is read or a store opened."""
    _check_history(args)
    check_out(getattr(args, "out", None))
    if getattr(args, "tracking_uri", None):
        check_tracking_uri(args.tracking_uri)
    elif os.environ.get("MLFLOW_TRACKING_URI"):
        check_tracking_uri(os.environ["MLFLOW_TRACKING_URI"], "MLFLOW_TRACKING_URI")
    if getattr(args, "threshold_for", None):
        threshold_pairs(args.threshold_for)
    _check_compare_numbers(args)


def comparison_options(args: argparse.Namespace) -> dict[str, Any]:
    """compare / nightly: the keyword arguments of bench.workflows.api.compare and nightly."""
    return {"history": args.history, "threshold": args.threshold,
            "thresholds": threshold_pairs(args.threshold_for), "z": args.z}


def executor_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The executor flags as given (`--workers` -> value; None: not given), for
    bench.workflows.prepare.build_executor."""
    from bench.executors import executor_flags

    return {flag: getattr(args, _dest(flag)) for flag in executor_flags()}


def features_option(text: str) -> str | dict:
    """`bench score --features`: a name, or the extractor's options as YAML/JSON."""
    if not text.lstrip().startswith("{"):
        return text
    import yaml

    try:
        return yaml.safe_load(text)
    except yaml.YAMLError as e:
        raise BenchError(f"--features: not a valid mapping ({e}); e.g. "
                         "--features '{name: timm, model: resnet50, weights: w.pth}'") from None


# ---------------------------------------------------------------- the parser
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


def _threads_argument(p: argparse.ArgumentParser) -> None:
    """`--threads N` for a command that computes in this process (bench run and nightly take
    it from the local executor's options)."""
    p.add_argument("--threads", type=_positive, metavar="N", help="CPU threads of this "
                   "process (default: $BENCH_THREADS, else every core); on a machine shared "
                   "with other heavy jobs, fewer is faster (bench.executors.threads)")


def _compare_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--history", type=int, default=HISTORY_RUNS,
                   help="known-good earlier suite runs (the base and the runs before it, without "
                   "those whose nightly found the cell regressed) whose median is the baseline "
                   f"and whose spread is the noise band (default {HISTORY_RUNS}; 0: the base run "
                   "and the repeats' spread only)")
    p.add_argument("--threshold", type=float, default=0.05, help="relative change that counts (0.05)")
    p.add_argument("--threshold-for", action="append", metavar="VALUE=FRACTION",
                   help="per-value threshold, e.g. fid=0.1 (repeatable)")
    p.add_argument("--z", type=float, default=4.0, help="noise band in standard deviations (4)")


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

    v = sub.add_parser("validate", help="check a suite without running anything")
    v.add_argument("suite")
    v.add_argument("--tracking-uri", help="the store whose model registry holds the suite's "
                   "models:/ URIs (default: env, suite, sqlite:///mlflow.db)")

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
    _compare_arguments(cp)

    nt = sub.add_parser("nightly", help="run a suite afresh, compare with the previous run, "
                        "exit 1 on a regression or a failed cell, 75 when a live runner holds "
                        "the suite (skipped)")
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
    _compare_arguments(nt)

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

    ls = sub.add_parser("list", help=f"registered {', '.join(LISTS)}, with their options")
    ls.add_argument("kind", nargs="?", choices=list(LISTS))
    return p
