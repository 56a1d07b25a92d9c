"""Names never become paths (issue 20, item 5): `safe_filename` maps any name to one safe file
name, validation refuses the names nothing can show, a suite with hostile names writes
nothing outside its run's folders and every artifact arrives under a safe name, and a shared
runner allows code (callable targets, trusted checkpoints, MLflow models) only by name."""

from __future__ import annotations

import os
import random
import tempfile
from pathlib import Path

import pytest

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.core.safe_names import MAX_LEN, MAX_NAME, is_safe, name_problem, safe_filename

HOSTILE = [
    "../../../etc/escaped", "/etc/passwd", "/", "", ".", "..", "...", ".hidden", "-rf",
    "a/b", "a\\b", "a_b", "a b", " a", "a ", "a.", "C:\\Windows\\evil.png", "\\\\server\\share",
    "x\x00y", "x\x1b[31my", "tab\there", "new\nline", "del\x7f", "c1\x85", "bidi\u202etxt.exe",
    "zero\u200bwidth", "nb\u00a0sp", "sur\udc80rogate", "CON", "nul.txt", "com1", "LPT9.png",
    "a:b", 'q"uote', "st*r?", "pipe|x", "<tag>", "per%cent#frag", "x" * 1000,
    "é" * 300, "\U0001f600" * 100, "../" * 50 + "deep", "emoji\U0001f600.png", "a..b",
    "name.png", "name.PNG", "name", "Name", "ok-name_1.2 (v3) [b]",
]


# ---------------------------------------------------------------- safe_filename
@pytest.mark.parametrize("name", ["digits", "cgan_v2", "gan_train_per_class.csv", "modèle-1.png",
                                  "StyleGAN2 (ADA) [ffhq]", "a..b", "x+y=z@1,2", "数字"])
def test_a_safe_name_maps_to_itself(name):
    assert is_safe(name) and safe_filename(name) == name


@pytest.mark.parametrize("name", HOSTILE)
def test_every_name_becomes_one_safe_component_and_stays_there(name, tmp_path):
    out = safe_filename(name)
    assert is_safe(out) and safe_filename(out) == out  # idempotent: safe output maps to itself
    assert out not in ("", ".", "..") and not out.startswith((".", "-"))
    assert not any(c in out for c in "/\\\x00:*?\"<>|%#")
    assert all(c.isprintable() for c in out)
    assert len(out.encode("utf-8")) <= MAX_LEN
    target = (tmp_path / out).resolve()
    assert target.parent == tmp_path.resolve()  # never another folder, never the folder itself
    target.write_bytes(b"x")  # the file system takes it
    assert target.read_bytes() == b"x"


def test_distinct_names_stay_distinct_and_readable():
    rng = random.Random(0)
    alphabet = "ab./\\ \x1b\t-_éß\u202e:"
    fuzz = {"".join(rng.choice(alphabet) for _ in range(rng.randint(0, 12))) for _ in range(3000)}
    names = set(HOSTILE) | fuzz | {f"{'d' * 200}{i}" for i in range(50)}
    mapped = {safe_filename(n) for n in names}
    assert len(mapped) == len(names)
    # the readable part survives; the extension stays last
    assert safe_filename("../../sentinel/escaped_gan_train_vs_gan_test.png").startswith(
        "sentinel_escaped_gan_train_vs_gan_test-")
    assert safe_filename("../x.png").endswith(".png")
    assert safe_filename("d" * 500 + ".png").endswith(".png")


@pytest.mark.parametrize("max_len", [32, 64, 100, 255])
def test_length_is_bounded_in_bytes(max_len):
    for name in ["x" * 1000, "é" * 1000, "\U0001f600" * 300 + ".csv", "a/" * 400]:
        out = safe_filename(name, max_len=max_len)
        assert len(out.encode("utf-8")) <= max_len and safe_filename(out, max_len=max_len) == out
    with pytest.raises(ValueError):
        safe_filename("x", max_len=8)


def test_names_validation_refuses_and_why():
    assert name_problem("stylegan2/ffhq") is None  # a `/` is a fine label: mapped in files
    assert name_problem("../../x") is None and name_problem("/abs/path") is None
    assert "control character" in name_problem("a\x1bb")
    assert "bidirectional" in name_problem("a\u202eb")
    assert "empty" in name_problem(" ")
    assert f"at most {MAX_NAME}" in name_problem("x" * (MAX_NAME + 1))


def test_a_suite_with_control_characters_in_a_name_is_refused_in_one_line(write_suite):
    text = ('name: t\ndatasets:\n  "d\\e[2Jigits": {source: digits}\nmodels:\n'
            '  "ok/../model": {source: reference, kind: real}\n  "tab\\tname": {source: reference, '
            f'kind: real}}\n  "{"m" * (MAX_NAME + 5)}": {{source: reference, kind: real}}\n'
            "metrics:\n  test_constant: {}\n")
    with pytest.raises(BenchError) as e:
        load_suite(write_suite(text), check_resources=False)
    msg = str(e.value)
    lines = msg.splitlines()[1:]
    assert len(lines) == 3, msg
    assert "datasets.d\\x1b[2Jigits: the dataset name 'd\\x1b[2Jigits' contains a control " \
           "character ('\\x1b')" in msg
    assert "models.tab\\tname:" in msg and f"at most {MAX_NAME}" in msg
    assert "ok/../model" not in msg  # mapped where a file is named, never refused
    assert not any(c in msg for c in "\x1b\t")  # the terminal is never rewritten


# ---------------------------------------------------------------- the writers
def _tree(root: Path) -> dict[str, bytes | None]:
    return {str(p.relative_to(root)): (p.read_bytes() if p.is_file() else None)
            for p in sorted(root.rglob("*"))}


def test_tracker_writers_map_names_and_write_nowhere_else(tmp_path, monkeypatch, tracking_uri):
    """The writers themselves map names that validation would refuse too (e.g. names read back
    from a store an older version wrote)."""
    from mlflow import MlflowClient

    from bench.infra.cache import Cache
    from bench.metrics.base import Context
    from bench.record.tracking import Tracker

    sentinel = tmp_path / "sentinel"
    sentinel.mkdir()
    (sentinel / "keep.txt").write_text("untouched")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    before = _tree(sentinel)
    tracker = Tracker(tracking_uri, "hostile")
    run = tracker.create_run("r", {})
    names = {"../../sentinel/climb.png": b"1", f"{sentinel}/abs.png": b"2", "ctl\x1b\x07.png": b"3",
             "..": b"4", "x" * 400 + ".png": b"5", "new\nline.txt": b"6"}
    tracker.log_files(run, names, "figures")
    tracker.log_text(run, "text", "../../sentinel/t.txt")
    tracker.log_image(run, __import__("numpy").zeros((4, 4), dtype="uint8"), f"{sentinel}/img.png")
    logged = {f.path for f in MlflowClient(tracking_uri).list_artifacts(run, "figures")}
    assert logged == {f"figures/{safe_filename(n)}" for n in names}
    top = {f.path for f in MlflowClient(tracking_uri).list_artifacts(run) if not f.is_dir}
    assert top == {safe_filename("../../sentinel/t.txt"), safe_filename(f"{sentinel}/img.png")}
    assert all(is_safe(Path(p).name) for p in logged | top)

    import torch

    ctx = Context(torch.device("cpu"), 0, Cache(tmp_path / "cache"), tmp_path / "cell")
    assert ctx.artifact(f"../../{sentinel.name}/x.csv").parent == tmp_path / "cell"
    assert Cache(tmp_path / "cache").path("../../sentinel", {"k": 1}).parent.parent == tmp_path / "cache"
    assert _tree(sentinel) == before
    assert not any((tmp_path / "tmp").iterdir())  # the temporary folders went away


HOSTILE_SUITE = """\
name: hostile
seed: 0
datasets:
  "../../sentinel/{long}": {{source: digits}}
  "{sentinel}/abs": {{source: digits}}
models:
  "../../../{umlauts}": {{source: reference, kind: real}}
  "C:\\\\..\\\\sentinel\\\\noisy": {{source: reference, kind: noise, sigma: 0.5}}
metrics:
  gan_train:
    classifier: {{epochs: 1}}
    num_samples: 500
  gan_test:
    classifier: {{epochs: 1}}
"""


@pytest.mark.filterwarnings("ignore:constrained_layout not applied")
def test_a_suite_with_hostile_names_writes_only_into_its_folders(tmp_path, monkeypatch, write_suite,
                                                                 tracking_uri, one_thread):
    """The issue's case: a dataset named `../../<folder>/escaped` wrote its figure into that
    folder and the figure never reached the suite run. Here figures are made (gan_train and
    gan_test of two models), every name is hostile (climbing, absolute, Windows separators,
    long, multi-byte), and nothing may appear outside the store, the cache and the temporary
    folder, which ends empty of our files."""
    from mlflow import MlflowClient

    from bench.run.runner import run_suite

    sentinel = tmp_path / "sentinel"
    (sentinel / "deeper").mkdir(parents=True)
    (sentinel / "keep.txt").write_text("untouched")
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))  # `../../sentinel` from there
    (tmp_path / "tmp").mkdir()
    long, umlauts = "d" * 180, "ü" * 150  # a figure's name: 200+ characters, 300+ bytes
    path = write_suite(HOSTILE_SUITE.format(long=long, sentinel=sentinel, umlauts=umlauts))
    suite = load_suite(path)
    before = _tree(sentinel)
    top_before = set(os.listdir(tmp_path))

    report = run_suite(suite, tracking_uri=tracking_uri, progress=False, cache_dir=str(tmp_path / "cache"))

    assert report.ok and report.count("finished") == 8
    assert _tree(sentinel) == before
    assert set(os.listdir(tmp_path)) - top_before <= {"mlruns", "cache", "mlflow.db", "mlflow.db.lock"}  # the lock: one schema migration at a time
    assert not [p for p in (tmp_path / "tmp").iterdir() if p.name.startswith("bench-")]

    client = MlflowClient(tracking_uri)
    figures = {f.path.removeprefix("figures/") for f in client.list_artifacts(report.parent_run_id, "figures")}
    want = {safe_filename(f"../../sentinel/{long}_gan_train_vs_gan_test.png"),
            safe_filename(f"{sentinel}/abs_gan_train_vs_gan_test.png")}
    assert figures == want, figures
    assert any(f.startswith("sentinel_" + "d" * 20) for f in figures)  # still readable
    parent = {f.path for f in client.list_artifacts(report.parent_run_id)}
    assert {"suite.yaml", "cells.json", "leaderboard.md", "leaderboard.html", "summary.md"} <= parent
    exp = client.get_experiment_by_name("hostile").experiment_id
    cells = client.search_runs([exp], f"tags.`mlflow.parentRunId` = '{report.parent_run_id}'")
    assert len(cells) == 8
    models = {r.data.tags["bench.model"] for r in cells}
    assert models == {f"../../../{umlauts}", "C:\\..\\sentinel\\noisy"}  # labels stay as given
    for r in cells:
        arts = [f.path for f in client.list_artifacts(r.info.run_id)]
        assert any(a.endswith("_per_class.csv") for a in arts) and all(is_safe(a) for a in arts)
    assert sum("samples.png" in [f.path for f in client.list_artifacts(r.info.run_id)]
               for r in cells) == 4  # one sample grid per model and dataset


# ---------------------------------------------------------------- shared runners
CODE_SUITE = """\
name: shared
datasets:
  digits: {{source: digits}}
models:
  mine: {{source: callable, target: "hostile_gen:G", checkpoint: "{ckpt}", trusted_checkpoint: true}}
  logged: {{source: mlflow, uri: "models:/their_gan/3"}}
  by_run: {{source: mlflow, uri: "runs:/0123abcd/model"}}
metrics:
  test_constant: {{}}
"""

GEN = """\
import torch
from torch import nn


class G(nn.Module):
    latent_dim = 2

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))

    def forward(self, z, y):
        return torch.zeros(len(z), 1, 8, 8) + self.w
"""


class _Marker:
    """Unpickling it creates a file: proof that a checkpoint's code ran."""

    def __init__(self, path: Path):
        self.path = path

    def __reduce__(self):
        return (open, (str(self.path), "w"))


@pytest.fixture
def code_suite(tmp_path, write_suite, monkeypatch):
    import torch

    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "hostile_gen.py").write_text(GEN)
    monkeypatch.syspath_prepend(str(tmp_path / "code"))
    ckpts = tmp_path / "ckpts"
    ckpts.mkdir()
    marker = tmp_path / "code_ran"
    from hostile_gen import G  # type: ignore[import-not-found]

    torch.save({"state_dict": G().state_dict(), "args": _Marker(marker)}, ckpts / "g.pt")
    for var in ("BENCH_ALLOWED_MODULES", "BENCH_ALLOWED_CHECKPOINTS", "BENCH_ALLOWED_MODELS"):
        monkeypatch.delenv(var, raising=False)
    return write_suite(CODE_SUITE.format(ckpt=ckpts / "g.pt")), ckpts, marker


def _problems(path, check_resources=False) -> str:
    try:
        load_suite(path, check_resources=check_resources)
    except BenchError as e:
        return str(e)
    return ""


def test_without_an_allow_list_a_suite_is_code(code_suite):
    path, _, _ = code_suite
    assert "BENCH_ALLOWED" not in _problems(path)


def test_a_shared_runner_refuses_checkpoints_and_mlflow_models_not_allowed(code_suite, monkeypatch):
    path, ckpts, marker = code_suite
    monkeypatch.setenv("BENCH_ALLOWED_MODULES", "hostile_gen")
    msg = _problems(path, check_resources=True)  # the checks that would unpickle run too
    lines = msg.splitlines()[1:]
    assert len(lines) == 3, msg
    mine = next(ln for ln in lines if "models.mine:" in ln)
    assert "BENCH_ALLOWED_CHECKPOINTS (unset; this runner restricts suites because " \
           "BENCH_ALLOWED_MODULES is set)" in mine and "trusted_checkpoint" in mine
    assert not marker.exists()  # refused before anything was unpickled
    logged = next(ln for ln in lines if "models.logged:" in ln)
    assert "'their_gan' is not in BENCH_ALLOWED_MODELS" in logged
    assert "'0123abcd' is not in BENCH_ALLOWED_MODELS" in msg

    monkeypatch.setenv("BENCH_ALLOWED_CHECKPOINTS", f"/nowhere,{ckpts}")
    monkeypatch.setenv("BENCH_ALLOWED_MODELS", "their_gan, 0123abcd")
    assert "BENCH_ALLOWED" not in _problems(path)
    assert "BENCH_ALLOWED" not in _problems(path, check_resources=True)
    assert marker.exists()  # allowed by name: the trusted checkpoint was read (its code ran)


def test_any_allow_variable_turns_the_mode_on(code_suite, monkeypatch):
    path, _, _ = code_suite
    monkeypatch.setenv("BENCH_ALLOWED_MODELS", "their_gan,0123abcd")
    msg = _problems(path)
    assert "module 'hostile_gen' is not in BENCH_ALLOWED_MODULES (unset; this runner restricts " \
           "suites because BENCH_ALLOWED_MODELS is set)" in msg
    assert "logged" not in msg and "by_run" not in msg


def test_a_symlink_does_not_lead_a_checkpoint_out_of_its_allowed_folder(tmp_path, monkeypatch):
    from bench.models.callable_model import read_checkpoint

    allowed, elsewhere = tmp_path / "allowed", tmp_path / "elsewhere"
    allowed.mkdir()
    elsewhere.mkdir()
    (elsewhere / "x.pt").write_bytes(b"not read")
    (allowed / "link.pt").symlink_to(elsewhere / "x.pt")
    monkeypatch.setenv("BENCH_ALLOWED_MODULES", "bench")
    monkeypatch.setenv("BENCH_ALLOWED_CHECKPOINTS", str(allowed))
    with pytest.raises(BenchError, match=f"checkpoint {elsewhere / 'x.pt'}: .*not in "
                       "BENCH_ALLOWED_CHECKPOINTS"):
        read_checkpoint(allowed / "link.pt", trusted=True)  # where it loads, too


def test_an_mlflow_model_is_refused_where_it_loads_too(monkeypatch):
    from bench.models.mlflow_model import MlflowModel

    monkeypatch.setenv("BENCH_ALLOWED_MODULES", "bench")
    src = MlflowModel(MlflowModel.Options(uri="models:/their_gan@champion"))
    with pytest.raises(BenchError, match="'their_gan' is not in BENCH_ALLOWED_MODELS"):
        src._load()  # before MLflow is asked for anything
