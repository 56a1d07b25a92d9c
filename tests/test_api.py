"""The Python API (bench.evaluate, bench.run_suite): the same values as a suite run on the same
images, through the same runner; every kind of input (folders flat or by class, .npz files,
arrays, tensors, torch Datasets, generator objects); float arrays with a declared range;
mistakes refused before any work; MLflow logging on request, a temporary store otherwise."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import mlflow
import numpy as np
import pytest
import torch
from PIL import Image

import bench
from bench.core.errors import BenchError
from bench.record.values import encode

N_REAL, N_FAKE = 400, 240


pytestmark = pytest.mark.usefixtures("pixels")  # tests/conftest.py


def digits() -> tuple[np.ndarray, np.ndarray]:
    from sklearn.datasets import load_digits

    d = load_digits()
    return (d.images * 255 / 16).round().astype(np.uint8), d.target.astype(np.int64)


def write_folder(root: Path, x: np.ndarray, y: np.ndarray | None = None) -> Path:
    """PNGs, flat (y None) or in class sub-folders; names sort in array order."""
    for i, img in enumerate(x):
        d = root if y is None else root / str(y[i])
        d.mkdir(parents=True, exist_ok=True)
        Image.fromarray(img).save(d / f"{i:05d}.png")
    return root


@pytest.fixture
def data(tmp_path):
    """Real: the first N_REAL digits; fake: the next N_FAKE, a little noisier."""
    x, y = digits()
    rng = np.random.default_rng(0)
    real, fake = x[:N_REAL], x[N_REAL:N_REAL + N_FAKE]
    fake = np.clip(fake.astype(int) + rng.integers(-20, 21, fake.shape), 0, 255).astype(np.uint8)
    return {"real": real, "fake": fake, "real_y": y[:N_REAL], "fake_y": y[N_REAL:N_REAL + N_FAKE],
            "dir": tmp_path}


def suite_values(text: str, tmp_path: Path) -> dict[str, dict[str, float]]:
    """{metric: values} of a suite file run by the runner (what `bench run` does)."""
    from bench.config.suite import load_suite
    from bench.run.runner import run_suite

    path = tmp_path / "suite.yaml"
    path.write_text(text)
    report = run_suite(load_suite(path), tracking_uri=f"sqlite:///{tmp_path}/suite.db", progress=False)
    assert report.ok, report.summary()
    return {o.cell.metric.key: encode(o.values) for o in report.outcomes}  # MLflow's keys


def same(res: bench.Evaluation, values: dict[str, dict[str, float]]) -> None:
    for name, r in res.items():
        assert r.value == values[r.metric][r.name], name
        if r.lo is not None:
            assert (r.lo, r.hi) == (values[r.metric][f"{r.name}.lo"], values[r.metric][f"{r.name}.hi"])


METRICS = """\
metrics:
  fid: {{features: {{name: test_pixels}}, num_samples: {n}}}
  kid: {{features: {{name: test_pixels}}, num_samples: {n}, subset_size: 100}}
"""


def test_evaluate_on_flat_folders_equals_a_suite_run(data, tmp_path):
    real = write_folder(tmp_path / "real", data["real"])
    fake = write_folder(tmp_path / "fake", data["fake"])
    res = bench.evaluate(real, fake, {"fid": None, "kid": {"subset_size": 100}}, features="test_pixels")
    assert list(res) == ["fid", "near_copies", "near_copies_expected", "near_copies_p",
                         "kid_mean", "kid_std"]  # the near-copies check once, whichever metric ran it
    assert res["fid"].role == "score" and res["fid"].ideal == "lower" and res["fid"].aspect == "quality"
    assert res["fid"].lo < res["fid"].value < res["fid"].hi and res["kid_std"].lo is None
    assert res["kid_std"].role == "diagnostic" and float(res["fid"]) == res.as_dict()["fid"]
    assert res.tracking_uri is None and res.records[0].tags["features"] == "test-pixels"
    assert "fid" in str(res) and "lower is better" in res.table()
    # the suite's records read back through bench.run_suite (a dict, relative paths from here)
    run = bench.run_suite({"name": "as-dict", "datasets": {"real": {"source": "image_folder",
                           "root": "real", "val": "real", "channels": 1}},
                           "models": {"fake": {"source": "samples", "path": "fake"}},
                           "metrics": {"fid": {"features": {"name": "test_pixels"},
                                               "num_samples": N_FAKE}}}, log=False, verbose=False)
    assert run.ok and run.records[0].values["fid"].x == res["fid"].value and "fid" in run.leaderboard
    assert not Path("mlruns").exists() and not Path("mlflow.db").exists()  # nothing left here
    values = suite_values(f"""\
name: same-images
datasets:
  real: {{source: image_folder, root: real, val: real, channels: 1}}
models:
  fake: {{source: samples, path: fake}}
{METRICS.format(n=N_FAKE)}""", tmp_path)
    same(res, values)


def test_evaluate_on_npz_with_a_float_range_equals_a_suite_run(data, tmp_path):
    np.savez(tmp_path / "real.npz", images=data["real"])
    np.savez(tmp_path / "fake.npz", images=data["fake"].astype(np.float32) / 127.5 - 1)
    with pytest.raises(BenchError, match=r"fake: .*fake.npz: `images` \(float32 array of shape "
                       r"\(240, 8, 8\)\): float32 images need their value range declared.*"
                       r"`range=\"\[-1, 1\]\"` in bench.evaluate"):
        bench.evaluate(tmp_path / "real.npz", tmp_path / "fake.npz", ["fid"], "test_pixels")
    res = bench.evaluate(tmp_path / "real.npz", tmp_path / "fake.npz", ["fid", "kid"], "test_pixels",
                         range="[-1, 1]", num_samples=N_FAKE)
    values = suite_values(f"""\
name: same-npz
datasets:
  real: {{source: npz, train: real.npz, val: real.npz}}
models:
  fake: {{source: samples, path: fake.npz, range: "[-1, 1]"}}
{METRICS.format(n=N_FAKE).replace(", subset_size: 100", "")}""", tmp_path)
    same(res, values)
    # the float images are the uint8 ones: the same FID as the uint8 file
    np.savez(tmp_path / "fake8.npz", images=data["fake"])
    assert bench.evaluate(tmp_path / "real.npz", tmp_path / "fake8.npz", ["fid"], "test_pixels"
                          )["fid"].value == res["fid"].value


def test_arrays_tensors_and_torch_datasets_are_the_same_data(data, tmp_path):
    np.savez(tmp_path / "real.npz", images=data["real"])
    np.savez(tmp_path / "fake.npz", images=data["fake"])
    want = bench.evaluate(tmp_path / "real.npz", tmp_path / "fake.npz", ["fid"], "test_pixels")["fid"].value

    class Images(torch.utils.data.Dataset):
        def __init__(self, x, y=None):
            self.x, self.y = torch.from_numpy(x), y

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):  # [0, 1] float CHW, as torchvision's ToTensor gives
            img = self.x[i][None].float() / 255
            return img if self.y is None else (img, int(self.y[i]))

    got = {
        "arrays": bench.evaluate(data["real"], data["fake"], ["fid"], "test_pixels"),
        "tensors NHWC": bench.evaluate(torch.from_numpy(data["real"][..., None]),
                                       torch.from_numpy(data["fake"][..., None]), ["fid"], "test_pixels"),
        "torch Dataset": bench.evaluate(Images(data["real"], data["real_y"]), Images(data["fake"]),
                                        ["fid"], "test_pixels", range="[0, 1]"),
    }
    for what, res in got.items():
        assert res["fid"].value == pytest.approx(want, abs=1e-9), what
    # labels given: a conditional pair, and the label-based metrics may run
    cond = bench.evaluate((data["real"], data["real_y"]), (data["fake"], data["fake_y"]),
                          ["fid", "intra_fid"], "test_pixels")
    assert np.isfinite(cond["fid"].value) and np.isfinite(cond["intra_fid"].value)
    # arrays are written once, by content: the same arrays, the same file
    files = sorted((tmp_path / "cache" / "arrays").glob("*.npz"))
    assert len(files) == 8
    bench.evaluate(data["real"], data["fake"], ["fid"], "test_pixels")
    assert sorted((tmp_path / "cache" / "arrays").glob("*.npz")) == files


def test_a_generator_object_or_function_is_sampled_through_the_store(data, tmp_path):
    fake = torch.from_numpy(data["fake"][:, None])

    class Gen:
        def sample(self, n, labels, seed):
            g = torch.Generator().manual_seed(seed)
            return fake[torch.randint(0, len(fake), (n,), generator=g)]

    res = bench.evaluate(data["real"], Gen(), ["fid"], "test_pixels")
    assert np.isfinite(res["fid"].value) and res.records[0].values["fid"].x == res["fid"].value
    again = bench.evaluate(data["real"], Gen(), ["fid"], "test_pixels")
    assert again["fid"].value == res["fid"].value  # seeded: the same stream

    def tanh_like(n, labels, seed):  # float output in [-1, 1], range declared
        return fake[:n].float() / 127.5 - 1 if n <= len(fake) else torch.zeros(n, 1, 8, 8) - 1

    assert np.isfinite(bench.evaluate(data["real"], tanh_like, ["fid"], "test_pixels",
                                      range="[-1, 1]", num_samples=200)["fid"].value)
    assert not (tmp_path / "cache" / "generated_images").exists()  # an object's samples: not kept
    from bench import api
    from bench.models import MODELS

    # the object travels in the model spec: no module table, never in the global registry
    assert "python_object" not in MODELS and not hasattr(api, "_OBJECTS")


def test_label_and_held_out_needs_are_refused_before_any_work(data, tmp_path):
    real = write_folder(tmp_path / "real", data["real"])
    fake = write_folder(tmp_path / "fake", data["fake"])
    with pytest.raises(BenchError) as e:
        bench.evaluate(real, fake, ["fid", "gan_train"], "test_pixels")
    msg = str(e.value)
    assert msg.startswith("metric 'gan_train': gan_train needs class labels (it trains a classifier")
    assert "real has none" in msg and "Use label-free metrics (" in msg and "fid" in msg
    assert len(msg.splitlines()) == 1
    with pytest.raises(BenchError, match="metric 'data_copying' compares with held-out real "
                       r"images.*real_val=\.\.\."):
        bench.evaluate(real, fake, ["data_copying"], "test_pixels")
    val = write_folder(tmp_path / "val", digits()[0][1000:1200])
    res = bench.evaluate(real, fake, ["data_copying"], "test_pixels", real_val=val)
    assert np.isfinite(res["data_copying_ct"].value)
    with pytest.raises(BenchError, match=r"unknown metric 'fdi'.*Did you mean 'fid'"):
        bench.evaluate(real, fake, ["fdi"])
    with pytest.raises(BenchError, match="real: .*nope does not exist"):
        bench.evaluate(tmp_path / "nope", fake)
    with pytest.raises(BenchError, match="`range` is the images' value range"):
        bench.evaluate(real, fake, range="0 to 1")
    assert not list(tmp_path.glob("**/mlflow.db"))


def test_log_keeps_the_runs_and_resumes_them(data, tmp_path):
    uri = f"sqlite:///{tmp_path}/runs.db"
    before = mlflow.get_tracking_uri()
    res = bench.evaluate(data["real"], data["fake"], ["fid", "kid"], "test_pixels", log=True,
                         tracking_uri=uri, name="my-gan", experiment="exp")
    assert res.tracking_uri == uri and set(res.run_ids) == {"fid", "kid"} and res.suite_run_id
    assert mlflow.get_tracking_uri() == before  # the caller's own MLflow logging goes where it went
    from bench.record.tracking import Tracker

    tracker = Tracker(uri, "exp")
    recs = {r.metric: r for r in tracker.records()}
    assert recs["fid"].model == "my-gan" and recs["fid"].values["fid"].x == res["fid"].value
    again = bench.evaluate(data["real"], data["fake"], ["fid", "kid"], "test_pixels", log=True,
                           tracking_uri=uri, name="my-gan", experiment="exp")
    assert again.run_ids == res.run_ids and again.as_dict() == res.as_dict()  # the same cells: cached


def test_run_suite_from_a_yaml_string(tmp_path):
    run = bench.run_suite("""\
name: from-a-string
datasets:
  digits: {}
models:
  real: {source: reference, kind: real}
metrics:
  test_constant: {}
""", log=False, verbose=False)
    assert run.ok and list(run.values().values())[0]["mean_pixel"].x > 0
    assert len(run.frame()) == 1
    with pytest.raises(BenchError, match=r"^<suite string>:\d+: datasets.digits.source: unknown"):
        bench.run_suite("name: x\ndatasets:\n  digits: {source: digitz}\nmodels: {}\nmetrics: {}\n")


def test_import_bench_stays_light():
    code = ("import sys, bench; heavy = [m for m in ('torch', 'mlflow', 'numpy', 'pandas') "
            "if m in sys.modules]; assert not heavy, heavy; assert callable(bench.evaluate); "
            "assert 'torch' in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_documented_default_features_are_inception():
    from bench.api import _metric_entries

    assert _metric_entries(["fid", "gan_train"], "inception", 10) == {
        "fid": {"features": {"name": "inception"}, "num_samples": 10}, "gan_train": {"num_samples": 10}}
    import inspect

    assert inspect.signature(bench.evaluate).parameters["features"].default == "inception"


def test_printing_a_result_is_short_and_gives_the_verdict(data, tmp_path):
    grey = np.full((100, 8, 8), 128, np.uint8)
    res = bench.evaluate(data["real"], grey, ["fid"], "test_pixels", cache_dir=tmp_path / "c")
    text = str(res)
    assert "verdict: ✗ flagged (constant)" in text and "✗ constant: " in text
    assert res.flagged and res.verdict == "constant" and res.to_json()["verdict"] == "constant"
    assert repr(res).startswith("<Evaluation fid=") and "verdict: constant" in repr(res)
    run = bench.run_suite({"name": "tiny", "datasets": {"digits": {"source": "digits"}},
                           "models": {"real": {"source": "reference", "kind": "real"}},
                           "metrics": {"test_constant": {}}}, log=False, verbose=False)
    assert len(repr(run)) < 300 and "1 finished" in repr(run)
    assert len(str(run)) < 3000 and "real" in str(run)
