"""Baselines (sngan / dcgan / wgan_gp), resumable training, and `bench train` into the model
registry and back through the `mlflow` model source."""

from __future__ import annotations

import mlflow
import pytest
import torch
from mlflow import MlflowClient

from bench.cli import main
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.models import MODELS, BuildContext, check_samples
from bench.models.baselines import (
    Baseline,
    BaselineOptions,
    build_baseline,
    checkpoint_path,
    train_baseline,
)
from bench.models.cgan import CGAN, CGANOptions
from bench.models.mlflow_model import MlflowModel, MlflowModelOptions
from bench.run.train import generated_grid

CPU = torch.device("cpu")


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


def ctx(tmp_path, **kw):
    return BuildContext(CPU, 0, Cache(tmp_path / "cache"), progress=False, **kw)


@pytest.mark.parametrize("arch", ["sngan", "dcgan", "wgan_gp"])
@pytest.mark.heavy  # trains GANs
def test_each_arch_trains_and_samples(digits, tmp_path, arch):
    logged = []
    src = MODELS.get("baseline")(BaselineOptions(arch=arch, steps=3, width=8, latent_dim=8,
                                                 batch_size=16))
    src.check(digits.info)
    g = src.build(digits, ctx(tmp_path, log_trained=lambda *a: logged.append(a)))
    check_samples(arch, g, digits)
    x = g.sample(20, torch.arange(20) % 10, seed=1)
    assert x.shape == (20, 1, 8, 8) and x.dtype == torch.uint8
    name, _key, _net, hist, params = logged[0]
    assert name == "baseline" and params["arch"] == arch and hist["step"] == [0, 1, 2]
    assert all(map(torch.isfinite, map(torch.tensor, hist["loss_d"] + hist["loss_g"])))
    grid = generated_grid(g, digits.class_names)  # 8 per class, a row per class, labelled
    assert grid.mode == "L" and grid.height == 10 * (4 * 8 + 2) + 2 and grid.width > 8 * 34


@pytest.mark.heavy  # trains GANs
def test_cgan_is_the_sngan_baseline(digits, tmp_path):
    kw = dict(steps=4, width=8, latent_dim=8, batch_size=16)
    a = CGAN(CGANOptions(**kw)).build(digits, ctx(tmp_path / "a"))
    b = Baseline(BaselineOptions(arch="sngan", n_critic=1, **kw)).build(digits, ctx(tmp_path / "b"))
    labels = torch.arange(30) % 10
    assert torch.equal(a.sample(30, labels, 0), b.sample(30, labels, 0))


class Stop(Exception):
    pass


@pytest.mark.parametrize("arch", ["sngan", "dcgan"])
@pytest.mark.heavy  # trains GANs
def test_training_resumes_from_its_checkpoint(digits, tmp_path, arch):
    o = BaselineOptions(arch=arch, steps=20, width=8, latent_dim=8, batch_size=16)
    full, full_hist = train_baseline(o, digits, CPU, 0, False, arch)

    ck = tmp_path / "run.ckpt.pt"
    seen: list[int] = []

    def stop_at_12(done):
        seen.append(done)
        if done == 12:  # killed after step 12: the checkpoint of step 10 survives
            raise Stop

    with pytest.raises(Stop):
        train_baseline(o, digits, CPU, 0, False, arch, ck, 10, stop_at_12)
    assert ck.exists() and torch.load(ck, weights_only=True)["step"] == 10
    seen.clear()
    resumed, hist = train_baseline(o, digits, CPU, 0, False, arch, ck, 10, seen.append)
    assert seen[0] == 11 and seen[-1] == 20  # resumed at step 10, ended at 20
    assert hist == full_hist
    for k, v in full.state_dict().items():
        assert torch.equal(v, resumed.state_dict()[k]), k


@pytest.mark.heavy  # trains GANs
def test_build_resumes_and_removes_checkpoint(digits, tmp_path):
    o = BaselineOptions(arch="wgan_gp", steps=6, width=8, latent_dim=8, batch_size=8,
                        n_critic=2, checkpoint_every=3)
    c = ctx(tmp_path)

    def stop(done):
        if done == 4:
            raise Stop

    with pytest.raises(Stop):
        build_baseline("baseline", o, o.arch, digits, c, o.checkpoint_every, on_step=stop)
    ckpts = list((tmp_path / "cache" / "baseline").glob("*.ckpt.pt"))
    assert len(ckpts) == 1
    seen: list[int] = []
    build_baseline("baseline", o, o.arch, digits, c, o.checkpoint_every, on_step=seen.append)
    assert seen == [4, 5, 6] and not ckpts[0].exists()
    entry = ckpts[0].with_name(ckpts[0].name.replace(".ckpt.pt", ".pt"))
    assert entry.exists() and checkpoint_path(entry) == ckpts[0]
    # checkpoint_every is not part of the cache key: a different cadence is a cache hit
    o2 = o.model_copy(update={"checkpoint_every": 0})
    build_baseline("baseline", o2, o2.arch, digits, c)
    assert c.cache.hits["baseline"] == 1


SUITE = """\
name: train-tiny
seed: 0
datasets:
  digits: {source: digits}
models:
  wgan: {source: baseline, arch: wgan_gp, steps: 3, width: 8, latent_dim: 8, batch_size: 16}
  real: {source: reference, kind: real}
metrics:
  test_constant: {}
"""


def test_bench_train_registers_and_mlflow_source_loads_it(digits, tmp_path, write_suite,
                                                          tracking_uri, capsys):
    suite = write_suite(SUITE)
    rc = main(["train", str(suite), "--model", "wgan", "--register", "digits-wgan",
               "--tracking-uri", tracking_uri, "--no-progress"])
    out = capsys.readouterr().out
    assert rc == 0 and "models:/digits-wgan/1" in out.splitlines()
    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri)
    mv = client.get_model_version("digits-wgan", "1")
    run = client.get_run(mv.run_id)
    assert run.data.params["arch"] == "wgan_gp" and run.data.params["latent_dim"] == "8"
    assert {"loss_d", "loss_g"} <= set(run.data.metrics)
    assert len(client.get_metric_history(mv.run_id, "loss_d")) == 3
    assert "samples_grid.png" in {f.path for f in client.list_artifacts(mv.run_id)}

    g = MlflowModel(MlflowModelOptions(uri="models:/digits-wgan/1", label_input="index",
                                       output_range="[-1, 1]")).build(digits, ctx(tmp_path))
    check_samples("registered", g, digits)
    assert g.latent_dim == 8 and g.sample(10, torch.arange(10), 0).shape == (10, 1, 8, 8)

    # a second train reuses the cached weights and the logged run, and adds version 2
    assert main(["train", str(suite), "--model", "wgan", "--register", "digits-wgan",
                 "--tracking-uri", tracking_uri, "--no-progress"]) == 0
    assert "models:/digits-wgan/2" in capsys.readouterr().out
    assert client.get_model_version("digits-wgan", "2").run_id == mv.run_id

    assert main(["train", str(suite), "--model", "real", "--tracking-uri", tracking_uri]) == 2
    assert "not a trainable baseline" in capsys.readouterr().err
