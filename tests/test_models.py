"""Generator sources: reference kinds, pre-generated samples (.npz and folders), the built-in
cGAN (trained for a few steps, cached, reloaded), and the checks that run before metrics."""

import numpy as np
import pytest
import torch
from PIL import Image

from bench.core.errors import BenchError
from bench.data.digits import Digits
from bench.infra.cache import Cache
from bench.models import BuildContext, Generator, check_samples
from bench.models.cgan import CGAN, CGANOptions
from bench.models.reference import ReferenceGenerator, ReferenceOptions
from bench.models.samples import Samples, SamplesOptions


def ctx(tmp_path, **kw):
    return BuildContext(torch.device("cpu"), 0, Cache(tmp_path / "cache"), progress=False, **kw)


def test_digits_split_is_stratified_deterministic_and_uint8(digits):
    assert digits.train_x.dtype == torch.uint8 and digits.train_x.shape[1:] == (1, 8, 8)
    assert len(digits.train_y) + len(digits.val_y) == 1797
    assert digits.train_x.max() == 255
    frac = digits.class_counts("val") / (digits.class_counts("val") + digits.class_counts("train"))
    assert np.allclose(frac, 0.3, atol=0.02)
    assert Digits().load().digest == digits.digest
    big = Digits(Digits.Options(image_size=16)).load()
    assert big.train_x.shape[1:] == (1, 16, 16) and big.digest != digits.digest


def test_real_reference_returns_the_training_set(digits):
    g = ReferenceGenerator(digits, ReferenceOptions(kind="real"))
    x = g.sample(len(digits.train_y), digits.train_y, seed=3)
    # same multiset of images per class: sort rows and compare
    for c in range(10):
        a = x[digits.train_y == c].flatten(1).numpy()
        b = digits.train_x[digits.train_y == c].flatten(1).numpy()
        assert np.array_equal(np.unique(a, axis=0), np.unique(b, axis=0))
    assert torch.equal(x, g.sample(len(digits.train_y), digits.train_y, seed=3))
    assert not torch.equal(x, g.sample(len(digits.train_y), digits.train_y, seed=4))


def test_failure_mode_references(digits):
    labels = torch.arange(200) % 10
    real = ReferenceGenerator(digits, ReferenceOptions(kind="real")).sample(200, labels, 0)
    noisy = ReferenceGenerator(digits, ReferenceOptions(kind="noise", sigma=0.2)).sample(200, labels, 0)
    assert noisy.dtype == torch.uint8 and (noisy.float() - real.float()).abs().mean() > 20
    blur = ReferenceGenerator(digits, ReferenceOptions(kind="blur", blur_sigma=1.0)).sample(200, labels, 0)
    assert blur.shape == real.shape and blur.dtype == torch.uint8
    # blurring keeps the mean brightness but removes detail (smaller local differences)
    assert abs(blur.float().mean() - real.float().mean()) < 0.1 * real.float().mean()
    detail = lambda x: x.float().diff(dim=-1).abs().mean()  # noqa: E731
    assert detail(blur) < 0.8 * detail(real)
    drop = ReferenceGenerator(digits, ReferenceOptions(kind="mode_drop", keep_classes=[0, 1]))
    x = drop.sample(200, labels, 0)
    pool = {bytes(r) for r in digits.train_x[digits.train_y <= 1].flatten(1).numpy()}
    assert all(bytes(r) in pool for r in x.flatten(1).numpy())
    mem = ReferenceGenerator(digits, ReferenceOptions(kind="memorize", num_images=20))
    assert len({bytes(r) for r in mem.sample(500, torch.arange(500) % 10, 0).flatten(1).numpy()}) <= 20
    shuf = ReferenceGenerator(digits, ReferenceOptions(kind="label_shuffle")).sample(500, torch.zeros(500, dtype=torch.long), 0)
    zeros = {bytes(r) for r in digits.train_x[digits.train_y == 0].flatten(1).numpy()}
    assert sum(bytes(r) in zeros for r in shuf.flatten(1).numpy()) < 150  # mostly other classes


def test_constant_reference_is_one_grey_image_for_every_label(digits):
    labels = torch.arange(30) % 10
    x = ReferenceGenerator(digits, ReferenceOptions(kind="constant")).sample(30, labels, 0)
    assert x.dtype == torch.uint8 and x.shape == (30, *digits.image_shape)
    assert (x == 128).all()
    black = ReferenceGenerator(digits, ReferenceOptions(kind="constant", value=0))
    assert torch.equal(black.sample(5, labels[:5], 1), torch.zeros(5, *digits.image_shape, dtype=torch.uint8))
    with pytest.raises(ValueError, match="value only applies to kind: constant"):
        ReferenceOptions(kind="real", value=3)
    with pytest.raises(ValueError):
        ReferenceOptions(kind="constant", value=256)
    from bench.models.reference import Reference

    assert Reference(ReferenceOptions(kind="constant", split="val")).serves_split() is None
    assert Reference(ReferenceOptions(kind="noise", split="val")).serves_split() == "val"
    assert Reference(ReferenceOptions()).serves_split() == "train"


def test_samples_npz_hwc_and_folder(digits, tmp_path):
    imgs = digits.val_x[:100, 0].numpy()
    labs = digits.val_y[:100].numpy()
    np.savez(tmp_path / "s.npz", images=imgs[..., None], labels=labs)  # (N, H, W, C)
    src = Samples(SamplesOptions(path=tmp_path / "s.npz"))
    src.check(digits.info)
    g = src.build(digits, ctx(tmp_path))
    x = g.sample(30, torch.arange(30) % 10, 0)
    assert x.shape == (30, 1, 8, 8)
    for c in range(10):
        (tmp_path / "folder" / str(c)).mkdir(parents=True)
    for i, (im, lab) in enumerate(zip(imgs, labs, strict=True)):
        Image.fromarray(im).save(tmp_path / "folder" / str(lab) / f"{i}.png")
    fsrc = Samples(SamplesOptions(path=tmp_path / "folder"))
    fsrc.check(digits.info)
    fg = fsrc.build(digits, ctx(tmp_path))
    fx = fg.sample(10, torch.arange(10), 0)
    for c in range(10):  # each image really comes from its class folder
        row = fx[c, 0].numpy()
        assert any(np.array_equal(row, im) for im in imgs[labs == c])


def test_samples_errors_name_the_file(digits, tmp_path):
    np.savez(tmp_path / "f.npz", images=np.zeros((4, 8, 8), np.float32), labels=np.zeros(4, int))
    with pytest.raises(BenchError, match=r"f.npz: `images` \(float32 array of shape \(4, 8, 8\)\): "
                       r"float32 images need their value range declared, e.g. `range: "):
        Samples(SamplesOptions(path=tmp_path / "f.npz")).check(digits.info)
    np.savez(tmp_path / "u.npz", images=np.ones((4, 8, 8), np.float32))  # no labels
    src = Samples(SamplesOptions(path=tmp_path / "u.npz", range="[-1, 1]"))
    src.check(digits.info)  # declared: converted; unconditional: served for any class
    assert src.unconditional() and src.build(digits, ctx(tmp_path)).sample(
        3, torch.tensor([0, 5, 9]), 0).unique().tolist() == [255]
    np.savez(tmp_path / "k.npz", pictures=np.zeros((4, 8, 8), np.uint8))
    with pytest.raises(BenchError, match="missing array"):
        Samples(SamplesOptions(path=tmp_path / "k.npz")).check(digits.info)
    np.savez(tmp_path / "m.npz", images=np.zeros((4, 8, 8), np.uint8), labels=np.array([0, 1, 2, 3]))
    with pytest.raises(BenchError, match=r"no images of class\(es\) \[4, 5"):
        Samples(SamplesOptions(path=tmp_path / "m.npz")).build(digits, ctx(tmp_path))
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(BenchError, match="not a readable .npz"):
        Samples(SamplesOptions(path=tmp_path / "junk.npz")).check(digits.info)


def test_check_samples_rejects_wrong_shape_and_dtype(digits):
    class Bad(Generator):
        image_shape, num_classes = (1, 8, 8), 10

        def __init__(self, out):
            self.out = out

        def sample(self, n, labels, seed):
            return self.out(n)

    with pytest.raises(BenchError, match="model 'm'.*needs \\(32, 1, 8, 8\\)"):
        check_samples("m", Bad(lambda n: torch.zeros(n, 3, 8, 8, dtype=torch.uint8)), digits)
    with pytest.raises(BenchError, match="must return a uint8"):
        check_samples("m", Bad(lambda n: torch.zeros(n, 1, 8, 8)), digits)


@pytest.mark.heavy  # trains a cGAN
def test_cgan_trains_caches_logs_once_and_samples_deterministically(digits, tmp_path):
    logged = []
    src = CGAN(CGANOptions(steps=5, width=8, latent_dim=8))
    src.check(digits.info)
    g = src.build(digits, ctx(tmp_path, log_trained=lambda *a: logged.append(a)))
    x = g.sample(20, torch.arange(20) % 10, seed=1)
    assert x.shape == (20, 1, 8, 8) and x.dtype == torch.uint8
    assert torch.equal(x, g.sample(20, torch.arange(20) % 10, seed=1))
    c = ctx(tmp_path, log_trained=lambda *a: logged.append(a))
    g2 = src.build(digits, c)  # second build: from the disk cache
    assert c.cache.hits["cgan"] == 1 and torch.equal(x, g2.sample(20, torch.arange(20) % 10, seed=1))
    assert len(logged) == 2 and logged[0][1] == logged[1][1]  # same content key both times
    assert g.latent_dim == 8
    with pytest.raises(BenchError, match="power-of-two"):
        src.check(type(digits.info)(1, 12, 12, 10))
