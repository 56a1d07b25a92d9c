"""Suite-level comparison figures (Shmelkov et al. Fig. 4, Fig. 5, Table 1 at a glance,
GAN-train vs FID): drawn from cell runs and their curve CSVs, and skipped when the runs do
not support them."""

import pandas as pd

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
