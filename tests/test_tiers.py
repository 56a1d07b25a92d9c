"""The test tiers of tests/conftest.py, read off this module's own collected tests: `heavy` from
what a test's code reaches or from a declaration, `fast` overriding the code, a shared expensive
fixture's tests in one xdist group, the longest handed out first."""

from __future__ import annotations

import pytest

import bench.cli


def _heavy(request) -> bool:
    return request.node.get_closest_marker("heavy") is not None


def _opens_a_store():
    """A helper of this module that names a store client (never called here)."""
    from mlflow import MlflowClient

    return MlflowClient


def test_a_plain_test_is_in_the_fast_tier(request):
    assert not _heavy(request)


def test_naming_the_cli_makes_a_test_heavy(request):
    assert bench.cli.main  # named only: the tier is read from the code, before any test runs
    assert _heavy(request)


def test_a_helper_of_the_module_that_opens_a_store_makes_a_test_heavy(request):
    assert _opens_a_store
    assert _heavy(request)


def test_a_training_fixture_makes_a_test_heavy(request, one_thread):
    assert _heavy(request)


@pytest.mark.fast
def test_fast_declares_a_test_quick_whatever_it_names(request):
    assert bench.cli.main
    assert not _heavy(request)


@pytest.mark.fast
@pytest.mark.parametrize("n", [1, pytest.param(2, marks=pytest.mark.heavy)])
def test_a_heavy_parameter_wins_over_fast(request, n):
    assert _heavy(request) == (n == 2)


@pytest.fixture(scope="module")
def shared(tmp_path_factory):
    """Stands for a module's suite run: built once per module, in files."""
    return tmp_path_factory.mktemp("shared")


@pytest.mark.heavy
def test_the_tests_of_a_shared_expensive_fixture_run_in_one_xdist_group(request, shared):
    (mark,) = request.node.iter_markers("xdist_group")
    assert mark.args == (f"{request.module.__name__}.shared",)


def test_a_light_test_of_a_shared_fixture_is_in_no_group(request, shared):
    assert not list(request.node.iter_markers("xdist_group"))


def test_the_longest_tests_are_handed_out_first(request):
    def rank(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("heavy") else 2

    ranks = [rank(item) for item in request.session.items]
    assert ranks == sorted(ranks)


def test_an_xdist_worker_takes_its_share_of_the_cores(monkeypatch):
    import torch
    from conftest import _split_the_cores

    from bench.executors.threads import cores

    before = torch.get_num_threads()
    monkeypatch.delenv("BENCH_THREADS", raising=False)
    monkeypatch.setenv("PYTEST_XDIST_WORKER_COUNT", "2")
    try:
        _split_the_cores()
        assert torch.get_num_threads() == max(1, cores() // 2)
    finally:
        torch.set_num_threads(before)


def test_a_run_lists_the_fast_tier_tests_over_the_limit(monkeypatch):
    from types import SimpleNamespace

    import conftest

    monkeypatch.setattr(conftest, "_SETUP", {})
    monkeypatch.setattr(conftest, "_SLOW_FAST", {})

    def report(nodeid, when, duration, keywords=()):
        return SimpleNamespace(nodeid=nodeid, when=when, duration=duration, passed=True,
                               keywords=dict.fromkeys(keywords, 1))

    for nodeid, setup, call, kw in [("t::slow_setup", 0.9, 0.2, ()), ("t::quick", 0.1, 0.2, ()),
                                    ("t::declared", 0.1, 5.0, ("heavy",))]:
        conftest.pytest_runtest_logreport(report(nodeid, "setup", setup, kw))
        conftest.pytest_runtest_logreport(report(nodeid, "call", call, kw))
    assert conftest._SLOW_FAST == {"t::slow_setup": pytest.approx(1.1)}  # setup counts
