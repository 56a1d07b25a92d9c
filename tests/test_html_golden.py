"""The HTML board page byte for byte: each case below is rendered and compared with the page
that was written from it before the page moved to templates (tests/data/html/*.html), so a
change of markup, whitespace or escaping shows up here. The cases cover what a page can hold:
references and a held-out row, targets, bounds, intervals, flags and gates, failures,
pending / not-run rows, a table split by aspect, the data's reference values, ranking
agreement, published values, trends, figures, images and run links, tables without a score
column, and hostile names (markup, attribute breakers, control characters) everywhere a name
is shown.

A deliberate change of the page: `python tests/test_html_golden.py --write` rewrites the files;
review the diff before committing them.
"""

from __future__ import annotations

import base64
import hashlib
import sys
from importlib import resources
from pathlib import Path

import pandas as pd
import pytest

from bench.config.published import PublishedBlock
from bench.record.flags import Flag
from bench.record.values import diagnostic, reference, score
from bench.report.compare import trends
from bench.report.html import collect_images, html_report, render_html
from bench.report.leaderboard import build_leaderboard

GOLDEN = Path(__file__).parent / "data" / "html"
BOARDS = Path(__file__).parent / "data" / "boards"

EVIL = "<script>alert(1)</script>"
ATTR = '"onmouseover=alert(1) x="'
ESC = "\x1b[31mred\x1b[0m\x07"
MAIL = "Jane Doe <jane@example.org>"
AMP = "a&amp;b 'q' `tick` [link](http://x.example)"

# fake image bytes: the magic numbers are all image_mime reads
PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(40))
JPEG = b"\xff\xd8\xff\xe0" + b"jfif" * 8
GIF = b"GIF89a" + b"\x01\x02" * 10


def _row(ds, model, metric, values, primary, x, *, repeat=0, ref=False, held=False, t=0, **extra):
    return {"suite": "s", "dataset": ds, "model": model, "metric": metric, "repeat": repeat,
            "reference": ref, "held_out": held, "cell_key": f"{ds}/{model}/{metric}",
            "run_id": f"{metric}-{len(model)}-{repeat}-{sum(map(ord, model + ds)) % 9973}",
            "start_time": t, "metric_version": "1", "values": values, "primary": primary, **x,
            **extra}


FULL = {"gan_train_acc": score("higher", "utility"),
        "gan_test_acc": score("target", "conditioning", ref=True),
        "fid": score("lower", "quality"),
        "ess": score("higher", "diversity"),
        "calib": score("target", "quality", target=0),
        "fid_std": diagnostic("lower"),
        "real_val_acc": reference("higher")}


def full_runs() -> pd.DataFrame:
    """Two datasets; competing models with repeats, intervals and a bound; a flagged and a
    warned model; a failed model; a held-out reference row; the data's own reference value."""
    rows, t = [], 0
    models = {"good": (0.91, 0.93, 4.1, 900, 0.01), "fair": (0.85, 0.80, 9.0, 400, -0.2),
              "copier": (0.95, 0.97, 2.0, 1000, 0.0), "meh": (0.60, 0.55, 30.0, 100, 0.4),
              "real": (0.98, 0.96, 0.5, 2000, 0.0)}
    for ds in ("digits", "fashion"):
        for m, (acc, test, fid, ess, calib) in models.items():
            ref = m == "real"
            for rep in (0, 1) if m in ("good", "fair") else (0,):
                d = 0.01 * rep
                flags = ([Flag("copies", "C_T 0.02 < 0.05: near-copies of training images", True)]
                         if m == "copier" else
                         [Flag("saturated", "41% of pixels at the range ends", False, "fid")]
                         if m == "meh" else [])
                t += 1
                rows.append(_row(ds, m, "gan_train", FULL, "gan_train_acc",
                                 {"m:gan_train_acc": acc + d, "m:gan_train_acc.lo": acc + d - 0.02,
                                  "m:gan_train_acc.hi": acc + d + 0.02, "m:real_val_acc": 0.991},
                                 repeat=rep, ref=ref, held=ref, t=t, flags=flags))
                t += 1
                rows.append(_row(ds, m, "gan_test", FULL, "gan_test_acc",
                                 {"m:gan_test_acc": test - d}, repeat=rep, ref=ref, held=ref, t=t))
                t += 1
                rows.append(_row(ds, m, "fid", FULL, "fid",
                                 {"m:fid": fid * (1 + d), "m:fid_std": 0.1 + d}, repeat=rep,
                                 ref=ref, held=ref, t=t))
                t += 1
                rows.append(_row(ds, m, "ess", FULL, "ess",
                                 {"m:ess": float(ess), **({"m:ess.bound": -1.0} if m == "meh" else {}),
                                  "m:calib": calib + d}, repeat=rep, ref=ref, held=ref, t=t))
        t += 1
        rows.append(_row(ds, "broken", "fid", FULL, "fid", {}, t=t, status="FAILED",
                         error="CUDA out of memory\nTraceback (most recent call last): ..."))
    return pd.DataFrame(rows)


def _trend_points(names: list[str], ds: str = "digits", labels=None) -> list:
    decl = {"gan_train_acc": score("higher", "utility"), "fid": score("lower", "quality")}
    points = []
    for night in range(4):
        rows = []
        for k, m in enumerate(names):
            jump = 8.0 if (m == names[0] and night == 3) else 0.0
            rows += [_row(ds, m, "gan_train", decl, "gan_train_acc",
                          {"m:gan_train_acc": 0.8 + 0.01 * k + 0.001 * night}, t=night * 10 + k),
                     _row(ds, m, "fid", decl, "fid", {"m:fid": 5.0 + k + 0.02 * night + jump},
                          t=night * 10 + k)]
        label = (labels or [f"2026-01-0{n + 1}" for n in range(4)])[night]
        points.append((label, f"suite{night}", pd.DataFrame(rows)))
    return points


def _fetcher(store: dict[tuple[str, str], bytes]):
    return lambda run_id, path: store.get((run_id, path))


def case_full() -> str:
    tables = build_leaderboard(full_runs(), declared={(d, m) for d in ("digits", "fashion") for m in
                                                      ("good", "fair", "copier", "meh", "real",
                                                       "broken", "later")})
    cells = tables[0].cells
    ids = {(m, metric, rep): rid for m, metric, rep, rid in
           cells[["model", "metric", "repeat", "run_id"]].itertuples(index=False)}
    store = {(ids["good", "gan_train", 0], "samples.png"): PNG,
             (ids["good", "fid", 0], "embedding.png"): JPEG,
             (ids["real", "gan_train", 0], "samples.png"): GIF,
             (ids["fair", "gan_train", 0], "samples.png"): b"<svg onload=alert(1)>",  # left out
             (ids["copier", "ess", 0], "nn_grid.png"): PNG + b"x"}
    published = [PublishedBlock(source="Someone et al. 2018, Table 1", dataset="digits",
                                values={"real": {"gan_train_acc": 0.97, "real_val_acc": 0.99},
                                        "good": {"fid": 4.0, "ess": 10.0}},
                                note="a ResNet; ours is smaller"),
                 PublishedBlock(source="Other 2020", dataset="fashion", values={"meh": {"fid": 3.0}})]
    figures = {"digits_fid_vs_gan_train_acc.png": PNG, "digits_gan_train_curves.png": GIF,
               "broken.png": b"not an image"}
    return html_report(tables, _fetcher(store), title="Leaderboard: full", figures=figures,
                       experiment_id="12", ui_url="http://mlflow.example:5000/",
                       generated="2026-01-04 03:00 UTC", published=published,
                       trends=trends(_trend_points(["good", "fair", "meh"]), last=3))


def case_hostile() -> str:
    """Hostile text in every place a name reaches the page: models, dataset, value names,
    flag reasons, errors, published source and note, artifact and figure names, trend labels,
    the title and the generated line."""
    decl = {"acc<b>": score("higher", "utility"), ATTR: score("lower", "quality"),
            "ctl\x1bv": diagnostic("higher"), "ref&val": reference("higher")}
    names = [EVIL, ATTR, ESC, MAIL, AMP, "javascript:alert(1)", "\u202eevil.exe", "real<i>"]
    ds = "<b>ds</b>\x1b"
    rows = []
    for k, m in enumerate(names):
        ref = m == "real<i>"
        flags = [Flag("odd<kind>", f"reason {EVIL} {ESC}", k % 2 == 0)] if k in (2, 3) else []
        rows.append(_row(ds, m, "m<1>", decl, "acc<b>",
                         {"m:acc<b>": 0.5 + 0.05 * k, "m:ctl\x1bv": float(k), "m:ref&val": 0.9},
                         ref=ref, held=ref, t=2 * k, flags=flags))
        rows.append(_row(ds, m, "m\"2", decl, ATTR, {f"m:{ATTR}": 10.0 - k}, ref=ref, held=ref,
                         t=2 * k + 1))
    rows.append(_row(ds, "fails <img src=x onerror=alert(1)>", "m<1>", decl, "acc<b>", {}, t=99,
                     status="FAILED", error=f"{EVIL}\x1b[2J boom"))
    tables = build_leaderboard(pd.DataFrame(rows))
    listing = {run_id: [f"{EVIL}.png", f"{ATTR}.png", "ok.png", "notes.txt"]
               for run_id in tables[0].cells["run_id"]}
    store = {(rid, n): PNG for rid, ns in listing.items() for n in ns}
    images = collect_images(tables, _fetcher(store), lambda rid: listing.get(rid, []))
    published = [PublishedBlock(source=f"Paper {EVIL}", dataset=ds,
                                values={EVIL: {"acc<b>": 0.4}, "real<i>": {"ref&val": 0.95}},
                                note=f"note {ATTR} {ESC}")]
    points = _trend_points([EVIL, ESC, MAIL], ds=ds,
                           labels=[f"night {EVIL}", "n2", "n3", f"last {ATTR}"])
    return render_html(tables, title=f"Leaderboard: {EVIL}{ESC}", images=images,
                       figures={f"{EVIL}.png": PNG, f"{ATTR}.png": JPEG}, experiment_id="7\"><x",
                       ui_url="https://ui.example/a b", generated=f"at {EVIL}",
                       trends=trends(points, last=3), published=published)


def case_wide() -> str:
    """More than 8 scores (one table per aspect) and more than 8 diagnostics (one per metric);
    an unranked target without a held-out row; no run links (no UI)."""
    aspects = ["quality", "diversity", "conditioning", "memorisation", "utility"]
    decl = {f"s{i}": score("lower" if i % 3 else "higher", aspects[i % 5]) for i in range(11)}
    decl |= {f"d{i}": diagnostic("higher") for i in range(10)}
    decl["tref"] = score("target", "quality", ref=True)
    rows = []
    for k, m in enumerate(["alpha", "beta", "gamma", "delta"]):
        for j in range(3):
            x = {f"m:s{i}": 1.0 + ((i * 7 + k * 3) % 5) * 0.1 for i in range(j * 4, min(j * 4 + 4, 11))}
            x |= {f"m:d{i}": float(i * k) for i in range(j * 4, min(j * 4 + 4, 10))}
            if j == 0:
                x["m:tref"] = 0.5 + 0.1 * k
            rows.append(_row("cifar10", m, f"metric{j}", decl, f"s{j * 4}", x, t=k * 3 + j))
    return render_html(build_leaderboard(pd.DataFrame(rows)), title="wide")


def case_pending() -> str:
    """A suite run in progress: declared models without a run are pending, a not-run board
    beside it; one dataset with only a reference model (no competing model to rank)."""
    decl = {"acc": score("higher", "utility"), "fid": score("lower", "quality")}
    rows = [_row("d", "a", "acc", decl, "acc", {"m:acc": 0.9, "m:acc.lo": 0.88, "m:acc.hi": 0.92}, t=1),
            _row("d", "a", "fid", decl, "fid", {"m:fid": 5.0}, t=2),
            _row("d", "b", "acc", decl, "acc", {"m:acc": 0.7}, t=3),
            _row("d", "failing", "acc", decl, "acc", {}, t=4, status="FAILED", error="boom: bad output"),
            _row("only_ref", "real", "acc", decl, "acc", {"m:acc": 0.99}, ref=True, t=5)]
    declared = {("d", m) for m in ("a", "b", "failing", "later", "later2")} | {("only_ref", "real")}
    running = build_leaderboard(pd.DataFrame(rows), declared=declared,
                                in_progress="suite run abc is in progress (pid 7 on host)")
    stopped = build_leaderboard(pd.DataFrame(rows), declared=declared)
    return (render_html(running, title="pending") + "\n<!-- not run -->\n"
            + render_html(stopped, title="not run", generated="now"))


def case_many() -> str:
    """More models than the page shows images for and than the figures name: both notes;
    ties broken by value and name; no competing models on an empty page."""
    decl = {"acc": score("higher", "utility"), "fid": score("lower", "quality")}
    rows = []
    for k in range(56):
        m = f"model{k:02d}"
        rows.append(_row("big", m, "acc", decl, "acc",
                         {"m:acc": 0.5 + (k % 7) * 0.01, "m:acc.lo": 0.45, "m:acc.hi": 0.6}, t=2 * k))
        rows.append(_row("big", m, "fid", decl, "fid", {"m:fid": 10.0 + (k % 5)}, t=2 * k + 1))
    rows.append(_row("big", "real", "acc", decl, "acc", {"m:acc": 0.99}, ref=True, held=True, t=200))
    tables = build_leaderboard(pd.DataFrame(rows))
    store = {(rid, "samples.png"): PNG for rid in tables[0].cells["run_id"]}
    page = html_report(tables, _fetcher(store), title="many",
                       figures={"big_acc_vs_fid.png": PNG, "big_gan_train_curves.png": PNG})
    only_ref = build_leaderboard(pd.DataFrame([_row("d", "real", "acc", decl, "acc", {"m:acc": 0.9},
                                                    ref=True)]))
    return (page + "\n<!-- empty -->\n" + render_html([], title="empty")
            + "\n<!-- only a reference -->\n" + render_html(only_ref, title="only a reference"))


def case_unscored() -> str:
    """Tables without any score column: only diagnostics and failed cells, and only failures
    (their failed and not-run rows are still listed), beside a scored dataset."""
    decl = {"acc": score("higher", "utility"), "spread": diagnostic("lower")}
    rows = [_row("diag", "a", "spread", decl, "", {"m:spread": 0.3}, t=1),
            _row("diag", "b", "spread", decl, "", {}, t=2, status="FAILED", error="boom"),
            _row("diag", "real", "spread", decl, "", {}, ref=True, t=3, status="FAILED", error="no data"),
            _row("dead", "a", "acc", decl, "acc", {}, t=4, status="FAILED", error="oom"),
            _row("dead", "b", "acc", decl, "acc", {}, t=5, status="FAILED", error="oom"),
            _row("ok", "a", "acc", decl, "acc", {"m:acc": 0.9}, t=6),
            _row("ok", "b", "acc", decl, "acc", {"m:acc": 0.8}, t=7)]
    declared = {(d, m) for d in ("diag", "dead", "ok") for m in ("a", "b", "c")} | {("diag", "real")}
    return render_html(build_leaderboard(pd.DataFrame(rows), declared=declared), title="unscored")


CASES = {"unscored": case_unscored, "full": case_full, "hostile": case_hostile, "wide": case_wide, "pending": case_pending,
         "many": case_many}


def board_cases() -> list[str]:
    """The golden boards (tests/data/boards/NAME.input.json, read by tests/board_frames) that
    have a page here (board-NAME.html): rendered through html_report with an image fetcher, a
    UI address and a generated line, which their own golden pages (tests/test_board_golden.py)
    leave out (their frames carry no run ids, so no image or run link shows). `--write` adds
    a page for every input present."""
    return sorted(p.stem.removeprefix("board-") for p in GOLDEN.glob("board-*.html"))


def board_inputs() -> list[str]:
    return sorted(p.name.removesuffix(".input.json") for p in BOARDS.glob("*.input.json"))


def render_board(name: str) -> str:
    sys.path.insert(0, str(Path(__file__).parent))
    from board_frames import read_input

    runs, declared, in_progress = read_input(name)
    tables = build_leaderboard(runs, declared=declared, in_progress=in_progress)
    store = {(str(rid), "samples.png"): PNG for t in tables if not t.cells.empty
             for rid in t.cells["run_id"]}
    return html_report(tables, _fetcher(store), title=f"Leaderboard: {name}",
                       experiment_id="3", ui_url="http://ui.example", generated="golden")


def render_case(name: str) -> str:
    if name in CASES:
        return CASES[name]()
    return render_board(name.removeprefix("board-"))


def all_cases(write: bool = False) -> list[str]:
    return [*CASES, *(f"board-{n}" for n in (board_inputs() if write else board_cases()))]


@pytest.mark.parametrize("name", all_cases())
def test_the_page_is_byte_identical_to_its_golden(name):
    golden = GOLDEN / f"{name}.html"
    assert golden.exists(), f"no golden page {golden}: write it with `python {__file__} --write`"
    page = render_case(name)
    expected = golden.read_bytes().decode("utf-8")
    if page != expected:
        i = next((i for i, (a, b) in enumerate(zip(page, expected, strict=False)) if a != b),
                 min(len(page), len(expected)))
        pytest.fail(f"{name}: differs from {golden.name} at char {i}:\n"
                    f"  now:    {page[max(0, i - 80):i + 80]!r}\n  golden: {expected[max(0, i - 80):i + 80]!r}")


def test_hostile_names_stay_inert_in_the_golden():
    page = render_case("hostile")
    assert EVIL not in page and ATTR not in page and "<img src=x" not in page and "<b>ds" not in page
    assert page.count("<script>") == 1  # the page's own
    # no raw control character anywhere, the published section included (it printed them raw
    # before the page moved to templates)
    assert not any(c in page for c in "\x1b\x07\u202e") and "\\x1b[31mred" in page


def test_the_script_is_board_js_and_the_csp_allows_it_by_its_hash():
    js = (resources.files("bench.report") / "static" / "board.js").read_bytes()
    css = (resources.files("bench.report") / "static" / "board.css").read_bytes()
    page = render_html([], title="t")
    digest = base64.b64encode(hashlib.sha256(js).digest()).decode()
    assert f"<script>{js.decode()}</script>" in page and f"<style>{css.decode()}</style>" in page
    assert f"script-src 'sha256-{digest}';" in page


if __name__ == "__main__" and sys.argv[1:] == ["--write"]:
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for case in all_cases(write=True):
        (GOLDEN / f"{case}.html").write_bytes(render_case(case).encode("utf-8"))
        print("wrote", GOLDEN / f"{case}.html")
