"""Leaderboard tables -> one self-contained HTML page.

The page is a single file (inline CSS, a small inline sorting script, images as base64 data
URIs) so that it can be logged as an MLflow artifact, mailed or opened from disk with no
server and no CDN. Its markup is Jinja2 templates (bench/report/templates: board.html.j2, the
page; tables.html.j2 and sections.html.j2, its parts), its style sheet and script package
files (bench/report/static); this module computes what they show. Every value a template
prints goes through `escape` (model, dataset and value names come from suite files and
stores: control characters shown as escapes, then HTML-escaped), and a
Content-Security-Policy that allows only the page's own script (by the hash of board.js)
backs that up: a model named `<script>...</script>` stays text.

Images come through a `fetch_artifact(run_id, path) -> bytes | None` callable (and optionally
`list_artifacts(run_id) -> list[str]`), so this module never imports mlflow; `mlflow_access`
builds both from an MlflowClient-like object such as `Tracker.client`.
"""

from __future__ import annotations

import base64
import hashlib
import math
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from html import escape as _html_escape
from importlib import resources
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import quote

import numpy as np
import pandas as pd
from jinja2 import Environment, PackageLoader, StrictUndefined
from jinja2.ext import Extension
from markupsafe import Markup

from bench.config.published import PublishedBlock
from bench.core.safe_names import printable
from bench.report.board import REFERENCE_LABEL, BoardTable, Cell, Column, Summary
from bench.report.board_builder import build_board
from bench.report.formats import IMAGE_MODELS  # per dataset: the images of the first ranked models
from bench.report.published import comparison
from bench.report.render.gc_pause import paused_gc
from bench.report.table import Table

_HTML_SPECIAL = re.compile("[&<>\"']")


def _plain(text: str) -> bool:
    """True when `escape` leaves `text` as it is (no control character, nothing HTML-special):
    most of a page's text (numbers, plain names). Every character printable() rewrites is
    one str.isprintable() refuses."""
    return text.isprintable() and _HTML_SPECIAL.search(text) is None


def escape(text: str, quote: bool = True) -> str:
    """html.escape of a name with its control characters shown as escapes first (`\\x1b`):
    a name read from a store may hold any character, and a raw ESC is invisible on a page and
    recolours the terminal that prints the file."""
    if _plain(text):
        return text
    return _html_escape(printable(text, keep="\n"), quote)


FetchArtifact = Callable[[str, str], "bytes | None"]
ListArtifacts = Callable[[str], "list[str]"]

# what the built-in metrics write, tried when no artifact listing is available
KNOWN_IMAGES = ("samples.png", "sample_grid.png", "embedding.png", "gan_train_curve.png",
                "nearest_neighbours.png", "nn_grid.png", "augmentation.png", "balancing.png",
                "latent_projection.png", "latent_projection_map.png")
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".gif", ".webp")
MAX_IMAGE_BYTES = 5 * 1024 * 1024  # a page that mails and opens quickly; larger images are linked runs


@dataclass(frozen=True)
class Image:
    model: str
    dataset: str
    metric: str
    run_id: str
    name: str
    mime: str
    data: str  # base64

    @property
    def uri(self) -> str:
        return f"data:{self.mime};base64,{self.data}"


# ------------------------------------------------------------------ artifacts


def image_mime(data: bytes) -> str | None:
    """The image type from its magic bytes, not its name: a file that is not really an image
    is left out rather than shown broken (SVG is left out: it can carry script)."""
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith((b"GIF87a", b"GIF89a")):
        return "image/gif"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    return None




def _image_models(t: Table, max_models: int | None) -> set[str]:
    """The models whose images a table's page shows: the first `max_models` in board order
    (every model when None) and every reference row."""
    ranked = list(t.ranked) + [m for m in t.cells["model"].unique() if m not in t.mean.index]
    return {str(m) for m in (ranked if max_models is None else ranked[:max_models])} | {
        str(m) for m in t.references}


def _image_runs(tables: list[Table], max_models: int | None = IMAGE_MODELS
                ) -> Iterable[tuple[str, str, str, str]]:
    """(model, dataset, metric, run_id) of the first repeat of every cell of the models a page
    shows images for: repeats draw the same plots with another seed, one of each is enough."""
    for t in tables:
        if t.cells.empty:
            continue
        keep = _image_models(t, max_models)
        first = t.cells[t.cells["model"].astype(str).isin(keep)]
        first = first.sort_values("repeat").drop_duplicates(["model", "metric"])
        for r in first.itertuples(index=False):
            if r.run_id:
                yield str(r.model), t.dataset, str(r.metric), str(r.run_id)


def collect_images(tables: list[Table], fetch_artifact: FetchArtifact,
                   list_artifacts: ListArtifacts | None = None,
                   max_bytes: int = MAX_IMAGE_BYTES,
                   max_models: int | None = IMAGE_MODELS) -> list[Image]:
    """The image artifacts that really exist on the tables' runs, ready to embed.

    With `list_artifacts` every image file at the top of a run's artifacts is taken; without,
    the names the built-in metrics write are tried. A name that fetches nothing, is too big or
    is not an image is skipped: the page shows what exists and nothing else.
    """
    images = []
    runs = list(_image_runs(tables, max_models))
    owner = getattr(list_artifacts, "__self__", None) or getattr(fetch_artifact, "__self__", None)
    if isinstance(owner, _MlflowArtifacts):  # from mlflow_access: find the runs' folders at once
        owner.prefetch([run_id for *_, run_id in runs])
    for model, dataset, metric, run_id in runs:
        names = ([n for n in list_artifacts(run_id) if n.lower().endswith(IMAGE_SUFFIXES)]
                 if list_artifacts else list(KNOWN_IMAGES))
        for name in sorted(names):
            data = fetch_artifact(run_id, name)
            mime = image_mime(data) if data and len(data) <= max_bytes else None
            if mime and data:  # (mime is only set for data)
                images.append(Image(model, dataset, metric, run_id, name, mime,
                                    base64.b64encode(data).decode("ascii")))
    return images


class _MlflowArtifacts:
    """Artifact reads over an MlflowClient-like object, by run id.

    MLflow's `list_artifacts(run_id)` and `download_artifacts(run_id, ...)` read the whole run
    first to find its artifact folder (about 5 ms a run on SQLite: 3 s for the 520 runs of a
    page's 52 image models). `prefetch(run_ids)` finds the folders of many runs in a few
    `search_runs` calls instead; a run whose artifacts are a local folder is then listed and
    read straight from disk. Anything else (a server's or a bucket's artifacts, a run the
    search did not return, an older client) takes the per-run calls, as before.
    """

    CHUNK = 200  # run ids per search (SQL parameters stay well under every backend's limit)

    def __init__(self, client: Any):
        self.client = client
        self.folders: dict[str, Path] = {}

    def prefetch(self, run_ids: list[str]) -> None:
        from bench.record.tracking import local_path

        ids = [r for r in dict.fromkeys(run_ids) if r not in self.folders]
        if not ids:
            return
        try:
            experiment = self.client.get_run(ids[0]).info.experiment_id
            for i in range(0, len(ids), self.CHUNK):
                chunk = ids[i:i + self.CHUNK]
                quoted = ", ".join(f"'{r}'" for r in chunk if r.isalnum())
                if not quoted:
                    continue
                for run in self.client.search_runs([experiment], f"attributes.run_id IN ({quoted})",
                                                   max_results=len(chunk)):
                    folder = local_path(str(run.info.artifact_uri or ""))
                    if folder is not None:
                        self.folders[run.info.run_id] = folder
        except Exception:  # noqa: BLE001 - a faster path only: every run still has the per-run calls
            return

    def fetch(self, run_id: str, path: str) -> bytes | None:
        folder = self.folders.get(run_id)
        if folder is not None and Path(path).name == path and path not in (".", ".."):
            try:
                return (folder / path).read_bytes()
            except OSError:
                return None
        try:
            with tempfile.TemporaryDirectory(prefix="bench-html-") as tmp:
                return Path(self.client.download_artifacts(run_id, path, tmp)).read_bytes()
        except Exception:  # noqa: BLE001 - missing file, store down: both mean "not shown"
            return None

    def listing(self, run_id: str) -> list[str]:
        folder = self.folders.get(run_id)
        if folder is not None:
            try:
                return sorted(e.name for e in os.scandir(folder) if e.is_file())
            except FileNotFoundError:  # a run that logged no artifact has no folder
                return []
            except OSError:
                pass
        try:
            return [f.path for f in self.client.list_artifacts(run_id) if not f.is_dir]
        except Exception:  # noqa: BLE001 - as fetch: an unreachable store lists nothing
            return []


def mlflow_access(client: Any) -> tuple[FetchArtifact, ListArtifacts]:
    """fetch_artifact and list_artifacts over an MlflowClient-like object (duck-typed: this
    module imports no mlflow). Any error reads as 'no such artifact', so that a report never
    fails because one run's artifact store is unreachable. Both are methods of one
    _MlflowArtifacts, whose `prefetch` collect_images calls first with every run it reads."""
    access = _MlflowArtifacts(client)
    return access.fetch, access.listing


# ------------------------------------------------------------------ templates


class _Layout(Extension):
    """A template's line breaks and the indentation after them are layout, not output: gone,
    except between two words (`a\\n    b`), where they are one space; so the templates can be
    indented while the page keeps its lines (one per section)."""

    _WORDS = re.compile(r"(?<=[^\s>}])\n[ \t]*(?=[^\s<{])")
    _BREAK = re.compile(r"\n[ \t]*")

    def preprocess(self, source: str, name: str | None, filename: str | None = None) -> str:
        return self._BREAK.sub("", self._WORDS.sub(" ", source))


class _Escaped(str):
    """A printed value after `escape`: autoescape takes it as it is (its `__html__`), so it
    is escaped once, with this module's escape rather than MarkupSafe's (`&#x27;`, not
    `&#39;`)."""

    __slots__ = ()

    def __html__(self) -> str:
        return self


def _shown(value: Any) -> Any:
    """What a template prints: Markup as it is (the style sheet, the script, the CSP, a
    rendered fragment), anything else through `escape` (control characters shown as escapes,
    then HTML-escaped), so that no name reaches the page as markup or as a raw control code.
    Text that `escape` leaves as it is goes on as it is, and autoescape leaves it so too
    (cheaper: a page prints about a million values at 10,000 models)."""
    if isinstance(value, Markup):
        return value
    text = str(value)
    return text if _plain(text) else _Escaped(escape(text))


# autoescape stays on (what a filter or an operator builds is escaped too); `finalize`
# escapes every printed value first (_Escaped)
_ENV = Environment(loader=PackageLoader("bench.report", "templates"), autoescape=True,
                   finalize=_shown, undefined=StrictUndefined, extensions=[_Layout])
_ENV.globals["NL"] = Markup("\n")


def _static(name: str) -> str:
    """A file of bench/report/static as it is, byte for byte (the script's bytes are what the
    CSP hashes). Both files begin with a line break, which the page keeps."""
    return (resources.files("bench.report") / "static" / name).read_bytes().decode("utf-8")


_CSS = _static("board.css")
# board.js sorts each tbody of a table on its own (reference rows stay in their group): a
# first click puts the better values first (data-first), a second reverses; blanks go last.
_JS = _static("board.js")


def _macro(template: str, name: str) -> Any:
    return getattr(_ENV.get_template(template).module, name)


# ------------------------------------------------------------------ links


def safe_ui_url(url: str | None) -> str | None:
    """The MLflow UI base URL when it is http(s), else None (no `javascript:` links)."""
    if url and url.lower().startswith(("http://", "https://")):
        return url.rstrip("/")
    return None


def default_ui_url(tracking_uri: str | None) -> str | None:
    """BENCH_UI_URL when set (inside docker compose the runner reaches the server as
    http://mlflow:5000, which a reader's browser cannot), else the tracking URI when it is a
    server (MLflow serves its UI at the same address); a file or database store has no UI."""
    from bench.core.settings import settings

    return safe_ui_url(settings().ui_url) or safe_ui_url(tracking_uri)


def _runs_base(ui_url: str | None, experiment_id: str | None) -> str | None:
    """The part of a run's UI address before its quoted id, or None without a UI."""
    ui = safe_ui_url(ui_url)
    if not ui or not experiment_id:
        return None
    return f"{ui}/#/experiments/{quote(str(experiment_id), safe='')}/runs/"


def run_link(run_id: str, experiment_id: str | None, ui_url: str | None) -> str:
    """An <a> to the run in the MLflow UI, or the run id as text when there is no UI."""
    base = _runs_base(ui_url, experiment_id)
    href = "" if base is None else base + quote(run_id, safe="")
    return str(_macro("sections.html.j2", "run_link")(href, run_id))


# ------------------------------------------------------------------ page


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


class Head(NamedTuple):
    """A row's header cell: the model's label, linked to its runs when it has an anchor."""

    label: str
    anchor: str
    reference: bool


# A value cell: (sort key, class, title, text); the key is its goodness (higher = better,
# -|x - target| for targets), "" when it has none.
CellView = tuple[str, str, str, str]
EMPTY: CellView = ("", "", "", "")


def _tds(cells: Iterable[CellView]) -> Markup:
    """A row's value cells as one piece of markup, `<td data-v="key" class="cls"
    title="title">text</td>` each (class and title left out when empty), every part through
    `escape`. Written here rather than by a template loop: a page of 10,000 models has about
    100,000 cells, and four printed values per cell through autoescape (a Markup each) cost
    more than the rest of the page."""
    out = []
    for v, cls, title, text in cells:
        # v (a float's repr or ""), cls and title ("n=3") are this module's own, never a
        # name: escape leaves them as they are (v: nothing to escape in a float's repr)
        attrs = (f' class="{_escaped(cls)}"' if cls else "") + (f' title="{_escaped(title)}"' if title else "")
        out.append(f'<td data-v="{v}"{attrs}>{escape(text)}</td>')
    return Markup("".join(out))


_ESCAPED: dict[str, str] = {}


def _escaped(text: str) -> str:
    """escape(text), kept for the texts that repeat on every row (classes, titles, dataset
    and metric names): a page asks for the same few hundred thousands of times."""
    out = _ESCAPED.get(text)
    if out is None:
        out = escape(text)
        if len(_ESCAPED) < 4096:
            _ESCAPED[text] = out
    return out


def _run_items(runs: Iterable[tuple[str, str, int, str, str]]) -> Markup:
    """A model's runs as `<li>` lines (dataset · metric · repeat: the run id, linked to the
    MLflow UI when there is one), each part through `escape`: one piece of markup per model
    rather than a macro call per run (90,000 runs on a page of 10,000 models)."""
    out = []
    for dataset, metric, repeat, href, run_id in runs:
        code = f"<code>{escape(run_id)}</code>"
        link = f'<a href="{escape(href)}">{code}</a>' if href else code
        out.append(f"<li>{_escaped(dataset)} · {_escaped(metric)} · repeat {int(repeat)}: {link}</li>")
    return Markup("".join(out))


class ValueTable(NamedTuple):
    title: str
    heads: list[tuple[str, str]]  # (title, header) of each value column
    ranked: list[tuple[Head, Markup]]  # (header cell, value cells: _tds)
    references: list[tuple[Head, Markup]]


class DatasetView(NamedTuple):
    name: str
    tables: list[ValueTable]
    notes: list[str]
    data: list[tuple[str, str]]  # (value, text)
    agreement: list[tuple[str, str, str, str, int]]  # (a, b, rho, p, models)
    sort_by: str
    legend: str


class SummaryView(NamedTuple):
    heads: list[str]
    rows: list[tuple[Head, Markup]]
    note: str


def _goodness(column: Column, cell: Cell) -> float:
    """Higher = better: x, -x, or -|x - target| (NaN without a value or a target)."""
    if cell.value is None:
        return math.nan
    x = cell.value.x
    if column.ideal == "higher":
        return x
    if column.ideal == "lower":
        return -x
    return -abs(x - cell.target) if cell.target is not None else math.nan


def _cell(text: str, good: float, n: float | None, best: bool) -> CellView:
    if not text:
        return EMPTY
    return ("" if good != good else repr(good), "best" if best else "",
            "" if n is None else f"n={int(n)}", text)


def _value_table(t: BoardTable, title: str, cols: Sequence[int], bold: bool, ranked: Sequence[int],
                 references: Sequence[int], heads: list[Head]) -> ValueTable:
    columns = [t.columns[j] for j in cols]

    def row(i: int) -> tuple[Head, Markup]:
        r = t.rows[i]
        if r.state is not None:  # pending / not run: no value, never ranked
            return heads[i], _tds([("", "state", "", r.state)] * len(cols))
        bolded = bold and not r.reference
        cells = [r.cells[j] for j in cols]
        return heads[i], _tds(_cell(c.text or ("failed" if c.failed else ""), _goodness(col, c), c.n,
                                    bolded and c.best) for col, c in zip(columns, cells, strict=True))

    return ValueTable(title, [(f"{c.role}; aspect: {c.aspect}", c.header) for c in columns],
                      [row(i) for i in ranked], [row(i) for i in references])


def _dataset(t: BoardTable, anchors: dict[str, str]) -> DatasetView:
    """One dataset: the scores (competing models, then reference rows under a divider), the
    diagnostics (never bold), the flags, the data's own reference values, the agreement."""
    heads = [Head(r.label or r.model, anchors.get(r.model, ""), r.reference) for r in t.rows]
    tables = [_value_table(t, g.title, g.columns, g.bold, g.ranked, g.references, heads)
              for g in t.groups]
    if t.failures and not t.scores:
        # no score at all, but failed cells: the models that failed (and those without a run)
        # still have their rows, with no value column
        def unscored(reference: bool) -> list[int]:
            return [i for i, r in enumerate(t.rows)
                    if r.reference == reference and (r.tier == 2 or r.state is not None)]

        tables.insert(0, _value_table(t, "", (), True, unscored(False), unscored(True), heads))
    return DatasetView(
        t.dataset, tables, [n.text(str, str) for n in t.notes],  # names plain: no markdown backticks
        [(d.value, d.text) for d in t.data],
        [(a.a, a.b, f"{a.rho:+.2f}", f"{a.p:.2g}", a.models) for a in t.agreement],
        str(t.sort_by), t.legend)


def _summary(summary: Summary | None, anchors: dict[str, str]) -> SummaryView | None:
    """The summary's rows; each number's sort key says better is higher (places and mean
    ranks negated), the verdict is text (left-aligned and wrapped, so the aspect columns stay
    in view)."""
    if summary is None:
        return None
    rows = []
    for r in summary.rows:
        place, verdict, *aspects, wins = r.display  # the texts, in `headers` order
        cells: list[CellView] = [
            ("" if r.place is None else repr(-r.place), "", "", place), ("", "text", "", verdict),
            *(("" if x is None else repr(-x), "", "", text)
              for (_, x), text in zip(r.aspects, aspects, strict=True)),
            (repr(float(r.wins)), "", "", wins)]
        rows.append((Head(r.model, anchors.get(r.model, ""), False), _tds(cells)))
    return SummaryView(list(summary.headers), rows, summary.note)


def _runs_by_model(tables: list[Table], experiment_id: str | None, ui_url: str | None
                   ) -> dict[str, list[tuple[str, str, int, str, str]]]:
    """Each model's runs (dataset, metric, repeat, href or "", run id), grouped in one pass
    over the cells (a per-model filter of every table is quadratic: minutes at 10,000 models)."""
    base = _runs_base(ui_url, experiment_id)
    runs: dict[str, list[tuple[str, str, int, str, str]]] = {}
    for t in tables:
        if t.cells.empty:
            continue
        c = t.cells
        for model, metric, repeat, run_id in zip(c["model"].tolist(), c["metric"].tolist(),
                                                 c["repeat"].tolist(), c["run_id"].tolist(), strict=True):
            if not run_id:
                continue
            rid = str(run_id)
            href = "" if base is None else base + quote(rid, safe="")
            runs.setdefault(str(model), []).append((t.dataset, str(metric), int(repeat), href, rid))
    return runs


def _reference_flags(tables: list[Table]) -> dict[str, bool]:
    """Every model of the tables, those with image-only runs included, and whether it is a
    reference."""
    flags: dict[str, bool] = {}
    for t in tables:
        for m in t.mean.index:
            flags[str(m)] = flags.get(str(m), False) or bool(t.reference.get(m, False))
        if not t.cells.empty:
            for m, ref in zip(t.cells["model"], t.cells["reference"], strict=True):
                flags[str(m)] = flags.get(str(m), False) or bool(ref)
    return flags


def _images_shown(tables: list[Table], images: list[Image]) -> int | None:
    """How many models the page shows images of, when that is not every model (None)."""
    total = len({str(m) for t in tables for m in t.ranked})
    if total <= IMAGE_MODELS or not images:
        return None
    return len({img.model for img in images})


def _figures(figures: dict[str, bytes], tables: list[Table]) -> dict[str, Any] | None:
    """The comparison figures that are images, and what they leave out on a board of many
    models (bench.report.figures: past FIGURE_MODELS competitors a scatter names only the top
    ones, past FIGURE_LINES a chart of lines draws only theirs); None without a figure."""
    images = []
    for name, data in figures.items():
        mime = image_mime(data)
        if mime:
            images.append((f"data:{mime};base64,{base64.b64encode(data).decode()}", name))
    if not images:
        return None
    from bench.report.figures import FIGURE_LINES, FIGURE_MODELS  # matplotlib: only with figures
    counts = {t.dataset: len(t.ranked) for t in tables}
    most = max(counts.values(), default=0)
    lines = [n for _, n in images if n.endswith(("_gan_train_curves.png", "_augmentation.png"))]
    return {"images": images, "most": f"{most:,}", "figure_models": FIGURE_MODELS,
            "figure_lines": FIGURE_LINES,
            "scatter": most > FIGURE_MODELS and len(lines) < len(images),
            "lines": most > FIGURE_LINES and bool(lines),
            "counts": [(ds, f"{n:,}") for ds, n in counts.items()] if len(counts) > 1 else []}


_TREND_MARK = {"regression": ("#d00000", 3.6), "improvement": ("#1a7f37", 2.6),
               "new segment": ("#ffffff", 2.6)}


def _fmt(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.4g}"


class SparkView(NamedTuple):
    width: int
    height: int
    label: str
    bands: list[tuple[str, str, str, str]]  # (x, y, width, height) of each night's band
    line: str  # the polyline's points
    dots: list[tuple[str, str, float, str, str, str]]  # (cx, cy, r, fill, class, tooltip)


def _spark(points: pd.DataFrame, runs: int, width: int = 150, height: int = 38) -> SparkView | None:
    pts = points.sort_values("i")
    ys = pd.concat([pts["mean"], pts["band_lo"], pts["band_hi"]]).astype(float)
    ys = ys[np.isfinite(ys)]
    if ys.empty:
        return None
    lo, hi = float(ys.min()), float(ys.max())
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.05 or 1.0)
    lo, hi = lo - pad, hi + pad
    step = (width - 8) / max(runs - 1, 1)

    def x(i: float) -> float:
        return 4 + i * step

    def y(v: float) -> float:
        return height - 3 - (v - lo) / (hi - lo) * (height - 6)

    bands, dots = [], []
    for r in pts.itertuples(index=False):
        if np.isfinite(r.band_lo) and np.isfinite(r.band_hi):
            top, bottom = y(float(r.band_hi)), y(float(r.band_lo))
            bands.append((f"{x(r.i) - step / 2:.1f}", f"{top:.1f}", f"{step:.1f}",
                          f"{max(bottom - top, 0.5):.1f}"))
    line = " ".join(f"{x(r.i):.1f},{y(float(r.mean)):.1f}" for r in pts.itertuples(index=False)
                    if np.isfinite(r.mean))
    for r in pts.itertuples(index=False):
        if not np.isfinite(r.mean):
            continue
        fill, radius = _TREND_MARK.get(str(r.status), ("#555555", 1.8))
        band = (f"; band {_fmt(r.band_lo)} to {_fmt(r.band_hi)}"
                if np.isfinite(r.band_lo) and np.isfinite(r.band_hi) else "")
        dots.append((f"{x(r.i):.1f}", f"{y(float(r.mean)):.1f}", radius, fill,
                     str(r.status).replace(" ", "-"), f"{r.label}: {_fmt(r.mean)} ({r.status}{band})"))
    label = f"trend over {runs} suite runs, latest {_fmt(pts['mean'].iloc[-1])}"
    return SparkView(width, height, label, bands, line, dots)


def sparkline(points: pd.DataFrame, runs: int, width: int = 150, height: int = 38) -> str:
    """One value's trend as a small inline SVG (no script, no external file): its value per
    suite run (`i`, 0 = oldest, of `runs`), the noise band `bench compare` used that night
    shaded behind it, a red dot where the night's comparison found a regression, green for an
    improvement. Hovering a dot shows the run, value and verdict."""
    spark = _spark(points, runs, width, height)
    return "" if spark is None else str(_macro("sections.html.j2", "sparkline")(spark))


class TrendCell(NamedTuple):
    spark: SparkView | None
    latest: str
    regression: bool


def _trends(trend: pd.DataFrame | None) -> dict[str, Any] | None:
    """The trends section's content (bench.report.compare.trends: the last suite runs' ranked
    values, per dataset); None when there are fewer than two runs."""
    if trend is None or trend.empty or trend["i"].nunique() < 2:
        return None
    runs = int(trend["i"].max()) + 1
    labels = trend.drop_duplicates("i").sort_values("i")["label"].astype(str).tolist()
    latest = trend[trend["i"] == trend["i"].max()]
    datasets = []
    for ds, g in trend.groupby("dataset", sort=True):
        values = list(dict.fromkeys(g.sort_values(["metric", "value"])["value"].astype(str)))
        ideal = {str(v): str(d) for v, d in zip(g["value"], g["ideal"], strict=True)}
        # the board's header mark (→ref: the held-out real row's value is the target), never a bare →
        marks = (dict(zip(g["value"].astype(str), g["symbol"].astype(str), strict=True))
                 if "symbol" in g.columns else {})
        arrow = {"higher": "↑", "lower": "↓"}
        heads = [(ideal.get(v, ""), v, marks.get(v) or arrow.get(ideal.get(v, ""), "")) for v in values]
        rows = []
        for model, mg in g.groupby("model", sort=True):
            cells: list[TrendCell | None] = []
            for v in values:
                pts = mg[mg["value"].astype(str) == v]
                if pts.empty:
                    cells.append(None)
                    continue
                last = pts.sort_values("i").iloc[-1]
                cells.append(TrendCell(_spark(pts, runs), _fmt(last["mean"]),
                                       last["status"] == "regression" and int(last["i"]) == runs - 1))
            rows.append((str(model), cells))
        datasets.append({"name": str(ds), "heads": heads, "rows": rows})
    return {"runs": runs, "first": labels[0], "last": labels[-1],
            "regressions": int((trend["status"] == "regression").sum()),
            "latest": int((latest["status"] == "regression").sum()), "datasets": datasets}


def trends_section(trend: pd.DataFrame) -> str:
    """The last suite runs' ranked values (bench.report.compare.trends), one sparkline per model and
    value, per dataset; empty when there are fewer than two runs."""
    content = _trends(trend)
    return "" if content is None else str(_macro("sections.html.j2", "trends")(content))


def _published(tables: list[Table], published: list[PublishedBlock] | None
               ) -> list[tuple[str, str, str, list[tuple[str, ...]]]] | None:
    """The suite's published numbers beside ours (bench.report.published.comparison), per
    source and dataset; None when the suite publishes none."""
    if not published:
        return None
    frame = comparison(tables, published)
    groups = []
    for (source, dataset), g in frame.groupby(["source", "dataset"], sort=False) if not frame.empty else []:
        rows: list[tuple[str, ...]] = [
            (str(r["model"]), str(r["value"]), str(r["ours"] or "—"), f"{r['published']:.4g}",
             "—" if not math.isfinite(r["difference"]) else format(r["difference"], "+.3g"),
             str(r["reading"])) for _, r in g.iterrows()]
        groups.append((str(source), str(dataset), "; ".join(sorted({n for n in g["note"] if n})), rows))
    return groups


def render_html(tables: list[Table], *, title: str = "Leaderboard", images: list[Image] | None = None,
                figures: dict[str, bytes] | None = None,
                experiment_id: str | None = None, ui_url: str | None = None,
                generated: str | None = None, trends: pd.DataFrame | None = None,
                published: list[PublishedBlock] | None = None) -> str:
    """The whole page (templates/board.html.j2): summary, one sortable table per dataset (and
    the suite's published numbers beside ours), then each model's runs (linked to the MLflow
    UI when `ui_url` is given) and its image artifacts."""
    with paused_gc():  # about a million small objects, no cycle among them (render.gc_pause)
        images = images or []
        reference = _reference_flags(tables)
        models = sorted(reference)
        anchors = {m: f"model-{i}" for i, m in enumerate(models)}
        board = build_board(tables)
        page: dict[str, Any] = {"title": title, "generated": generated, "progress": board.progress,
                                "css": Markup(_CSS), "js": Markup(_JS), "csp": Markup(_csp()),
                                "reference_label": REFERENCE_LABEL, "datasets": []}
        if tables:
            runs = _runs_by_model(tables, experiment_id, ui_url)
            by_model: dict[str, list[tuple[str, str, str]]] = {}
            for img in images:
                by_model.setdefault(img.model, []).append(
                    (img.uri, f"{img.name} of {img.model}", f"{img.dataset} · {img.metric} · {img.name}"))
            page |= {
                "datasets": [_dataset(t, anchors) for t in board.tables],
                "summary": _summary(board.summary, anchors),
                "trends": _trends(trends) if trends is not None else None,
                "figures": _figures(figures or {}, tables),
                "published": _published(tables, published),
                "models": {"images_note": _images_shown(tables, images), "image_models": IMAGE_MODELS,
                           "models": [(anchors[m], m, reference[m], _run_items(runs.get(m, [])), by_model.get(m, []))
                                      for m in models]}}
        return _ENV.get_template("board.html.j2").render(page)


def html_report(tables: list[Table], fetch_artifact: FetchArtifact | None = None,
                list_artifacts: ListArtifacts | None = None, max_models: int | None = IMAGE_MODELS,
                **kwargs: Any) -> str:
    """render_html with the images of the tables' runs fetched first (none without a fetcher)."""
    images = (collect_images(tables, fetch_artifact, list_artifacts, max_models=max_models)
              if fetch_artifact and max_models != 0 else [])
    return render_html(tables, images=images, **kwargs)
