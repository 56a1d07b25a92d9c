"""Figures that compare models, drawn as the paper draws them, from a suite's cell runs:

- GAN-train vs. the number of training images for every model, over the real-data curve
  (Shmelkov et al. 2018, Fig. 4): from each `gan_train_curve` run's `gan_train_curve.csv`;
- augmentation gain vs. the real fraction for every model (Fig. 5): from `aug_gain_at_*`;
- GAN-train vs. GAN-test with the real reference (Table 1 at a glance);
- GAN-train vs. FID (where they disagree, the paper's point).

They are PNG bytes (matplotlib Figure on the Agg canvas, no pyplot state), logged on the
suite run under `figures/` and shown at the top of the HTML board. Like html_report, this
module never imports mlflow: artifacts come through a `fetch(run_id, path)` callable.

A board of many models: a scatter still draws every model (one point collection, cheap), but
past `FIGURE_MODELS` competitors names only the top ones by its y value and the reference
rows; the curves and augmentation charts, past `FIGURE_LINES` competitors, draw the lines
(and fetch the curve files) of the top ones and of the reference rows only (more lines than
the colour cycle's ten, and a legend taller than the axes, make a chart nobody can read). A
figure that leaves models out says so under its axes, and the HTML board says so above the
figures. (Drawn one artist and one label per model, a 1,000-model scatter took about 10 s.)
"""

from __future__ import annotations

import io
from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
from matplotlib.colors import to_rgba
from matplotlib.figure import Figure

from bench.core.safe_names import safe_filename

if TYPE_CHECKING:
    from bench.report.leaderboard import Table

Fetch = Callable[[str, str], "bytes | None"]

FIGURE_MODELS = 50  # competing models a scatter names (every model is a point); references always
FIGURE_LINES = 10  # competing models a chart of lines draws: the colour cycle's ten colours, a legend that fits


def _png(fig: Figure) -> bytes:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    return buf.getvalue()


def _means(runs: pd.DataFrame, metric: str, value: str) -> pd.DataFrame:
    """(dataset, model, reference) -> mean of `value` over repeats, for runs of `metric`."""
    col = f"m:{value}"
    if runs.empty or col not in runs.columns:
        return pd.DataFrame(columns=["dataset", "model", "reference", value])
    sel = runs[(runs["metric"] == metric) & runs[col].notna()]
    return sel.groupby(["dataset", "model"]).agg(**{value: (col, "mean"), "reference": ("reference", "first")}
                                                 ).reset_index()


def _label(ax, x: float, y: float, text: str, reference: bool, flagged: bool = False):
    return ax.annotate(text, (x, y), xytext=(4, 3), textcoords="offset points", fontsize=7,
                       color="0.45" if reference else ("#b00000" if flagged else "black"),
                       style="italic" if reference else "normal", annotation_clip=False)


# where a label may sit around its point (points right/up of it), nearest first: beside the
# point, then stacked further above and below, on the right and on the left
_OFFSETS = [(dx, dy) for step in (3, 11, 19, 27, 35) for dy in (step, -step - 6)
            for dx in (4, -4)]


def _place_labels(fig: Figure, labels: list) -> None:
    """Moves each label to the first place around its point where it overlaps no label placed
    before it and stays inside the figure (a label never hides another or runs off the
    image: "rea…"); where none is free, the place that overlaps least."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    if not labels:
        return
    FigureCanvasAgg(fig).draw()  # the final layout (constrained), to measure the texts in it
    renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
    frame = fig.bbox
    placed: list = []

    def cost(box) -> float:
        over = sum(max(0.0, min(box.x1, b.x1) - max(box.x0, b.x0))
                   * max(0.0, min(box.y1, b.y1) - max(box.y0, b.y0)) for b in placed)
        outside = (max(0.0, frame.x0 - box.x0) + max(0.0, box.x1 - frame.x1)
                   + max(0.0, frame.y0 - box.y0) + max(0.0, box.y1 - frame.y1))
        return over + 1e3 * outside

    for lab in labels:
        best = None
        for dx, dy in _OFFSETS:
            lab.set_position((dx, dy))
            lab.set_horizontalalignment("left" if dx > 0 else "right")
            box = lab.get_window_extent(renderer)
            c = cost(box)
            if best is None or c < best[0]:
                best = (c, dx, dy, box)
            if c == 0:
                break
        assert best is not None
        _, dx, dy, box = best
        lab.set_position((dx, dy))
        lab.set_horizontalalignment("left" if dx > 0 else "right")
        placed.append(box)


def _top(score: pd.Series, reference: pd.Series, n: int) -> pd.Series:
    """Which rows a figure names or draws: every reference row and the `n` competing rows of
    highest `score` (NaN last; ties in row order). All rows when there are no more than `n`
    competitors."""
    ref = reference.astype(bool)
    if int((~ref).sum()) <= n:
        return pd.Series(True, index=score.index)
    order = score.where(~ref).rank(method="first", ascending=False, na_option="bottom")
    return ref | (order <= n)


def _capped_note(fig: Figure, what: str, shown: int, total: int, by: str) -> None:
    """Says under the axes which competing models a figure left out."""
    fig.supxlabel(f"{what} the top {shown:,} of {total:,} models by {by}, and the reference rows",
                  fontsize=7, color="0.35")


def scatter(runs: pd.DataFrame, dataset: str, x: tuple[str, str], y: tuple[str, str], title: str,
            log_x: bool = False, flagged: frozenset[str] | set[str] = frozenset()) -> bytes | None:
    """One point per model of (metric, value) x against y; reference rows hollow and grey,
    models a gate flags (`flagged`: their numbers are not a score) red crosses. Every model is
    a point (one collection); past `FIGURE_MODELS` competitors only the top ones by y (and
    the references) are named."""
    fig = scatter_figure(runs, dataset, x, y, title, log_x, flagged)
    return None if fig is None else _png(fig)


def scatter_figure(runs: pd.DataFrame, dataset: str, x: tuple[str, str], y: tuple[str, str],
                   title: str, log_x: bool = False, flagged: frozenset[str] | set[str] = frozenset()
                   ) -> Figure | None:
    """The figure of `scatter`, labels placed (None when fewer than two models have both)."""
    from bench.report.leaderboard import FLOAT_NOISE

    a = _means(runs, *x)
    b = _means(runs, *y)
    both = a[a["dataset"] == dataset].merge(b[b["dataset"] == dataset], on=["dataset", "model"],
                                            suffixes=("", "_y"))
    if len(both) < 2:
        return None
    fig = Figure(figsize=(6.0, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ref = both["reference"].astype(bool).to_numpy()
    bad = both["model"].isin(flagged).to_numpy() & ~ref
    vx, vy = both[x[1]].to_numpy(dtype=float), both[y[1]].to_numpy(dtype=float)
    # float noise around an exact 0 (an identical set's FID, -7e-13) is drawn at 0
    vx, vy = (np.where(np.abs(v) < FLOAT_NOISE, 0.0, v) for v in (vx, vy))
    # one collection in row order, each point coloured as its own scatter call drew it before
    blue, grey, clear = to_rgba("C0"), to_rgba("0.5"), (0.0, 0.0, 0.0, 0.0)
    ok = ~bad
    ax.scatter(vx[ok], vy[ok], s=30, facecolors=[clear if r else blue for r in ref[ok]],
               edgecolors=[grey if r else blue for r in ref[ok]])
    if bad.any():
        ax.scatter(vx[bad], vy[bad], s=36, marker="x", color="#b00000", linewidths=1.4,
                   label="flagged by a gate (not a score)")
    named = _top(both[y[1]], both["reference"], FIGURE_MODELS).to_numpy()
    labels = [_label(ax, vx[i], vy[i], str(both["model"].iat[i]), bool(ref[i]), bool(bad[i]))
              for i in np.flatnonzero(named)]
    if not named.all():
        _capped_note(fig, "Every model is a point; named:", int((named & ~ref).sum()), int((~ref).sum()), y[1])
    if "real_val_acc" in runs.columns or "m:real_val_acc" in runs.columns:
        real = _means(runs, y[0], "real_val_acc")
        real = real[real["dataset"] == dataset]
        if not real.empty:
            ax.axhline(float(real["real_val_acc"].median()), color="0.6", ls="--", lw=0.8,
                       label="real_val_acc (real training data)")
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7, loc="best")
    ax.set(xlabel=f"{x[1]}", ylabel=f"{y[1]}", title=f"{title} ({dataset})")
    if log_x:
        ax.set_xscale("symlog", linthresh=1.0)
        if np.nanmin(vx) >= 0:  # no negative decade (a "−10⁰" tick) for values that are never below 0
            ax.set_xlim(left=-0.3)
    if len(labels) <= 4 * FIGURE_MODELS:
        _place_labels(fig, labels)
    return fig


def curves(runs: pd.DataFrame, dataset: str, fetch: Fetch) -> bytes | None:
    """Every model's GAN-train curve on one chart over the real-data curve (Fig. 4)."""
    sel = runs[(runs["metric"] == "gan_train_curve") & (runs["dataset"] == dataset)] if not runs.empty else runs
    if sel.empty:
        return None
    first = sel.sort_values("repeat").drop_duplicates("model")
    # past FIGURE_LINES competitors: the curves of the top ones by effective size (the
    # curve's own score, in the runs already read) and the references; only theirs are fetched
    size = (sel.groupby("model")["m:effective_size"].mean() if "m:effective_size" in sel.columns
            else pd.Series(dtype=float))
    keep = _top(first["model"].map(size).astype(float), first["reference"], FIGURE_LINES)
    total, first = int((~first["reference"].astype(bool)).sum()), first[keep.to_numpy()]
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    real_drawn, drawn, competing = False, 0, 0
    for r in first.itertuples(index=False):
        raw = fetch(str(r.run_id), "gan_train_curve.csv")
        if not raw:
            continue
        table = pd.read_csv(io.BytesIO(raw))
        if not real_drawn and "real_acc" in table:
            real = table.dropna(subset=["real_acc"])
            ax.plot(real["size"], real["real_acc"], "k-o", lw=2, ms=4, label="real data")
            real_drawn = True
        gen = table.dropna(subset=["gan_train_acc"])
        ax.plot(gen["size"], gen["gan_train_acc"], "--" if r.reference else "-", marker="s", ms=3,
                label=f"{r.model}{' (reference)' if r.reference else ''}")
        drawn += 1
        competing += not r.reference
    if not drawn:
        return None
    if not keep.all():
        _capped_note(fig, "Curves of", competing, total, "effective_size")
    ax.set(xscale="log", xlabel="training images", ylabel="real val accuracy",
           title=f"GAN-train vs. training-set size ({dataset})")
    ax.legend(fontsize=7)
    return _png(fig)


def augmentation(runs: pd.DataFrame, dataset: str) -> bytes | None:
    """Every model's augmentation gain per real fraction on one chart (Fig. 5)."""
    if runs.empty:
        return None
    sel = runs[(runs["metric"] == "augmentation") & (runs["dataset"] == dataset)]
    cols = sorted((c for c in sel.columns if c.startswith("m:aug_gain_at_") and not c.endswith((".lo", ".hi"))),
                  key=lambda c: float(c.rsplit("_at_", 1)[1]))
    if sel.empty or not cols:
        return None
    fig = Figure(figsize=(6.0, 4.5), layout="constrained")
    ax = fig.add_subplot()
    fractions = [float(c.rsplit("_at_", 1)[1]) for c in cols]
    gains = sel.groupby("model", sort=True)[cols].mean()
    gains = gains[gains.notna().any(axis=1)]
    reference = sel.groupby("model", sort=True)["reference"].first().reindex(gains.index).astype(bool)
    # past FIGURE_LINES competitors: the top ones by mean gain over the fractions, and the references
    keep = _top(gains.mean(axis=1), reference, FIGURE_LINES)
    for model, ys in gains[keep].iterrows():
        ax.plot(fractions, ys.to_numpy(dtype=float), "--" if reference[model] else "-", marker="o", ms=4,
                label=str(model))
    if not keep.all():
        _capped_note(fig, "Gains of", int((keep & ~reference).sum()), int((~reference).sum()), "mean gain")
    ax.axhline(0, color="0.6", lw=0.8)
    ax.set(xscale="log", xlabel="fraction of the real training set", ylabel="accuracy gain from generated images",
           title=f"Data augmentation gain ({dataset})")
    ax.legend(fontsize=7)
    return _png(fig)


def flagged_models(board: list[Table]) -> dict[str, frozenset[str]]:
    """dataset -> the competing models a gate flags there (the board's tier 1)."""
    return {t.dataset: frozenset(m for m in t.ranked if t.tier(m) == 1) for t in board}


def suite_figures(runs: pd.DataFrame, fetch: Fetch | None = None,
                  board: list[Table] | None = None) -> dict[str, bytes]:
    """{file name: PNG} of every comparison figure the runs support (none is an error). A
    name holds its dataset's, made one safe file name (bench.core.safe_names): dataset names are
    the user's, and `../x` must not become a path. The scatters draw the models the board
    (`board`, else built from `runs`) flags apart from those that pass."""
    out: dict[str, bytes] = {}
    if runs.empty:
        return out
    if board is None:
        from bench.report.leaderboard import build_leaderboard

        board = build_leaderboard(runs)
    bad = flagged_models(board)
    for ds in sorted(runs["dataset"].dropna().unique()):
        made = {
            f"{ds}_gan_train_vs_gan_test.png": scatter(runs, ds, ("gan_test", "gan_test_acc"),
                                                       ("gan_train", "gan_train_acc"),
                                                       "GAN-train vs. GAN-test",
                                                       flagged=bad.get(ds, frozenset())),
            f"{ds}_gan_train_vs_fid.png": scatter(runs, ds, ("fid", "fid"), ("gan_train", "gan_train_acc"),
                                                  "GAN-train vs. FID", log_x=True,
                                                  flagged=bad.get(ds, frozenset())),
            f"{ds}_augmentation.png": augmentation(runs, ds),
            f"{ds}_gan_train_curves.png": curves(runs, ds, fetch) if fetch else None,
        }
        out.update({safe_filename(k): v for k, v in made.items() if v})
    return out
