"""Issue 30's "smaller" list, each checked as the user meets it: option mistakes that name the
option, flat-folder refusals in the caller's words (and no refusal where the classifier embeds
unlabelled images), float noise shown as 0, comparison figures that place their labels and
mark flagged models, the trends header's mark, a model module beside its suite file, the
CUDA image's host driver, and a night skipped on a held lock."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from PIL import Image

from bench.cli import main

ROOT = Path(__file__).resolve().parents[1]


def refused(capsys, argv: list[str], *needles: str, lines: int | None = 1) -> str:
    """`bench ARGV` exits 2 with the needles on stderr, no traceback; returns stderr."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err
    if lines is not None:
        assert len(err.splitlines()) == lines, err
    for n in needles:
        assert n in err, err
    return err


@pytest.fixture
def npz(tmp_path):
    p = tmp_path / "x.npz"
    np.savez(p, images=np.random.default_rng(0).integers(0, 255, (20, 8, 8), dtype=np.uint8),
             labels=np.arange(20) % 2)
    return str(p)


def write_pngs(folder: Path, n: int, classes: int | None) -> str:
    rng = np.random.default_rng(0)
    for i in range(n):
        d = folder / str(i % classes) if classes else folder
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 255, (8, 8), dtype=np.uint8)).save(d / f"{i}.png")
    return str(folder)


# ---------------------------------------------------------------- options that name the option
def test_a_missing_required_feature_option_is_named(npz, capsys):
    err = refused(capsys, ["score", npz, npz, "--features", "timm"],
                  "required option 'model' in features", "timm model name", "Add it.")
    assert "missing for metric 'fid'" in err


@pytest.mark.parametrize("features, hint, known", [
    ("{name: classifier, classifier: {nmae: x}}", "Did you mean 'name'?", "Known options: name, args"),
    ("{name: inception, batch_sise: 3}", "Did you mean 'batch_size'?", "Known: name, batch_size, path"),
    ("{nmae: timm}", "Did you mean 'name'?", "Known: name, batch_size"),
])
def test_option_typos_inside_features_list_the_known_options(npz, capsys, features, hint, known):
    err = refused(capsys, ["score", npz, npz, "--features", features], hint, known)
    assert "Known options: ." not in err and "Known: ." not in err


def test_a_typo_in_published_lists_the_block_fields(write_suite, capsys):
    suite = write_suite("""\
        name: tiny
        datasets:
          digits: {source: digits}
        models:
          real: {source: reference, kind: real}
        metrics:
          fid: {features: {name: classifier}}
        published:
          - soruce: paper
            dataset: digits
            values: {real: {fid: 1.0}}
        """)
    err = refused(capsys, ["validate", str(suite)], lines=None)
    assert ("unknown option 'soruce' in published.0 for a suite. Did you mean 'source'? Known "
            "options: source, dataset, values, note.") in err
    assert "required option 'source' in published.0 (where the numbers come from" in err
    assert "Known options: ." not in err


# ---------------------------------------------------------------- flat folders
def test_unlabelled_real_images_with_classifier_features_name_the_flag_not_the_refused_metrics(
        tmp_path, capsys):
    real = write_pngs(tmp_path / "real", 20, None)
    err = refused(capsys, ["score", real, real, "--metrics", "fid,kid", "--features", "classifier"],
                  "real has none", "`bench score --features inception`", lines=2)
    assert "Use label-free metrics" not in err  # fid and kid are label-free: the option is the fix
    assert "features: {name: inception}" not in err  # not the suite's YAML words


def test_a_metric_that_needs_labels_still_lists_the_label_free_ones(tmp_path, capsys):
    real = write_pngs(tmp_path / "real", 20, 2)
    fake = write_pngs(tmp_path / "fake", 20, None)
    refused(capsys, ["score", real, fake, "--metrics", "gan_test"], "fake has none",
            "Use label-free metrics (")


def test_classifier_features_embed_an_unlabelled_sample_folder(write_suite, tmp_path, capsys):
    """The classifier is trained on the labelled real set; it embeds unlabelled generated
    images as any network does: validation accepts the cell (a full run is in the report)."""
    real = write_pngs(tmp_path / "real", 20, 2)
    fake = write_pngs(tmp_path / "fake", 20, None)
    suite = write_suite(f"""\
        name: flat
        datasets:
          real: {{source: image_folder, root: {real}}}
        models:
          flat: {{source: samples, path: {fake}}}
        metrics:
          fid: {{features: {{name: classifier}}}}
          kid: {{features: {{name: classifier}}}}
        """)
    assert main(["validate", str(suite)]) == 0, capsys.readouterr().err
    assert "2 cell run(s)" in capsys.readouterr().out


# ---------------------------------------------------------------- --tracking-uri x.db
@pytest.mark.parametrize("command", ["score", "leaderboard", "compare", "nightly"])
def test_a_bare_sqlite_file_is_given_its_scheme_by_every_command(command, npz, write_suite, capsys):
    suite = str(write_suite("name: tiny\ndatasets: {}\nmodels: {}\nmetrics: {}\n"))
    argv = [command, npz, npz] if command == "score" else [command, suite]
    refused(capsys, [*argv, "--tracking-uri", "x.db"], "sqlite:///x.db")
    assert not Path("x.db").exists()


# ---------------------------------------------------------------- float noise
def test_the_console_line_shows_float_noise_as_zero():
    from bench.record.values import decode
    from bench.run.runner import _shown

    # the record holds typed values (Measured); the flat keys are what a metric returns
    assert _shown(decode({"fid": -7.1e-13}), "fid") == "0"
    assert _shown(decode({"fid": -2.97e-05, "fid.lo": -0.001, "fid.hi": 0.001}), "fid") == "0.0000"
    assert _shown(decode({"fid": 3.8712, "fid.lo": 3.5, "fid.hi": 4.2}), "fid") == "3.9"
    assert _shown(decode({"acc": 0.91234}), "acc") == "0.9123"


# ---------------------------------------------------------------- comparison figures
def board_runs(flagged: str = "copies") -> pd.DataFrame:
    from bench.record.flags import Flag
    from bench.record.values import reference, score

    models = [("real", True, 0.99, 0.995, -7.1e-13), ("held_out", True, 0.985, 0.99, 1.2),
              ("cgan", False, 0.90, 0.97, 3.9), ("copies", False, 0.99, 0.995, 0.0),
              ("cgan_long_name_v2", False, 0.905, 0.972, 4.1), ("mode_drop", False, 0.55, 0.99, 25.0),
              ("noise", False, 0.1, 0.1, 180.0)]
    rows = []
    for i, (m, ref, gtr, gte, fid) in enumerate(models):
        base = {"dataset": "digits", "model": m, "repeat": 0, "reference": ref, "start_time": i,
                "suite": "s", "cell_key": "k", "held_out": m == "held_out", "primary": "",
                "flags": [Flag("copies", "exact copies of training images")] if m == flagged else []}
        rows += [{**base, "metric": "gan_train", "run_id": f"{m}gt", "m:gan_train_acc": gtr,
                  "m:real_val_acc": 0.993, "values": {"gan_train_acc": score(), "real_val_acc": reference()}},
                 {**base, "metric": "gan_test", "run_id": f"{m}gs", "m:gan_test_acc": gte,
                  "values": {"gan_test_acc": score()}},
                 {**base, "metric": "fid", "run_id": f"{m}f", "m:fid": fid, "values": {"fid": score("lower")}}]
    return pd.DataFrame(rows)


@pytest.mark.parametrize("x, log_x", [(("gan_test", "gan_test_acc"), False), (("fid", "fid"), True)])
def test_scatter_labels_neither_overlap_nor_leave_the_image(x, log_x):
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from bench.report.figures import scatter_figure

    fig = scatter_figure(board_runs(), "digits", x, ("gan_train", "gan_train_acc"), "t", log_x,
                         flagged={"copies"})
    FigureCanvasAgg(fig).draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    labels = [t for t in ax.texts if t.get_text()]
    assert sorted(t.get_text() for t in labels) == sorted(board_runs()["model"].unique())
    boxes = [t.get_window_extent(renderer) for t in labels]
    for i, a in enumerate(boxes):  # every label whole inside the image ("rea…" was cut off)
        assert fig.bbox.x0 <= a.x0 and a.x1 <= fig.bbox.x1 and fig.bbox.y0 <= a.y0 and a.y1 <= fig.bbox.y1
        for b in boxes[:i]:
            assert not a.overlaps(b), (labels[i].get_text(), a, b)
    if log_x:  # an identical set's FID (-7e-13) draws at 0: no negative decade on the axis
        ticks = [t.get_text() for t in ax.get_xticklabels() if t.get_text()]
        assert ticks and not any("−" in t or "-" in t for t in ticks), ticks


@pytest.mark.heavy  # draws the figures
def test_flagged_models_are_drawn_apart_from_passing_ones():
    from bench.report.figures import flagged_models, scatter_figure
    from bench.report.leaderboard import build_leaderboard

    runs = board_runs()
    assert flagged_models(build_leaderboard(runs)) == {"digits": frozenset({"copies"})}
    fig = scatter_figure(runs, "digits", ("gan_test", "gan_test_acc"), ("gan_train", "gan_train_acc"),
                         "t", flagged={"copies"})
    ax = fig.axes[0]
    crosses = [c for c in ax.collections if c.get_label() == "flagged by a gate (not a score)"]
    assert len(crosses) == 1 and len(crosses[0].get_offsets()) == 1
    assert list(crosses[0].get_offsets()[0]) == [0.995, 0.99]
    red = {t.get_text() for t in ax.texts if t.get_color() == "#b00000"}
    assert red == {"copies"}
    assert "flagged by a gate (not a score)" in [t.get_text() for t in ax.get_legend().get_texts()]
    # the PNGs of a suite are drawn with the board's flags
    from bench.report.figures import suite_figures

    assert suite_figures(runs) != suite_figures(board_runs(flagged="none"))


# ---------------------------------------------------------------- trends header
def test_the_trends_header_names_the_target_of_a_ref_value():
    from bench.record.values import score
    from bench.report.compare import trends
    from bench.report.html import trends_section

    decl = {"gan_test_acc": score("target", ref=True), "fid": score("lower")}
    points = []
    for night in range(3):
        rows = []
        for m, ref, held in (("cgan", False, False), ("held_out", True, True)):
            base = {"suite": "s", "dataset": "digits", "model": m, "repeat": 0, "reference": ref,
                    "held_out": held, "cell_key": f"k{m}", "start_time": night, "metric_version": "1"}
            rows += [{**base, "run_id": f"{night}{m}gs", "metric": "gan_test", "values": decl,
                      "primary": "gan_test_acc", "m:gan_test_acc": 0.97 + 0.001 * night},
                     {**base, "run_id": f"{night}{m}f", "metric": "fid", "values": decl,
                      "primary": "fid", "m:fid": 4.0 + 0.01 * night}]
        points.append((f"night {night}", f"suite{night}", pd.DataFrame(rows)))
    t = trends(points, last=3)
    assert set(zip(t["value"], t["symbol"], strict=True)) == {("gan_test_acc", "→ref"), ("fid", "↓")}
    html = trends_section(t)
    assert "gan_test_acc →ref</th>" in html and "fid ↓</th>" in html
    assert "→</th>" not in html


# ---------------------------------------------------------------- a module beside the suite
GEN = """\
from torch import nn


class G(nn.Module):
    def __init__(self, image_size=8, latent_dim=16):
        super().__init__()
        self.latent_dim, self.s = latent_dim, image_size
        self.lin = nn.Linear(latent_dim, image_size * image_size)

    def forward(self, z, labels=None):
        return self.lin(z).tanh().view(-1, 1, self.s, self.s)
"""


def test_a_module_beside_the_suite_file_is_a_model_target(tmp_path, monkeypatch, capsys):
    import sys

    from bench.config.suite import load_suite
    from bench.models.callable_model import resolve_target

    name = f"beside_gen_{tmp_path.name.replace('-', '_')}"  # a module name no other test imports
    folder = tmp_path / "suite"
    folder.mkdir()
    (folder / f"{name}.py").write_text(GEN)
    suite = folder / "suite.yaml"
    suite.write_text(f"name: beside\ndatasets:\n  digits: {{source: digits}}\nmodels:\n  mine: "
                     f"{{source: callable, target: '{name}:G'}}\nmetrics:\n  fid: {{features: "
                     "{name: classifier}}\n")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)  # not the suite's folder: it is found beside the suite file
    path_before = list(sys.path)
    try:
        assert main(["validate", str(suite)]) == 0, capsys.readouterr().err
        spec = load_suite(suite).models["mine"]
        assert spec.options.module_dir == folder.resolve()
        assert "module_dir" not in spec.resolved()  # where the file sits is not the cell's identity
        assert sys.path == path_before  # the folder was searched, not left on the path
        assert resolve_target(f"{name}:G", folder).__name__ == "G"
    finally:
        sys.modules.pop(name, None)
    with pytest.raises(Exception, match=r"or beside the suite file \(.*\)"):
        resolve_target("no_such_module_xyz:G", folder)


# ---------------------------------------------------------------- the CUDA image's driver
def test_the_cuda_image_names_the_host_driver_it_needs():
    import re

    dockerfile = (ROOT / "docker" / "Dockerfile.cuda").read_text()
    major = re.search(r"ARG BASE=nvidia/cuda:(\d+)\.", dockerfile).group(1)
    readme = (ROOT / "docker" / "README.md").read_text()
    assert major == "13" and "Host driver for `Dockerfile.cuda`" in readme
    assert "CUDA 13" in readme and ">= 580.65.06" in readme and "580" in dockerfile
    assert "R580" in (ROOT / "docs" / "scheduling.md").read_text()


# ---------------------------------------------------------------- a night skipped on the lock
def test_a_night_skipped_because_the_lock_is_held_exits_75_with_one_line(tmp_path):
    script = str(ROOT / "scripts" / "nightly_once.sh")
    lock = tmp_path / "nightly.lock"
    import fcntl

    with open(lock, "w") as held:  # this process holds the lock, as last night's run would
        fcntl.flock(held, fcntl.LOCK_EX)
        r = subprocess.run(["bash", script, str(lock), "sh", "-c", "echo ran; exit 1"],
                           capture_output=True, text=True)
    assert r.returncode == 75 and r.stdout.splitlines() == [  # as `bench nightly` skips a night
        f"skipped: another nightly holds {lock}; this night's run did not start (exit 75)"]
    for code in (0, 1, 2, 143):  # free lock: the command's own code (1 regression, 2 set-up ...)
        r = subprocess.run(["bash", script, str(lock), "sh", "-c", f"echo ran; exit {code}"],
                           capture_output=True, text=True)
        assert (r.returncode, r.stdout) == (code, "ran\n")
    r = subprocess.run(["bash", script, str(tmp_path / "no" / "x.lock"), "true"], capture_output=True,
                       text=True)
    assert r.returncode == 2 and len(r.stderr.splitlines()) == 1 and "writable" in r.stderr
    docs = (ROOT / "docs" / "scheduling.md").read_text()
    assert "scripts/nightly_once.sh /tmp/gan-bench-nightly.lock .venv/bin/bench nightly" in docs
    assert "flock -n /tmp" not in docs
    assert "[ $code -eq 0 ] || [ $code -eq 75 ] || mail" in docs  # a skipped night sends no mail


# ---------------------------------------------------------------- KID on a small sample
def test_kid_on_a_sample_smaller_than_its_subset_size_has_an_interval_holding_0():
    """Two halves of the real data (200 images each, subset_size 1000 by default): the subsets
    are at most half of each sample, so they vary and the interval has a width and holds the
    true 0 (it was `-0.00701 [-0.00715, -0.00691]` with subsets as large as the sample)."""
    from sklearn.datasets import load_digits

    import bench
    from bench.features import FEATURES
    from bench.features.base import FeatureExtractor

    class Pixels(FeatureExtractor):
        def tag(self) -> str:
            return "test-pixels-kid"

        def _forward(self, x):
            return x.float().flatten(1) / 255.0, None

    x = (load_digits().images / 16 * 255).astype(np.uint8)
    with FEATURES.scoped({"test_pixels_kid": Pixels}):
        res = bench.evaluate(x[:200], x[200:400], ["kid"], features="test_pixels_kid", progress=False)
    kid = res["kid_mean"]
    assert kid.lo < kid.hi and kid.lo <= 0 <= kid.hi, (kid.value, kid.lo, kid.hi)


# ---------------------------------------------------------------- the README's first example
def test_the_readme_first_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """Its folders come from scripts/example_folders.py (class folders of the digits), and its
    bench score lines are commands bench parses, with the time written beside the first."""
    import importlib.util
    import re
    import shlex

    from bench.cli import build_parser

    readme = (ROOT / "README.md").read_text()
    block = readme[readme.index("### Score your own images"):]
    block = block[block.index("```bash\n") + 8:]
    lines = [ln.split("#")[0].strip() for ln in block[:block.index("```")].splitlines()]
    assert lines[0] == "python scripts/example_folders.py real/ fake/"
    first = block[:block.index("```")].splitlines()[1]
    assert first.startswith("bench score real/ fake/ --features classifier --metrics fid,kid")
    assert re.search(r"under 2 min on 2 cores: \d+-\d+ s of CPU time", first)
    for ln in lines[1:]:
        args = build_parser().parse_args(shlex.split(ln)[1:])
        assert args.command == "score" and (args.real, args.fake) == ("real/", "fake/")

    spec = importlib.util.spec_from_file_location("example_folders", ROOT / "scripts" / "example_folders.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    monkeypatch.chdir(tmp_path)
    assert mod.main(["real/", "fake/"]) == 0
    assert "900 digits in real/, 897 in fake/" in capsys.readouterr().out
    assert len(list(Path("real").glob("*/*.png"))) == 900 and len(list(Path("fake").glob("*/*.png"))) == 897
    assert sorted(p.name for p in Path("real").iterdir()) == [str(c) for c in range(10)]
    with pytest.raises(SystemExit, match="real is not empty"):  # never mixes into a folder
        mod.main(["real", "other"])
