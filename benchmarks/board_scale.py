"""How the board scales: `bench leaderboard` on a store of N realistic cell runs, every format.

    python benchmarks/board_scale.py --runs 1000 10000 100000 [--formats json markdown html]
    python benchmarks/board_scale.py --runs 10000 --formats html --keep /tmp/bs --profile

For each N it fills a fresh SQLite MLflow store with one suite of N cell runs: a template
model's ten cells (the metrics a nightly suite logs: FID, KID, IS, precision/recall,
density/coverage, GAN-train, GAN-test, authenticity, data copying, SWD), written through the
project's own writer (real tags, params, intervals, declarations), are cloned by SQL into
N/10 models whose values scatter around a per-model quality, plus the real-data reference
and held-out rows. Then it runs `bench leaderboard SUITE --format F` in a fresh process for
each format (imports included, as a user meets it) and prints wall time and peak memory.

`--keep DIR` keeps the stores (and reuses one already there: the fill is then 0 s);
`--profile` runs each board under cProfile, writes DIR/runs-N/board.F.prof and prints its
20 costliest calls (times under the profiler are about 1.5x the plain ones).

Cloning by SQL is only for speed (10,000 runs through MLflow's client take about 15 min);
the rows are the ones MLflow itself wrote for the template, with new ids and values.
"""

from __future__ import annotations

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np

SUITE = "scale"
# metric plugin -> {value: (typical value, spread over models, higher is better?)}
TEMPLATE = {
    "fid": {"fid": (20.0, 8.0, False)},
    "kid": {"kid_mean": (0.02, 0.01, False), "kid_std": (0.002, 0.0005, False)},
    "inception_score": {"is_mean": (6.0, 1.5, True), "is_std": (0.2, 0.05, True)},
    "precision_recall": {"precision": (0.7, 0.1, True), "recall": (0.5, 0.1, True)},
    "density_coverage": {"density": (0.9, 0.2, True), "coverage": (0.7, 0.1, True)},
    "gan_train": {"gan_train_acc": (0.8, 0.1, True), "tsts_acc": (0.8, 0.1, True),
                  "real_val_acc": (0.95, 0.0, True)},
    "gan_test": {"gan_test_acc": (0.85, 0.1, True), "gan_test_recognisable": (0.9, 0.05, True),
                 "real_val_acc": (0.95, 0.0, True)},
    "authenticity": {"authenticity": (0.7, 0.05, True)},
    "data_copying": {"data_copying_ct": (1.0, 2.0, True)},
    "swd": {"swd_mean": (30.0, 10.0, False), "swd": (30.0, 10.0, False)},
}
INTERVALS = {"fid", "kid_mean", "precision", "recall", "density", "coverage", "gan_train_acc",
             "gan_test_acc", "authenticity", "data_copying_ct", "swd_mean", "is_mean"}


def template_values(quality: float, rng: np.random.Generator, metric: str) -> dict[str, float]:
    out = {}
    for name, (mid, spread, higher) in TEMPLATE[metric].items():
        v = mid + spread * (quality if higher else -quality) + 0.1 * spread * rng.standard_normal()
        out[name] = float(v)
        if name in INTERVALS:
            half = 0.05 * abs(v) + 1e-3
            out[f"{name}.lo"], out[f"{name}.hi"] = v - half, v + half
    return out


def write_template(uri: str) -> tuple[str, list[str]]:
    """Three models' ten cells through the project's writer: a competitor, the real-data
    reference and the held-out row. Returns the experiment id and the competitor's run ids."""
    from bench.metrics import METRICS
    from bench.record.cell_record import CellRecord
    from bench.record.tracking import Tracker, flatten
    from bench.record.values import decode

    tracker = Tracker(uri, SUITE)
    parent = tracker.create_parent(SUITE, {"bench.kind": "suite", "bench.suite": SUITE})
    rng = np.random.default_rng(0)
    template = []
    for model, quality, reference, held_out in (("model-00000", 0.0, False, False),
                                                ("real", 3.0, True, False),
                                                ("held_out", 2.5, True, True)):
        for metric in TEMPLATE:
            cls = METRICS.get(metric)
            rec = CellRecord(suite=SUITE, model=model, dataset="cifar10", metric=metric,
                             cell_key=uuid.uuid4().hex[:16], metric_plugin=metric,
                             metric_version=cls.version, seed=0, version="0.1.0",
                             reference=reference, held_out=held_out, primary=cls.primary,
                             threads="2", values=decode(template_values(quality, rng, metric)),
                             declarations=cls.values,
                             tags={"features": "inception", "samples": "computed"})
            rid = tracker.create_run(f"{model} / cifar10 / {metric}", rec.identity_tags(), parent)
            tracker.log_params(rid, {"seed": "0", **flatten(
                {"model": {"plugin": "callable", "target": "pkg.module:make", "batch_size": 256},
                 "dataset": {"plugin": "cifar10", "root": "/data/cifar10", "n_train": 50000},
                 "metric": {"plugin": metric, "n_samples": 10000, "features": "inception"}})})
            tracker.log_metrics(rid, rec.to_mlflow()[2])
            tracker.set_tags(rid, rec.result_tags())
            tracker.end(rid, "FINISHED")
            if model == "model-00000":
                template.append(rid)
    tracker.end(parent, "FINISHED")
    return tracker.experiment_id, template


def clone(db: Path, template: list[str], models: int, seed: int = 0) -> None:
    """`models - 1` more competitors from the template's rows (runs, tags, params, metrics
    and latest_metrics as MLflow wrote them), each with its own quality."""
    con = sqlite3.connect(db)
    cur = con.cursor()
    rng = np.random.default_rng(seed)
    cols = [r[1] for r in cur.execute("PRAGMA table_info(runs)")]
    q = ",".join("?" * len(cols))
    marks = ",".join("?" * len(template))
    runs = {r[cols.index("run_uuid")]: r for r in cur.execute(
        f"SELECT * FROM runs WHERE run_uuid IN ({marks})", template)}
    tags = cur.execute(f"SELECT key, value, run_uuid FROM tags WHERE run_uuid IN ({marks})",
                       template).fetchall()
    params = cur.execute(f"SELECT key, value, run_uuid FROM params WHERE run_uuid IN ({marks})",
                         template).fetchall()
    metric_of = {r: v for k, v, r in tags if k == "bench.metric"}
    mcols = [r[1] for r in cur.execute("PRAGMA table_info(metrics)")]
    lcols = [r[1] for r in cur.execute("PRAGMA table_info(latest_metrics)")]
    batch: dict[str, list] = {"runs": [], "tags": [], "params": [], "metrics": [], "latest": []}

    def flush() -> None:
        cur.executemany(f"INSERT INTO runs ({','.join(cols)}) VALUES ({q})", batch["runs"])
        cur.executemany("INSERT INTO tags (key, value, run_uuid) VALUES (?,?,?)", batch["tags"])
        cur.executemany("INSERT INTO params (key, value, run_uuid) VALUES (?,?,?)", batch["params"])
        cur.executemany(f"INSERT INTO metrics ({','.join(mcols)}) VALUES "
                        f"({','.join('?' * len(mcols))})", batch["metrics"])
        cur.executemany(f"INSERT INTO latest_metrics ({','.join(lcols)}) VALUES "
                        f"({','.join('?' * len(lcols))})", batch["latest"])
        for v in batch.values():
            v.clear()

    ts = int(time.time() * 1000)
    for i in range(1, models):
        name = f"model-{i:05d}"
        quality = float(rng.standard_normal())
        for old, row in runs.items():
            new = uuid.uuid4().hex
            r = list(row)
            r[cols.index("run_uuid")] = new
            r[cols.index("name")] = f"{name} / cifar10 / {metric_of[old]}"
            r[cols.index("artifact_uri")] = str(r[cols.index("artifact_uri")]).replace(old, new)
            r[cols.index("start_time")] = ts + i
            batch["runs"].append(r)
            for k, v, rid in tags:
                if rid == old:
                    v = {"bench.model": name, "bench.cell_key": new[:16],
                         "mlflow.runName": r[cols.index("name")]}.get(k, v)
                    batch["tags"].append((k, v, new))
            batch["params"].extend((k, v, new) for k, v, rid in params if rid == old)
            for k, v in template_values(quality, rng, metric_of[old]).items():
                m = {"key": k, "value": v, "timestamp": ts, "step": 0, "is_nan": False,
                     "run_uuid": new}
                batch["metrics"].append([m.get(c) for c in mcols])
                batch["latest"].append([m.get(c) for c in lcols])
        if len(batch["runs"]) >= 5000:
            flush()
    flush()
    con.commit()
    con.close()


def time_board(uri: str, fmt: str, out: Path, profile: Path | None = None) -> tuple[float, float]:
    """Seconds and peak resident MiB of `bench leaderboard SUITE --format fmt` in a fresh
    process (imports included, as a user meets it); with `profile`, under cProfile, its stats
    written there."""
    call = (f"main(['leaderboard', {SUITE!r}, '--tracking-uri', {uri!r}, '--format', {fmt!r}, "
            f"'--out', {str(out)!r}])")
    if profile is not None:
        call = (f"import cProfile; p = cProfile.Profile(); p.enable(); rc = {call}; p.disable(); "
                f"p.dump_stats({str(profile)!r})")
    else:
        call = f"rc = {call}"
    code = ("import resource, sys, time; t = time.perf_counter(); from bench.cli import main; "
            f"{call}; "
            # VmHWM, not ru_maxrss: a forked child's ru_maxrss starts at its parent's peak
            "hwm = [l.split()[1] for l in open('/proc/self/status') if l.startswith('VmHWM')]; "
            "print(time.perf_counter() - t, hwm[0] if hwm else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss); "
            "sys.exit(rc)")
    t0 = time.perf_counter()
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    wall = time.perf_counter() - t0
    if r.returncode != 0:
        raise SystemExit(f"bench leaderboard --format {fmt} failed:\n{r.stderr[-2000:]}")
    _, rss_kib = r.stdout.strip().splitlines()[-1].split()
    return wall, float(rss_kib) / 1024


def print_profile(path: Path, top: int = 20) -> None:
    import pstats

    print(f"--- {path} (cumulative, top {top})")
    pstats.Stats(str(path)).strip_dirs().sort_stats("cumulative").print_stats(top)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, nargs="+", default=[1000, 10000])
    p.add_argument("--formats", nargs="+", default=["json", "markdown", "csv", "html"])
    p.add_argument("--keep", type=Path, help="keep the stores in this folder (else a temporary one); "
                   "a store already there is reused")
    p.add_argument("--profile", action="store_true",
                   help="run each board under cProfile (board.F.prof next to the store) and print its top calls")
    args = p.parse_args()
    root = args.keep or Path(tempfile.mkdtemp(prefix="board-scale-"))
    root.mkdir(parents=True, exist_ok=True)
    print(f"{os.cpu_count()} CPUs; stores under {root}")
    print(f"{'runs':>8} {'models':>7} {'fill s':>7} " + " ".join(f"{f + ' s':>10} {'MiB':>6}" for f in args.formats))
    for n in args.runs:
        folder = root / f"runs-{n}"
        folder.mkdir(exist_ok=True)
        db = folder / "mlflow.db"
        uri = f"sqlite:///{db}"
        models = max(1, n // len(TEMPLATE) - 2)  # two reference models complete the count
        t0 = time.perf_counter()
        if not db.exists():
            cwd = os.getcwd()
            os.chdir(folder)  # MLflow's default artifact root is relative to the working folder
            try:
                _, template = write_template(uri)
            finally:
                os.chdir(cwd)
            clone(db, template, models)
        fill = time.perf_counter() - t0
        row = f"{(models + 2) * len(TEMPLATE):>8} {models:>7} {fill:>7.1f} "
        profiles = []
        for fmt in args.formats:
            prof = folder / f"board.{fmt}.prof" if args.profile else None
            wall, mib = time_board(uri, fmt, folder / f"board.{fmt}", prof)
            row += f"{wall:>10.2f} {mib:>6.0f} "
            profiles += [prof] if prof else []
        print(row, flush=True)
        for prof in profiles:
            print_profile(prof)


if __name__ == "__main__":
    main()
