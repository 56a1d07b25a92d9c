"""Leaderboard tables -> one self-contained HTML page.

The page is a single file (inline CSS, a small inline sorting script, images as base64 data
URIs) so that it can be logged as an MLflow artifact, mailed or opened from disk with no
server and no CDN. Every piece of user text (model, dataset and value names come from suite
files) goes through html.escape, and a Content-Security-Policy that allows only the page's own
script (by hash) backs that up: a model named `<script>...</script>` stays text.

Images come through a `fetch_artifact(run_id, path) -> bytes | None` callable (and optionally
`list_artifacts(run_id) -> list[str]`), so this module never imports mlflow; `mlflow_access`
builds both from an MlflowClient-like object such as `Tracker.client`.
"""

from __future__ import annotations

import base64
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from html import escape as _html_escape
from pathlib import Path
from typing import Any
from urllib.parse import quote

import numpy as np
import pandas as pd

from bench.config.published import PublishedBlock
from bench.core.safe_names import printable
from bench.report.leaderboard import (
    REFERENCE_LABEL,
    Table,
    _data_text,
    _diagnostic_groups,
    _failed_columns,
    _score_groups,
    best_mask,
    cell_texts,
    legend,
    model_label,
    notes,
    progress_note,
    ranking_agreement,
    summarize,
    summary_frame,
    summary_note,
)
from bench.report.published import comparison
from bench.report.published import html as published_html


def escape(text: str, quote: bool = True) -> str:
    """html.escape of a name with its control characters shown as escapes first (`\\x1b`):
    a name read from a store may hold any character, and a raw ESC is invisible on a page and
    recolours the terminal that prints the file."""
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


IMAGE_MODELS = 50  # per dataset: the page embeds the images of its first ranked models


def _image_models(t: Table, max_models: int | None) -> set[str]:
    """The models whose images a table's page shows: the first `max_models` in board order
    (every model when None) and every reference row."""
    ranked = list(t.ranked) + [m for m in t.cells["model"].unique() if m not in t.mean.index]
    return {str(m) for m in (ranked if max_models is None else ranked[:max_models])} | {
        str(m) for m in t.references}


def _images_note(tables: list[Table], images: list[Image]) -> str:
    shown = {img.model for img in images}
    total = len({str(m) for t in tables for m in t.ranked})
    if total <= IMAGE_MODELS or not images:
        return ""
    return (f'<p class="note">Images of {len(shown)} models: the first {IMAGE_MODELS} of each '
            "dataset's board and the reference rows (`--images N` shows more; 0 shows none). "
            "Every run is linked below.</p>")


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


def run_link(run_id: str, experiment_id: str | None, ui_url: str | None) -> str:
    """An <a> to the run in the MLflow UI, or the run id as text when there is no UI."""
    ui = safe_ui_url(ui_url)
    text = f"<code>{escape(run_id)}</code>"
    if not ui or not experiment_id:
        return text
    href = f"{ui}/#/experiments/{quote(str(experiment_id), safe='')}/runs/{quote(run_id, safe='')}"
    return f'<a href="{escape(href)}">{text}</a>'


# ------------------------------------------------------------------ page

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,"Segoe UI",sans-serif;margin:2em auto;max-width:1200px;
 padding:0 1em;color:#222}
h1{font-size:1.6em}h2{margin-top:2em;border-bottom:1px solid #ddd}
table{border-collapse:collapse;margin:.5em 0 1em}
th,td{padding:.3em .7em;border-bottom:1px solid #e4e4e4;text-align:right;white-space:nowrap}
th:first-child,td:first-child{text-align:left}
td.text{text-align:left;white-space:normal;min-width:16em;max-width:36em}
thead th{cursor:pointer;user-select:none;background:#f7f7f7;border-bottom:2px solid #bbb}
thead th[aria-sort=ascending]::after{content:" \\25B2"}
thead th[aria-sort=descending]::after{content:" \\25BC"}
td.best{font-weight:700}
tbody.reference tr{background:#f4f4f0;color:#666;font-style:italic}
tbody.reference tr.divider th{font-size:.85em;text-transform:uppercase;letter-spacing:.05em;
 border-top:2px dashed #bbb;text-align:left;background:#fff;cursor:default}
.note{color:#666}.gallery{display:flex;flex-wrap:wrap;gap:1em}
figure{margin:0;max-width:380px}figure img{max-width:100%;border:1px solid #ddd}
figcaption{font-size:.85em;color:#555}
.runs{font-size:.9em}.badge{font-size:.75em;background:#e8e8e0;padding:.1em .4em;border-radius:3px}
table.trends td{vertical-align:middle}svg.spark{vertical-align:middle}
.reg{color:#d00000;font-weight:700}.latest{font-variant-numeric:tabular-nums}
td.state{color:#888;font-style:italic}.in-progress{background:#fff8e0;border:1px solid #e8d48a;
 padding:.5em .8em}
"""

# Sorts each tbody of a table on its own (reference rows stay in their group). A first click
# puts the better values first (data-first), a second reverses; blanks always go last.
_JS = """
(function () {
  function key(cell) {
    if (!cell) return null;
    var v = cell.getAttribute('data-v');
    if (v === null) return cell.textContent.trim().toLowerCase();
    return v === '' ? null : parseFloat(v);
  }
  function sortTable(table, col, th) {
    var desc = th.getAttribute('aria-sort') ? th.getAttribute('aria-sort') === 'ascending'
                                            : th.getAttribute('data-first') === 'desc';
    table.querySelectorAll('thead th').forEach(function (h) { h.removeAttribute('aria-sort'); });
    th.setAttribute('aria-sort', desc ? 'descending' : 'ascending');
    table.querySelectorAll('tbody').forEach(function (body) {
      var rows = Array.prototype.filter.call(body.rows, function (r) {
        return !r.classList.contains('divider');
      });
      rows.sort(function (a, b) {
        var x = key(a.cells[col]), y = key(b.cells[col]);
        if (x === null || y === null) return (x === null) - (y === null);
        var c = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y));
        return desc ? -c : c;
      });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  }
  document.querySelectorAll('table.sortable').forEach(function (table) {
    table.querySelectorAll('thead th').forEach(function (th, col) {
      th.addEventListener('click', function () { sortTable(table, col, th); });
    });
  });
})();
"""


def _csp() -> str:
    digest = base64.b64encode(hashlib.sha256(_JS.encode()).digest()).decode()
    return (f"default-src 'none'; img-src data:; style-src 'unsafe-inline'; "
            f"script-src 'sha256-{digest}'; base-uri 'none'; form-action 'none'")


def _num_cell(text: str, good: float, best: bool, title: str = "") -> str:
    """A value cell; `data-v` is its goodness (higher = better, -|x - target| for targets), so
    a click on the header sorts best first whatever the column's ideal."""
    if not text:
        return '<td data-v=""></td>'
    cls = ' class="best"' if best else ""
    tip = f' title="{escape(title)}"' if title else ""
    v = "" if pd.isna(good) else repr(float(good))
    return f'<td data-v="{v}"{cls}{tip}>{escape(text)}</td>'


def _model_cell(model: str, anchors: dict[str, str], reference: bool, label: str | None = None) -> str:
    name = escape(label or model)
    if model in anchors:
        name = f'<a href="#{anchors[model]}">{name}</a>'
    badge = ' <span class="badge">reference</span>' if reference else ""
    return f'<th scope="row">{name}{badge}</th>'


def _model_cells(t: Table, anchors: dict[str, str]) -> dict[str, str]:
    """The row header of every model of a table, made once for all its value tables."""
    ref = set(map(str, t.references))
    return {str(m): _model_cell(str(m), anchors, str(m) in ref, model_label(t, str(m)))
            for m in list(t.ranked) + list(t.references)}


_EMPTY_CELL = '<td data-v=""></td>'


def _plain_cells(texts: np.ndarray, good: np.ndarray, n: np.ndarray) -> list[str]:
    """One column's cells, not bold, for every row: what _num_cell writes, a column at a time
    (10,000 models x 17 columns: 0.3 s instead of 2 s)."""
    out = []
    for text, g, k in zip(texts.tolist(), good.tolist(), n.tolist(), strict=True):
        if not text:
            out.append(_EMPTY_CELL)
            continue
        v = "" if g != g else repr(g)
        tip = "" if k != k else f' title="n={int(k)}"'
        out.append(f'<td data-v="{v}"{tip}>{escape(text)}</td>')
    return out


def _value_table(t: Table, cols: list[str], anchors: dict[str, str], bold: bool,
                 model_cells: dict[str, str] | None = None) -> str:
    best, good = best_mask(t)[cols].to_numpy(dtype=bool), t.goodness()[cols].to_numpy(dtype=float)
    texts = cell_texts(t, t.uncertainty())[cols].to_numpy()
    n = t.n.reindex(index=t.mean.index, columns=cols).to_numpy(dtype=float)
    pos = {m: i for i, m in enumerate(t.mean.index)}
    heads = ['<th data-first="asc">model</th>'] + [
        f'<th data-first="desc" title="{escape(t.values[c].role)}; aspect: {escape(str(t.values[c].aspect))}">'
        f"{escape(t.header(c))}</th>" for c in cols]
    has = dict(zip(t.mean.index, t.mean[cols].notna().to_numpy().any(axis=1).tolist(), strict=True))
    failed_cols = _failed_columns(t)
    heads_of = model_cells if model_cells is not None else _model_cells(t, anchors)
    # every row's cells a column at a time; the few rows with a bold (best) or failed cell are
    # written cell by cell below
    plain = ["".join(r) for r in zip(*(_plain_cells(texts[:, j], good[:, j], n[:, j])
                                        for j in range(len(cols))), strict=True)] if cols else []

    def row(m: str, reference: bool) -> str:
        i, failed = pos[m], failed_cols.get(m, ())
        bolded = bold and not reference and bool(best[i].any())
        if (state := t.state(m)) is not None:  # pending / not run: no value, never ranked
            cells = "".join(f'<td data-v="" class="state">{escape(state)}</td>' for _ in cols)
        elif bolded or failed:
            cells = "".join(_num_cell(texts[i, j] or ("failed" if c in failed else ""),
                                      good[i, j], bolded and bool(best[i, j]),
                                      f"n={int(n[i, j])}" if not np.isnan(n[i, j]) else "")
                            for j, c in enumerate(cols))
        else:
            cells = plain[i] if cols else ""
        return f"<tr>{heads_of[m]}{cells}</tr>"

    shown = [m for m in t.ranked if has[m] or t.failed(m) or t.state(m)]
    body = f'<tbody class="ranked">{"".join(row(m, False) for m in shown)}</tbody>'
    refs = [m for m in t.references if has[m] or t.failed(m) or t.state(m)]
    if refs:
        divider = (f'<tr class="divider"><th colspan="{len(heads)}" scope="rowgroup">'
                   f"{escape(REFERENCE_LABEL)}</th></tr>")
        body += f'<tbody class="reference">{divider}{"".join(row(m, True) for m in refs)}</tbody>'
    return f'<table class="sortable"><thead><tr>{"".join(heads)}</tr></thead>{body}</table>'


def _dataset_table(t: Table, anchors: dict[str, str]) -> str:
    """One dataset: the scores (competing models, then reference rows under a divider), the
    diagnostics (never bold), the data's own reference values, and the legend."""
    parts = []
    heads = _model_cells(t, anchors)
    for title, cols, _ in _score_groups(t) if t.scores or t.failures.size else []:
        parts.append((f"<h3>{escape(title)}</h3>" if title else "") + _value_table(t, cols, anchors, True, heads))
    for title, cols, _ in _diagnostic_groups(t):
        diag = [c for c in cols if t.mean[c].notna().any()]
        if diag:
            parts.append(f"<h3>{escape(title)}</h3>" + _value_table(t, diag, anchors, False, heads))
    flagged = notes(t, code=str)  # names plain: no markdown backticks in a page
    if flagged:
        items = "".join(f"<li>{escape(n)}</li>" for n in flagged)
        parts.append("<h3>Flags and failures</h3><p class=\"note\">✗ keeps a model below every "
                     f"model that passes; ⚠ marks a value to read with care.</p><ul>{items}</ul>")
    if not t.data.empty:
        items = "".join(f"<li><code>{escape(str(r['value']))}</code> {escape(_data_text(r))}</li>"
                        for _, r in t.data.iterrows())
        parts.append(f"<h3>Data reference (the same for every model)</h3><ul>{items}</ul>")
    ag = ranking_agreement(t)
    if not ag.empty:
        items = "".join(f"<li><code>{escape(r.a)}</code> vs <code>{escape(r.b)}</code>: ρ = {r.rho:+.2f} "
                        f"(p = {r.p:.2g}, {r.models} models)</li>" for r in ag.itertuples())
        parts.append("<h3>Ranking agreement</h3><p class=\"note\">Spearman's ρ of the two rankings, "
                     f"each oriented best-first (1 = same order).</p><ul>{items}</ul>")
    parts.append(f'<p class="note">sorted by {escape(str(t.sort_by))}; {escape(legend(t))} '
                 "Click a header to sort best first.</p>")
    return "".join(parts)


def _summary_table(tables: list[Table], anchors: dict[str, str]) -> str:
    summary = summarize(tables)
    if summary.empty:
        return '<p class="note">No competing (non-reference) models to rank.</p>'
    shown = summary_frame(summary)
    raw = summary.reindex(shown.index)
    columns = []  # a column at a time (10,000 models: a row lookup each took 12 s)
    for col in shown.columns:
        key = "wins" if col.startswith("clear wins") else col.rsplit(" ", 1)[0]
        x = raw[key] if key in raw.columns else None
        if x is not None and (pd.api.types.is_float_dtype(x) or pd.api.types.is_integer_dtype(x)):
            values = [("" if v != v else repr(float(v if key == "wins" else -v)))
                      for v in x.to_numpy(dtype=float).tolist()]
            cls = ""
        else:  # text (the verdict): left-aligned and wrapped, so the aspect columns stay in view
            values, cls = [""] * len(shown), ' class="text"'
        columns.append([f'<td data-v="{v}"{cls}>{escape(str(text))}</td>'
                        for v, text in zip(values, shown[col].tolist(), strict=True)])
    rows = [f"<tr>{_model_cell(str(m), anchors, False)}{''.join(cells)}</tr>"
            for m, *cells in zip(shown.index.tolist(), *columns, strict=True)]
    heads = '<th data-first="asc">model</th>' + "".join(
        f'<th data-first="desc">{escape(c)}</th>' for c in shown.columns)
    return (f'<table class="sortable" id="summary-table"><thead><tr>{heads}</tr></thead>'
            f'<tbody class="ranked">{"".join(rows)}</tbody></table>'
            f'<p class="note">{escape(summary_note(tables))}</p>')


def _runs_by_model(tables: list[Table], experiment_id: str | None,
                   ui_url: str | None) -> dict[str, list[str]]:
    """Each model's run list items, grouped in one pass over the cells (a per-model filter
    of every table is quadratic: minutes at 10,000 models); the text before each link is
    escaped once per (dataset, metric), the link's fixed part once per page."""
    ui = safe_ui_url(ui_url)
    base = (escape(f"{ui}/#/experiments/{quote(str(experiment_id), safe='')}/runs/")
            if ui and experiment_id else None)
    runs: dict[str, list[str]] = {}
    for t in tables:
        if t.cells.empty:
            continue
        c = t.cells
        metrics = [str(m) for m in c["metric"].tolist()]
        lead = {m: f"<li>{escape(t.dataset)} · {escape(m)} · repeat " for m in set(metrics)}
        for model, metric, repeat, run_id in zip(c["model"].tolist(), metrics, c["repeat"].tolist(),
                                                 c["run_id"].tolist(), strict=True):
            if not run_id:
                continue
            rid = str(run_id)
            code = f"<code>{escape(rid)}</code>"
            # quote() leaves none of & < > " ' unencoded: the href needs no escape of its own
            link = f'<a href="{base}{quote(rid, safe="")}">{code}</a>' if base is not None else code
            runs.setdefault(str(model), []).append(f"{lead[metric]}{int(repeat)}: {link}</li>")
    return runs


def _model_section(model: str, anchor: str, reference: bool, runs: list[str],
                   images: list[Image]) -> str:
    figs = [f'<figure><img src="{img.uri}" alt="{escape(img.name)} of {escape(model)}" loading="eager">'
            f"<figcaption>{escape(img.dataset)} · {escape(img.metric)} · {escape(img.name)}</figcaption></figure>"
            for img in images]
    badge = ' <span class="badge">reference</span>' if reference else ""
    return (f'<article id="{anchor}"><h3>{escape(model)}{badge}</h3>'
            + (f'<ul class="runs">{"".join(runs)}</ul>' if runs else "")
            + (f'<div class="gallery">{"".join(figs)}</div>' if figs else "")
            + "</article>")


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


def _figures_note(tables: list[Table], names: list[str]) -> str:
    """What the comparison figures `names` leave out on a board of many models
    (bench.report.figures: past FIGURE_MODELS competitors a scatter names only the top ones,
    past FIGURE_LINES a chart of lines draws only theirs); empty when they leave out none."""
    from bench.report.figures import FIGURE_LINES, FIGURE_MODELS

    counts = {t.dataset: len(t.ranked) for t in tables}
    most = max(counts.values(), default=0)
    lines = [n for n in names if n.endswith(("_gan_train_curves.png", "_augmentation.png"))]
    said = []
    if most > FIGURE_MODELS and len(lines) < len(names):
        said.append(f"each scatter draws every model as a point and names the top {FIGURE_MODELS} by "
                    "its vertical value")
    if most > FIGURE_LINES and lines:
        said.append(f"the curves and the augmentation chart draw the lines of the top {FIGURE_LINES} "
                    "(by effective size, by mean gain)")
    if not said:
        return ""
    each = f" ({', '.join(f'{escape(ds)}: {n:,}' for ds, n in counts.items())})" if len(counts) > 1 else ""
    return (f'<p class="note">Comparison figures over {most:,} models{each}: {"; ".join(said)}, and '
            "the reference rows. Each figure that leaves models out says so under its axes; every "
            "model's values are in the tables below.</p>")


def _figures_section(figures: dict[str, bytes], tables: list[Table] | None = None) -> str:
    figs, names = [], []
    for name, data in figures.items():
        mime = image_mime(data)
        if not mime:
            continue
        names.append(name)
        uri = f"data:{mime};base64,{base64.b64encode(data).decode()}"
        figs.append(f'<figure><img src="{uri}" alt="{escape(name)}" loading="eager">'
                    f"<figcaption>{escape(name)}</figcaption></figure>")
    if not figs:
        return ""
    return (f'<section id="figures"><h2>Comparisons</h2>{_figures_note(tables or [], names)}'
            f'<div class="gallery">{"".join(figs)}</div></section>')


_TREND_MARK = {"regression": ("#d00000", 3.6), "improvement": ("#1a7f37", 2.6),
               "new segment": ("#ffffff", 2.6)}


def _fmt(x: float) -> str:
    return "–" if pd.isna(x) else f"{x:.4g}"


def sparkline(points: pd.DataFrame, runs: int, width: int = 150, height: int = 38) -> str:
    """One value's trend as a small inline SVG (no script, no external file): its value per
    suite run (`i`, 0 = oldest, of `runs`), the noise band `bench compare` used that night
    shaded behind it, a red dot where the night's comparison found a regression, green for an
    improvement. Hovering a dot shows the run, value and verdict."""
    pts = points.sort_values("i")
    ys = pd.concat([pts["mean"], pts["band_lo"], pts["band_hi"]]).astype(float)
    ys = ys[np.isfinite(ys)]
    if ys.empty:
        return ""
    lo, hi = float(ys.min()), float(ys.max())
    pad = (hi - lo) * 0.08 or (abs(hi) * 0.05 or 1.0)
    lo, hi = lo - pad, hi + pad
    step = (width - 8) / max(runs - 1, 1)

    def x(i: float) -> float:
        return 4 + i * step

    def y(v: float) -> float:
        return height - 3 - (v - lo) / (hi - lo) * (height - 6)

    parts = []
    for r in pts.itertuples(index=False):
        if np.isfinite(r.band_lo) and np.isfinite(r.band_hi):
            top, bottom = y(float(r.band_hi)), y(float(r.band_lo))
            parts.append(f'<rect x="{x(r.i) - step / 2:.1f}" y="{top:.1f}" width="{step:.1f}" '
                         f'height="{max(bottom - top, 0.5):.1f}" fill="#dfe7f1"/>')
    line = " ".join(f"{x(r.i):.1f},{y(float(r.mean)):.1f}" for r in pts.itertuples(index=False)
                    if np.isfinite(r.mean))
    parts.append(f'<polyline points="{line}" fill="none" stroke="#555" stroke-width="1.2"/>')
    for r in pts.itertuples(index=False):
        if not np.isfinite(r.mean):
            continue
        fill, radius = _TREND_MARK.get(str(r.status), ("#555555", 1.8))
        band = (f"; band {_fmt(r.band_lo)} to {_fmt(r.band_hi)}"
                if np.isfinite(r.band_lo) and np.isfinite(r.band_hi) else "")
        tip = f"{r.label}: {_fmt(r.mean)} ({r.status}{band})"
        parts.append(f'<circle cx="{x(r.i):.1f}" cy="{y(float(r.mean)):.1f}" r="{radius}" fill="{fill}" '
                     f'stroke="#555" stroke-width="0.6" class="{escape(str(r.status).replace(" ", "-"))}">'
                     f"<title>{escape(tip)}</title></circle>")
    label = f"trend over {runs} suite runs, latest {_fmt(pts['mean'].iloc[-1])}"
    return (f'<svg class="spark" width="{width}" height="{height}" viewBox="0 0 {width} {height}" '
            f'role="img" aria-label="{escape(label)}" xmlns="http://www.w3.org/2000/svg">'
            + "".join(parts) + "</svg>")


def trends_section(trend: pd.DataFrame) -> str:
    """The last suite runs' ranked values (bench.report.compare.trends), one sparkline per model and
    value, per dataset; empty when there are fewer than two runs."""
    if trend is None or trend.empty or trend["i"].nunique() < 2:
        return ""
    runs = int(trend["i"].max()) + 1
    labels = trend.drop_duplicates("i").sort_values("i")["label"].astype(str).tolist()
    n_reg = int((trend["status"] == "regression").sum())
    latest = trend[trend["i"] == trend["i"].max()]
    n_now = int((latest["status"] == "regression").sum())
    parts = ['<section id="trends"><h2>Trends</h2>',
             f'<p class="note">Each ranked value over the last {runs} suite runs ({escape(labels[0])} to '
             f"{escape(labels[-1])}), oldest left. The shaded band is the noise band of that night's "
             "<code>bench compare</code> against its baseline, the known-good runs before it (the threshold "
             "and their spread, or the repeats'): a value outside it that moved the wrong way is a regression "
             '(<span class="reg">red</span>, every night it is there until fixed or accepted), the right '
             f"way an improvement (green). {n_reg} "
             f"regression(s) over these runs, {n_now} in the latest.</p>"]
    for ds, g in trend.groupby("dataset", sort=True):
        values = list(dict.fromkeys(g.sort_values(["metric", "value"])["value"].astype(str)))
        ideal = {str(v): str(d) for v, d in zip(g["value"], g["ideal"], strict=True)}
        # the board's header mark (→ref: the held-out real row's value is the target), never a bare →
        marks = (dict(zip(g["value"].astype(str), g["symbol"].astype(str), strict=True))
                 if "symbol" in g.columns else {})
        arrow = {"higher": "↑", "lower": "↓"}
        heads = "<th>model</th>" + "".join(
            f'<th title="ideal: {escape(ideal.get(v, ""))}">{escape(v)} '
            f'{escape(marks.get(v) or arrow.get(ideal.get(v, ""), ""))}</th>'.replace(" </th>", "</th>")
            for v in values)
        rows = []
        for model, mg in g.groupby("model", sort=True):
            cells = []
            for v in values:
                pts = mg[mg["value"].astype(str) == v]
                if pts.empty:
                    cells.append("<td></td>")
                    continue
                last = pts.sort_values("i").iloc[-1]
                flag = (' <span class="reg">regression</span>' if last["status"] == "regression"
                        and int(last["i"]) == runs - 1 else "")
                cells.append(f'<td class="trend">{sparkline(pts, runs)} <span class="latest">'
                             f"{escape(_fmt(last['mean']))}</span>{flag}</td>")
            rows.append(f'<tr><th scope="row">{escape(str(model))}</th>{"".join(cells)}</tr>')
        parts.append(f"<h3>{escape(str(ds))}</h3><table class=\"trends\"><thead><tr>{heads}</tr></thead>"
                     f"<tbody>{''.join(rows)}</tbody></table>")
    parts.append("</section>")
    return "".join(parts)


def render_html(tables: list[Table], *, title: str = "Leaderboard", images: list[Image] | None = None,
                figures: dict[str, bytes] | None = None,
                experiment_id: str | None = None, ui_url: str | None = None,
                generated: str | None = None, trends: pd.DataFrame | None = None,
                published: list[PublishedBlock] | None = None) -> str:
    """The whole page: summary, one sortable table per dataset (and the suite's published
    numbers beside ours), then each model's runs (linked to the MLflow UI when `ui_url` is
    given) and its image artifacts."""
    images = images or []
    reference = _reference_flags(tables)
    models = sorted(reference)
    anchors = {m: f"model-{i}" for i, m in enumerate(models)}
    parts = [f"<h1>{escape(title)}</h1>"]
    if generated:
        parts.append(f'<p class="note">generated {escape(generated)}</p>')
    if (running := progress_note(tables)) is not None:
        parts.append(f'<p class="in-progress"><strong>In progress.</strong> {escape(running)}</p>')
    if not tables:
        parts.append("<p>(no finished runs)</p>")
    else:
        nav = "".join(f'<li><a href="#dataset-{i}">{escape(t.dataset)}</a></li>' for i, t in enumerate(tables))
        trend_html = trends_section(trends) if trends is not None else ""
        parts.append('<nav><ul><li><a href="#summary">summary</a></li>'
                     + ('<li><a href="#trends">trends</a></li>' if trend_html else "")
                     + nav + ('<li><a href="#published">published values</a></li>' if published else "")
                     + '<li><a href="#models">runs and artifacts</a></li></ul></nav>')
        parts.append(f'<section id="summary"><h2>Summary</h2>{_summary_table(tables, anchors)}</section>')
        parts.append(trend_html)
        parts.append(_figures_section(figures or {}, tables))
        parts += [f'<section id="dataset-{i}"><h2>{escape(t.dataset)}</h2>{_dataset_table(t, anchors)}</section>'
                  for i, t in enumerate(tables)]
        if published:
            parts.append(published_html(comparison(tables, published)))
        runs = _runs_by_model(tables, experiment_id, ui_url)
        by_model: dict[str, list[Image]] = {}
        for img in images:
            by_model.setdefault(img.model, []).append(img)
        parts.append('<section id="models"><h2>Runs and artifacts</h2>' + _images_note(tables, images)
                     + "".join(_model_section(m, anchors[m], reference[m], runs.get(m, []),
                                              by_model.get(m, [])) for m in models)
                     + "</section>")
    return ("<!doctype html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
            f'<meta http-equiv="Content-Security-Policy" content="{_csp()}">'
            '<meta name="viewport" content="width=device-width, initial-scale=1">'
            f"<title>{escape(title)}</title><style>{_CSS}</style></head><body>\n"
            + "\n".join(parts) + f"\n<script>{_JS}</script>\n</body></html>\n")


def html_report(tables: list[Table], fetch_artifact: FetchArtifact | None = None,
                list_artifacts: ListArtifacts | None = None, max_models: int | None = IMAGE_MODELS,
                **kwargs: Any) -> str:
    """render_html with the images of the tables' runs fetched first (none without a fetcher)."""
    images = (collect_images(tables, fetch_artifact, list_artifacts, max_models=max_models)
              if fetch_artifact and max_models != 0 else [])
    return render_html(tables, images=images, **kwargs)
