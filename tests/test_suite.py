"""Suite parsing, validation errors (one test per kind of mistake), cell expansion and keys."""

import numpy as np
import pytest
from conftest import TINY

from bench.config.suite import load_suite
from bench.core.errors import BenchError


def errors_of(path) -> str:
    with pytest.raises(BenchError) as e:
        load_suite(path)
    return str(e.value)


def test_valid_suite_expands_to_all_cells(write_suite):
    s = load_suite(write_suite(TINY))
    assert s.name == "tiny" and s.experiment == "tiny" and s.repeats == 1
    # dataset-major, then model, then metric, each in file order
    assert [(c.model.key, c.dataset.key, c.metric.key) for c in s.cells] == [
        ("real", "digits", "gan_train"), ("real", "digits", "gan_test"),
        ("noisy", "digits", "gan_train"), ("noisy", "digits", "gan_test"),
    ]
    assert s.metrics["gan_train"].options.classifier.epochs == 3
    assert s.metrics["gan_train"].plugin == "gan_train"  # the key doubles as plugin name


def test_cells_blocks_lists_exclude_repeats_and_dedup(write_suite):
    s = load_suite(write_suite(TINY + """\
repeats: 3
cells:
  - models: [real]
    metrics: all
  - models: all
    metrics: [gan_test]
    exclude: [{model: noisy, metric: gan_train}]
  - models: [real]
    metrics: [gan_train]
"""))
    triples = {(c.model.key, c.metric.key) for c in s.cells}
    assert triples == {("real", "gan_train"), ("real", "gan_test"), ("noisy", "gan_test")}
    assert len(s.cells) == 3 * 3  # repeats
    assert sorted({c.seed for c in s.cells}) == [0, 1, 2]


def test_cell_keys_are_stable_and_change_with_what_matters(write_suite):
    a = {c.label: c.key for c in load_suite(write_suite(TINY, "a.yaml")).cells}
    b = {c.label: c.key for c in load_suite(write_suite(TINY, "b.yaml")).cells}
    assert a == b and len(set(a.values())) == len(a)
    changed = {c.label: c.key for c in load_suite(write_suite(
        TINY.replace("sigma: 0.5", "sigma: 0.6"), "c.yaml")).cells}
    for label, key in changed.items():
        assert (key == a[label]) == (not label.startswith("noisy")), label
    seeded = {c.label.split(" [")[0]: c.key for c in load_suite(write_suite(
        TINY.replace("seed: 0", "seed: 1"), "d.yaml")).cells}
    assert not set(seeded.values()) & set(a.values())


def test_metric_version_is_part_of_the_key(write_suite, monkeypatch):
    from bench.metrics import METRICS

    before = load_suite(write_suite(TINY)).cells[0].key
    monkeypatch.setattr(METRICS.get("gan_train"), "version", "999")
    after = load_suite(write_suite(TINY)).cells[0].key
    assert before != after


def test_samples_content_is_part_of_the_key(write_suite, tmp_path):
    f = tmp_path / "s.npz"
    np.savez(f, images=np.zeros((20, 8, 8), np.uint8), labels=np.arange(20) % 10)
    text = TINY.replace("models:\n", "models:\n  mine: {source: samples, path: s.npz}\n")
    k1 = [c.key for c in load_suite(write_suite(text)).cells if c.model.key == "mine"]
    np.savez(f, images=np.ones((20, 8, 8), np.uint8), labels=np.arange(20) % 10)
    k2 = [c.key for c in load_suite(write_suite(text)).cells if c.model.key == "mine"]
    assert k1 and set(k1).isdisjoint(k2)


# ------------------------------------------------------------------ one test per error kind
def test_missing_file():
    with pytest.raises(BenchError, match="not found"):
        load_suite("no/such/suite.yaml")


def test_yaml_syntax_error_names_the_line(write_suite):
    msg = errors_of(write_suite("name: x\ndatasets: {digits: {source: digits}\nmodels: [\n"))
    assert "suite.yaml:" in msg and "not valid YAML" in msg


def test_missing_required_section(write_suite):
    msg = errors_of(write_suite("name: x\ndatasets: {}\nmodels: {}\n"))
    assert "metrics: required option 'metrics' missing for a suite" in msg


def test_unknown_top_level_key_suggests(write_suite):
    msg = errors_of(write_suite(TINY + "repeat: 2\n"))
    assert ":13: repeat: unknown option 'repeat'" in msg and "Did you mean 'repeats'" in msg


def test_unknown_plugin_suggests_and_names_the_line(write_suite):
    msg = errors_of(write_suite(TINY.replace("source: reference, kind: noise", "source: refrence, kind: noise")))
    assert "suite.yaml:7: models.noisy.source: unknown model plugin 'refrence'" in msg
    assert "Did you mean 'reference'" in msg


def test_unknown_option_suggests(write_suite):
    msg = errors_of(write_suite(TINY.replace("{epochs: 3}\n  gan_test", "{epoch: 3}\n  gan_test")))
    assert "metrics.gan_train.classifier.epoch: unknown option 'epoch'" in msg
    assert "Did you mean 'epochs'" in msg and ":10:" in msg


def test_wrong_type(write_suite):
    msg = errors_of(write_suite(TINY.replace("sigma: 0.5", "sigma: lots")))
    assert "models.noisy.sigma" in msg and "valid number" in msg and "'lots'" in msg


def test_out_of_range_value(write_suite):
    msg = errors_of(write_suite(TINY.replace("seed: 0", "seed: 0\nrepeats: 0")))
    assert "repeats: Input should be greater than or equal to 1" in msg


def test_unknown_classifier_name(write_suite):
    msg = errors_of(write_suite(TINY.replace("{epochs: 3}\n  gan_test", "{name: smal_cnn}\n  gan_test")))
    assert "classifier.name" in msg and "Did you mean 'small_cnn'" in msg


def test_missing_samples_file(write_suite):
    msg = errors_of(write_suite(TINY.replace("models:\n", "models:\n  mine: {source: samples, path: gone.npz}\n")))
    assert "models.mine" in msg and "gone.npz does not exist" in msg


def test_samples_shape_mismatch(write_suite, tmp_path):
    np.savez(tmp_path / "big.npz", images=np.zeros((5, 32, 32, 3), np.uint8), labels=np.zeros(5, int))
    msg = errors_of(write_suite(TINY.replace("models:\n", "models:\n  big: {source: samples, path: big.npz}\n")))
    assert "models.big: cannot be used with dataset 'digits'" in msg
    assert "(3, 32, 32)" in msg and "(1, 8, 8)" in msg


def test_samples_class_count_mismatch(write_suite, tmp_path):
    for c in ("a", "b"):
        (tmp_path / "folder" / c).mkdir(parents=True)
    msg = errors_of(write_suite(TINY.replace("models:\n", "models:\n  f: {source: samples, path: folder}\n")))
    assert "2 class folders, the dataset has 10 classes" in msg


def test_unknown_name_in_cells(write_suite):
    msg = errors_of(write_suite(TINY + "cells:\n  - models: [rael]\n"))
    assert "cells.0.models.0: 'rael' is not defined in `models`. Did you mean 'real'" in msg


def test_bad_exclude(write_suite):
    msg = errors_of(write_suite(TINY + "cells:\n  - exclude: [{model: nope}]\n"))
    assert "cells.0.exclude.0.model" in msg


def test_bad_device(write_suite):
    msg = errors_of(write_suite(TINY.replace("seed: 0", "seed: 0\ndevice: gpu")))
    assert "device: String should match pattern" in msg


def test_cuda_requested_without_cuda(write_suite):
    import torch

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    msg = errors_of(write_suite(TINY.replace("seed: 0", "seed: 0\ndevice: cuda")))
    assert "no CUDA device" in msg


def test_all_problems_are_reported_at_once(write_suite):
    msg = errors_of(write_suite(TINY.replace("sigma: 0.5", "sigma: x").replace("{epochs: 3}", "{epochz: 3}")))
    assert msg.startswith("4 problems") or msg.count("\n  ") >= 3


def test_executor_block_is_validated_once_into_a_typed_config(write_suite):
    from bench.executors import ExecutorConfig
    from bench.executors.local import LocalOptions
    from bench.executors.slurm import SlurmOptions

    s = load_suite(write_suite(TINY + "executor: {name: slurm, time_min: 5, cluster: local}\n"))
    assert s.executor == ExecutorConfig("slurm", SlurmOptions(time_min=5, cluster="local"))
    assert load_suite(write_suite(TINY)).executor == ExecutorConfig("local", LocalOptions())
    msg = errors_of(write_suite(TINY + "executor: {name: slurmm}\n"))
    assert "executor.name: unknown executor 'slurmm'. Did you mean 'slurm'?" in msg
    msg = errors_of(write_suite(TINY + "executor: {name: local, wokers: 2}\n"))
    assert "executor.wokers: unknown option 'wokers' for executor 'local'. Did you mean 'workers'?" in msg


def test_a_plugin_whose_module_failed_to_import_is_reported_with_its_error(write_suite,
                                                                           monkeypatch):
    from bench.models import MODELS

    monkeypatch.setitem(MODELS._failed, "broken_gan", "module x.broken_gan failed to import: "
                        "ModuleNotFoundError: No module named 'ganlib'")
    msg = errors_of(write_suite(TINY.replace("source: reference, kind: real", "source: broken_gan")))
    assert ("models.real.source: model 'broken_gan' is unavailable: module x.broken_gan failed to "
            "import: ModuleNotFoundError: No module named 'ganlib'") in msg
