"""The HTML leaderboard page: escaping, run links, embedded images that really exist, and,
in a real headless Chromium, sorting by a header click, loaded images and an injected model
name that stays text."""

import base64
import hashlib
import io
import re
from pathlib import Path
from types import SimpleNamespace

import pandas as pd
import pytest
from PIL import Image as PILImage

from bench.record.values import score
from bench.report.html import (
    _JS,
    collect_images,
    html_report,
    image_mime,
    mlflow_access,
    render_html,
    run_link,
    safe_ui_url,
)
from bench.report.leaderboard import build_leaderboard

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
EVIL = "<script>window.__pwned=1</script>"
UP = {"acc": score("higher", "quality")}
DOWN = {"fid": score("lower", "quality")}


def png(w: int = 40, h: int = 30) -> bytes:
    buf = io.BytesIO()
    PILImage.new("RGB", (w, h), (200, 30, 30)).save(buf, format="PNG")
    return buf.getvalue()


def synthetic_runs() -> pd.DataFrame:
    """One dataset, two metrics, three competing models (one with a hostile name) and a
    reference; run ids say which cell they are."""
    rows = []
    vals = {"good": (0.9, 5.0), "bad": (0.5, 30.0), EVIL: (0.7, 10.0), "real": (0.99, 1.0)}
    for i, (m, (acc, fid)) in enumerate(vals.items()):
        base = {"suite": "s", "dataset": "digits", "model": m, "repeat": 0, "reference": m == "real",
                "cell_key": f"k{i}", "start_time": i}
        rows.append({**base, "run_id": f"run{i}acc", "metric": "gan_test", "values": UP,
                     "primary": "acc", "m:acc": acc})
        rows.append({**base, "run_id": f"run{i}fid", "metric": "fid", "values": DOWN,
                     "primary": "fid", "m:fid": fid})
    return pd.DataFrame(rows)


def fake_fetch(store: dict[tuple[str, str], bytes]):
    calls = []

    def fetch(run_id: str, path: str) -> bytes | None:
        calls.append((run_id, path))
        return store.get((run_id, path))

    return fetch, calls


STORE = {("run0acc", "embedding.png"): png(), ("run2acc", "gan_train_curve.png"): png(60, 20),
         ("run1acc", "nearest_neighbours.png"): b"not an image at all"}


def page(**kwargs) -> str:
    tables = build_leaderboard(synthetic_runs())
    fetch, _ = fake_fetch(STORE)
    return html_report(tables, fetch, title="Leaderboard: s", **kwargs)


def test_user_text_is_escaped_and_only_the_page_script_may_run():
    html = page()
    assert EVIL not in html and "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in html
    assert html.count("<script>") == 1  # ours
    digest = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    assert re.search(r"script-src ([^;]*);", html).group(1) == f"'sha256-{digest}'"  # no unsafe-inline
    assert "cdn" not in html.lower() and "http://" not in html and "https://" not in html


def test_only_existing_images_are_embedded():
    tables = build_leaderboard(synthetic_runs())
    fetch, calls = fake_fetch(STORE)
    images = collect_images(tables, fetch)
    assert {(i.model, i.name) for i in images} == {("good", "embedding.png"), (EVIL, "gan_train_curve.png")}
    assert all(i.uri.startswith("data:image/png;base64,") for i in images)
    assert ("run3acc", "embedding.png") in calls  # reference runs are shown too
    # with a listing, only the listed image files are fetched
    fetch, calls = fake_fetch(STORE)
    images = collect_images(tables, fetch, lambda rid: ["embedding.png", "table.csv"] if rid == "run0acc" else [])
    assert calls == [("run0acc", "embedding.png")] and len(images) == 1
    assert image_mime(b"GIF89a...") == "image/gif" and image_mime(b"<svg") is None


def test_images_of_the_first_models_only_on_a_large_board():
    tables = build_leaderboard(synthetic_runs())  # board order: good (0.9), EVIL (0.7), bad (0.5)
    every = {(r, p): png() for r in ("run0acc", "run1acc", "run2acc", "run3acc") for p in ["embedding.png"]}
    fetch, calls = fake_fetch(every)
    one = collect_images(tables, fetch, lambda rid: ["embedding.png"], max_models=1)
    assert {i.model for i in one} == {"good", "real"}  # the first ranked model and the reference
    assert {c[0] for c in calls} <= {"run0acc", "run0fid", "run3acc", "run3fid"}
    fetch, calls = fake_fetch(every)
    assert html_report(tables, fetch, max_models=0).count("<img") == 0 and calls == []
    assert {i.model for i in collect_images(tables, fetch, lambda rid: ["embedding.png"], max_models=None)} == {
        "good", "bad", EVIL, "real"}


def test_run_links_need_an_http_ui_url():
    html = page(experiment_id="7", ui_url="http://mlflow.example:5000/")
    assert '<a href="http://mlflow.example:5000/#/experiments/7/runs/run0acc"><code>run0acc</code></a>' in html
    text_only = page(experiment_id="7")
    assert "<code>run0acc</code>" in text_only and "<a href=\"http" not in text_only
    assert safe_ui_url("javascript:alert(1)") is None
    assert run_link("r1", "1", "javascript:alert(1)") == "<code>r1</code>"


def test_reference_rows_get_their_own_group():
    html = page()
    ref = html[html.index('<tbody class="reference">'):]
    assert "reference (not ranked)" in ref[:300] and ">real<" in ref[:600]
    ranked = html[html.index('<tbody class="ranked">', html.index('id="dataset-0"')):html.index('<tbody class="reference">')]
    assert ">real<" not in ranked


def test_mlflow_access_over_a_client_like_object(tmp_path):
    class Client:
        def list_artifacts(self, run_id):
            return [SimpleNamespace(path="embedding.png", is_dir=False), SimpleNamespace(path="d", is_dir=True)]

        def download_artifacts(self, run_id, path, dst):
            if path != "embedding.png":
                raise OSError("no such artifact")
            (Path(dst) / path).write_bytes(png())
            return str(Path(dst) / path)

    fetch, listing = mlflow_access(Client())
    assert listing("r") == ["embedding.png"]
    assert fetch("r", "embedding.png") == png() and fetch("r", "missing.png") is None


def test_mlflow_access_reads_a_local_store_in_a_few_searches(tmp_path):
    """On a store whose artifacts are local folders, the runs' folders are found in one search
    and read from disk (MLflow's per-run calls read the whole run first): the same names and
    bytes as those calls, which remain for what the search did not find."""
    from mlflow import MlflowClient

    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    exp = client.create_experiment("e", artifact_location=(tmp_path / "art").as_uri())
    runs = [client.create_run(exp).info.run_id for _ in range(3)]
    (tmp_path / "files").mkdir()
    (tmp_path / "files" / "embedding.png").write_bytes(png())
    (tmp_path / "files" / "table.csv").write_text("a\n1\n")
    client.log_artifacts(runs[0], str(tmp_path / "files"))
    client.log_artifacts(runs[0], str(tmp_path / "files"), "sub")  # a folder: not listed
    client.log_artifact(runs[1], str(tmp_path / "files" / "table.csv"))  # runs[2]: no artifact at all

    calls = []

    class Spy:  # the real client, counting the per-run calls
        def __getattr__(self, name):
            if name in ("list_artifacts", "download_artifacts"):
                calls.append(name)
            return getattr(client, name)

    fetch, listing = mlflow_access(Spy())
    per_run = {r: sorted(f.path for f in client.list_artifacts(r) if not f.is_dir) for r in runs}
    listing.__self__.prefetch([*runs, "0123abcd"])  # (an unknown run too)
    assert {r: listing(r) for r in runs} == per_run == {runs[0]: ["embedding.png", "table.csv"],
                                                        runs[1]: ["table.csv"], runs[2]: []}
    assert fetch(runs[0], "embedding.png") == png() and fetch(runs[0], "missing.png") is None
    assert calls == []  # all from disk
    assert fetch(runs[0], "sub/embedding.png") == png() and calls == ["download_artifacts"]  # not a plain name
    assert listing("0123abcd") == [] and calls[-1] == "list_artifacts"  # not found by the search


def many_model_runs(n: int = 2000) -> pd.DataFrame:
    rows = []
    for i in range(n + 1):
        m = f"m{i:04d}" if i < n else "real"
        base = {"suite": "s", "dataset": "digits", "model": m, "repeat": 0, "reference": i == n,
                "cell_key": f"k{i}", "start_time": i}
        rows.append({**base, "run_id": f"r{i}acc", "metric": "gan_test", "values": UP, "primary": "acc",
                     "m:acc": i / n})
        rows.append({**base, "run_id": f"r{i}fid", "metric": "fid", "values": DOWN, "primary": "fid",
                     "m:fid": 30 - 20 * i / n})
    return pd.DataFrame(rows)


@pytest.mark.heavy  # a page of many models
def test_page_over_many_models_says_what_it_leaves_out_and_builds_quickly():
    import time

    tables = build_leaderboard(many_model_runs())
    fetch, calls = fake_fetch({(f"r{i}acc", "embedding.png"): png() for i in range(2001)})
    t0 = time.perf_counter()
    html = html_report(tables, fetch, lambda rid: ["embedding.png"] if rid.endswith("acc") else [],
                       figures={"digits_gan_train_vs_fid.png": png()}, experiment_id="1",
                       ui_url="http://ui.example:5000", title="many")
    assert time.perf_counter() - t0 < 60  # generous: about 2 s on 2 cores
    # the figures and the images say what they leave out
    assert ("Comparison figures over 2,000 models: each scatter draws every model as a point and names "
            "the top 50 by its vertical value, and the reference rows.") in html
    assert "Images of 51 models: the first 50 of each dataset's board and the reference rows" in html
    assert html.count("<img") == 51 + 1 and len(calls) == 51
    # nothing else is left out: every model's row, section and runs, each run linked
    assert html.count('<article id="model-') == 2001
    assert html.count('href="http://ui.example:5000/#/experiments/1/runs/r') == 2 * 2001
    summary = html[html.index('id="summary-table"'):]
    assert summary[:summary.index("</table>")].count("<tr>") == 1 + 2000


def test_summary_cells_carry_their_sort_keys():
    html = page()
    summary = html[html.index('id="summary-table"'):]
    summary = summary[:summary.index("</table>")]
    # clear wins sort by their count (its cells had no key before: the header click did nothing)
    assert re.findall(r'<td data-v="([^"]*)">(\d+)/2</td>', summary) == [("2.0", "2"), ("0.0", "0"), ("0.0", "0")]
    assert '<td data-v="-1.0">1</td>' in summary  # place: lower is better, so its key is -place


def test_empty_page():
    assert "(no finished runs)" in render_html([])


# ------------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    # either half missing is a machine without the browser test, not a failure of the page
    missing = [str(p) for p in (CHROMIUM, CHROMEDRIVER) if not p.exists()]
    if missing:
        pytest.skip(f"{' and '.join(missing)} missing: apt-get install chromium chromium-driver "
                    "(.ci/run does) to run the browser test")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]' (it is a test extra)")
    opts = webdriver.ChromeOptions()
    opts.binary_location = str(CHROMIUM)
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                "--disable-background-networking", "--disable-component-update", "--disable-sync",
                "--disable-dev-shm-usage", f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}"):
        opts.add_argument(arg)
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=opts)
    driver.set_page_load_timeout(60)
    yield driver
    driver.quit()


def _names(driver, table_id: str) -> list[str]:
    return driver.execute_script(
        "return Array.from(document.querySelectorAll(arguments[0] + ' tbody.ranked tr th'))"
        ".map(function (th) { return th.firstChild.textContent; });", f"#{table_id} table")


def test_page_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "board.html"
    path.write_text(page(experiment_id="1", generated="now"))
    browser.get(path.as_uri())

    # sorted by the primary (acc, higher first) as rendered
    assert _names(browser, "dataset-0") == ["good", EVIL, "bad"]
    heads = browser.find_elements(By.CSS_SELECTOR, "#dataset-0 thead th")
    fid = next(h for h in heads if h.text.startswith("fid"))
    fid.click()  # lower is better: the first click puts the best (lowest) first
    assert _names(browser, "dataset-0") == ["good", EVIL, "bad"]
    assert fid.get_attribute("aria-sort") == "descending"  # of goodness
    fid.click()
    assert _names(browser, "dataset-0") == ["bad", EVIL, "good"]
    model = heads[0]
    model.click()
    assert _names(browser, "dataset-0") == sorted(["good", EVIL, "bad"], key=str.lower)
    # the reference row stays in its own group, below the competitors
    ref_rows = browser.find_elements(By.CSS_SELECTOR, "#dataset-0 tbody.reference tr:not(.divider)")
    assert [r.find_element(By.TAG_NAME, "th").text for r in ref_rows] == ["real reference"]

    # the images are there and decoded; the non-image artifact is not
    widths = browser.execute_script(
        "return Array.from(document.images).map(function (i) { return [i.complete, i.naturalWidth]; });")
    assert sorted(w for _, w in widths) == [40, 60] and all(done for done, _ in widths)

    # the hostile model name did not run and is visible as text
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    cells = [e for e in browser.find_elements(By.CSS_SELECTOR, "th[scope=row]") if EVIL in e.text]
    assert cells and all(c.is_displayed() for c in cells)
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1


def test_summary_sorts_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    path = tmp_path / "board.html"
    path.write_text(page())
    browser.get(path.as_uri())
    assert _names(browser, "summary") == ["good", EVIL, "bad"]
    place = next(h for h in browser.find_elements(By.CSS_SELECTOR, "#summary thead th")
                 if h.text.startswith("place"))
    place.click()  # best (place 1) first
    assert _names(browser, "summary")[0] == "good"
    place.click()  # then worst first
    assert _names(browser, "summary")[-1] == "good"
    wins = next(h for h in browser.find_elements(By.CSS_SELECTOR, "#summary thead th")
                if h.text.startswith("clear wins"))
    wins.click()  # most wins first
    assert _names(browser, "summary")[0] == "good"
    wins.click()
    assert _names(browser, "summary")[-1] == "good"
    assert re.search(r"clear wins", browser.find_element(By.ID, "summary").text)



# ------------------------------------------------------------------ trends over suite runs


def nights(n: int = 9, planted: int | None = 8, seed: int = 0) -> list[tuple[str, str, pd.DataFrame]]:
    """`n` suite runs of the synthetic suite, oldest first: fid wobbles by 1%; on night
    `planted` the model `good` gets 50% worse fid (lower is better)."""
    import numpy as np

    rng = np.random.default_rng(seed)
    points = []
    for night in range(n):
        df = synthetic_runs().assign(metric_version="1")
        df["m:fid"] = df["m:fid"] * (1 + rng.normal(0, 0.01, len(df)))
        if night == planted:
            df.loc[df["model"] == "good", "m:fid"] *= 1.5
        points.append((f"2026-12-{night + 1:02d} 03:00", f"suite{night}", df))
    return points


def test_trends_judge_each_night_as_bench_compare_does():
    from bench.report.compare import compare, trends

    points = nights()
    t = trends(points, history=7, last=7)
    # the last 7 runs, ranked values only: competing models x primaries, no reference row
    assert sorted(t["i"].unique()) == list(range(7)) and "real" not in set(t["model"])
    assert len(t) == 7 * 3 * 2 and set(t["value"]) == {"acc", "fid"}
    assert list(t.drop_duplicates("i")["run_id"]) == [f"suite{i}" for i in range(2, 9)]
    # the earlier runs are the first shown night's history: it has a band too
    assert t[t["i"] == 0]["band_lo"].notna().all()
    regs = t[t["status"] == "regression"]
    assert list(zip(regs["model"], regs["value"], regs["i"], strict=True)) == [("good", "fid", 6)]
    # the same verdict and band as `bench compare` of that night with its history
    hist = [p[2] for p in points[1:8]][::-1]  # the 7 known-good nights before it
    c = compare(points[7][2], points[8][2], hist).set_index(["model", "value"]).loc[("good", "fid")]
    last = t[(t["model"] == "good") & (t["value"] == "fid") & (t["i"] == 6)].iloc[0]
    assert c["status"] == "regression" and (last["band_lo"], last["band_hi"]) == (c["band_lo"], c["band_hi"])
    assert last["band_lo"] < 5.2 < last["band_hi"] < last["mean"]  # the jump is outside the band
    assert set(t["ideal"]) == {"higher", "lower"}


def test_trends_section_draws_sparklines_with_band_and_marks_regressions():
    from bench.report.compare import trends

    points = nights()
    html = render_html(build_leaderboard(points[-1][2]), trends=trends(points, last=7))
    section = html[html.index('<section id="trends">'):]
    section = section[:section.index("</section>")]
    assert section.count('<svg class="spark"') == 6  # 3 models x 2 ranked values
    assert section.count('class="regression"') == 1 and "#d00000" in section
    assert section.count("<rect") >= 6 * 7  # a band per night
    assert '<a href="#trends">' in html and "1 regression(s) over these runs, 1 in the latest" in section
    # still one script, user text escaped in the section too, no external resource
    assert html.count("<script") == 1 and EVIL not in html
    assert "&lt;script&gt;window.__pwned=1&lt;/script&gt;" in section
    assert not re.search(r"""(src|href)=["']https?:""", section)
    # one run: nothing to trend
    assert 'id="trends"' not in render_html(build_leaderboard(points[0][2]), trends=trends(points[:1]))


def test_trends_section_in_a_real_browser(browser, tmp_path):
    from selenium.webdriver.common.by import By

    from bench.report.compare import trends

    points = nights()
    path = tmp_path / "board.html"
    path.write_text(render_html(build_leaderboard(points[-1][2]), trends=trends(points, last=7)))
    browser.get(path.as_uri())
    sparks = browser.find_elements(By.CSS_SELECTOR, "#trends svg.spark")
    assert len(sparks) == 6 and all(s.size["width"] > 100 and s.size["height"] > 20 for s in sparks)
    red = browser.find_elements(By.CSS_SELECTOR, "#trends circle.regression")
    assert len(red) == 1 and red[0].is_displayed()
    assert "regression" in red[0].find_element(By.TAG_NAME, "title").get_attribute("textContent")
    assert browser.execute_script("return typeof window.__pwned") == "undefined"
    assert len(browser.find_elements(By.TAG_NAME, "script")) == 1


TRENDING = """\
name: trending
datasets:
  digits: {source: digits}
models:
  noisy: {source: reference, kind: noise, sigma: 0.3, ranked: true}
  real: {source: reference, kind: real}
metrics:
  test_constant: {}
"""


def test_leaderboard_and_nightly_html_include_trends_from_real_suite_runs(write_suite, tmp_path, capsys):
    from mlflow import MlflowClient

    from bench.cli import main

    suite, uri = str(write_suite(TRENDING)), f"sqlite:///{tmp_path}/mlflow.db"
    assert main(["nightly", suite, "--tracking-uri", uri, "--no-progress",
                 "--out", str(tmp_path / "first.html")]) == 0
    first = (tmp_path / "first.html").read_text()
    assert "<h1>Leaderboard: trending</h1>" in first and 'id="trends"' not in first  # one run
    assert main(["run", suite, "--tracking-uri", uri, "--force", "--no-progress"]) == 0
    assert main(["nightly", suite, "--tracking-uri", uri, "--no-progress",
                 "--out", str(tmp_path / "night.html")]) == 0
    night = (tmp_path / "night.html").read_text()
    section = night[night.index('<section id="trends">'):]
    assert "over the last 3 suite runs" in section and section.count('<svg class="spark"') == 1
    assert night.count("<script") == 1
    # the nightly logs the same page on its suite run
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("trending").experiment_id
    latest = client.search_runs([exp], "tags.`bench.kind` = 'suite'", order_by=["attributes.start_time DESC"])[0]
    logged = Path(client.download_artifacts(latest.info.run_id, "leaderboard.html", str(tmp_path))).read_text()
    assert 'id="trends"' in logged
    # bench leaderboard --format html: the trends of the last N runs; --trends 0: none
    out = tmp_path / "board.html"
    assert main(["leaderboard", suite, "--tracking-uri", uri, "--format", "html", "--out", str(out)]) == 0
    assert out.read_text().count('<svg class="spark"') == 1
    assert main(["leaderboard", suite, "--tracking-uri", uri, "--format", "html", "--out", str(out),
                 "--trends", "2"]) == 0
    assert "over the last 2 suite runs" in out.read_text()
    assert main(["leaderboard", suite, "--tracking-uri", uri, "--format", "html", "--out", str(out),
                 "--trends", "0"]) == 0
    assert 'id="trends"' not in out.read_text()
