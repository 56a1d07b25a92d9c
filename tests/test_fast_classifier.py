"""The airbench classifier (Jordan 2024) and `name: auto`: which classifier the data gets,
the whitening stem, test-time augmentation, same-seed reproducibility, and that the recipe
learns (digits upsampled to 32x32 RGB, a few seconds on one CPU thread)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from bench.classifiers import CLASSIFIERS
from bench.classifiers.airbench import AirbenchNet
from bench.classifiers.train import (
    ClassifierConfig,
    FlipPlan,
    evaluate,
    predict,
    train_classifier,
    triangle,
    tta_logits,
)
from bench.core.errors import BenchError
from bench.data.digits import Digits

pytestmark = pytest.mark.usefixtures("one_thread")
CPU = torch.device("cpu")
# the recipe at a quarter of its widths and batch 128: the test is about the recipe, and
# the full net (118 M multiply-adds per image) takes a minute per training on one CPU core
SMALL = {"args": {"widths": [32, 64, 64]}, "batch_size": 128}


def rgb32(x: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 1, 8, 8) digits -> uint8 (N, 3, 32, 32), bilinear."""
    up = F.interpolate(x.float(), size=32, mode="bilinear", align_corners=False)
    return up.round().clamp(0, 255).to(torch.uint8).repeat(1, 3, 1, 1)


@pytest.fixture(scope="module")
def digits32():
    ds = Digits().load()
    return rgb32(ds.train_x), ds.train_y, rgb32(ds.val_x), ds.val_y


def test_auto_picks_airbench_for_rgb_of_32_px_and_small_cnn_otherwise():
    cfg = ClassifierConfig()
    assert cfg.name == "auto"
    for shape, name in [((1, 8, 8), "small_cnn"), ((1, 32, 32), "small_cnn"),
                        ((3, 16, 16), "small_cnn"), ((3, 32, 32), "airbench"),
                        ((3, 64, 64), "airbench")]:
        assert cfg.resolve(shape).name == name, shape
    # the digits keep their classifier and every setting they were trained with before
    old = ClassifierConfig(name="small_cnn", epochs=30, batch_size=128, optimizer="adamw", lr=2e-3,
                           weight_decay=5e-4, momentum=0.9, schedule="onecycle",
                           label_smoothing=0.0, augment={"crop": 0, "flip": False}, tta=0)
    assert cfg.resolve((1, 8, 8)) == old
    fast = cfg.settings((3, 32, 32))
    assert (fast.epochs, fast.batch_size, fast.optimizer, fast.lr, fast.weight_decay, fast.momentum,
            fast.label_smoothing, fast.crop, fast.flip, fast.tta) == \
        (10, 1024, "sgd", 11.5, 0.0153, 0.85, 0.2, 2, "alternating", 2)
    # explicit settings win over the recipe's; other classifiers keep the generic recipe
    assert ClassifierConfig(epochs=3, tta=0).settings((3, 32, 32)).epochs == 3
    assert ClassifierConfig(name="resnet20").settings((3, 32, 32)).optimizer == "adamw"
    with pytest.raises(ValueError, match="resolve"):
        cfg.settings()
    assert "airbench" in CLASSIFIERS


def test_airbench_shapes_and_size_limit():
    for size in (16, 32, 64):
        net = CLASSIFIERS.get("airbench")(in_chans=3, num_classes=7, image_size=size).eval()
        x = torch.randn(2, 3, size, size)
        assert net(x).shape == (2, 7) and net.forward_features(x).shape == (2, net.num_features)
    with pytest.raises(BenchError, match="too small"):
        CLASSIFIERS.get("airbench")(in_chans=1, num_classes=10, image_size=8)
    net = AirbenchNet(3, 10)
    bn_weights = [m.weight for m in net.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert bn_weights and not any(w.requires_grad for w in bn_weights)  # frozen at 1
    assert not net.whiten.weight.requires_grad and net.whiten.bias.requires_grad


def test_whitening_init_whitens_the_training_patches():
    # smooth colour images with correlated channels: every 2x2x3 patch direction has variance
    g = torch.Generator().manual_seed(0)
    base = F.interpolate(torch.rand(300, 3, 8, 8, generator=g), size=32, mode="bilinear")
    mix = torch.tensor([[1.0, 0.5, 0.2], [0.3, 1.0, 0.4], [0.1, 0.6, 1.0]])
    x = torch.einsum("dc,nchw->ndhw", mix, base) + 0.05 * torch.rand(300, 3, 32, 32, generator=g)
    x = x / x.amax() * 2 - 1
    net = AirbenchNet(3, 10)
    net.init_whitening(x)
    w = net.whiten.weight
    assert w.shape == (24, 3, 2, 2)  # 2 x (3 channels x 2 x 2): eigenvectors and negatives
    assert torch.equal(w[12:], -w[:12])
    xn = net.normalize(x)
    assert torch.allclose(xn.mean(dim=(0, 2, 3)), torch.zeros(3), atol=1e-4)
    assert torch.allclose(xn.std(dim=(0, 2, 3)), torch.ones(3), atol=1e-3)
    # the filters' responses to all 2x2 patches are uncorrelated, with second moments
    # lambda / (lambda + eps): about 1 wherever the patch variance is well above eps
    out = F.conv2d(xn, w[:12]).permute(0, 2, 3, 1).reshape(-1, 12).double()
    moments = out.T @ out / out.shape[0]
    diag = moments.diagonal()
    assert torch.allclose(moments, torch.diag(diag), atol=1e-3)
    assert (diag <= 1).all() and diag[:6].min() > 0.99 and diag.min() > 0.85
    assert (diag[:-1] >= diag[1:] - 1e-3).all()  # largest eigenvalue first


def test_tta_mirror_is_flip_invariant():
    torch.manual_seed(0)
    net = AirbenchNet(3, 10).eval()
    x = torch.randn(6, 3, 32, 32)
    with torch.no_grad():
        a, b = tta_logits(net, x, 1), tta_logits(net, x.flip(3), 1)
        assert torch.allclose(a, b, atol=1e-6)
        assert not torch.allclose(net(x), net(x.flip(3)), atol=1e-3)  # the net alone is not
        # level 2: half the mirror average, a quarter each of the one-pixel translations
        p = F.pad(x, (1, 1, 1, 1), mode="reflect")
        want = 0.5 * a + 0.25 * (tta_logits(net, p[:, :, :32, :32], 1)
                                 + tta_logits(net, p[:, :, 2:, 2:], 1))
        assert torch.allclose(tta_logits(net, x, 2), want, atol=1e-6)


def test_recipe_schedule_and_alternating_flips():
    f = triangle(100)
    assert f(0) == pytest.approx(0.2) and f(23) == pytest.approx(1.0) and f(100) == pytest.approx(0.07)
    gen = torch.Generator().manual_seed(0)
    plan = FlipPlan("alternating", 1000, gen, CPU)
    idx = torch.arange(1000)
    even, odd = plan.mask(idx, 0), plan.mask(idx, 1)
    assert torch.equal(even, ~odd) and torch.equal(even, plan.mask(idx, 2))
    assert 400 < int(even.sum()) < 600
    assert FlipPlan(True, 10, gen, CPU).mask(idx[:10], 0) is None  # random per batch


def test_airbench_learns_upsampled_digits_and_is_reproducible(digits32):
    tx, ty, vx, vy = digits32
    cfg = ClassifierConfig(name="airbench", epochs=4, **SMALL)
    clf = train_classifier(cfg, tx, ty, 10, CPU, seed=0, progress=False)
    assert clf.config.name == "airbench" and clf.config.tta == 2  # resolved, recorded
    ev = evaluate(clf, vx, vy, CPU)
    assert ev.accuracy > 0.7, ev.accuracy  # 0.84 measured; chance is 0.1
    # same seed, same data: the same weights and logits; another seed: others
    short, n = cfg.model_copy(update={"epochs": 2}), 300
    a = train_classifier(short, tx[:n], ty[:n], 10, CPU, seed=3, progress=False)
    b = train_classifier(short, tx[:n], ty[:n], 10, CPU, seed=3, progress=False)
    c = train_classifier(short, tx[:n], ty[:n], 10, CPU, seed=4, progress=False)
    sa, sb, sc = a.model.state_dict(), b.model.state_dict(), c.model.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not all(torch.equal(sa[k], sc[k]) for k in sa)
    assert torch.equal(predict(a, vx[:64], CPU), predict(b, vx[:64], CPU))


def test_auto_trains_airbench_on_rgb_and_small_cnn_on_digits(digits32):
    tx, ty, _, _ = digits32
    clf = train_classifier(ClassifierConfig(epochs=1, **SMALL), tx[:256], ty[:256], 10, CPU, 0,
                           progress=False)
    assert isinstance(clf.model, AirbenchNet)
    # what the real-classifier cache does: a fresh net + the state dict (whitening, input
    # statistics and BN buffers included) predicts exactly as the trained one
    fresh = CLASSIFIERS.get("airbench")(in_chans=3, num_classes=10, image_size=32,
                                        **clf.config.args)
    fresh.load_state_dict(clf.model.state_dict())
    again = type(clf)(fresh.eval(), clf.config, clf.image_shape, clf.num_classes)
    assert torch.equal(predict(again, tx[:32], CPU), predict(clf, tx[:32], CPU))
    ds = Digits().load()
    small = train_classifier(ClassifierConfig(epochs=1), ds.train_x[:256], ds.train_y[:256], 10,
                             CPU, 0, progress=False)
    assert small.config.name == "small_cnn" and small.config.tta == 0
    with pytest.raises(BenchError, match="Nesterov SGD"):
        train_classifier(ClassifierConfig(name="airbench", optimizer="adamw", **SMALL), tx[:64],
                         ty[:64], 10, CPU, 0, progress=False)
