"""Suite-level comparison figures (Shmelkov et al. Fig. 4, Fig. 5, Table 1 at a glance,
GAN-train vs FID): drawn from cell runs and their curve CSVs, and skipped when the runs do
not support them."""

import pandas as pd
import pytest

from bench.record.values import reference, score
from bench.report.figures import suite_figures
from bench.report.html import render_html
from bench.report.leaderboard import build_leaderboard

PNG = b"\x89PNG\r\n\x1a\n"


def runs():
    rows = []
    for i, (m, ref) in enumerate((("a", False), ("b", False), ("real", True))):
        base = {"dataset": "d", "model": m, "repeat": 0, "reference": ref, "start_time": i,
                "suite": "s", "cell_key": "k", "held_out": False, "primary": ""}
        rows.append({**base, "metric": "gan_train", "run_id": f"{m}gt", "m:gan_train_acc": 0.5 + 0.2 * i,
                     "m:real_val_acc": 0.99, "values": {"gan_train_acc": score(), "real_val_acc": reference()}})
        rows.append({**base, "metric": "gan_test", "run_id": f"{m}gs", "m:gan_test_acc": 0.6 + 0.1 * i,
                     "values": {"gan_test_acc": score()}})
        rows.append({**base, "metric": "fid", "run_id": f"{m}f", "m:fid": 30.0 - 10 * i,
                     "values": {"fid": score("lower")}})
        rows.append({**base, "metric": "augmentation", "run_id": f"{m}aug",
                     "m:aug_gain_at_0.1": 0.05 * i, "m:aug_gain_at_1": 0.01 * i, "m:aug_gain_at_1.lo": 0.0,
                     "values": {"aug_gain": score()}})
        rows.append({**base, "metric": "gan_train_curve", "run_id": f"{m}curve", "m:effective_size": 100.0,
                     "values": {"effective_size": score()}})
    return pd.DataFrame(rows)


def fetch(run_id, path):
    if path == "gan_train_curve.csv" and run_id.endswith("curve"):
        return b"size,gan_train_acc,real_acc\n10,0.3,0.5\n100,0.6,0.8\n1000,0.7,0.95\n"
    return None


def test_every_comparison_figure_is_drawn():
    figs = suite_figures(runs(), fetch)
    assert set(figs) == {"d_gan_train_vs_gan_test.png", "d_gan_train_vs_fid.png", "d_augmentation.png",
                         "d_gan_train_curves.png"}
    assert all(v.startswith(PNG) for v in figs.values())
    html = render_html(build_leaderboard(runs()), figures=figs)
    assert 'id="figures"' in html and html.count("data:image/png;base64,") == 4


def test_figures_are_skipped_when_the_runs_do_not_support_them():
    one = runs()
    one = one[one["model"] == "a"]
    assert suite_figures(one, None) == {"d_augmentation.png": suite_figures(one, None)["d_augmentation.png"]}
    assert suite_figures(pd.DataFrame(), fetch) == {}


def test_every_model_logs_one_labelled_sample_grid(write_suite, tracking_uri):
    import io

    from mlflow import MlflowClient
    from PIL import Image

    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    suite = load_suite(write_suite("""\
name: grids
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  noisy: {source: reference, kind: noise}
metrics:
  test_constant: {}
  other: {source: test_constant}
"""))
    report = run_suite(suite, tracking_uri=tracking_uri, progress=False)
    client = MlflowClient(tracking_uri)
    grids = {o.cell.model.key: [a.path for a in client.list_artifacts(o.run_id)].count("samples.png")
             for o in report.outcomes if "samples.png" in [a.path for a in client.list_artifacts(o.run_id)]}
    assert len({o.run_id for o in report.outcomes}) == 4  # two metric names: two cells each
    assert grids == {"real": 1, "noisy": 1}  # once per model, not per cell
    run = next(o.run_id for o in report.outcomes if o.cell.model.key == "real")
    img = Image.open(io.BytesIO(open(client.download_artifacts(run, "samples.png"), "rb").read()))
    assert 10 * 32 <= img.height <= 10 * 40 and img.width < 1200  # ten labelled rows of 8x8 digits at 32 px


def many_runs(n: int = 120) -> pd.DataFrame:
    """`n` competing models and a reference, every figure's metrics; model mNNN's values grow
    with NNN, so the top k by any figure's value are the last k."""
    rows = []
    for i in range(n + 1):
        m, ref, q = (f"m{i:03d}", False, i / n) if i < n else ("real", True, 0.5)
        base = {"dataset": "d", "model": m, "repeat": 0, "reference": ref, "start_time": i,
                "suite": "s", "cell_key": "k", "held_out": False, "primary": ""}
        rows += [{**base, "metric": "gan_train", "run_id": f"{m}gt", "m:gan_train_acc": q, "m:real_val_acc": 0.99,
                  "values": {"gan_train_acc": score()}},
                 {**base, "metric": "gan_test", "run_id": f"{m}gs", "m:gan_test_acc": 1 - q,
                  "values": {"gan_test_acc": score()}},
                 {**base, "metric": "fid", "run_id": f"{m}f", "m:fid": 30 * (1 - q), "values": {"fid": score("lower")}},
                 {**base, "metric": "augmentation", "run_id": f"{m}aug", "m:aug_gain_at_0.1": q,
                  "m:aug_gain_at_1": q / 2, "values": {"aug_gain": score()}},
                 {**base, "metric": "gan_train_curve", "run_id": f"{m}curve", "m:effective_size": 100 * q,
                  "values": {"effective_size": score()}}]
    return pd.DataFrame(rows)


@pytest.mark.heavy  # draws many figures
def test_figures_over_many_models_name_and_draw_the_top_ones_and_say_so(monkeypatch):
    import time

    from bench.report import figures

    named, notes, fetched = [], [], []
    label, note = figures._label, figures._capped_note
    monkeypatch.setattr(figures, "_label", lambda ax, x, y, text, ref, *more: named.append(text) or label(ax, x, y, text, ref, *more))
    monkeypatch.setattr(figures, "_capped_note", lambda fig, *a: notes.append(a) or note(fig, *a))

    def counting_fetch(run_id, path):
        fetched.append(run_id)
        return fetch(run_id, path)

    suite_figures(runs(), fetch)  # a small suite: every model, no note
    assert len(named) == 2 * 3 and notes == []
    named.clear()
    t0 = time.perf_counter()
    figs = suite_figures(many_runs(), counting_fetch)
    assert time.perf_counter() - t0 < 60  # generous: about 2 s on 2 cores (one label per model took 10 s at 1,000)
    assert len(figs) == 4 and all(v.startswith(PNG) for v in figs.values())
    top50 = {f"m{i:03d}" for i in range(70, 120)} | {"real"}
    assert len(named) == 2 * 51 and set(named) == top50  # each scatter names the top 50 by gan_train_acc
    top10 = {f"m{i:03d}" for i in range(110, 120)} | {"real"}
    assert {r.removesuffix("curve") for r in fetched} == top10  # only the drawn curves are fetched
    assert sorted(notes) == sorted([("Every model is a point; named:", 50, 120, "gan_train_acc")] * 2 + [
        ("Curves of", 10, 120, "effective_size"), ("Gains of", 10, 120, "mean gain")])
    # and the page says so above the figures
    html = render_html(build_leaderboard(many_runs()), figures=figs)
    assert ("Comparison figures over 120 models: each scatter draws every model as a point and names the "
            "top 50 by its vertical value; the curves and the augmentation chart draw the lines of the top 10 "
            "(by effective size, by mean gain), and the reference rows.") in html
    assert "Comparison figures over" not in render_html(build_leaderboard(runs()), figures=suite_figures(runs(), fetch))
