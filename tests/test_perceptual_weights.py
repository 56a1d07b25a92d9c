"""VGG16 from local weights: the fc2 feature extractor (precision/recall), the LPIPS distance
shared by ppl (`distance: lpips`) and latent_projection (`loss: lpips`), and projection in w
for generators laid out as StyleGAN2-ADA's (mapping / synthesis). Every weights file here is
a randomly initialised network saved by the test: only the plumbing and the formulas are
tested, never ImageNet quality."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.data.digits import Digits
from bench.features.base import FeatureSpec
from bench.features.vgg16 import LPIPS, LPIPSOptions
from bench.infra.cache import Cache
from bench.metrics import METRICS
from bench.metrics.base import Context
from bench.metrics.latent_projection import CodeSpace, Schedule, pixel_distance, project
from bench.metrics.ppl import path_lengths
from bench.models.torch_generator import TorchGenerator

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
LPIPS_CHANNELS = (64, 128, 256, 512, 512)

STYLEGEN = '''
import torch
from torch import nn


class Mapping(nn.Module):
    def __init__(self, z_dim, c_dim, w_dim, num_ws):
        super().__init__()
        self.num_ws = num_ws
        self.fc = nn.Sequential(nn.Linear(z_dim + c_dim, 32), nn.LeakyReLU(0.2), nn.Linear(32, w_dim))

    def forward(self, z, c, truncation_psi=1):
        z = z / z.square().mean(1, keepdim=True).add(1e-8).sqrt()
        return self.fc(torch.cat([z, c], 1)).unsqueeze(1).repeat(1, self.num_ws, 1)


class Synthesis(nn.Module):
    def __init__(self, w_dim, num_ws, res, ch):
        super().__init__()
        self.res, self.ch = res, ch
        self.fc = nn.Linear(w_dim * num_ws, ch * res * res)
        self.noise_modes = []

    def forward(self, ws, **block_kwargs):
        self.noise_modes.append(block_kwargs.get("noise_mode"))
        return torch.tanh(self.fc(ws.flatten(1))).view(-1, self.ch, self.res, self.res)


class G(nn.Module):
    """StyleGAN2-ADA's layout in miniature: G.mapping(z, c) -> ws, G.synthesis(ws) -> image."""

    def __init__(self, num_classes=10, image_size=8, channels=1):
        super().__init__()
        torch.manual_seed(0)
        self.z_dim, self.c_dim, self.w_dim, self.num_ws = 16, num_classes, 12, 3
        self.mapping = Mapping(16, num_classes, 12, 3)
        self.synthesis = Synthesis(12, 3, image_size, channels)

    def forward(self, z, c, **kw):
        return self.synthesis(self.mapping(z, c), **kw)


class Plain(nn.Module):
    """z goes straight in: no w."""

    def __init__(self, num_classes=10, image_size=8, channels=1):
        super().__init__()
        torch.manual_seed(0)
        self.z_dim, self.k, self.shape = 16, num_classes, (channels, image_size, image_size)
        self.fc = nn.Linear(16 + num_classes, channels * image_size * image_size)

    def forward(self, z, y):
        y = nn.functional.one_hot(y, self.k).float()
        return torch.tanh(self.fc(torch.cat([z, y], 1))).view(-1, *self.shape)
'''


@pytest.fixture(scope="module")
def digits():
    return Digits().load()


@pytest.fixture(scope="module")
def weights(tmp_path_factory):
    """(vgg16 state dict, LPIPS lin layers) files: random, positive lin weights like LPIPS'."""
    from torchvision.models import vgg16

    d = tmp_path_factory.mktemp("weights")
    torch.manual_seed(0)
    torch.save(vgg16(weights=None).state_dict(), d / "vgg16.pth")
    g = torch.Generator().manual_seed(1)
    torch.save({f"lin{i}.model.1.weight": torch.rand(1, c, 1, 1, generator=g)
                for i, c in enumerate(LPIPS_CHANNELS)}, d / "lin.pth")
    return d / "vgg16.pth", d / "lin.pth"


@pytest.fixture(scope="module")
def stylegen(tmp_path_factory):
    d = tmp_path_factory.mktemp("gens")
    (d / "stylegen_mod.py").write_text(STYLEGEN)
    import sys

    sys.path.insert(0, str(d))
    import stylegen_mod

    yield stylegen_mod
    sys.path.remove(str(d))


def wrap(net, label_input="onehot") -> TorchGenerator:
    return TorchGenerator(net, image_shape=(1, 8, 8), num_classes=10, latent_dim=16,
                          label_input=label_input, output_range="[-1, 1]", batch_size=64, device=CPU)


def context(tmp_path) -> Context:
    return Context(CPU, 0, Cache(tmp_path / "cache"), tmp_path / "artifacts", progress=False)


def metric(name: str, **opts):
    cls = METRICS.get(name)
    return cls(cls.Options(**opts))


# ---------------------------------------------------------------- LPIPS
@pytest.mark.filterwarnings("ignore::UserWarning")  # lpips 0.1.4 passes torchvision `pretrained`
def test_lpips_equals_the_lpips_package_on_the_same_weights(weights):
    """Our LPIPS and lpips.LPIPS(net='vgg') with the same (random, local) VGG16 and lin
    weights: pnet_rand=True builds the package's VGG16 without downloading; the test copies
    our VGG16 weights into its slices."""
    lpips = pytest.importorskip("lpips")
    vgg, lin = weights
    ours = LPIPS(LPIPSOptions(vgg16=vgg, lin=lin, resize=None))
    ref = lpips.LPIPS(net="vgg", pretrained=True, pnet_rand=True, model_path=str(lin), verbose=False)
    sd = torch.load(vgg, weights_only=True)
    slices = (range(0, 4), range(4, 9), range(9, 16), range(16, 23), range(23, 30))
    ref.net.load_state_dict({f"slice{k}.{i}.{p}": sd[f"features.{i}.{p}"]
                             for k, r in enumerate(slices, 1) for i in r for p in ("weight", "bias")
                             if f"features.{i}.{p}" in sd})
    g = torch.Generator().manual_seed(0)
    x, y = torch.rand(4, 3, 32, 32, generator=g) * 2 - 1, torch.rand(4, 3, 32, 32, generator=g) * 2 - 1
    with torch.no_grad():
        want = ref(x, y).flatten()
        got = ours.distance(x, y)
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-6), (got, want)
    assert (ours.distance(x, x) == 0).all()


def test_lpips_weights_refused_when_absent(tmp_path, weights):
    with pytest.raises(ValueError, match="`distance: lpips` needs its weights"):
        metric("ppl", distance="lpips")
    with pytest.raises(ValueError, match="`loss: lpips` needs its weights"):
        metric("latent_projection", loss="lpips")
    missing = tmp_path / "nothing.pth"
    with pytest.raises(BenchError, match="lpips.vgg16: .* never downloaded"):
        metric("ppl", distance="lpips", lpips={"vgg16": str(missing)}).check()
    with pytest.raises(BenchError, match="lpips.lin: .*pip install lpips"):
        metric("latent_projection", loss="lpips",
               lpips={"vgg16": str(weights[0]), "lin": str(missing)}).check()
    metric("ppl", distance="lpips", lpips={"vgg16": str(weights[0]), "lin": str(weights[1])}).check()


LPIPS_SUITE = """\
name: lpips
datasets:
  digits: {{source: digits}}
models:
  gan: {{source: cgan, steps: 2, width: 8}}
metrics:
  ppl: {{distance: lpips, num_samples: 10, lpips: {{vgg16: {vgg16}{lin}}}}}
"""


def test_lpips_without_its_learned_heads_is_refused_at_validation(write_suite, weights):
    """No equal-weight stand-in under LPIPS's name: without `lin` the suite does not load,
    and the message says where the heads' file is; with it the distance is LPIPS."""
    vgg, lin = weights
    with pytest.raises(BenchError, match=r"lpips\.lin is missing: LPIPS needs its learned linear "
                       r"heads.*pip install lpips.*weights/v0\.1/vgg\.pth"):
        load_suite(write_suite(LPIPS_SUITE.format(vgg16=vgg, lin="")))
    with pytest.raises(BenchError, match="lpips.lin is missing"):
        LPIPS(LPIPSOptions(vgg16=vgg))
    assert len(load_suite(write_suite(LPIPS_SUITE.format(vgg16=vgg, lin=f", lin: {lin}"))).cells) == 1
    assert LPIPSOptions(vgg16=vgg, lin=lin, resize=32).describe() == "lpips-vgg16@32"


def test_latent_projection_reads_the_old_perceptual_option(weights):
    o = METRICS.get("latent_projection").Options(
        perceptual={"path": str(weights[0]), "lpips": str(weights[1]), "resize": 32})
    assert o.loss == "lpips" and o.lpips is not None
    assert (o.lpips.vgg16, o.lpips.lin, o.lpips.resize) == (weights[0], weights[1], 32)
    with pytest.raises(ValueError, match="give one of them"):
        METRICS.get("latent_projection").Options(perceptual={"path": "a"}, lpips={"vgg16": "b"})


# ---------------------------------------------------------------- vgg16 fc2 features
def test_vgg16_features_are_fc2_after_relu(weights, tmp_path):
    from torchvision.models import vgg16

    spec = FeatureSpec(name="vgg16", weights=str(weights[0]), image_size=64)
    ex = spec.build()
    ctx = context(tmp_path)
    ex.prepare(None, ctx)
    x = torch.randint(0, 256, (3, 1, 8, 8), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    f = ex.extract(x, CPU)
    net = vgg16(weights=None).eval()
    net.load_state_dict(torch.load(weights[0], weights_only=True))
    xi = torch.nn.functional.interpolate(x.expand(-1, 3, -1, -1).float() / 255, size=(64, 64),
                                         mode="bilinear", align_corners=False, antialias=True)
    mean, std = torch.tensor([0.485, 0.456, 0.406]), torch.tensor([0.229, 0.224, 0.225])
    with torch.no_grad():
        h = net.avgpool(net.features((xi - mean.view(1, 3, 1, 1)) / std.view(1, 3, 1, 1))).flatten(1)
        want = torch.relu(net.classifier[3](torch.relu(net.classifier[0](h))))
    assert f.shape == (3, 4096) and (f >= 0).all()
    assert torch.allclose(f, want, atol=1e-5)
    assert ex.tag().startswith("vgg16-fc2:vgg16.pth-")


def test_precision_recall_on_vgg16_features(digits, weights, tmp_path, stylegen):
    pr = metric("precision_recall", features={"name": "vgg16", "weights": str(weights[0]),
                                              "image_size": 32}, num_samples=60)
    pr.check()
    small = digits.restrict_train(torch.arange(120))
    v = pr.compute(wrap(stylegen.G()), small, context(tmp_path))
    assert 0 <= v["precision"] <= 1 and 0 <= v["recall"] <= 1
    with pytest.raises(BenchError, match="features.weights: .* never downloaded"):
        metric("precision_recall", features={"name": "vgg16", "weights": str(tmp_path / "x.pth")}).check()


# ---------------------------------------------------------------- w space
def test_torch_generator_exposes_stylegan_mapping_and_synthesis(stylegen):
    gen, plain = wrap(stylegen.G()), wrap(stylegen.Plain(), "index")
    assert gen.has_mapping and not plain.has_mapping
    z, y = torch.randn(5, 16), torch.arange(5)
    w = gen.map_latent(z, y)
    assert w.shape == (5, 3, 12)
    x = gen.render_w(w, y)
    assert torch.allclose(x, gen.render_latent(z, y), atol=1e-4)  # forward = synthesis(mapping)
    assert gen.net.synthesis.noise_modes[0] == "const"
    with pytest.raises(NotImplementedError, match="mapping"):
        plain.map_latent(z, y)


def test_projection_in_w_starts_at_the_class_mean_and_reconstructs(stylegen):
    gen = wrap(stylegen.G())
    y = torch.tensor([0, 3, 3, 7])
    codes = CodeSpace.of(gen, "w", y, 2000, seed=0)
    assert codes.num_ws == 3 and codes.dim == 12 and codes.scale > 0
    with torch.no_grad():
        w = gen.map_latent(torch.randn(2000, 16), torch.full((2000,), 3))[:, 0]
    assert torch.allclose(codes.w_avg[3], w.mean(0), atol=0.05)
    # targets: images the generator makes from known w's near the class means
    w_true = torch.stack([codes.w_avg[c] for c in y.tolist()]) + 0.5 * codes.scale * torch.randn(
        4, 12, generator=torch.Generator().manual_seed(2)) / 12 ** 0.5
    targets = codes.images(w_true, y)
    dist = pixel_distance(targets)
    start, how = project(codes, y, dist, steps=0, lr=0.05, restarts=1, batch_size=8, seed=0, device=CPU)
    assert torch.allclose(start, torch.stack([codes.w_avg[c] for c in y.tolist()]))
    best, how = project(codes, y, dist, steps=150, lr=0.05, restarts=1, batch_size=8, seed=0,
                        device=CPU)
    d0, d1 = dist(codes.render(start, y), torch.arange(4)), dist(codes.render(best, y), torch.arange(4))
    assert how == "adam" and (d1 < 0.2 * d0).all(), (d0, d1)


def test_latent_projection_in_w_with_lpips_and_pixel_losses(digits, weights, tmp_path, stylegen):
    gen = wrap(stylegen.G())
    ctx = context(tmp_path)
    v = metric("latent_projection", space="w", loss="lpips", per_class=1, steps=3, restarts=2,
               w_avg_samples=200, lpips={"vgg16": str(weights[0]), "lin": str(weights[1]),
                                         "resize": 32}).compute(gen, digits, ctx)
    assert np.isfinite(v["projection_gap"]) and ctx.tags["projection_space"] == "w"
    assert ctx.tags["projection_distance"] == "lpips-vgg16@32+pixel"
    ctx = context(tmp_path / "px")
    v = metric("latent_projection", loss="pixel", per_class=1, steps=3, restarts=2).compute(
        gen, digits, ctx)
    assert np.isfinite(v["projection_gap"]) and ctx.tags["projection_distance"] == "pixel"
    assert ctx.tags["projection_space"] == "z"
    with pytest.raises(BenchError, match="space: z"):
        metric("latent_projection", space="w", loss="pixel").compute(
            wrap(stylegen.Plain(), "index"), digits, context(tmp_path / "plain"))


def test_ppl_with_lpips_distance(digits, weights, tmp_path, stylegen):
    gen = wrap(stylegen.G())
    ppl = metric("ppl", distance="lpips", num_samples=16, batch_size=16,
                 lpips={"vgg16": str(weights[0]), "lin": str(weights[1]), "resize": 32})
    assert ppl.label_need() is None  # no classifier behind the distance
    ctx = context(tmp_path)
    v = ppl.compute(gen, digits, ctx)
    assert np.isfinite(v["ppl"]) and v["ppl"] > 0
    assert ctx.tags["ppl_distance"] == "lpips-vgg16@32" and ctx.tags["ppl_path"].startswith("w lerp")
    # the same pairs through path_lengths with the distance given directly
    net = LPIPS(LPIPSOptions(vgg16=weights[0], lin=weights[1], resize=32))
    d = path_lengths(gen, lambda x: x, 10, num_samples=16, batch_size=16, seed=0,
                     distance=lambda a, b: net.distance(a / 127.5 - 1, b / 127.5 - 1))
    assert np.isfinite(d).all() and (d > 0).all()


SUITE = """\
name: w
datasets:
  digits: {{source: digits}}
models:
  style: {{source: callable, target: "stylegen_mod:G", label_input: onehot}}
  plain: {{source: callable, target: "stylegen_mod:Plain"}}
  gan: {{source: cgan, steps: 2, width: 8}}
metrics:
  latent_projection: {{space: {space}, loss: pixel}}
  ppl: {{space: {space}}}
"""


def test_w_space_refused_at_validation_without_mapping_networks(write_suite, stylegen):
    text = load_suite(write_suite(SUITE.format(space="z")))
    assert len(text.cells) == 6
    with pytest.raises(BenchError) as e:
        load_suite(write_suite(SUITE.format(space="w")))
    msg = str(e.value)
    for m in ("plain", "gan"):
        for t in ("latent_projection", "ppl"):
            assert f"model '{m}', dataset 'digits', metric '{t}'" in msg
    assert "model 'style'" not in msg
    assert "mapping(z, c) -> w" in msg and "Set `space: z`" in msg


def test_stylegan2_schedule_ramps_the_rate_and_the_code_noise(stylegen):
    s = Schedule("stylegan2", lr=0.1, noise_factor=0.05)
    assert s.at(0, 100) == (0.0, 0.05)  # ramp-up starts at 0, full noise
    lr, noise = s.at(5, 100)
    assert lr == pytest.approx(0.1) and noise == pytest.approx(0.05 * (1 - 0.05 / 0.75) ** 2)
    assert s.at(50, 100)[0] == pytest.approx(0.1)  # flat middle
    assert s.at(90, 100)[0] == pytest.approx(0.1 * (0.5 - 0.5 * math.cos(0.4 * math.pi)))
    assert s.at(80, 100)[1] == 0.0  # no noise after 75% of the steps
    assert Schedule("constant", lr=0.05).at(7, 100) == (0.05, 0.0)
    # StyleGAN2's settings (lr 0.1, noise 0.05 x w_std) reconstruct in w like the constant rate
    gen = wrap(stylegen.G())
    y = torch.tensor([0, 3, 3, 7])
    codes = CodeSpace.of(gen, "w", y, 2000, seed=0)
    w_true = torch.stack([codes.w_avg[c] for c in y.tolist()]) + 0.5 * codes.scale * torch.randn(
        4, 12, generator=torch.Generator().manual_seed(2)) / 12 ** 0.5
    dist = pixel_distance(codes.images(w_true, y))
    start, _ = project(codes, y, dist, steps=0, lr=0.1, restarts=1, batch_size=8, seed=0, device=CPU)
    best, how = project(codes, y, dist, steps=150, lr=0.1, restarts=1, batch_size=8, seed=0,
                        device=CPU, schedule=s)
    d0, d1 = dist(codes.render(start, y), torch.arange(4)), dist(codes.render(best, y), torch.arange(4))
    assert how == "adam" and (d1 < 0.2 * d0).all(), (d0, d1)
    # the best code kept is one whose distance was measured (noise included): re-rendering it
    # gives that distance, so the reported projection is reproducible
    assert torch.allclose(dist(codes.render(best, y), torch.arange(4)), d1)
