"""CPU of rendering a board, per format, on synthetic tables (no store, no subprocess):

    python benchmarks/board_render.py [--models 300 3000 10000] [--formats csv html] [--repeat 3]
    python benchmarks/board_render.py --tree /tmp/old   # the same on another checkout's code

For each size it builds one dataset of N competing models and a real-data reference, nine
score values each (the metrics a nightly suite ranks: FID, KID, IS, precision, recall, density,
coverage, authenticity, SWD; most with a 95% interval), through `build_leaderboard` (not
timed), then times what `bench leaderboard --format F` does after reading the store:
`render(tables, F)` for the text formats, `render_html(tables)` for the page (no images), and
`build_board(tables)` alone where the code has it. Each figure is the smallest CPU time
(time.process_time, this process only) of `--repeat` runs (default 2), after one untimed warm-up run on
a small board; wall time beside it (the machine may be shared).

`--tree DIR` imports `bench` from DIR first: the steps above are the old code's public API
too, so a commit's tree (`git archive COMMIT bench | tar -x -C DIR`) is timed the same way.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Callable

import numpy as np

# value -> (typical value, spread over models, higher is better?, logs an interval?)
VALUES = {"fid": (20.0, 8.0, False, True), "kid_mean": (0.02, 0.01, False, True),
          "is_mean": (6.0, 1.5, True, True), "precision": (0.7, 0.1, True, True),
          "recall": (0.5, 0.1, True, True), "density": (0.9, 0.2, True, True),
          "coverage": (0.7, 0.1, True, True), "authenticity": (0.7, 0.05, True, True),
          "swd": (30.0, 10.0, False, False)}
ASPECTS = {"fid": "quality", "kid_mean": "quality", "is_mean": "quality", "precision": "quality",
           "recall": "diversity", "density": "quality", "coverage": "diversity",
           "authenticity": "memorisation", "swd": "quality"}


def synthetic_runs(models: int, seed: int = 0):
    """The cell-runs frame `build_leaderboard` reads: one run per (model, value), values
    scattered around a per-model quality, the reference (`real`) best at everything. (Every
    value has an interval: the board's headline, authenticity, then places models in a few
    dominance layers, as real boards do; one layer per model would make the places, the
    same code before and after, cost most of the time.)"""
    import pandas as pd

    from bench.record.values import score

    rng = np.random.default_rng(seed)
    rows = []
    for i in range(models + 1):
        real = i == models
        model = "real" if real else f"model-{i:05d}"
        quality = 3.0 if real else float(rng.standard_normal())
        for k, (name, (mid, spread, higher, interval)) in enumerate(VALUES.items()):
            x = mid + spread * (quality if higher else -quality) + 0.1 * spread * rng.standard_normal()
            row = {"suite": "s", "dataset": "cifar10", "model": model, "repeat": 0, "reference": real,
                   "cell_key": f"k{i}-{k}", "start_time": i * len(VALUES) + k, "run_id": f"r{i}x{k}",
                   "metric": name, "values": {name: score("higher" if higher else "lower", ASPECTS[name])},
                   "primary": name, f"m:{name}": x}
            if interval:
                half = 0.05 * abs(x) + 1e-3
                row[f"m:{name}.lo"], row[f"m:{name}.hi"] = x - half, x + half
            rows.append(row)
    return pd.DataFrame(rows)


def steps(formats: list[str]) -> dict[str, Callable[[list], object]]:
    from bench.report.html import render_html
    from bench.report.leaderboard import render

    out: dict[str, Callable[[list], object]] = {}
    try:
        from bench.report.board_builder import build_board
        out["board"] = build_board
    except ImportError:  # code before the typed board
        pass
    for fmt in formats:
        out[fmt] = ((lambda tables: render_html(tables, title="bench")) if fmt == "html"
                    else (lambda tables, f=fmt: render(tables, f)))
    return out


def timed(fn: Callable[[list], object], runs, repeat: int) -> tuple[float, float]:
    """(CPU, wall) seconds of the fastest of `repeat` calls, by CPU, each on tables built
    afresh (not timed): a Table keeps its ranks, places and texts once computed, and
    `bench leaderboard` computes them once per process."""
    from bench.report.leaderboard import build_leaderboard

    best = (float("inf"), float("inf"))
    for _ in range(repeat):
        tables = build_leaderboard(runs)
        c0, w0 = time.process_time(), time.perf_counter()
        fn(tables)
        best = min(best, (time.process_time() - c0, time.perf_counter() - w0))
    return best


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--models", type=int, nargs="+", default=[300, 3000, 10000])
    p.add_argument("--formats", nargs="+", default=["markdown", "csv", "json", "latex", "html"])
    p.add_argument("--repeat", type=int, default=2)
    p.add_argument("--tree", help="import bench from this directory first")
    args = p.parse_args()
    if args.tree:
        sys.path.insert(0, os.path.abspath(args.tree))
    import bench
    from bench.report.leaderboard import build_leaderboard

    print(f"bench from {os.path.dirname(bench.__file__)}; load average "
          + " ".join(f"{x:.2f}" for x in os.getloadavg()))
    todo = steps(args.formats)
    warm = build_leaderboard(synthetic_runs(30))
    for fn in todo.values():
        fn(warm)
    print(f"{'models':>7} {'step':>9} {'CPU s':>7} {'wall s':>7}")
    for n in args.models:
        runs = synthetic_runs(n)
        for name, fn in todo.items():
            cpu, wall = timed(fn, runs, args.repeat)
            print(f"{n:>7} {name:>9} {cpu:7.3f} {wall:7.3f}", flush=True)


if __name__ == "__main__":
    main()
