"""Output checks on every generated stream (bench/infra/output_checks.py): non-finite output
fails before any metric value; a wrong `output_range`, saturated or constant output is
flagged; the flags come back with a stream loaded from the disk cache."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from bench.core.errors import BenchError
from bench.infra.cache import Cache
from bench.infra.output_checks import (
    StreamChecks,
    check_images,
    flags_path,
    output_flags,
    real_saturation,
)
from bench.infra.store import CHUNK, GeneratedImagesKey, Store
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.models.base import BuildContext, check_samples
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.models.torch_generator import TorchModelOptions, build_torch_generator


class Net(nn.Module):
    """forward(z, y) -> f(a random linear map of z): what `kind` says the output looks like."""

    def __init__(self, kind: str, latent_dim: int = 8, shape=(1, 8, 8)):
        super().__init__()
        self.latent_dim = latent_dim
        self.kind = kind
        self.shape = shape
        self.lin = nn.Linear(latent_dim, shape[0] * shape[1] * shape[2])

    def forward(self, z, y):
        x = self.lin(z).view(len(z), *self.shape) * 2
        if self.kind == "nan":
            return x * float("nan")
        if self.kind == "tanh":
            return torch.tanh(x)
        if self.kind == "x50":  # a [-1, 1] output scaled 50x
            return 50 * torch.tanh(x)
        if self.kind == "constant":
            return torch.zeros_like(x) + 0 * z.sum()
        raise ValueError(self.kind)


def build(kind: str, output_range: str, digits, tmp_path, name: str | None = None):
    torch.manual_seed(0)
    opts = TorchModelOptions(output_range=output_range, batch_size=64)
    bctx = BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "cache"), progress=False)
    return build_torch_generator(Net(kind), opts, digits, bctx, name or f"{kind}_model")


def context(tmp_path, store: Store | None = None) -> Context:
    return Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "art",
                   progress=False, store=store or Store(Cache(tmp_path / "cache")))


def kinds(gen) -> list[str]:
    return sorted(f.kind for f in output_flags(gen))


def test_nan_output_fails_with_one_line_before_any_metric_value(digits, tmp_path):
    gen = build("nan", "[-1, 1]", digits, tmp_path)
    with pytest.raises(BenchError) as e:
        check_samples("nan_model", gen, digits)  # what the worker does when it builds a model
    msg = str(e.value)
    assert "\n" not in msg and "nan_model" in msg and "non-finite" in msg
    assert "32 of the 32 images checked" in msg and "first bad image: index 0" in msg
    assert "forward" in msg and "output_range" in msg

    computed = []

    class Spy(Context):
        def generated(self, *a, **kw):
            out = super().generated(*a, **kw)
            computed.append(out)
            return out

    swd = METRICS.get("swd")
    ctx = Spy(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "art", progress=False,
              store=Store(Cache(tmp_path / "cache")))
    with pytest.raises(BenchError, match="non-finite"):
        swd(swd.Options()).compute(gen, digits, ctx)
    assert not computed  # no metric ever saw an image of it


def test_nan_in_a_later_image_names_its_index(digits, tmp_path):
    class Late(nn.Module):
        latent_dim = 4

        def forward(self, z, y):
            x = torch.tanh(z[:, :1, None, None].expand(len(z), 1, 8, 8)).clone()
            x[y == 3] = float("inf")
            return x

    opts = TorchModelOptions(batch_size=16)
    gen = build_torch_generator(Late(), opts, digits,
                                BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "c")), "late")
    labels = torch.tensor([0] * 20 + [3] + [0] * 11)
    with pytest.raises(BenchError, match=r"in 1 of the 32 images checked \(first bad image: index 20\)"):
        gen.sample(32, labels, seed=0)


def test_tanh_declared_0_255_is_flagged_and_told_to_use_minus1_1(digits, tmp_path):
    gen = build("tanh", "[0, 255]", digits, tmp_path)
    context(tmp_path).generated(gen, digits, 100)
    flags = {f.kind: f for f in output_flags(gen)}
    assert "output_range" in flags and flags["output_range"].gate
    reason = flags["output_range"].reason
    assert '"[-1, 1]"' in reason and "[0, 255]" in reason and "\n" not in reason


def test_an_output_50x_too_large_is_flagged(digits, tmp_path):
    gen = build("x50", "[-1, 1]", digits, tmp_path)
    context(tmp_path).generated(gen, digits, 100)
    f = [f for f in output_flags(gen) if f.kind == "output_range"]
    assert f and "outside the declared output_range [-1, 1]" in f[0].reason
    assert "no known range" in f[0].reason  # -50..50 fits none: check the scale
    assert "saturated" in kinds(gen)  # clipped at both ends


def test_0_255_output_declared_minus1_1_suggests_0_255(digits, tmp_path):
    class Bytes(nn.Module):
        latent_dim = 4

        def forward(self, z, y):
            return (torch.sigmoid(z[:, :1, None, None] + torch.randn(len(z), 1, 8, 8)) * 255)

    gen = build_torch_generator(Bytes(), TorchModelOptions(), digits,
                                BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "c")), "b")
    gen.sample(256, torch.zeros(256, dtype=torch.long), seed=0)
    (f,) = [f for f in output_flags(gen) if f.kind == "output_range"]
    assert 'set `output_range: "[0, 255]"`' in f.reason


def test_constant_generators_are_flagged_constant(digits, tmp_path):
    gen = build("constant", "[-1, 1]", digits, tmp_path)
    context(tmp_path).generated(gen, digits, 100)
    assert kinds(gen) == ["constant"]
    # a reference generator samples uint8 directly: the stream's own checks flag it
    ref = ReferenceGenerator(digits, ReferenceOptions(kind="constant"))
    context(tmp_path).generated(ref, digits, 100)
    (f,) = output_flags(ref)
    assert f.kind == "constant" and "100.0% of the pixels" in f.reason and f.gate


def test_honest_generators_are_not_flagged(digits, tmp_path):
    gen = build("tanh", "[-1, 1]", digits, tmp_path)  # random normal through tanh, as declared
    context(tmp_path).generated(gen, digits, 2000)
    assert output_flags(gen) == []
    for kind in ("real", "noise", "blur", "memorize"):  # the data itself is mostly 0: not saturated
        ref = ReferenceGenerator(digits, ReferenceOptions(kind=kind))
        context(tmp_path).generated(ref, digits)
        assert output_flags(ref) == [], kind
    assert 0.5 < real_saturation(digits) < 0.7  # digits: most pixel values are background 0


def test_flags_come_back_from_the_disk_cache_in_a_fresh_store(digits, tmp_path):
    cache = Cache(tmp_path / "cache")

    def fresh(kind, output_range):
        """A new worker process: a new store, a new generator object, one fingerprint."""
        store = Store(cache)
        gen = build(kind, output_range, digits, tmp_path)
        store.identify(gen, f"fingerprint-{kind}-{output_range}")
        return context(tmp_path, store), gen

    ctx, gen = fresh("tanh", "[0, 255]")
    ctx.generated(gen, digits, 100)
    before = output_flags(gen)
    assert kinds(gen) == ["constant", "output_range"]  # 0..1 of 255 grey levels: near-black
    (npy,) = (tmp_path / "cache" / GeneratedImagesKey.kind).glob("*.npy")
    assert flags_path(npy).exists()

    ctx2, gen2 = fresh("tanh", "[0, 255]")
    assert output_flags(gen2) == []  # nothing sampled yet in this process
    ctx2.generated(gen2, digits, 100)
    assert ctx2.store.loaded[GeneratedImagesKey.kind] == 1  # read, not sampled
    assert output_flags(gen2) == before

    # a stream cached without its sidecar: the uint8 checks are recomputed on load
    ctx, gen = fresh("constant", "[-1, 1]")
    ctx.generated(gen, digits, 100)
    for p in (tmp_path / "cache" / GeneratedImagesKey.kind).glob("*.flags.json"):
        p.unlink()
    ctx3, gen3 = fresh("constant", "[-1, 1]")
    ctx3.generated(gen3, digits, 100)
    assert ctx3.store.loaded[GeneratedImagesKey.kind] == 1 and kinds(gen3) == ["constant"]

    # extending a cached stream in a fresh process: flagged as before
    ctx4, gen4 = fresh("tanh", "[0, 255]")
    ctx4.generated(gen4, digits, CHUNK + 1)
    assert ctx4.store.computed[GeneratedImagesKey.kind] == 1
    assert kinds(gen4) == ["constant", "output_range"]


def test_stream_checks_merge_chunks_exactly():
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (300, 3, 4, 4), generator=g, dtype=torch.uint8)
    s = StreamChecks()
    for part in x.split(77):
        s.feed(part)
    want = x.reshape(300, -1).double().var(0, correction=0)
    assert s.m2 is not None and torch.allclose(s.m2 / s.n, want)
    assert check_images(x) == []
    same = x[:1].expand(50, 3, 4, 4)
    assert [f.kind for f in check_images(same)] == ["constant"]
    ends = torch.where(x > 127, 255, 0).to(torch.uint8)
    assert [f.kind for f in check_images(ends)] == ["saturated"]
