"""Write the golden boards: each board's input frame (NAME.input.json) and what the renderers
made of it (NAME.md / .csv / .json / .tex, and NAME.html from render_html without images or
a generated stamp). tests/test_board_golden.py checks the renderers still write exactly this.

    python tests/data/boards/capture.py synthetic              # the small frames below
    python tests/data/boards/capture.py guardrails             # runs suites/guardrails.yaml (minutes)
    python tests/data/boards/capture.py store NAME URI SUITE.yaml   # a store's latest runs of a suite
    python tests/data/boards/capture.py outputs NAME...        # re-render from saved inputs

Re-render only on purpose (an intended change of the board), and say so in the commit. To
capture a new input as the board was before a change, run this file from an export of that
commit (`git archive COMMIT | tar -x -C DIR`, then `PYTHONPATH=DIR python DIR/tests/...`).
quickstart: `bench run suites/quickstart.yaml`'s store, captured with `store`.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

import pandas as pd

ROOT = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(ROOT / "tests"))

from board_frames import BOARDS, read_input, write_input  # noqa: E402

from bench.record.flags import Flag  # noqa: E402
from bench.record.values import diagnostic, reference, score  # noqa: E402

EXTENSIONS = {"markdown": "md", "csv": "csv", "json": "json", "latex": "tex"}


def write_outputs(name: str) -> None:
    from bench.report.html import render_html
    from bench.report.leaderboard import build_leaderboard, render

    runs, declared, in_progress = read_input(name)
    tables = build_leaderboard(runs, declared=declared, in_progress=in_progress)
    for fmt, ext in EXTENSIONS.items():
        (BOARDS / f"{name}.{ext}").write_text(render(tables, fmt))
    (BOARDS / f"{name}.html").write_text(render_html(tables, title=f"{name} board"))
    print(f"{name}: {len(runs)} runs, {len(tables)} table(s)")


# ------------------------------------------------------------------ synthetic frames

TRAIN = {"gan_train_acc": score("higher", "utility")}
FID = {"fid": score("lower", "quality")}
RUNNING = "suite run abc is in progress (pid 7 on host, last heartbeat 3 s ago)"


def _frame(rows: list[dict]) -> pd.DataFrame:
    base = {"suite": "s", "cell_key": "k", "primary": "", "reference": False, "held_out": False,
            "dataset": "d", "repeat": 0, "values": {}}
    return pd.DataFrame([{**base, "start_time": i, **r} for i, r in enumerate(rows)])


def _finished(model: str, acc: float, fid: float, **kw) -> list[dict]:
    return [{"model": model, "metric": "gan_train", "values": TRAIN, "primary": "gan_train_acc",
             "m:gan_train_acc": acc, "m:gan_train_acc.lo": acc - 0.02,
             "m:gan_train_acc.hi": acc + 0.02, **kw},
            {"model": model, "metric": "fid", "values": FID, "primary": "fid", "m:fid": fid, **kw}]


def states() -> None:
    """tests/test_board_states.py's board: pending models, a failure, a live run; plus a
    model name with markdown, HTML and a terminal escape in it."""
    hostile = "x|<b>y</b>_[l](u)\x1b[31m"
    df = _frame([*_finished("a", 0.9, 5.0), *_finished("b", 0.7, 9.0), *_finished(hostile, 0.8, 7.0),
                 {"model": "broken", "metric": "gan_train", "values": TRAIN,
                  "primary": "gan_train_acc", "status": "FAILED", "error": "boom: bad output"}])
    declared = {("d", m) for m in ("a", "b", hostile, "broken", "later", "later2")}
    write_input("states", df, declared, RUNNING)
    write_input("states_not_run", df, declared, None)


def ties() -> None:
    """tests/test_tie_order.py's board: four models within each other's uncertainty."""
    acc = {"acc": score("higher", "utility")}
    rows = [{"model": m, "metric": "acc", "values": acc, "primary": "acc", "m:acc": x,
             "m:acc.lo": x - 0.1, "m:acc.hi": x + 0.1}
            for m, x in (("m2", 0.80), ("alpha", 0.79), ("m1", 0.80), ("zeta", 0.81))]
    write_input("ties", _frame(rows))


def mixed() -> None:
    """Two datasets with repeats, intervals, bounds, every kind of target (held-out row,
    fallback, fixed, unresolvable), diagnostics, data values, flags (a gate and a warning on
    a value), a reference row, a wide table split by aspect, and ranking agreement."""
    gtest = {"gan_test_acc": score("target", "quality", ref=True, fallback="real_val_acc"),
             "real_val_acc": reference("higher")}
    auth = {"auth": score("target", "memorisation", ref=True)}
    ct = {"ct": score("target", "memorisation", target=0.0)}
    orphan = {"orphan": score("target", "diversity", ref=True)}
    eff = {"effective_size": score("higher", "utility"), "curve_slope": diagnostic("lower")}
    rows: list[dict] = []
    models = {"good": 0.0, "okay": 0.1, "weak": 0.25, "copier": 0.05, "held": 0.0, "real": -0.05,
              "nameless": 0.3}
    for rep in (0, 1):
        for m, off in models.items():
            ident = {"model": m, "repeat": rep, "reference": m in ("held", "real"),
                     "held_out": m == "held"}
            acc = 0.9 - off + 0.01 * rep
            rows.append({**ident, "metric": "gan_train", "values": TRAIN, "primary": "gan_train_acc",
                         "m:gan_train_acc": acc, "m:gan_train_acc.lo": acc - 0.03,
                         "m:gan_train_acc.hi": acc + 0.03,
                         "flags": [Flag("copies", "authenticity 0.02 below the held-out row", True,
                                        "auth")] if m == "copier" else
                         [Flag("leak", "train and test share 3 images", False, "gan_train_acc")]
                         if m == "okay" else []})
            rows.append({**ident, "metric": "fid", "values": FID, "primary": "fid",
                         "m:fid": 5.0 + 40 * off + 0.3 * rep})
            if m != "nameless":
                rows.append({**ident, "metric": "gan_test", "values": gtest, "primary": "gan_test_acc",
                             "m:gan_test_acc": 0.93 - off / 2, "m:gan_test_acc.lo": 0.9 - off / 2,
                             "m:gan_test_acc.hi": 0.96 - off / 2, "m:real_val_acc": 0.95})
            rows.append({**ident, "metric": "authenticity", "values": auth, "primary": "auth",
                         "m:auth": 0.5 + off, "m:auth.lo": 0.48 + off, "m:auth.hi": 0.52 + off})
            rows.append({**ident, "metric": "copy", "values": ct, "primary": "ct",
                         "m:ct": -3.0 + 20 * off})
            rows.append({**ident, "metric": "orph", "values": orphan, "primary": "orphan",
                         "m:orphan": 0.3 + off})
            rows.append({**ident, "metric": "curve", "values": eff, "primary": "effective_size",
                         "m:effective_size": 179.0 if m in ("weak", "copier") else 150.0 + 10 * off,
                         "m:curve_slope": 0.01 * (1 + off),
                         **({"m:effective_size.bound": -1.0} if m in ("weak", "copier") else {})})
    df = _frame(rows)
    # a second, wide dataset: twelve scores over four aspects, one run each, with intervals
    wide = []
    for m, off in (("good", 0.0), ("okay", 0.1), ("weak", 0.3), ("noise", 0.6)):
        for k in range(12):
            aspect = ("quality", "diversity", "utility", "memorisation")[k % 4]
            name = f"s{k:02d}"
            decl = {name: score("lower" if k % 3 else "higher", aspect)}
            x = (1 - off) if not k % 3 else (0.1 + off) * (k + 1)
            wide.append({"dataset": "wide", "model": m, "metric": f"w{k}", "values": decl,
                         "primary": name, f"m:{name}": x, f"m:{name}.lo": x - 0.05,
                         f"m:{name}.hi": x + 0.05})
        for k in range(10):  # a wide diagnostic group, split by metric
            name = f"diag{k}"
            wide.append({"dataset": "wide", "model": m, "metric": f"dm{k % 2}",
                         "values": {name: diagnostic("higher")}, "primary": "",
                         f"m:{name}": 0.5 + off * k})
    # a third: a target nothing resolves (no held-out row), listed as not ranked
    wide += [{"dataset": "noref", "model": m, "metric": "orph", "values": orphan,
              "primary": "orphan", "m:orphan": x} for m, x in (("good", 0.2), ("okay", 0.9))]
    df = pd.concat([df, _frame(wide).assign(start_time=lambda d: d["start_time"] + len(df))],
                   ignore_index=True)
    write_input("mixed", df)


def synthetic() -> None:
    states()
    ties()
    mixed()
    for name in ("states", "states_not_run", "ties", "mixed"):
        write_outputs(name)


def store(name: str, uri: str, suite_file: str) -> None:
    from bench.config.suite import declared_pairs, load_suite
    from bench.record.tracking import Tracker

    suite = load_suite(suite_file)
    runs = Tracker(uri, suite.experiment).cell_runs(suite=suite.name, failed=True)
    write_input(name, runs, declared_pairs(suite), None)
    write_outputs(name)


def guardrails() -> None:
    import bench.report.html  # noqa: F401 - loaded now: the renderers as they are at the start
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    suite_file = ROOT / "suites" / "guardrails.yaml"
    with tempfile.TemporaryDirectory() as tmp:
        uri = f"sqlite:///{tmp}/mlflow.db"
        run_suite(load_suite(suite_file), tracking_uri=uri, progress=False,
                  cache_dir=str(Path(tmp) / "cache"))
        store("guardrails", uri, str(suite_file))


if __name__ == "__main__":
    what, *args = sys.argv[1:]
    if what == "synthetic":
        synthetic()
    elif what == "guardrails":
        guardrails()
    elif what == "store":
        store(*args)
    elif what == "outputs":
        for n in args:
            write_outputs(n)
    else:
        raise SystemExit(__doc__)
