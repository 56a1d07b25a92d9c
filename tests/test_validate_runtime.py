"""Mistakes that used to surface only at run time, minutes in, are found by `bench validate`
(which `bench run` runs first): each names the model or dataset, the file and the fix, and
the command exits 2 without a traceback."""

from __future__ import annotations

import argparse
import importlib
import io
import re
import sys
import textwrap

import numpy as np
import pytest
import torch
from PIL import Image

from bench.cli import main
from bench.config.suite import load_suite
from bench.core.errors import BenchError


def _digits_masked(text: str) -> str:
    return re.sub(r"\d[\d,.]*", "#", text)


def refused(path, capsys) -> str:
    """The BenchError of load_suite; `bench validate` says the same, exits 2, no traceback."""
    with pytest.raises(BenchError) as e:
        load_suite(path)
    assert main(["validate", str(path)]) == 2
    err = capsys.readouterr().err
    # Numbers masked: a message that quotes the free memory reads it twice, and it moves.
    assert "Traceback" not in err and _digits_masked(str(e.value).splitlines()[0]) in _digits_masked(err)
    return str(e.value)


def test_samples_with_labels_out_of_range_or_the_wrong_channels(write_suite, tmp_path, capsys):
    labels = np.arange(20) % 10
    labels[7] = 12  # the digits dataset has 10 classes
    np.savez(tmp_path / "s.npz", images=np.zeros((20, 8, 8), np.uint8), labels=labels)
    np.savez(tmp_path / "rgb.npz", images=np.zeros((20, 8, 8, 3), np.uint8), labels=np.arange(20) % 10)
    msg = refused(write_suite("""\
        name: t
        datasets:
          digits: {}
        models:
          mine: {source: samples, path: s.npz}
          rgb: {source: samples, path: rgb.npz}
        metrics:
          test_constant: {}
        """), capsys)
    assert "models.mine: cannot be used with dataset 'digits'" in msg
    assert "s.npz: 1 of 20 label(s) are outside the dataset's classes 0..9: value(s) [12]" in msg
    assert "labels[7] = 12" in msg and "fix the labels" in msg
    assert "models.rgb" in msg and "rgb.npz: images are (3, 8, 8) (C, H, W)" in msg
    assert "save `images` as (N, H, W) uint8" in msg


def truncated_png(path) -> None:
    buf = io.BytesIO()
    Image.fromarray(np.zeros((8, 8), np.uint8)).save(buf, "PNG")
    path.write_bytes(buf.getvalue()[:40])


def test_corrupt_images_in_an_image_folder_and_a_samples_folder(write_suite, tmp_path, capsys):
    rng = np.random.default_rng(0)
    for root, classes in (("imgs", ("a", "b")), ("gen", [str(c) for c in range(10)])):
        for c in classes:
            (tmp_path / root / c).mkdir(parents=True)
            for i in range(3):
                Image.fromarray(rng.integers(0, 256, (8, 8), dtype=np.uint8)).save(
                    tmp_path / root / c / f"{i}.png")
    truncated_png(tmp_path / "imgs" / "b" / "cut.png")
    truncated_png(tmp_path / "gen" / "3" / "bad.png")
    text = """\
        name: t
        datasets:
          lesions: {source: image_folder, root: imgs, channels: 1}
          digits: {}
        models:
          mine: {source: samples, path: gen}
        metrics:
          test_constant: {}
        cells:
          - datasets: [lesions]
            models: []
          - datasets: [digits]
        """
    msg = refused(write_suite(text), capsys)
    assert "datasets.lesions: image_folder: 1 unreadable image file(s) (corrupt or truncated)" in msg
    assert f"{tmp_path / 'imgs' / 'b' / 'cut.png'}: " in msg
    assert "Delete or replace them, or set `skip_bad_files: true`" in msg
    assert "models.mine: cannot be used with dataset 'digits'" in msg
    assert f"{tmp_path / 'gen' / '3' / 'bad.png'}: " in msg and "Delete them" in msg
    # skipping is the user's choice: then the dataset validates
    fixed = text.replace("channels: 1}", "channels: 1, skip_bad_files: true}")
    (tmp_path / "gen" / "3" / "bad.png").unlink()
    assert load_suite(write_suite(fixed)).datasets["lesions"]


USER_CODE = '''
import torch
from torch import nn


class Tiny(nn.Module):
    def __init__(self, num_classes, image_size, channels, width=4):
        super().__init__()
        self.latent_dim = 4
        self.shape = (channels, image_size, image_size)
        self.emb = nn.Embedding(num_classes, 4)
        self.fc = nn.Linear(4, width)
        self.out = nn.Linear(width, channels * image_size * image_size)

    def forward(self, z, y):
        return torch.tanh(self.out(self.fc(z + self.emb(y)))).view(-1, *self.shape)


def build(depth, num_classes):
    return Tiny(num_classes, 8, 1)
'''


@pytest.fixture
def user_module(tmp_path, monkeypatch):
    """A module of the user's own, importable from a folder put on sys.path."""
    name = f"user_gen_{tmp_path.name.replace('-', '_')}"
    code = tmp_path / "code"
    code.mkdir()
    (code / f"{name}.py").write_text(USER_CODE)
    monkeypatch.syspath_prepend(str(code))
    yield name
    sys.modules.pop(name, None)


def test_callable_checkpoint_kwargs_and_file_mistakes(user_module, write_suite, tmp_path, capsys):
    name = user_module
    Tiny = importlib.import_module(name).Tiny
    torch.save(Tiny(10, 8, 1).state_dict(), tmp_path / "good.pt")
    torch.save(Tiny(10, 8, 1, width=6).state_dict(), tmp_path / "wide.pt")
    sd = Tiny(10, 8, 1).state_dict()
    sd["head.weight"] = sd.pop("out.weight")  # renamed layer
    torch.save(sd, tmp_path / "renamed.pt")
    torch.save({"state_dict": Tiny(10, 8, 1).state_dict(), "args": argparse.Namespace(lr=0.1)},
               tmp_path / "pickled.pt")
    (tmp_path / "notes.pt").write_text("epochs: 30\nlr: 0.1\n")
    path = write_suite(textwrap.dedent(f"""\
        name: t
        datasets:
          digits: {{}}
        models:
          ok: {{source: callable, target: "{name}:Tiny", checkpoint: good.pt}}
          wide: {{source: callable, target: "{name}:Tiny", checkpoint: wide.pt}}
          pickled: {{source: callable, target: "{name}:Tiny", checkpoint: pickled.pt}}
          notes: {{source: callable, target: "{name}:Tiny", checkpoint: notes.pt}}
          renamed: {{source: callable, target: "{name}:Tiny", checkpoint: renamed.pt}}
          typo: {{source: callable, target: "{name}:Tiny", kwargs: {{widht: 8}}}}
          short: {{source: callable, target: "{name}:build"}}
        metrics:
          test_constant: {{}}
        """))
    msg = refused(path, capsys)
    assert "models.ok" not in msg
    assert (f"models.wide: cannot be used with dataset 'digits': checkpoint {tmp_path / 'wide.pt'} "
            f"does not fit the module built by '{name}:Tiny'") in msg
    assert "fc.weight is (6, 4) in the checkpoint, (4, 4) in the module" in msg
    assert "3 shape mismatch(es)" in msg and "Check `kwargs`" in msg
    assert ("models.renamed: cannot be used with dataset 'digits': checkpoint "
            f"{tmp_path / 'renamed.pt'} does not fit the module built by '{name}:Tiny': 1 key(s) "
            "of the module missing from the checkpoint: out.weight; 1 unexpected key(s) in the "
            "checkpoint: head.weight.") in msg
    assert (f"models.pickled: cannot be used with dataset 'digits': checkpoint "
            f"{tmp_path / 'pickled.pt'} holds pickled Python objects, not only tensors (it "
            "pickles argparse.Namespace)") in msg and "`trusted_checkpoint: true`" in msg
    assert (f"checkpoint {tmp_path / 'notes.pt'} is not a torch checkpoint (it starts with "
            "b'epochs: 30") in msg and "torch.save(model.state_dict(), path)" in msg
    assert "KeyError" not in msg and "\x1b[" not in msg
    assert (f"models.typo: cannot be used with dataset 'digits': model target '{name}:Tiny' "
            "does not accept the suite's arguments: it takes no argument(s) ['widht'], given in "
            "`kwargs`. Did you mean 'width'? Its signature: (num_classes, image_size, channels, "
            "width=4). Fix `kwargs`.") in msg
    assert (f"models.short: cannot be used with dataset 'digits': model target '{name}:build' "
            "does not accept the suite's arguments: required argument(s) ['depth'] are not "
            "given: add them to `kwargs`.") in msg


def test_absurd_num_samples_is_refused_with_the_numbers(write_suite, capsys):
    msg = refused(write_suite("""\
        name: t
        datasets:
          digits: {}
        models:
          real: {source: reference, kind: real}
        metrics:
          gan_train: {num_samples: 1000000000000}
        """), capsys)
    assert "suite.yaml:7: metrics.gan_train.num_samples: 1,000,000,000,000 generated images" in msg
    assert "of 1x8x8 (dataset 'digits') need at least 58.2 TiB in memory" in msg
    assert "this machine has available" in msg and "Lower `num_samples` (up to about" in msg
    assert "leave it out (default: the real train split's size)" in msg
