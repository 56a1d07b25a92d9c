"""The paper-reproduction suites (suites/shmelkov2018_*.yaml) against a tiny local stand-in
of their data in torchvision's on-disk format: they validate, name the missing files when
the data is absent, and a shrunk copy (tiny classifier, one epoch) runs end to end."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from test_datasets import fake_cifar10, fake_cifar100, no_md5  # noqa: F401  (no_md5: a fixture)

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.run.runner import run_suite

SUITES = Path(__file__).parents[1] / "suites"
CIFAR10 = SUITES / "shmelkov2018_cifar10.yaml"
CIFAR100 = SUITES / "shmelkov2018_cifar100.yaml"


def _with_root(text: str, root: Path) -> str:
    out, n = re.subn(r"(?m)^(\s+root:) \S+$", rf"\1 {root}", text)
    assert n == 1, "the suite names one data root"
    return out


@pytest.mark.parametrize(("suite", "folder", "files", "archive"), [
    (CIFAR10, "cifar-10-batches-py", ["data_batch_1", "test_batch", "batches.meta"],
     "cifar-10-python.tar.gz"),
    (CIFAR100, "cifar-100-python", ["train", "test", "meta"], "cifar-100-python.tar.gz")],
    ids=["cifar10", "cifar100"])
def test_absent_data_is_a_validate_time_message_saying_where(tmp_path, suite, folder, files,
                                                            archive):
    p = tmp_path / "suite.yaml"
    p.write_text(_with_root(suite.read_text(), tmp_path / "nowhere"))
    with pytest.raises(BenchError) as e:
        load_suite(p)
    msg = str(e.value)
    assert str(tmp_path / "nowhere" / folder) in msg and all(f in msg for f in files)
    assert archive in msg and "https://www.cs.toronto.edu/~kriz/cifar.html" in msg


def test_cifar100_suite_validates_on_its_stand_in(tmp_path, no_md5):  # noqa: F811
    fake_cifar100(tmp_path / "cifar")
    p = tmp_path / "suite.yaml"
    p.write_text(_with_root(CIFAR100.read_text(), tmp_path / "cifar"))
    s = load_suite(p)
    assert {(c.model.key, c.metric.key) for c in s.cells} == {
        ("real", "gan_train"), ("real", "gan_test"), ("held_out", "gan_test")}


def test_shipped_suite_follows_the_paper(tmp_path, no_md5):  # noqa: F811
    fake_cifar10(tmp_path / "cifar")
    p = tmp_path / "suite.yaml"
    p.write_text(_with_root(CIFAR10.read_text(), tmp_path / "cifar"))
    s = load_suite(p)
    assert {c.model.key for c in s.cells} == {"real", "held_out"}
    assert {(c.model.key, c.metric.key) for c in s.cells} == {
        ("real", "gan_train"), ("real", "gan_test"), ("held_out", "gan_test")}
    for c in s.cells:  # the paper's classifier for every arm: a CIFAR ResNet-32
        clf = c.metric.options.model_dump()["classifier"]
        assert clf["name"] == "cifar_resnet" and clf["args"] == {"depth": 32}
    # the published real row is a `published:` block the board prints beside our value
    assert [(b.dataset, b.values) for b in s.published] == [("cifar10", {"real": {"gan_train_acc": 0.928}})]


def test_shrunk_suite_runs_on_the_stand_in(tmp_path, no_md5, tracking_uri, one_thread):  # noqa: F811
    fake_cifar10(tmp_path / "cifar", per_batch=20, test=20)  # 100 train, 20 test images
    text = _with_root(CIFAR10.read_text(), tmp_path / "cifar")
    text = text.replace("args: {depth: 32}, epochs: 30", "args: {depth: 8, width: 4}, epochs: 1")
    text = text.replace("device: auto", "device: cpu")
    p = tmp_path / "suite.yaml"
    p.write_text(text)
    report = run_suite(load_suite(p), tracking_uri=tracking_uri, progress=False)
    assert report.ok and report.count("finished") == 3, report.summary()
    section = report.leaderboard[report.leaderboard.index("### Against published values"):]
    row = next(ln for ln in section.splitlines() if ln.startswith("| real"))
    assert "gan_train_acc" in row and "0.928" in row  # the shrunk classifier reads "ours lower"
    client = MlflowClient(tracking_uri)
    runs = {(o.cell.model.key, o.cell.metric.key): client.get_run(o.run_id).data
            for o in report.outcomes}
    train = runs[("real", "gan_train")]
    assert 0 <= train.metrics["gan_train_acc"] <= 1
    assert json.loads(train.tags["bench.values"])["gan_train_acc"]["role"] == "score"
    assert 0 <= runs[("held_out", "gan_test")].metrics["gan_test_acc"] <= 1
