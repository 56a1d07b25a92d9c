"""What a generator returns (issue 29): a numpy array or an `(images, labels)` pair with the
labels it was asked for works, like a tensor; any other tuple, and another number of images
than asked, fails with one line saying what to return, on every path images are drawn
through: a torch module's forward (callable and mlflow sources), a Python generator handed
to bench.evaluate, and the store that every metric's generated images come from."""

from types import SimpleNamespace

import numpy as np
import pytest
import torch
from torch import nn

from bench.core.errors import BenchError
from bench.infra.output_checks import generator_output

SHAPE = (1, 4, 4)


def one_line(e: pytest.ExceptionInfo) -> str:
    text = str(e.value)
    assert "\n" not in text and "detach" not in text
    return text


def test_generator_output_takes_tensors_arrays_and_pairs_with_the_asked_labels():
    y = torch.tensor([0, 1, 2])
    x = torch.rand(3, *SHAPE)
    assert generator_output(x, 3, y, "g") is x
    a = np.random.rand(3, *SHAPE).astype(np.float32)
    assert torch.equal(generator_output(a, 3, y, "g"), torch.from_numpy(a))
    assert generator_output((x, y), 3, y, "g") is x
    assert generator_output((x, y.numpy()), 3, y, "g") is x  # labels as an array
    assert generator_output([x, nn.functional.one_hot(y, 3)], 3, y, "g") is x  # or one-hot rows
    assert generator_output((a, y), 3, y, "g").shape == (3, *SHAPE)
    stacked = generator_output([a[0], a[1], a[2]], 3, y, "g")  # a list of one image each
    assert torch.equal(stacked, torch.from_numpy(a))


def test_generator_output_says_in_one_line_what_to_return():
    y = torch.tensor([0, 1, 2])
    x = torch.rand(3, *SHAPE)
    with pytest.raises(BenchError) as e:
        generator_output((x, torch.tensor([2, 2, 2])), 3, y, "model 'm'")
    msg = one_line(e)
    assert msg.startswith("model 'm' returned a tuple of 2 (Tensor (3, 1, 4, 4), Tensor (3,))")
    assert "return the images alone: a torch tensor or numpy array of 3 images (N, C, H, W)" in msg
    assert "only when its labels are the ones it was given" in msg
    with pytest.raises(BenchError) as e:
        generator_output((x, y, "extra"), 3, y, "g")
    assert "a tuple of 3" in one_line(e)
    with pytest.raises(BenchError) as e:
        generator_output({"images": x}, 3, y, "g")
    assert "returned a dict; return the images alone" in one_line(e)
    with pytest.raises(BenchError) as e:
        generator_output(np.array([object()] * 3), 3, y, "g")
    assert "numpy array of object" in one_line(e)


def test_a_count_mismatch_says_how_many_were_asked_and_returned():
    with pytest.raises(BenchError) as e:
        generator_output(torch.rand(33, *SHAPE), 32, None, "model 'm'")
    assert one_line(e) == ("model 'm' returned 33 images where 32 were asked for; it must return "
                           "exactly one image per latent and label: (32, C, H, W).")


class Net(nn.Module):
    latent_dim = 8

    def __init__(self, mode: str):
        super().__init__()
        self.lin, self.mode = nn.Linear(8, 16), mode

    def forward(self, z, y):
        x = torch.tanh(self.lin(z)).reshape(-1, *SHAPE)
        return {"tensor": x, "tuple": (x, y), "numpy": x.numpy(), "other": (x, y + 1),
                "extra": torch.cat([x, x[:1]])}[self.mode]


def _torch_generator(mode: str):
    from bench.infra import output_checks
    from bench.models.torch_generator import TorchGenerator

    torch.manual_seed(0)
    g = TorchGenerator(Net(mode), image_shape=SHAPE, num_classes=2, latent_dim=8,
                       label_input="index", output_range="[-1, 1]", batch_size=4,
                       device=torch.device("cpu"))
    output_checks.checks_of(g).model = "mine"
    return g


def test_a_torch_module_returning_numpy_or_its_pair_works_like_one_returning_a_tensor():
    labels = torch.tensor([0, 1, 0, 1, 1, 0])
    want = _torch_generator("tensor").sample(6, labels, seed=3)
    for mode in ("numpy", "tuple"):
        got = _torch_generator(mode).sample(6, labels, seed=3)
        assert got.dtype == torch.uint8 and torch.equal(got, want), mode


@pytest.mark.parametrize("mode, says", [
    ("other", "model 'mine' (Net.forward(z, y)) returned a tuple of 2"),
    ("extra", "model 'mine' (Net.forward(z, y)) returned 5 images where 4 were asked for")])
def test_a_torch_module_returning_something_else_gets_one_line(mode, says):
    with pytest.raises(BenchError) as e:
        _torch_generator(mode).sample(6, torch.zeros(6, dtype=torch.long), seed=0)
    assert one_line(e).startswith(says)


def _dataset():
    y = torch.arange(4).repeat(16)
    return SimpleNamespace(digest="d", train_y=y, num_classes=4, image_shape=SHAPE,
                           train_x=torch.zeros(len(y), *SHAPE, dtype=torch.uint8))


@pytest.mark.parametrize("returns", ["numpy", "pair"])
def test_the_store_takes_a_numpy_array_or_the_pair_from_sample(tmp_path, returns):
    from bench.infra.cache import Cache
    from bench.infra.store import GeneratedImagesKey, Store

    def sample(labels, start):
        x = np.full((len(labels) - start, *SHAPE), 7, np.uint8)
        return x if returns == "numpy" else (x, labels[start:])

    store = Store(Cache(tmp_path / "cache"), persist=False)
    out = store.generated_images(GeneratedImagesKey("g", "d", 0, chunk=16), sample, _dataset(), 32,
                                 persist=False)
    assert out.images.shape == (32, *SHAPE) and int(out.images.max()) == 7


def test_the_store_says_a_count_mismatch_in_one_line(tmp_path):
    from bench.infra.cache import Cache
    from bench.infra.store import GeneratedImagesKey, Store

    def sample(labels, start):  # one image too many
        return torch.zeros(len(labels) - start + 1, *SHAPE, dtype=torch.uint8)

    store = Store(Cache(tmp_path / "cache"), persist=False)
    with pytest.raises(BenchError) as e:
        store.generated_images(GeneratedImagesKey("g", "d", 0, chunk=16), sample, _dataset(), 16,
                               persist=False)
    assert one_line(e).startswith("the generator's sample(n, labels, seed) returned 17 images "
                                  "where 16 were asked for")


def test_evaluate_adapter_takes_a_pair_of_float_arrays_and_names_a_count_mismatch():
    from bench.api import _Adapter

    ds = SimpleNamespace(image_shape=SHAPE, num_classes=2)

    class PairGen:
        def sample(self, n, labels, seed):
            return np.full((n, *SHAPE), 0.5, np.float32), labels

    out = _Adapter(PairGen(), ds, "[0, 1]").sample(3, torch.tensor([0, 1, 0]), 0)
    assert out.dtype == torch.uint8 and out.shape == (3, *SHAPE) and int(out[0, 0, 0, 0]) == 128

    def too_many(n, labels, seed):
        return np.zeros((n + 1, *SHAPE), np.uint8)

    with pytest.raises(BenchError) as e:
        _Adapter(too_many, ds, None).sample(3, torch.tensor([0, 1, 0]), 0)
    assert one_line(e).startswith("the generator function f(n, labels, seed) returned 4 images "
                                  "where 3 were asked for")
