"""Classifier architectures (small_cnn, timm models, CIFAR ResNets) and the training loop's
on-device augmentation."""

from __future__ import annotations

import pytest
import torch

from bench.classifiers import CLASSIFIERS
from bench.classifiers.train import (
    AugmentOptions,
    ClassifierConfig,
    _augment,
    device_layout,
    evaluate,
    train_classifier,
)
from bench.core.errors import BenchError
from bench.data.digits import Digits

# building wide_resnet50_2 (69 M weights) takes seconds: the rest are in `make test-fast`
TIMM_NAMED = ["resnet18", pytest.param("wide_resnet50_2", marks=pytest.mark.heavy),
              "vit_tiny_patch16_224", "preact_resnet18",
              "resnet20", "resnet32"]


pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("name", TIMM_NAMED)
@pytest.mark.parametrize("shape", [(1, 8, 8), (3, 32, 32)])
@pytest.mark.fast
def test_named_timm_classifiers_build_for_small_images(name, shape):
    c, h, w = shape
    model = CLASSIFIERS.get(name)(in_chans=c, num_classes=10, image_size=h).eval()
    x = torch.randn(3, c, h, w)
    with torch.no_grad():
        logits, feats = model(x), model.forward_features(x)
    assert logits.shape == (3, 10)
    assert feats.ndim == 2 and feats.shape[0] == 3 and feats.shape[1] == model.num_features > 0


@pytest.mark.fast
def test_small_image_stem_keeps_resolution():
    model = CLASSIFIERS.get("resnet18")(in_chans=1, num_classes=10, image_size=8)
    assert model.net.conv1.kernel_size == (3, 3) and model.net.conv1.stride == (1, 1)
    assert isinstance(model.net.maxpool, torch.nn.Identity)
    big = CLASSIFIERS.get("resnet18")(in_chans=3, num_classes=10, image_size=224)
    assert big.net.conv1.stride == (2, 2)  # ImageNet-sized inputs keep the ImageNet stem


@pytest.mark.fast
def test_vit_patch_divides_image():
    for size, patch in ((8, 1), (32, 4), (64, 8)):
        vit = CLASSIFIERS.get("vit_tiny_patch16_224")(in_chans=3, num_classes=5, image_size=size)
        assert vit.net.patch_embed.patch_size == (patch, patch)


@pytest.mark.fast
def test_generic_timm_factory_and_unknown_names():
    model = CLASSIFIERS.get("timm")(in_chans=3, num_classes=4, image_size=32, model="resnet10t")
    assert model(torch.randn(2, 3, 32, 32)).shape == (2, 4)
    with pytest.raises(BenchError, match="unknown timm model 'resnet181'.*resnet18"):
        CLASSIFIERS.get("timm")(in_chans=3, num_classes=4, image_size=32, model="resnet181")
    with pytest.raises(BenchError, match="unknown classifier 'resnet19'"):
        CLASSIFIERS.get("resnet19")
    with pytest.raises(ValueError, match="unknown classifier 'resnet19'"):
        ClassifierConfig(name="resnet19")
    with pytest.raises(BenchError, match="6n\\+2"):
        CLASSIFIERS.get("cifar_resnet")(in_chans=3, num_classes=10, image_size=32, depth=21)


def test_pretrained_file_is_loaded(tmp_path):
    import timm

    src = timm.create_model("resnet18", pretrained=False, num_classes=10, in_chans=3)
    path = tmp_path / "resnet18.pth"
    torch.save(src.state_dict(), path)
    model = CLASSIFIERS.get("resnet18")(in_chans=3, num_classes=10, image_size=32,
                                        pretrained_file=str(path))
    # the backbone is loaded; timm drops a head whose class count differs from its config
    for key in ("layer1.0.conv1.weight", "layer4.1.bn2.running_var"):
        assert torch.equal(model.net.state_dict()[key], src.state_dict()[key]), key
    # the pretrained stem kernel is kept, only its stride changes for small images
    assert torch.equal(model.net.conv1.weight, src.conv1.weight) and model.net.conv1.stride == (1, 1)
    with pytest.raises(BenchError, match="pretrained_file: .*missing.pth not found"):
        CLASSIFIERS.get("resnet18")(in_chans=3, num_classes=10, image_size=32,
                                    pretrained_file=str(tmp_path / "missing.pth"))


def test_small_cnn_learns_digits():
    ds = Digits().load()
    cfg = ClassifierConfig(epochs=8)
    clf = train_classifier(cfg, ds.train_x, ds.train_y, 10, torch.device("cpu"), 0, progress=False)
    assert evaluate(clf, ds.val_x, ds.val_y, torch.device("cpu")).accuracy > 0.9


def test_cifar_resnet_trains_through_the_loop():
    ds = Digits().load()
    cfg = ClassifierConfig(name="resnet20", epochs=1, batch_size=256)
    clf = train_classifier(cfg, ds.train_x[:512], ds.train_y[:512], 10, torch.device("cpu"), 0,
                           progress=False)
    assert evaluate(clf, ds.val_x, ds.val_y, torch.device("cpu")).predictions.shape == (len(ds.val_y),)


def test_channels_last_images_train_on_the_cpu(one_thread):
    """CIFAR read from torchvision's NHWC arrays arrives channels_last; on the CPU the loop
    trains on NCHW batches (torch 2.14's oneDNN AVX2 weight-gradient kernel for a 1x1
    stride-2 convolution with 4 input channels corrupts the heap on channels_last ones)."""
    gen = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (100, 32, 32, 3), dtype=torch.uint8, generator=gen).permute(0, 3, 1, 2)
    assert x.is_contiguous(memory_format=torch.channels_last)
    y = torch.arange(100) % 10
    cfg = ClassifierConfig(name="cifar_resnet", args={"depth": 8, "width": 4}, epochs=2)
    clf = train_classifier(cfg, x, y, 10, torch.device("cpu"), 0, progress=False)
    assert evaluate(clf, x, y, torch.device("cpu")).predictions.shape == (100,)
    assert device_layout(x.float(), torch.device("cpu")).is_contiguous()


@pytest.mark.parametrize("aug", [AugmentOptions(crop=2), AugmentOptions(flip=True),
                                 AugmentOptions(crop=4, flip=True), AugmentOptions(crop=10)])
@pytest.mark.fast
def test_augmentation_keeps_shape_and_dtype(aug):
    x = torch.rand(16, 3, 8, 8) * 2 - 1
    gen = torch.Generator().manual_seed(0)
    out = _augment(x, aug, gen)
    assert out.shape == x.shape and out.dtype == x.dtype and out.device == x.device
    assert not torch.equal(out, x)  # something moved


def test_epoch_selection_uses_a_held_out_slice_of_train_only():
    """Epoch counts are chosen on 10% of the training split (seeded, stratified), never on
    val: the function is not even given val."""
    import numpy as np

    from bench.classifiers.selection import epochs_to_plateau, selection_split

    ds = Digits().load()
    fit, sel = selection_split(ds.train_y, 0.1, seed=0)
    assert not set(fit) & set(sel) and len(fit) + len(sel) == len(ds.train_y)
    share = np.bincount(ds.train_y.numpy()[sel], minlength=10) / ds.class_counts("train")
    assert np.allclose(share, 0.1, atol=0.03)
    assert np.array_equal(sel, selection_split(ds.train_y, 0.1, seed=0)[1])
    seen = []
    ep, trials = epochs_to_plateau(ClassifierConfig(), ds.train_x[:400], ds.train_y[:400], 10,
                                   torch.device("cpu"), grid=[1, 3], tol=1.0, on_trial=seen.append)
    assert ep == 1 and [t.epochs for t in trials] == [1, 3] and seen == trials  # tol 1: fewest
    assert all(0 <= t.accuracy <= 1 for t in trials)


# ---------------------------------------------------------------- one plugin per classifier
@pytest.mark.fast
def test_every_classifier_is_one_plugin_class_with_a_complete_recipe():
    from bench.classifiers import Classifier
    from bench.classifiers.base import GENERIC_RECIPE

    for name, cls in CLASSIFIERS.items():
        assert issubclass(cls, Classifier), name
        assert set(cls.recipe) == set(GENERIC_RECIPE), name
    assert CLASSIFIERS.get("airbench").has_own_trainer()
    assert not CLASSIFIERS.get("small_cnn").has_own_trainer()
    assert ClassifierConfig(name="airbench").settings((3, 32, 32)).epochs == 10
    assert ClassifierConfig(name="resnet20").settings((3, 32, 32)).epochs == 30


@pytest.mark.fast
def test_a_new_classifier_is_one_class_with_its_recipe_and_trainer():
    """Registering one class is all it takes: its recipe fills the config's unset settings,
    its `fit` trains it, and `train_classifier` finds both through the registry."""
    from bench.classifiers import Classifier
    from bench.classifiers.base import GENERIC_RECIPE
    from bench.classifiers.train import fit_generic

    fitted = []

    class Linear(Classifier):
        """A linear classifier on the pixels."""

        recipe = {**GENERIC_RECIPE, "epochs": 2, "batch_size": 64}

        def __init__(self, in_chans, num_classes, image_size):
            super().__init__()
            self.num_features = in_chans * image_size * image_size
            self.head = torch.nn.Linear(self.num_features, num_classes)

        def forward_features(self, x):
            return x.flatten(1)

        def forward(self, x):
            return self.head(self.forward_features(x))

        @classmethod
        def fit(cls, cfg, s, *args, **kwargs):
            fitted.append(s)
            return fit_generic(cls, cfg, s, *args, **kwargs)

    ds = Digits().load()
    with CLASSIFIERS.scoped({"linear_test": Linear}):
        clf = train_classifier(ClassifierConfig(name="linear_test"), ds.train_x, ds.train_y, 10,
                               torch.device("cpu"), 0, progress=False)
        assert evaluate(clf, ds.val_x, ds.val_y, torch.device("cpu")).accuracy > 0.5
    assert [(s.epochs, s.batch_size) for s in fitted] == [(2, 64)]
    assert clf.config.epochs == 2 and isinstance(clf.model, Linear)


def test_real_val_evaluation_is_keyed_by_the_resolved_config(tmp_path, monkeypatch):
    """The real classifier's evaluation on val is shared like the classifier: two configs
    that train the same recipe share one, and a changed recipe default is not served stale."""
    import bench.metrics.base as metrics_base
    from bench.classifiers.base import GENERIC_RECIPE
    from bench.infra.cache import Cache
    from bench.metrics.base import Context

    ds = Digits().load()
    ctx = Context(torch.device("cpu"), 0, Cache(tmp_path / "c"), tmp_path / "a", progress=False)
    calls = []
    real_evaluate = metrics_base.evaluate
    monkeypatch.setattr(metrics_base, "evaluate", lambda *a: calls.append(1) or real_evaluate(*a))
    implicit = ClassifierConfig(epochs=1)
    explicit = ClassifierConfig(name="small_cnn", epochs=1, lr=GENERIC_RECIPE["lr"])
    a = ctx.real_val_evaluation(ds, implicit)
    assert ctx.real_val_evaluation(ds, explicit) is a and len(calls) == 1
    monkeypatch.setitem(GENERIC_RECIPE, "weight_decay", 0.0)  # a changed default: a new classifier
    assert ctx.real_val_evaluation(ds, implicit) is not a and len(calls) == 2
