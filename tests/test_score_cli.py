"""`bench score REAL FAKE`: two folders (flat or by class) or .npz files, no suite file; the same
values as bench.evaluate and as a suite run; `--log` records in MLflow (else a temporary
store); the real side cached across calls. And an unconditional model (a flat folder of
samples) through `bench run`, with a label-based metric refused by `bench validate`."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import bench
from bench.cli import main
from bench.record.values import encode
from bench.report.leaderboard import fmt_value

pytestmark = pytest.mark.usefixtures("pixels")  # tests/conftest.py


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * 255 / 16).round().astype(np.uint8), d.target.astype(np.int64)


def write_folder(root: Path, x: np.ndarray, y: np.ndarray | None = None) -> str:
    for i, img in enumerate(x):
        d = root if y is None else root / str(y[i])
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    return str(root)


@pytest.fixture
def images(tmp_path):
    x, y = digits()
    return {"real": x[:400], "fake": x[400:640], "real_y": y[:400], "fake_y": y[400:640]}


def score(capsys, *argv: str) -> dict:
    assert main(["score", *argv, "--features", "test_pixels", "--format", "json"]) == 0
    return json.loads(capsys.readouterr().out)


def one_line_error(capsys, argv: list[str], code: int = 2) -> str:
    assert main(argv) == code
    err = capsys.readouterr().err.strip()
    assert "Traceback" not in err and len(err.splitlines()) == 1, err
    return err


def suite_run(tmp_path: Path, text: str, capsys) -> dict[str, dict[str, float]]:
    from bench.record.tracking import Tracker

    (tmp_path / "suite.yaml").write_text(text)
    uri = f"sqlite:///{tmp_path}/suite.db"
    assert main(["run", str(tmp_path / "suite.yaml"), "--tracking-uri", uri, "--no-progress"]) == 0
    capsys.readouterr()
    name = text.split("\n")[0].split(": ")[1]
    return {r.metric: encode(r.values) for r in Tracker(uri, name).records()}


def test_score_folders_and_npz_equal_evaluate_and_a_suite_run(images, tmp_path, capsys):
    real = write_folder(tmp_path / "real", images["real"])
    fake = write_folder(tmp_path / "fake", images["fake"])
    out = score(capsys, real, fake, "--metrics", "fid,kid")
    assert list(out["values"]) == ["fid", "near_copies", "near_copies_expected", "near_copies_p",
                                   "kid_mean", "kid_std"] and out["tracking_uri"] is None
    api = bench.evaluate(real, fake, ["fid", "kid"], "test_pixels")
    assert {k: v["value"] for k, v in out["values"].items()} == api.as_dict()
    assert out["values"]["fid"]["lo"] == api["fid"].lo and out["values"]["fid"]["hi"] == api["fid"].hi
    runs = suite_run(tmp_path, """\
name: folders
datasets:
  real: {source: image_folder, root: real, val: real, channels: 1}
models:
  fake: {source: samples, path: fake}
metrics:
  fid: {features: {name: test_pixels}, num_samples: 240}
  kid: {features: {name: test_pixels}, num_samples: 240}
""", capsys)
    for k, v in out["values"].items():
        assert v["value"] == runs[v["metric"]][k]
    # npz files: the same images, the same numbers
    np.savez(tmp_path / "real.npz", images=images["real"])
    np.savez(tmp_path / "fake.npz", images=images["fake"].astype(np.float64) / 255)
    out_npz = score(capsys, str(tmp_path / "real.npz"), str(tmp_path / "fake.npz"), "--metrics", "fid",
                    "--range", "[0, 1]")
    assert out_npz["values"]["fid"]["value"] == pytest.approx(out["values"]["fid"]["value"], abs=1e-9)
    runs = suite_run(tmp_path, """\
name: arrays
datasets:
  real: {source: npz, train: real.npz, val: real.npz}
models:
  fake: {source: samples, path: fake.npz, range: "[0, 1]"}
metrics:
  fid: {features: {name: test_pixels}, num_samples: 240}
""", capsys)
    assert out_npz["values"]["fid"]["value"] == runs["fid"]["fid"]


def test_score_prints_a_table_keeps_nothing_and_caches_the_real_side(images, tmp_path, capsys):
    real = write_folder(tmp_path / "real", images["real"], images["real_y"])  # by class
    fake = write_folder(tmp_path / "fake", images["fake"])  # flat: unconditional samples
    assert main(["score", real, fake, "--metrics", "fid,kid", "--features", "test_pixels"]) == 0
    text = capsys.readouterr().out
    fid = next(line for line in text.splitlines() if line.startswith("fid "))
    assert "[" in fid and "lower is better" in fid and "kid_std" in text and "MLflow" not in text
    assert not Path("mlflow.db").exists() and not Path("mlruns").exists()
    cache = tmp_path / "cache"
    feats = {p: p.stat().st_mtime_ns for p in (cache / "real_features").iterdir()}
    decoded = sorted((cache / "image_folder").iterdir())
    assert feats and decoded
    assert main(["score", real, fake, "--metrics", "fid", "--features", "test_pixels", "--verbose"]) == 0
    out = capsys.readouterr().out
    assert "image_folder 1 hit / 0 miss" in out and "real_features 1 hit / 0 miss" in out
    assert {p: p.stat().st_mtime_ns for p in (cache / "real_features").iterdir()} == feats
    assert sorted((cache / "image_folder").iterdir()) == decoded


def test_score_log_records_the_runs_in_mlflow(images, tmp_path, capsys):
    real = write_folder(tmp_path / "real", images["real"])
    fake = write_folder(tmp_path / "fake", images["fake"])
    uri = f"sqlite:///{tmp_path}/runs.db"
    assert main(["score", real, fake, "--features", "test_pixels", "--log", "--tracking-uri", uri,
                 "--name", "nightly-gan"]) == 0
    out = capsys.readouterr().out
    assert f"MLflow: {uri}" in out
    from bench.record.tracking import Tracker

    recs = Tracker(uri, "bench-score").records()
    assert [(r.model, r.metric) for r in recs] == [("nightly-gan", "fid")]
    printed = next(line for line in out.splitlines() if line.startswith("fid "))
    lo, hi = recs[0].values["fid"].interval
    assert printed.split()[1:4] == fmt_value(recs[0].values["fid"].x, lo=lo, hi=hi, u=(hi - lo) / 2).split()


def test_score_prints_the_verdict_and_exits_1_on_a_gate(images, tmp_path, capsys):
    """A constant sample is flagged with its reason (exit 1); copies of the training set are
    judged against the held-out real images, whose value is named; a pass says so."""
    x, y = digits()
    real = write_folder(tmp_path / "real", images["real"])
    np.savez(tmp_path / "grey.npz", images=np.full((200, 8, 8), 128, np.uint8))
    assert main(["score", real, str(tmp_path / "grey.npz"), "--features", "test_pixels"]) == 1
    out, err = capsys.readouterr()
    assert "verdict: ✗ flagged (constant)" in out and "✗ constant: 100.0% of the pixels" in out
    assert "flagged: constant" in err
    held = write_folder(tmp_path / "held", x[1000:1300])
    assert main(["score", real, real, "--metrics", "fid,authenticity", "--features", "test_pixels",
                 "--real-val", held]) == 1
    out = capsys.readouterr().out
    fid = next(line for line in out.splitlines() if line.startswith("fid "))
    assert fid.split()[1] in ("0", "0.0", "0.00", "0.000"), fid  # identical sets: float noise is 0
    auth = next(line for line in out.splitlines() if line.startswith("authenticity "))
    assert "target: held-out real 0." in auth, auth
    assert "✗ copies (authenticity): authenticity = 0 vs the held-out real row's" in out
    assert main(["score", real, held, "--features", "test_pixels"]) == 0
    assert "verdict: pass" in capsys.readouterr().out


def test_a_wrong_range_is_refused_before_the_run(images, tmp_path, capsys):
    real = write_folder(tmp_path / "real", images["real"])
    np.savez(tmp_path / "unit.npz", images=images["fake"].astype(np.float32) / 255)
    err = one_line_error(capsys, ["score", real, str(tmp_path / "unit.npz"), "--range", "[0, 255]",
                                  "--features", "test_pixels"])
    assert "filling 0.4% of the declared range [0, 255]" in err and '--range "[0, 1]"' in err
    np.savez(tmp_path / "tanh.npz", images=images["fake"].astype(np.float32) / 127.5 - 1)
    err = one_line_error(capsys, ["score", real, str(tmp_path / "tanh.npz"), "--range", "[0, 1]",
                                  "--features", "test_pixels"])
    assert "outside the declared range [0, 1]" in err and '--range "[-1, 1]"' in err
    assert not (tmp_path / "cache" / "real_features").exists()  # before any work


def test_score_mistakes_exit_2_with_one_line(images, tmp_path, capsys):
    real = write_folder(tmp_path / "real", images["real"])
    fake = write_folder(tmp_path / "fake", images["fake"])
    np.savez(tmp_path / "f.npz", images=images["fake"].astype(np.float32) / 127.5 - 1)
    err = one_line_error(capsys, ["score", real, str(tmp_path / "f.npz"), "--features", "test_pixels"])
    assert "float32 images need their value range declared" in err and '--range "[-1, 1]"' in err
    err = one_line_error(capsys, ["score", real, fake, "--metrics", "fid,gan_train"])
    assert "metric 'gan_train': gan_train needs class labels" in err and "real has none" in err
    err = one_line_error(capsys, ["score", real, str(tmp_path / "none.npz")])
    assert "fake: " in err and "none.npz does not exist" in err
    np.savez(tmp_path / "nchw.npz", images=np.zeros((8, 3, 8, 3), np.uint8))
    err = one_line_error(capsys, ["score", str(tmp_path / "nchw.npz"), fake])
    assert "(8, 3, 8, 3)" in err and "`layout: nchw` or `layout: nhwc`" in err


UNCONDITIONAL = """\
name: unconditional
datasets:
  digits: {{}}
models:
  flat: {{source: samples, path: flat}}
  real: {{source: reference, kind: real}}
metrics:
  fid: {{features: {{name: test_pixels}}, num_samples: 300}}
  kid: {{features: {{name: test_pixels}}, num_samples: 300, subset_size: 100}}
{extra}"""


def test_a_flat_folder_model_runs_through_a_suite_and_gan_train_on_it_is_refused(tmp_path, capsys):
    x, _ = digits()
    write_folder(tmp_path / "flat", x[1500:1800])
    suite = tmp_path / "suite.yaml"
    suite.write_text(UNCONDITIONAL.format(extra=""))
    uri = f"sqlite:///{tmp_path}/runs.db"
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| flat" in out and "4 finished, 0 cached, 0 failed" in out
    assert main(["leaderboard", str(suite), "--tracking-uri", uri]) == 0
    board = capsys.readouterr().out
    assert "flat" in board and "fid" in board

    suite.write_text(UNCONDITIONAL.format(extra="  gan_train: {classifier: {epochs: 1}}\n"))
    err = one_line_error(capsys, ["validate", str(suite)])
    assert err.startswith(f"error: {suite}:10: metrics.gan_train: cell (model 'flat', dataset "
                          "'digits', metric 'gan_train'): gan_train needs class labels")
    assert "model 'flat' has none (a folder of samples without class sub-folders" in err
    assert "exclude: [{model: flat, metric: gan_train}]" in err


def test_a_flat_folder_dataset_is_unconditional_data_for_a_suite(tmp_path, capsys):
    x, _ = digits()
    write_folder(tmp_path / "data", x[:500])
    write_folder(tmp_path / "gen", x[500:800])
    suite = tmp_path / "suite.yaml"
    suite.write_text("""\
name: no-labels
datasets:
  data: {source: image_folder, root: data, channels: 1}
models:
  gen: {source: samples, path: gen}
  held: {source: reference, kind: real, split: val}
metrics:
  fid: {features: {name: test_pixels}}
  swd: {}
""")
    uri = f"sqlite:///{tmp_path}/runs.db"
    assert main(["run", str(suite), "--tracking-uri", uri, "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "| gen" in out and "failed" in out and "0 failed" in out
    suite.write_text(suite.read_text() + "  intra_fid: {features: {name: test_pixels}}\n")
    err = one_line_error(capsys, ["validate", str(suite)])
    assert "cell (dataset 'data', metric 'intra_fid'): intra_fid needs class labels" in err
    assert "dataset 'data' has none" in err and "{dataset: data, metric: intra_fid}" in err
