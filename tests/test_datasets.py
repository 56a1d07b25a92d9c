"""Dataset sources on tiny files the tests write: torchvision sets in their real on-disk
formats (read by torchvision's own code), image folders (corrupt files, sizes, imbalance),
npz files, missing-file errors, and loading through suite validation."""

from __future__ import annotations

import io
import os
import pickle
import struct
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.data.image_folder import ImageFolder, ImageFolderOptions
from bench.data.npz import Npz, NpzOptions
from bench.data.torchvision_sets import _SETS, TorchvisionOptions, TorchvisionSet

RNG = np.random.default_rng(0)


# ---------------------------------------------------------------- fake torchvision files
class _Py2Pickler(pickle._Pickler):
    """Writes `bytes` as Python 2 `str` (SHORT_BINSTRING / BINSTRING), as the original
    CIFAR files were written; Python 3 reads them back as `str` with encoding="latin1",
    which is exactly what torchvision does. Numpy arrays pickle their raw data as bytes,
    so they come out in Python 2 form too."""

    dispatch = pickle._Pickler.dispatch.copy()

    def save_py2_str(self, obj: bytes) -> None:
        n = len(obj)
        if n < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([n]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", n) + obj)
        self.memoize(obj)

    dispatch[bytes] = save_py2_str


def _py2_pickle(obj: dict, path: Path) -> None:
    buf = io.BytesIO()
    _Py2Pickler(buf, protocol=2).dump(obj)
    path.write_bytes(buf.getvalue())


def _labels(n: int, k: int) -> np.ndarray:
    return np.arange(n) % k


def fake_cifar10(root: Path, per_batch: int = 20, test: int = 20) -> None:
    d = root / "cifar-10-batches-py"
    d.mkdir(parents=True)
    for i in range(1, 6):
        _py2_pickle({b"batch_label": b"training batch %d of 5" % i,
                     b"labels": _labels(per_batch, 10).tolist(),
                     b"data": RNG.integers(0, 256, (per_batch, 3072), dtype=np.uint8),
                     b"filenames": [b"x.png"] * per_batch}, d / f"data_batch_{i}")
    _py2_pickle({b"batch_label": b"testing batch 1 of 1", b"labels": _labels(test, 10).tolist(),
                 b"data": RNG.integers(0, 256, (test, 3072), dtype=np.uint8),
                 b"filenames": [b"x.png"] * test}, d / "test_batch")
    names = [b"airplane", b"automobile", b"bird", b"cat", b"deer", b"dog", b"frog", b"horse",
             b"ship", b"truck"]
    _py2_pickle({b"num_cases_per_batch": per_batch, b"label_names": names, b"num_vis": 3072},
                d / "batches.meta")


def fake_cifar100(root: Path, n: int = 200) -> None:
    d = root / "cifar-100-python"
    d.mkdir(parents=True)
    for split in ("train", "test"):
        _py2_pickle({b"fine_labels": _labels(n, 100).tolist(), b"coarse_labels": [0] * n,
                     b"data": RNG.integers(0, 256, (n, 3072), dtype=np.uint8)}, d / split)
    _py2_pickle({b"fine_label_names": [b"c%d" % i for i in range(100)],
                 b"coarse_label_names": [b"s"]}, d / "meta")


def _idx(path: Path, arr: np.ndarray) -> None:
    """MNIST's IDX format: magic (0, 0, type 0x08 = uint8, ndim), big-endian sizes, data."""
    head = bytes([0, 0, 8, arr.ndim]) + b"".join(struct.pack(">I", s) for s in arr.shape)
    path.write_bytes(head + arr.astype(np.uint8).tobytes())


def fake_mnist(root: Path, folder: str = "MNIST", n: int = 30) -> None:
    raw = root / folder / "raw"
    raw.mkdir(parents=True)
    for prefix in ("train", "t10k"):
        _idx(raw / f"{prefix}-images-idx3-ubyte", RNG.integers(0, 256, (n, 28, 28)))
        _idx(raw / f"{prefix}-labels-idx1-ubyte", _labels(n, 10))


def fake_svhn(root: Path, n: int = 20) -> None:
    from scipy.io import savemat

    root.mkdir(parents=True)
    for split in ("train", "test"):
        y = _labels(n, 10)
        y = np.where(y == 0, 10, y)  # SVHN stores digit 0 as label 10
        savemat(root / f"{split}_32x32.mat", {"X": RNG.integers(0, 256, (32, 32, 3, n), dtype=np.uint8),
                                              "y": y[:, None].astype(np.uint8)})


def fake_stl10(root: Path, n: int = 20) -> None:
    d = root / "stl10_binary"
    d.mkdir(parents=True)
    for split in ("train", "test"):
        RNG.integers(0, 256, (n, 3, 96, 96), dtype=np.uint8).tofile(d / f"{split}_X.bin")
        (_labels(n, 10) + 1).astype(np.uint8).tofile(d / f"{split}_y.bin")  # 1-based on disk
    (d / "unlabeled_X.bin").write_bytes(b"")


FAKES = {"mnist": fake_mnist, "fashion_mnist": lambda r: fake_mnist(r, "FashionMNIST"),
         "cifar10": fake_cifar10, "cifar100": fake_cifar100, "svhn": fake_svhn, "stl10": fake_stl10}
SHAPES = {"mnist": (1, 28, 28), "fashion_mnist": (1, 28, 28), "cifar10": (3, 32, 32),
          "cifar100": (3, 32, 32), "svhn": (3, 32, 32), "stl10": (3, 96, 96)}


@pytest.fixture
def no_md5(monkeypatch):
    """Replace only torchvision's md5 comparison (our fake files cannot match the official
    checksums): `check_integrity` still requires each file to exist, and everything else,
    parsing included, is torchvision's own code."""
    import torchvision.datasets.cifar as cifar
    import torchvision.datasets.stl10 as stl10
    import torchvision.datasets.svhn as svhn

    def exists_only(fpath, md5=None):
        return os.path.isfile(fpath)

    for mod in (cifar, svhn, stl10):
        monkeypatch.setattr(mod, "check_integrity", exists_only)


def tv(name: str, root: Path, **kw) -> TorchvisionSet:
    return TorchvisionSet(TorchvisionOptions(dataset=name, root=root, **kw))


# ---------------------------------------------------------------- torchvision
@pytest.mark.parametrize("name", list(FAKES))
def test_torchvision_sets_load_with_torchvisions_own_parsers(name, tmp_path, no_md5):
    FAKES[name](tmp_path / "data")
    src = tv(name, tmp_path / "data")
    src.check()
    info = src.describe()
    ds = src.load()
    assert ds.train_x.dtype == torch.uint8 and ds.train_y.dtype == torch.int64
    assert ds.image_shape == SHAPES[name] == info.image_shape
    assert ds.num_classes == info.num_classes == len(ds.class_names)
    assert set(ds.train_y.tolist()) == set(range(ds.num_classes)) or name == "cifar100"
    assert len(ds.val_y) > 0 and ds.digest == src.load().digest


def test_cifar10_values_layout_and_class_names(tmp_path, no_md5):
    fake_cifar10(tmp_path)
    ds = tv("cifar10", tmp_path).load()
    assert ds.class_names[:3] == ["airplane", "automobile", "bird"]
    assert len(ds.train_y) == 100 and len(ds.val_y) == 20
    with open(tmp_path / "cifar-10-batches-py" / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="latin1")
    # CIFAR rows are 1024 red, 1024 green, 1024 blue values: (3, 32, 32) in row-major order
    assert np.array_equal(ds.train_x[0].numpy(), first["data"][0].reshape(3, 32, 32))
    assert ds.train_y[:10].tolist() == first["labels"][:10]


def test_svhn_maps_label_10_to_digit_0(tmp_path, no_md5):
    fake_svhn(tmp_path / "svhn")
    ds = tv("svhn", tmp_path / "svhn").load()
    assert ds.train_y.tolist()[:11] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0]


def test_torchvision_checksum_failure_is_a_clear_error(tmp_path):
    fake_cifar10(tmp_path)  # real torchvision md5 check, fake files
    with pytest.raises(BenchError, match="failed torchvision's checksum.*cifar-10-python.tar.gz"):
        tv("cifar10", tmp_path).load()


def test_mnist_legacy_processed_layout(tmp_path):
    proc = tmp_path / "MNIST" / "processed"
    proc.mkdir(parents=True)
    for f in ("training.pt", "test.pt"):
        torch.save((torch.randint(0, 256, (20, 28, 28), dtype=torch.uint8),
                    torch.arange(20) % 10), proc / f)
    src = tv("mnist", tmp_path)
    src.check()
    ds = src.load()
    assert ds.train_x.shape == (20, 1, 28, 28) and ds.val_y.tolist()[:3] == [0, 1, 2]


def test_torchvision_resize_and_max_per_class(tmp_path, no_md5):
    fake_cifar10(tmp_path)
    src = tv("cifar10", tmp_path, image_size=16, max_per_class=3)
    assert src.describe().image_shape == (3, 16, 16)
    ds = src.load()
    assert ds.train_x.shape == (30, 3, 16, 16) and ds.val_x.shape == (20, 3, 16, 16)
    assert np.array_equal(ds.class_counts("train"), np.full(10, 3))
    assert ds.digest == src.load().digest  # the subset is deterministic


def test_torchvision_missing_files_name_dir_files_and_remedy(tmp_path):
    with pytest.raises(BenchError) as e:
        tv("cifar10", tmp_path / "nowhere").check()
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / "cifar-10-batches-py") in msg
    assert "data_batch_1" in msg and "batches.meta" in msg
    assert "download: true" in msg and "cifar-10-python.tar.gz" in msg
    with pytest.raises(BenchError, match=r"MNIST/raw.*train-images-idx3-ubyte"):
        tv("mnist", tmp_path).load()
    tv("cifar10", tmp_path / "nowhere", download=True).check()  # torchvision would fetch them


def test_expected_files_match_torchvision(tmp_path):
    """Our cheap existence check must ask for what torchvision's integrity check wants."""
    import torchvision.datasets as tvd

    for name, cls in (("cifar10", tvd.CIFAR10), ("cifar100", tvd.CIFAR100), ("stl10", tvd.STL10)):
        want = {f for f, _ in cls.train_list + cls.test_list}
        assert want <= set(_SETS[name].files)
    assert {f for _, f, _ in (tvd.SVHN.split_list["train"], tvd.SVHN.split_list["test"])} == set(
        _SETS["svhn"].files)
    for name, cls in (("mnist", tvd.MNIST), ("fashion_mnist", tvd.FashionMNIST)):
        assert {f.removesuffix(".gz") for f, _ in cls.resources} == set(_SETS[name].files)
        assert _SETS[name].folder == f"{cls.__name__}/raw"


# ---------------------------------------------------------------- image folders
def make_folder(root: Path, counts: dict[str, int], size=(12, 12), mode="RGB") -> None:
    for cls, n in counts.items():
        (root / cls).mkdir(parents=True, exist_ok=True)
        for i in range(n):
            arr = RNG.integers(0, 256, (*size, 3) if mode == "RGB" else size, dtype=np.uint8)
            Image.fromarray(arr, mode).save(root / cls / f"{i}.png")


def folder(root: Path, **kw) -> ImageFolder:
    return ImageFolder(ImageFolderOptions(root=root, **kw))


def test_image_folder_loads_infers_size_and_splits(tmp_path):
    make_folder(tmp_path / "imgs", {"benign": 10, "melanoma": 10})
    (tmp_path / "imgs" / "benign" / "notes.txt").write_text("ignored")
    src = folder(tmp_path / "imgs", val_fraction=0.3)
    src.check()
    assert src.describe().image_shape == (3, 12, 12) and src.describe().num_classes == 2
    ds = src.load()
    assert ds.class_names == ["benign", "melanoma"]
    assert ds.train_x.shape == (14, 3, 12, 12) and ds.val_x.shape == (6, 3, 12, 12)
    assert ds.notes == {} and ds.digest == src.load().digest
    first = np.asarray(Image.open(tmp_path / "imgs" / "benign" / "0.png"))
    assert any(np.array_equal(first.transpose(2, 0, 1), x) for x in ds.train_x.numpy()) or any(
        np.array_equal(first.transpose(2, 0, 1), x) for x in ds.val_x.numpy())
    gray = folder(tmp_path / "imgs", channels=1, image_size=8, max_per_class=4).load()
    assert gray.train_x.shape[1:] == (1, 8, 8)
    assert len(gray.train_y) + len(gray.val_y) == 8


def test_image_folder_corrupt_file_is_named_or_skipped_and_counted(tmp_path):
    make_folder(tmp_path / "imgs", {"a": 6, "b": 6})
    bad = tmp_path / "imgs" / "b" / "broken.png"
    bad.write_bytes(b"\x89PNG\r\n\x1a\n definitely not an image")
    buf = io.BytesIO()
    Image.fromarray(RNG.integers(0, 256, (12, 12, 3), dtype=np.uint8)).save(buf, "JPEG")
    (tmp_path / "imgs" / "a" / "cut.jpg").write_bytes(buf.getvalue()[:200])  # truncated
    with pytest.raises(BenchError, match=r"(?s)2 unreadable image file.*cut\.jpg.*broken\.png.*"
                       "skip_bad_files"):
        folder(tmp_path / "imgs").load()
    with pytest.warns(UserWarning, match="skipped 2 unreadable"):
        ds = folder(tmp_path / "imgs", skip_bad_files=True).load()
    assert ds.notes["skipped_files"] == "2"
    assert len(ds.train_y) + len(ds.val_y) == 12


def test_image_folder_sizes_val_folder_and_imbalance(tmp_path):
    make_folder(tmp_path / "mixed", {"a": 3, "b": 3})
    make_folder(tmp_path / "mixed", {"b": 1}, size=(20, 16))  # overwrites b/0.png
    with pytest.raises(BenchError, match="differ in size.*image_size"):
        folder(tmp_path / "mixed").load()
    assert folder(tmp_path / "mixed", image_size=10, val_fraction=0.34).load().train_x.shape[1:] == (3, 10, 10)

    make_folder(tmp_path / "train", {"common": 12, "rare": 3})
    make_folder(tmp_path / "val", {"common": 2, "rare": 2})
    with pytest.warns(UserWarning, match=r"imbalanced.*common: 12, rare: 3"):
        ds = folder(tmp_path / "train", val=tmp_path / "val").load()
    assert len(ds.train_y) == 15 and len(ds.val_y) == 4 and "imbalance" in ds.notes
    make_folder(tmp_path / "val2", {"common": 1, "other": 1})
    with pytest.raises(BenchError, match="same class sub-folders"):
        folder(tmp_path / "train", val=tmp_path / "val2").check()


def test_image_folder_reads_16_bit_grayscale_by_its_range(tmp_path):
    for cls, value in (("low", 1000), ("high", 60000)):
        (tmp_path / "scans" / cls).mkdir(parents=True)
        for i in range(3):
            Image.fromarray(np.full((6, 6), value, np.uint16)).save(tmp_path / "scans" / cls / f"{i}.png")
    ds = folder(tmp_path / "scans", channels=1, val_fraction=0.34).load()
    values = {ds.class_names[int(y)]: int(x.max()) for x, y in zip(ds.train_x, ds.train_y, strict=True)}
    assert values == {"high": round(60000 / 257), "low": round(1000 / 257)}


def test_image_folder_missing_and_empty(tmp_path):
    with pytest.raises(BenchError, match=r"`root` folder .*nope does not exist"):
        folder(tmp_path / "nope").check()
    make_folder(tmp_path / "one", {"only": 2})
    with pytest.raises(BenchError, match="at least two"):
        folder(tmp_path / "one").check()
    (tmp_path / "one" / "empty").mkdir()
    with pytest.raises(BenchError, match=r"no images .* \['empty'\]"):
        folder(tmp_path / "one").check()


def make_patients(root: Path, patients: dict[str, dict[str, int]]) -> None:
    """{patient: {class: images}} as <class>/<patient>_<i>.png: a patient may have both classes."""
    for patient, counts in patients.items():
        for cls, n in counts.items():
            (root / cls).mkdir(parents=True, exist_ok=True)
            for i in range(n):
                arr = RNG.integers(0, 256, (6, 6, 3), dtype=np.uint8)
                Image.fromarray(arr).save(root / cls / f"{patient}_{i}.png")


def test_image_folder_group_keeps_each_patient_on_one_side(tmp_path):
    patients = {f"p{i:02d}": {"benign": 1 + i % 3, "melanoma": (i % 2) * 3} for i in range(12)}
    make_patients(tmp_path / "scans", patients)
    src = folder(tmp_path / "scans", group=r"(p\d+)_", val_fraction=0.25, split_seed=3)
    src.check()
    ds = src.load()
    # which patient each loaded image came from: images are random, so match pixels to files
    owner = {bytes(np.asarray(Image.open(f)).transpose(2, 0, 1)): f.name.split("_")[0]
             for f in (tmp_path / "scans").rglob("*.png")}
    train = {owner[bytes(x)] for x in ds.train_x.numpy()}
    val = {owner[bytes(x)] for x in ds.val_x.numpy()}
    assert train and val and not train & val and train | val == set(patients)
    assert set(ds.val_y.tolist()) == {0, 1} and set(ds.train_y.tolist()) == {0, 1}
    n_val = len(ds.val_y) / (len(ds.val_y) + len(ds.train_y))
    assert 0.1 < n_val < 0.4  # stratified as well as whole patients allow
    assert ds.notes["groups"].endswith("val groups, none in both")
    again = src.load()
    assert torch.equal(again.val_x, ds.val_x) and again.digest == ds.digest  # seeded
    others = {folder(tmp_path / "scans", group=r"(p\d+)_", val_fraction=0.25, split_seed=seed
                     ).load().digest for seed in range(4, 7)}
    assert len(others - {ds.digest}) >= 2  # another seed, (usually) another split
    whole = folder(tmp_path / "scans", group=r"p\d+(?=_)", val_fraction=0.25, split_seed=3).load()
    plain = folder(tmp_path / "scans", val_fraction=0.25, split_seed=3).load()
    assert len({ds.digest, whole.digest, plain.digest}) == 3
    assert torch.equal(whole.val_x, ds.val_x)  # whole match as id: same groups, same split


def test_image_folder_group_errors(tmp_path):
    make_patients(tmp_path / "scans", {"p1": {"a": 2, "b": 2}, "p2": {"a": 2, "b": 2}})
    (tmp_path / "scans" / "b" / "anonymous.png").write_bytes(
        (tmp_path / "scans" / "b" / "p1_0.png").read_bytes())
    with pytest.raises(BenchError, match=r"1 of 9 image file\(s\) in .*scans do not match the "
                       r"`group` regex `\(p\\d\)_`, e\.g\. 'b/anonymous\.png'"):
        folder(tmp_path / "scans", group=r"(p\d)_").check()
    with pytest.raises(ValueError, match="not a valid regular expression"):
        ImageFolderOptions(root=tmp_path, group="(p")
    # one patient per class: it cannot be on both sides
    make_patients(tmp_path / "lonely", {"p1": {"a": 3}, "p2": {"b": 3}, "p3": {"b": 3}})
    with pytest.raises(BenchError, match=r"class\(es\) \['a'\].*at least two groups"):
        folder(tmp_path / "lonely", group=r"p\d").load()
    # with a val folder, a patient in both folders is refused
    make_patients(tmp_path / "tr", {"p1": {"a": 2, "b": 2}, "p2": {"a": 2, "b": 2}})
    make_patients(tmp_path / "va", {"p2": {"a": 1, "b": 1}, "p3": {"a": 1, "b": 1}})
    with pytest.raises(BenchError, match=r"1 group\(s\).*both `root` and `val`: \['p2'\]"):
        folder(tmp_path / "tr", val=tmp_path / "va", group=r"p\d").check()  # at validate time
    make_patients(tmp_path / "va2", {"p3": {"a": 1, "b": 1}, "p4": {"a": 1, "b": 1}})
    ok = folder(tmp_path / "tr", val=tmp_path / "va2", group=r"p\d").load()
    assert ok.notes["groups"] == "2 train groups, 2 val groups, none in both"


# ---------------------------------------------------------------- npz
def test_npz_pair_and_single_file(tmp_path):
    x = RNG.integers(0, 256, (20, 8, 8, 3), dtype=np.uint8)
    y = _labels(20, 4)
    np.savez(tmp_path / "tr.npz", images=x, labels=y)
    np.savez(tmp_path / "va.npz", images=x[:8], labels=y[:8])
    pair = Npz(NpzOptions(train=tmp_path / "tr.npz", val=tmp_path / "va.npz",
                          class_names=["a", "b", "c", "d"]))
    pair.check()
    assert pair.describe().image_shape == (3, 8, 8) and pair.describe().num_classes == 4
    ds = pair.load()
    assert np.array_equal(ds.train_x.numpy(), x.transpose(0, 3, 1, 2))
    assert ds.class_names == ["a", "b", "c", "d"] and len(ds.val_y) == 8
    np.savez(tmp_path / "all.npz", train_images=x[..., 0], train_labels=y,
             val_images=x[:8, ..., 0], val_labels=y[:8])
    one = Npz(NpzOptions(path=tmp_path / "all.npz")).load()
    assert one.image_shape == (1, 8, 8) and one.class_names == ["0", "1", "2", "3"]
    assert Npz(NpzOptions(path=tmp_path / "all.npz")).fingerprint() != {}


def test_npz_errors(tmp_path):
    with pytest.raises(BenchError, match=r"`path` file .*none.npz does not exist"):
        Npz(NpzOptions(path=tmp_path / "none.npz")).check()
    np.savez(tmp_path / "f.npz", train_images=np.zeros((2, 4, 4), np.float32), train_labels=[0, 1],
             val_images=np.zeros((2, 4, 4), np.uint8), val_labels=[0, 1])
    with pytest.raises(BenchError, match=r"`train_images` \(float32 array of shape \(2, 4, 4\)\): "
                       r"float32 images need their value range declared, e.g. `range: \"\[-1, 1\]\"`"):
        Npz(NpzOptions(path=tmp_path / "f.npz")).check()
    np.savez(tmp_path / "m.npz", images=np.zeros((2, 4, 4), np.uint8))
    np.savez(tmp_path / "l.npz", images=np.zeros((2, 4, 4), np.uint8), labels=[0, 1])
    with pytest.raises(BenchError, match="the train split has labels, the other has none"):
        Npz(NpzOptions(train=tmp_path / "l.npz", val=tmp_path / "m.npz")).check()
    np.savez(tmp_path / "x.npz", pictures=np.zeros((2, 4, 4), np.uint8))
    with pytest.raises(BenchError, match=r"missing array `images` \(or `train_images` and `val_images`\); "
                       r"found \['pictures'\]"):
        Npz(NpzOptions(path=tmp_path / "x.npz")).check()
    np.savez(tmp_path / "n.npz", images=np.zeros((2, 4, 4), np.uint8), labels=[0, 5])
    with pytest.raises(BenchError, match="label 5 found but `class_names` lists 2"):
        Npz(NpzOptions(train=tmp_path / "n.npz", val=tmp_path / "n.npz", class_names=["a", "b"])).check()
    with pytest.raises(ValueError, match="not both"):
        NpzOptions(path=tmp_path / "n.npz", train=tmp_path / "n.npz")


def test_npz_without_labels_is_unconditional_and_one_file_splits(tmp_path):
    x = RNG.integers(0, 256, (50, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "u.npz", images=x)
    src = Npz(NpzOptions(path=tmp_path / "u.npz", val_fraction=0.2))
    src.check()
    info = src.describe()
    assert (info.num_classes, info.labeled, info.image_shape) == (1, False, (1, 8, 8))
    ds = src.load()
    assert not ds.labeled and ds.class_names == ["all"] and ds.info.labeled is False
    assert (len(ds.train_y), len(ds.val_y)) == (40, 10) and int(ds.train_y.max()) == 0
    rows = {r.tobytes() for r in np.concatenate([ds.train_x.numpy(), ds.val_x.numpy()])[:, 0]}
    assert rows == {r.tobytes() for r in x}  # every image once, in one split or the other
    assert Npz(NpzOptions(path=tmp_path / "u.npz", split_seed=1)).load().digest != ds.digest
    # labelled, one file: a stratified split
    np.savez(tmp_path / "l.npz", images=x, labels=_labels(50, 5))
    lab = Npz(NpzOptions(path=tmp_path / "l.npz")).load()
    assert lab.labeled and lab.num_classes == 5 and np.bincount(lab.val_y.numpy()).tolist() == [2] * 5
    # the same file as both splits: every image is in both, read once
    both = Npz(NpzOptions(train=tmp_path / "u.npz", val=tmp_path / "u.npz")).load()
    assert both.train_x is both.val_x and len(both.train_y) == 50
    with pytest.raises(BenchError, match="`class_names` given, but the file.* have no labels"):
        Npz(NpzOptions(path=tmp_path / "u.npz", class_names=["a"])).check()


def test_npz_float_images_need_a_declared_range_and_convert_exactly(tmp_path):
    x = RNG.integers(0, 256, (12, 8, 8, 3), dtype=np.uint8)
    for declared, f in (("[0, 1]", x / 255.0), ("[-1, 1]", x / 127.5 - 1), ("[0, 255]", x * 1.0)):
        np.savez(tmp_path / "f.npz", images=f.astype(np.float32))
        src = Npz(NpzOptions(train=tmp_path / "f.npz", val=tmp_path / "f.npz", range=declared))
        src.check()
        assert np.array_equal(src.load().train_x.numpy(), x.transpose(0, 3, 1, 2)), declared
    assert NpzOptions(path=tmp_path / "f.npz", range=[-1, 1]).range == "[-1, 1]"
    with pytest.raises(ValueError, match="value range as"):
        NpzOptions(path=tmp_path / "f.npz", range="zero to one")
    np.savez(tmp_path / "f.npz", images=(x / 127.5 - 1).astype(np.float32))
    with pytest.raises(BenchError, match=r"float32 images need their value range declared, e.g. "
                       r"`range: \"\[-1, 1\]\"`.*on the dataset or model entry of the suite"):
        Npz(NpzOptions(train=tmp_path / "f.npz", val=tmp_path / "f.npz")).check()
    with pytest.raises(BenchError, match=r"values from -1 to 1, outside the declared `range: \[0, 1\]`"):
        Npz(NpzOptions(train=tmp_path / "f.npz", val=tmp_path / "f.npz", range="[0, 1]")).load()
    np.savez(tmp_path / "u8.npz", images=x)
    with pytest.raises(BenchError, match=r"uint8 images are in \[0, 255\]; `range: \[0, 1\]`"):
        Npz(NpzOptions(train=tmp_path / "u8.npz", val=tmp_path / "u8.npz", range="[0, 1]")).check()
    np.savez(tmp_path / "nan.npz", images=np.full((2, 4, 4), np.nan, np.float32))
    with pytest.raises(BenchError, match="NaN or infinite"):
        Npz(NpzOptions(train=tmp_path / "nan.npz", val=tmp_path / "nan.npz", range="[0, 1]")).load()


def test_npz_layout_auto_only_when_unambiguous(tmp_path):
    nchw = RNG.integers(0, 256, (8, 1, 8, 8), dtype=np.uint8)
    np.savez(tmp_path / "c.npz", images=nchw)
    src = Npz(NpzOptions(train=tmp_path / "c.npz", val=tmp_path / "c.npz"))
    assert src.describe().image_shape == (1, 8, 8)  # (N, C, H, W): not "(8, 1, 8) (C, H, W)"
    assert np.array_equal(src.load().train_x.numpy(), nchw)
    with pytest.raises(BenchError, match=r"`images` is a uint8 array of shape \(8, 1, 8, 8\): with "
                       r"`layout: nhwc` that is \(N, H, W, C\) = 8 images of 1x8, 8 channel\(s\).*"
                       r"Its axis 1 fits: `layout: nchw`"):
        Npz(NpzOptions(train=tmp_path / "c.npz", val=tmp_path / "c.npz", layout="nhwc")).check()
    amb = RNG.integers(0, 256, (8, 3, 4, 3), dtype=np.uint8)
    np.savez(tmp_path / "a.npz", images=amb)
    with pytest.raises(BenchError, match=r"\(8, 3, 4, 3\): it reads as \(N, C, H, W\) = 8 images, 3 "
                       r"channel\(s\), 4x3, or as \(N, H, W, C\) = 8 images of 3x4, 3 channel\(s\). "
                       r"Declare which: `layout: nchw` or `layout: nhwc`"):
        Npz(NpzOptions(train=tmp_path / "a.npz", val=tmp_path / "a.npz")).check()
    for layout, want in (("nchw", amb), ("nhwc", amb.transpose(0, 3, 1, 2))):
        ds = Npz(NpzOptions(train=tmp_path / "a.npz", val=tmp_path / "a.npz", layout=layout)).load()
        assert np.array_equal(ds.train_x.numpy(), want)
    np.savez(tmp_path / "b.npz", images=np.zeros((8, 5, 8, 8), np.uint8))
    with pytest.raises(BenchError, match=r"neither axis 1 \(5\) nor axis 3 \(8\) is a channel count"):
        Npz(NpzOptions(train=tmp_path / "b.npz", val=tmp_path / "b.npz")).check()


def test_image_folder_flat_is_unconditional_and_val_may_be_root(tmp_path):
    root = tmp_path / "flat"
    root.mkdir()
    for i in range(10):
        Image.fromarray(RNG.integers(0, 256, (6, 6), dtype=np.uint8)).save(root / f"{i}.png")
    src = folder(root, channels=1)
    src.check()
    info = src.describe()
    assert (info.num_classes, info.labeled) == (1, False)
    ds = src.load()
    assert not ds.labeled and ds.class_names == ["all"] and (len(ds.train_y), len(ds.val_y)) == (8, 2)
    same = folder(root, val=root, channels=1)
    same.check()
    both = same.load()
    assert len(both.train_y) == len(both.val_y) == 10 and torch.equal(both.train_x, both.val_x)
    assert not both.labeled and both.digest == folder(root, val=root, channels=1).load().digest
    entry = next(p for p in (tmp_path / "cache" / "image_folder").glob("*.npy")
                 if np.load(p, mmap_mode="r").shape[0] == 10)
    assert np.load(entry, mmap_mode="r").shape == (10, 1, 6, 6)  # decoded and stored once
    make_folder(tmp_path / "classes", {"a": 3, "b": 3})
    with pytest.raises(BenchError, match=r"`val` folder .*flat has no class sub-folders, `root` is "
                       r"classes \['a', 'b'\]"):
        folder(tmp_path / "classes", val=root).check()
    make_folder(tmp_path / "one", {"only": 2})
    with pytest.raises(BenchError, match="at least two.*put the images directly in the folder"):
        folder(tmp_path / "one").check()


# ---------------------------------------------------------------- through the suite
SUITE = """\
name: data-sources
datasets:
  cifar: {{source: torchvision, dataset: cifar10, root: cifar, max_per_class: 2}}
  mnist: {{source: torchvision, dataset: mnist, root: mnist}}
  lesions: {{source: image_folder, root: lesions, image_size: 16, channels: 3}}
  arrays: {{source: npz, train: arrays/train.npz, val: arrays/val.npz}}
models:
  real: {{source: reference, kind: real}}
metrics:
  test_constant: {{}}
"""


def test_every_source_loads_through_suite_validation(tmp_path, no_md5):
    fake_cifar10(tmp_path / "cifar")
    fake_mnist(tmp_path / "mnist")
    make_folder(tmp_path / "lesions", {"benign": 5, "melanoma": 5}, size=(20, 20))
    (tmp_path / "arrays").mkdir()
    np.savez(tmp_path / "arrays" / "train.npz", images=np.zeros((6, 8, 8), np.uint8), labels=_labels(6, 3))
    np.savez(tmp_path / "arrays" / "val.npz", images=np.ones((3, 8, 8), np.uint8), labels=_labels(3, 3))
    (tmp_path / "suite.yaml").write_text(SUITE.format())
    suite = load_suite(tmp_path / "suite.yaml")
    assert len(suite.cells) == 4
    shapes = {}
    for key, spec in suite.datasets.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # balanced data: no warnings
            ds = spec.instance().load()
        shapes[key] = (ds.image_shape, ds.num_classes, len(ds.train_y))
    assert shapes == {"cifar": ((3, 32, 32), 10, 20), "mnist": ((1, 28, 28), 10, 30),
                      "lesions": ((3, 16, 16), 2, 8), "arrays": ((1, 8, 8), 3, 6)}
    assert suite.datasets["cifar"].options.root == (tmp_path / "cifar").resolve()


def test_suite_validation_reports_missing_data_with_lines(tmp_path):
    (tmp_path / "suite.yaml").write_text(SUITE.format())
    with pytest.raises(BenchError) as e:
        load_suite(tmp_path / "suite.yaml")
    msg = str(e.value)
    assert "4 problems" in msg
    assert "suite.yaml:3: datasets.cifar:" in msg and "download: true" in msg
    assert "datasets.lesions:" in msg and "does not exist" in msg
    assert "datasets.arrays:" in msg and "train.npz does not exist" in msg


def test_torchvision_sets_are_parsed_once_into_a_memory_mapped_cache_entry(tmp_path, no_md5,
                                                                           monkeypatch):
    """The first load parses with torchvision into a uint8 entry of the cache; later loads
    map it (no parse, no private copy); changed files make a new entry."""
    import torchvision.datasets as tvd

    from bench.infra.cache import Cache

    fake_cifar10(tmp_path / "data")
    opened = []
    orig = tvd.CIFAR10.__init__
    monkeypatch.setattr(tvd.CIFAR10, "__init__",
                        lambda self, *a, **kw: opened.append(kw.get("train")) or orig(self, *a, **kw))
    cache = Cache(tmp_path / "cache")

    def load(**kw):
        src = tv("cifar10", tmp_path / "data", **kw)
        return src.load(cache)

    first = load()
    assert opened == [True, False] and cache.misses["torchvision"] == 1
    entries = list((tmp_path / "cache" / "torchvision").glob("*.npy"))
    assert len(entries) == 1 and entries[0].with_suffix(".json").is_file()
    assert not list((tmp_path / "cache" / "torchvision").glob("*parsing*"))  # temporaries gone
    again = load()
    assert opened == [True, False] and cache.hits["torchvision"] == 1  # mapped, not parsed
    assert torch.equal(again.train_x, first.train_x) and torch.equal(again.val_y, first.val_y)
    assert again.digest == first.digest and again.class_names == first.class_names
    maps = Path("/proc/self/maps")
    if maps.exists():  # the tensors' memory is the entry's file
        addr = again.train_x.data_ptr()
        spans = [line.split() for line in maps.read_text().splitlines()]
        owner = next(s[5] for s in spans if len(s) == 6 and
                     int(s[0].split("-")[0], 16) <= addr < int(s[0].split("-")[1], 16))
        assert owner == str(entries[0])
    os.utime(tmp_path / "data" / "cifar-10-batches-py" / "data_batch_1", ns=(1, 1))  # touched
    load()
    assert len(opened) == 4 and len(list((tmp_path / "cache" / "torchvision").glob("*.npy"))) == 2
    small = load(max_per_class=3, image_size=16)  # other options: another entry
    assert small.train_x.shape == (30, 3, 16, 16)
