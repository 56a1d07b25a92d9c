"""Model sources backed by torch modules: `callable` (the user's own code + a checkpoint)
and `mlflow` (a logged model by models:/ or runs:/ URI), the conversions they share, and
unconditional generators labelled by the real-trained classifier."""

from __future__ import annotations

import argparse
import sys
import textwrap

import mlflow
import numpy as np
import pytest
import torch
from mlflow import MlflowClient

from bench.classifiers.train import ClassifierConfig
from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.data.base import Dataset
from bench.infra.cache import Cache
from bench.models import BuildContext, check_samples
from bench.models.callable_model import CallableModel, CallableOptions
from bench.models.cgan import CGANGenerator, CondGenerator
from bench.models.mlflow_model import MlflowModel, MlflowModelOptions
from bench.models.torch_generator import PseudoLabelGenerator, TorchGenerator

MODULE = "bench_test_generators"
GENERATORS = '''
import torch
from torch import nn


class TinyCond(nn.Module):
    """forward(z, y) -> tanh images; the label sets a per-class brightness offset."""

    def __init__(self, num_classes, image_size, channels, latent_dim=4):
        super().__init__()
        self.latent_dim = latent_dim
        self.shape = (channels, image_size, image_size)
        self.fc = nn.Linear(latent_dim, channels * image_size * image_size)
        self.offset = nn.Embedding(num_classes, 1)

    def forward(self, z, y):
        assert y.dtype == torch.long
        return torch.tanh(self.fc(z) + self.offset(y)).view(-1, *self.shape)


class OneHot(nn.Module):
    """forward(z, onehot) -> [0, 1] images whose every pixel is the class index / 10."""

    def __init__(self, num_classes, image_size):
        super().__init__()
        self.s = image_size
        self.w = nn.Parameter(torch.arange(num_classes, dtype=torch.float32) / 10)

    def forward(self, z, onehot):
        assert onehot.dtype == torch.float32 and onehot.shape[1] == self.w.shape[0]
        v = onehot @ self.w
        return v[:, None, None, None].expand(-1, 1, self.s, self.s) + 0 * z[:, :1, None, None]


class Bands(nn.Module):
    """Unconditional, forward(z) -> [0, 255]: a flat image at one of `levels`, picked by z."""

    def __init__(self, levels, image_size=8):
        super().__init__()
        self.register_buffer("levels", torch.tensor(levels, dtype=torch.float32))
        self.s = image_size
        self.z_dim = 3

    def forward(self, z):
        i = (z[:, 0].abs() * 1000).long() % len(self.levels)
        return self.levels[i][:, None, None, None].expand(-1, 1, self.s, self.s).clone()


def build_bands(levels):
    return Bands(levels)


def not_a_module():
    return 42
'''


@pytest.fixture(scope="module")
def gen_module(tmp_path_factory):
    """A generator module written to a folder on sys.path, as a user's own code would be."""
    d = tmp_path_factory.mktemp("usercode")
    (d / f"{MODULE}.py").write_text(GENERATORS)
    sys.path.insert(0, str(d))
    yield d
    sys.path.remove(str(d))
    sys.modules.pop(MODULE, None)


@pytest.fixture(scope="module")
def bands():
    """Three classes of flat 8x8 images (dark, mid, bright) with a little noise: a real
    classifier learns them perfectly in a few epochs, so pseudo-labels are predictable."""
    rng = np.random.default_rng(0)

    def split(n):
        y = np.arange(n) % 3
        x = (np.array([20, 128, 235])[y][:, None, None, None]
             + rng.integers(-8, 9, (n, 1, 8, 8))).astype(np.uint8)
        return torch.from_numpy(x), torch.from_numpy(y.astype(np.int64))

    (tx, ty), (vx, vy) = split(90), split(30)
    return Dataset("bands", tx, ty, vx, vy, 3, ["dark", "mid", "bright"])


FAST_CLF = ClassifierConfig(epochs=8, batch_size=32, args={"width": 8})


def ctx(tmp_path) -> BuildContext:
    return BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "cache"), progress=False)


def callable_model(**kw) -> CallableModel:
    return CallableModel(CallableOptions(**kw))


# ---------------------------------------------------------------- callable
def test_callable_with_checkpoint_samples_seeded_uint8(gen_module, digits, tmp_path):
    from bench_test_generators import TinyCond

    net = TinyCond(10, 8, 1, latent_dim=4)
    torch.save({"state_dict": net.state_dict(), "epoch": 3}, tmp_path / "g.pt")
    src = callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "g.pt",
                         batch_size=7)  # batches that do not divide n
    src.check(digits.info)
    g = src.build(digits, ctx(tmp_path))
    check_samples("tiny", g, digits)
    labels = torch.arange(20) % 10
    x = g.sample(20, labels, seed=5)
    assert x.dtype == torch.uint8 and x.shape == (20, 1, 8, 8)
    assert torch.equal(x, g.sample(20, labels, seed=5))
    assert not torch.equal(x, g.sample(20, labels, seed=6))
    assert g.latent_dim == 4  # from the module's attribute
    z = torch.randn(20, 4, generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        want = ((net(z, labels) + 1) * 127.5).clamp(0, 255).round().to(torch.uint8)
    assert torch.equal(x, want)  # the checkpoint's weights, the [-1, 1] conversion
    r = g.render_latent(z, labels)
    assert r.dtype == torch.float32 and (r - want.float()).abs().max() <= 0.5


def test_callable_output_ranges_onehot_and_state_dict_forms(gen_module, digits, tmp_path):
    from bench_test_generators import OneHot

    torch.save({"model": OneHot(10, 8).state_dict()}, tmp_path / "oh.pt")
    g = callable_model(target=f"{MODULE}:OneHot", checkpoint=tmp_path / "oh.pt", latent_dim=2,
                       label_input="onehot", output_range="[0, 1]").build(digits, ctx(tmp_path))
    x = g.sample(10, torch.arange(10), seed=0)
    assert x[:, 0, 0, 0].tolist() == [round(c / 10 * 255) for c in range(10)]
    # a DataParallel-style "module." prefix is stripped; [0, 255] output is taken as is
    sd = {f"module.{k}": v for k, v in OneHot(10, 8).state_dict().items()}
    torch.save(sd, tmp_path / "dp.pt")
    g = callable_model(target=f"{MODULE}:OneHot", checkpoint=tmp_path / "dp.pt", latent_dim=2,
                       label_input="onehot", output_range="[0, 255]").build(digits, ctx(tmp_path))
    assert g.sample(3, torch.tensor([0, 5, 9]), 0)[:, 0, 0, 0].tolist() == [0, 0, 1]


def test_callable_checkpoint_safety_and_errors(gen_module, digits, tmp_path):
    from bench_test_generators import TinyCond

    net = TinyCond(10, 8, 1)
    # training scripts often save their argparse Namespace beside the weights
    torch.save({"state_dict": net.state_dict(), "args": argparse.Namespace(lr=0.1)}, tmp_path / "p.pt")
    src = callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "p.pt")
    with pytest.raises(BenchError, match="pickled Python objects.*trusted_checkpoint: true"):
        src.build(digits, ctx(tmp_path))
    trusted = callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "p.pt",
                             trusted_checkpoint=True)
    check_samples("t", trusted.build(digits, ctx(tmp_path)), digits)

    torch.save(TinyCond(10, 8, 1, latent_dim=6).state_dict(), tmp_path / "wide.pt")
    with pytest.raises(BenchError, match="does not fit"):
        callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "wide.pt").build(
            digits, ctx(tmp_path))
    torch.save({"g_ema": net.state_dict()}, tmp_path / "ema.pt")
    with pytest.raises(BenchError, match="no `state_dict` / `model` entry.*g_ema"):
        callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "ema.pt").build(
            digits, ctx(tmp_path))
    callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "ema.pt",
                   checkpoint_key="g_ema").build(digits, ctx(tmp_path))

    with pytest.raises(BenchError, match="cannot import module 'no_such_mod'"):
        callable_model(target="no_such_mod:G").check(digits.info)
    with pytest.raises(BenchError, match="has no attribute 'Nope'"):
        callable_model(target=f"{MODULE}:Nope").check(digits.info)
    with pytest.raises(BenchError, match="must return a torch.nn.Module"):
        callable_model(target=f"{MODULE}:not_a_module").build(digits, ctx(tmp_path))
    with pytest.raises(BenchError, match="checkpoint .*missing.pt does not exist"):
        callable_model(target=f"{MODULE}:TinyCond", checkpoint=tmp_path / "missing.pt").check(
            digits.info)
    uncond = callable_model(target=f"{MODULE}:build_bands", kwargs={"levels": [1.0]})
    with pytest.raises(BenchError, match="label_input 'index' failed.*set `label_input`"):
        check_samples("u", uncond.build(digits, ctx(tmp_path)), digits)
    with pytest.raises(BenchError, match="Set `latent_dim`"):
        callable_model(target=f"{MODULE}:OneHot").build(digits, ctx(tmp_path))


def test_callable_through_a_suite_and_checkpoint_in_the_cell_key(gen_module, tmp_path, write_suite):
    from bench_test_generators import TinyCond

    torch.save(TinyCond(10, 8, 1).state_dict(), tmp_path / "g.pt")
    text = f"""\
    name: user-model
    datasets:
      digits: {{}}
    models:
      mine:
        source: callable
        target: {MODULE}:TinyCond
        kwargs: {{latent_dim: 4}}
        checkpoint: g.pt
        output_range: "[-1, 1]"
      broken: {{source: callable, target: "{MODULE}:Missing"}}
    metrics:
      test_constant: {{}}
    """
    with pytest.raises(BenchError, match=r"models.broken: cannot be used with dataset 'digits'.*"
                       "has no attribute 'Missing'"):
        load_suite(write_suite(text))
    path = write_suite(text.replace("      broken: {source: callable, target: \"bench_test_generators:Missing\"}\n", ""))
    suite = load_suite(path)
    spec = suite.models["mine"]
    assert spec.options.checkpoint == tmp_path / "g.pt"
    ds = suite.datasets["digits"].instance().load()
    g = spec.instance().build(ds, ctx(tmp_path))
    check_samples("mine", g, ds)
    key = suite.cells[0].key
    torch.save(TinyCond(10, 8, 1).state_dict(), tmp_path / "g.pt")  # new weights, same path
    assert load_suite(path).cells[0].key != key


# ---------------------------------------------------------------- pseudo-labels
def test_unconditional_generator_is_served_by_pseudo_labels(gen_module, bands, tmp_path):
    from bench_test_generators import Bands

    # a stub classifier (by brightness) makes the bookkeeping exact
    base = TorchGenerator(Bands([20.0, 235.0]), image_shape=(1, 8, 8), num_classes=3,
                          latent_dim=3, label_input="none", output_range="[0, 255]",
                          batch_size=16, device=torch.device("cpu"))

    def by_brightness(x):
        return torch.bucketize(x.float().mean((1, 2, 3)), torch.tensor([70.0, 180.0]))

    g = PseudoLabelGenerator(base, by_brightness, "bands-gen", bands.class_names, rounds=5)
    assert g.tags["pseudo_labels"] == "true"
    x = g.sample(6, torch.tensor([0, 2, 0, 2, 2, 0]), seed=1)
    assert x[:, 0, 0, 0].tolist() == [20, 235, 20, 235, 235, 20]
    assert torch.equal(x, g.sample(6, torch.tensor([0, 2, 0, 2, 2, 0]), seed=1))
    with pytest.raises(BenchError, match=r"(?s)model 'bands-gen'.*never produced class\(es\) "
                       r"\['mid'\].*dark: \d+, mid: 0, bright: \d+"):
        g.sample(4, torch.tensor([0, 1, 2, 1]), seed=0)


@pytest.mark.heavy  # trains the real-data classifier
def test_unconditional_callable_uses_the_real_classifier(gen_module, bands, tmp_path):
    src = callable_model(target=f"{MODULE}:build_bands", kwargs={"levels": [20.0, 128.0, 235.0]},
                         label_input="none", output_range="[0, 255]",
                         pseudo_label_classifier=FAST_CLF.model_dump())
    c = ctx(tmp_path)
    g = src.build(bands, c)
    assert g.tags == {"pseudo_labels": "true"} and g.latent_dim == 3  # z_dim attribute
    assert c.cache.misses["real_classifier"] == 1
    check_samples("bands", g, bands)
    labels = torch.arange(30) % 3
    x = g.sample(30, labels, seed=0)
    assert torch.equal(x[:, 0, 0, 0], torch.tensor([20, 128, 235], dtype=torch.uint8)[labels])
    src.build(bands, c)
    assert c.cache.hits["real_classifier"] == 1  # the classifier is shared via the cache


# ---------------------------------------------------------------- mlflow
@pytest.fixture
def store(tmp_path, monkeypatch):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    before = mlflow.get_tracking_uri()
    mlflow.set_tracking_uri(uri)
    yield uri
    mlflow.set_tracking_uri(before)


def test_logged_cgan_round_trips_through_registry_alias_and_run_uris(store, digits, tmp_path,
                                                                    write_suite):
    from bench.record.tracking import Tracker

    torch.manual_seed(0)
    net = CondGenerator(1, 8, 10, latent_dim=6, width=8).eval()
    tracker = Tracker(store, "train")
    parent = tracker.create_run("suite", {})
    # exactly how the runner logs the built-in cgan (pickle format, latent_dim as a param)
    rid = tracker.log_trained_model(parent, "cgan", "key1", net, {"step": [0], "loss_d": [1.0]},
                                    {"latent_dim": 6, "width": 8})
    mv = mlflow.register_model(f"runs:/{rid}/cgan", "digits-cgan")
    MlflowClient().set_registered_model_alias("digits-cgan", "champion", mv.version)

    ref = CGANGenerator(net, (1, 8, 8), 10, 6, torch.device("cpu"))
    labels = torch.arange(40) % 10
    want = ref.sample(40, labels, seed=3)
    for uri in ("models:/digits-cgan/1", "models:/digits-cgan@champion", f"runs:/{rid}/cgan"):
        g = MlflowModel(MlflowModelOptions(uri=uri, label_input="index",
                                           output_range="[-1, 1]")).build(digits, ctx(tmp_path))
        assert g.latent_dim == 6  # from the training run's `latent_dim` param
        assert g.tags["mlflow_run_id"] == rid
        got = g.sample(40, labels, seed=3)
        assert (got.int() - want.int()).abs().max() <= 1, uri  # same z, same net
    assert g.tags.get("mlflow_model_version") is None  # runs:/ names no version
    alias = MlflowModel(MlflowModelOptions(uri="models:/digits-cgan@champion")).build(
        digits, ctx(tmp_path))
    assert alias.tags["mlflow_model_version"] == "1"

    suite = load_suite(write_suite("""\
    name: from-registry
    datasets:
      digits: {}
    models:
      champion: {source: mlflow, uri: "models:/digits-cgan@champion", label_input: index,
                 output_range: "[-1, 1]"}
    metrics:
      test_constant: {}
    """))
    check_samples("champion", suite.models["champion"].instance().build(digits, ctx(tmp_path)), digits)


def test_mlflow_uri_errors(store, digits, tmp_path):
    with pytest.raises(ValueError, match="not models:/<name>/<version>"):
        MlflowModelOptions(uri="models:/a/b/c")
    with pytest.raises(ValueError, match="not an MLflow model URI"):
        MlflowModelOptions(uri="my-model")
    with pytest.raises(BenchError, match=r"cannot load MLflow model 'models:/nope/1' from tracking "
                       r"store 'sqlite:///.*mlflow.db'"):
        MlflowModel(MlflowModelOptions(uri="models:/nope/1")).build(digits, ctx(tmp_path))


def test_unconditional_mlflow_model_end_to_end(store, gen_module, bands, tmp_path, write_suite):
    """A logged unconditional model in a suite run: pseudo-labelled, and flagged in the run."""
    import mlflow.pytorch
    from bench_test_generators import Bands

    from bench.run.runner import run_suite

    np.savez(tmp_path / "bands.npz", train_images=bands.train_x[:, 0].numpy(),
             train_labels=bands.train_y.numpy(), val_images=bands.val_x[:, 0].numpy(),
             val_labels=bands.val_y.numpy())
    with mlflow.start_run() as run:
        mlflow.pytorch.log_model(Bands([20.0, 128.0, 235.0]), name="gen",
                                 serialization_format="pickle", pip_requirements=["torch"])
    suite = load_suite(write_suite(textwrap.dedent(f"""\
    name: uncond
    datasets:
      bands: {{source: npz, path: bands.npz, class_names: [dark, mid, bright]}}
    models:
      bands_gen:
        source: mlflow
        uri: runs:/{run.info.run_id}/gen
        label_input: none
        output_range: "[0, 255]"
        pseudo_label_classifier: {FAST_CLF.model_dump_json()}
    metrics:
      test_constant: {{}}
    """)))
    report = run_suite(suite, tracking_uri=store, progress=False, cache_dir=str(tmp_path / "c"))
    assert report.ok, report.summary()
    tags = MlflowClient(store).get_run(report.outcomes[0].run_id).data.tags
    assert tags["bench.pseudo_labels"] == "true"
    assert tags["bench.mlflow_run_id"] == run.info.run_id
