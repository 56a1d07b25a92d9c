"""No leakage by construction: suite validation refuses a model serving the val split in a
metric that trains on the model's images and tests on val; every shipped suite validates."""

from pathlib import Path

import pytest

from bench.config.suite import load_suite
from bench.core.errors import BenchError
from bench.metrics import METRICS

TRAINING = ["gan_train", "gan_train_curve", "augmentation", "balancing"]
SUITE = """\
name: leak
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  held_out: {source: reference, kind: real, split: val}
metrics:
  gan_train: {classifier: {epochs: 1}}
  gan_test: {classifier: {epochs: 1}}
  gan_train_curve: {classifier: {epochs: 1}}
  augmentation: {classifier: {epochs: 1}}
  balancing: {classifier: {epochs: 1}}
  nearest_neighbours: {classifier: {epochs: 1}}
"""


def errors_of(path) -> str:
    with pytest.raises(BenchError) as e:
        load_suite(path)
    return str(e.value)


def test_exactly_the_training_metrics_declare_it():
    declared = {n for n in METRICS.names() if METRICS.get(n).trains_on_model_images}
    assert declared == set(TRAINING)


def test_val_split_in_training_metrics_is_refused_all_at_once(write_suite):
    err = errors_of(write_suite(SUITE))
    assert "4 problems" in err
    for metric in TRAINING:
        # no `cells:` block: the line of the model that serves val
        assert (f"suite.yaml:6: models.held_out: cell (model 'held_out', dataset 'digits', "
                f"metric '{metric}') would test on its own training data") in err
        assert f"`exclude: [{{model: held_out, metric: {metric}}}]`" in err
    assert "(`split: train`)" in err and "'real'" not in err
    for metric in ("gan_test", "nearest_neighbours"):
        assert f"metric '{metric}'" not in err


def test_the_cells_block_that_selects_the_cell_is_named(write_suite):
    err = errors_of(write_suite(SUITE + """\
cells:
  - models: [real]
  - models: [held_out]
    metrics: [gan_test, gan_train]
"""))
    assert err.count("would test on its own training data") == 1
    assert "suite.yaml:16: cells.1: cell (model 'held_out', dataset 'digits', metric 'gan_train')" in err


def test_allowed_when_excluded(write_suite):
    s = load_suite(write_suite(SUITE + """\
cells:
  - models: all
    metrics: all
    exclude: [{model: held_out, metric: gan_train}, {model: held_out, metric: gan_train_curve},
              {model: held_out, metric: augmentation}, {model: held_out, metric: balancing}]
"""))
    held = {c.metric.key for c in s.cells if c.model.key == "held_out"}
    assert held == {"gan_test", "nearest_neighbours"}
    assert len(s.cells) == 6 + 2


def test_allowed_for_the_train_split_and_for_constant(write_suite):
    s = load_suite(write_suite(SUITE.replace("kind: real, split: val", "kind: real, split: train")))
    assert len(s.cells) == 12
    s = load_suite(write_suite(SUITE.replace("kind: real, split: val", "kind: constant, split: val")))
    assert len(s.cells) == 12


def test_the_rule_needs_no_resources(write_suite):
    with pytest.raises(BenchError, match="would test on its own training data"):
        load_suite(write_suite(SUITE), check_resources=False)


@pytest.mark.parametrize("path", sorted((Path(__file__).parents[1] / "suites").glob("*.yaml")),
                         ids=lambda p: p.name)
def test_every_shipped_suite_validates(path):
    try:
        suite = load_suite(path)
    except BenchError as e:  # a reproduction suite whose local data (CIFAR) is not here:
        if "file(s) missing" not in str(e):  # everything but the files must still validate
            raise
        suite = load_suite(path, check_resources=False)
    assert suite.cells
