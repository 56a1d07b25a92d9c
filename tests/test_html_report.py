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

from bench.html_report import (
    _JS,
    collect_images,
    html_report,
    image_mime,
    mlflow_access,
    render_html,
    run_link,
    safe_ui_url,
)
from bench.leaderboard import build_leaderboard
from bench.values import score

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


def test_empty_page():
    assert "(no finished runs)" in render_html([])


# ------------------------------------------------------------------ in a real browser


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    if not CHROMIUM.exists():
        pytest.skip("/usr/bin/chromium is missing: apt-get install chromium chromium-driver "
                    "(.ci/run does) to run the browser test")
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        pytest.fail("selenium is not installed: pip install -e '.[test]' (it is a test extra)")
    assert CHROMEDRIVER.exists(), "chromium without /usr/bin/chromedriver: apt-get install chromium-driver"
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
    assert re.search(r"clear wins", browser.find_element(By.ID, "summary").text)

