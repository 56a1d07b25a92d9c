"""End to end: a tiny suite into a temporary SQLite store, read back; resume; failure
isolation; Ctrl-C; attach to an existing run as `mlflow run` does."""

import json

import pytest
from conftest import TINY
from mlflow import MlflowClient

from bench.config.suite import load_suite
from bench.run.runner import run_suite

FAST = TINY.replace("{epochs: 3}", "{epochs: 6}")


def children(client, exp_id, parent):
    return client.search_runs([exp_id], f"tags.`mlflow.parentRunId` = '{parent}'")


@pytest.fixture(scope="module")
def first_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("e2e")
    suite_path = tmp / "suite.yaml"
    suite_path.write_text(FAST)
    uri = f"sqlite:///{tmp}/mlflow.db"
    cache = str(tmp / "cache")
    report = run_suite(load_suite(suite_path), tracking_uri=uri, progress=False, cache_dir=cache)
    return suite_path, uri, cache, report


def test_runs_every_cell_and_logs_it(first_run):
    suite_path, uri, _, report = first_run
    assert report.ok and report.count("finished") == 4
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name("tiny")
    parent = client.get_run(report.parent_run_id)
    assert parent.info.status == "FINISHED"
    assert parent.data.params["seed"] == "0"
    assert parent.data.tags["bench.suite"] == "tiny"
    runs = children(client, exp.experiment_id, report.parent_run_id)
    assert len(runs) == 4
    by = {(r.data.tags["bench.model"], r.data.tags["bench.metric"]): r for r in runs}
    r = by[("real", "gan_train")]
    assert r.info.status == "FINISHED"
    for tag in ("bench.cell_key", "bench.dataset", "bench.version", "bench.seed"):
        assert r.data.tags[tag]
    assert r.data.params["metric.classifier.epochs"] == "6"
    assert r.data.params["model.kind"] == "real"
    assert 0.5 < r.data.metrics["gan_train_acc"] <= 1
    assert r.data.metrics["real_val_acc"] > 0.8
    inputs = r.inputs.dataset_inputs
    assert {i.dataset.name for i in inputs} == {"digits"}
    assert {t.value for i in inputs for t in i.tags} == {"train", "val"}
    arts = {a.path for a in client.list_artifacts(r.info.run_id)}
    assert "gan_train_per_class.csv" in arts
    parent_arts = {a.path for a in client.list_artifacts(report.parent_run_id)}
    assert {"leaderboard.md", "leaderboard.csv", "suite.yaml", "cells.json", "summary.md"} <= parent_arts
    # the noisy reference is worse than real data by GAN-test
    assert by[("noisy", "gan_test")].data.metrics["gan_test_acc"] < r.data.metrics["real_val_acc"]
    assert "real (reference)" in report.leaderboard


def test_second_run_is_all_cached(first_run):
    suite_path, uri, cache, first = first_run
    report = run_suite(load_suite(suite_path), tracking_uri=uri, progress=False, cache_dir=cache)
    assert report.count("cached") == 4 and report.count("finished") == 0
    assert {o.run_id for o in report.outcomes} == {o.run_id for o in first.outcomes}
    assert "gan_train_acc" in report.leaderboard  # the leaderboard still covers cached cells


def test_force_reruns(first_run, tmp_path):
    suite_path, uri, cache, _ = first_run
    s = load_suite(suite_path)
    s.cells = s.cells[:1]
    report = run_suite(s, tracking_uri=uri, progress=False, cache_dir=cache, force=True)
    assert report.count("finished") == 1


def test_failure_isolation(write_suite, tracking_uri):
    text = FAST + "  broken: {source: test_failing}\n"
    report = run_suite(load_suite(write_suite(text)), tracking_uri=tracking_uri, progress=False)
    assert not report.ok
    assert report.count("failed") == 2 and report.count("finished") == 4
    client = MlflowClient(tracking_uri)
    failed = [o for o in report.outcomes if o.status == "failed"]
    for o in failed:
        run = client.get_run(o.run_id)
        assert run.info.status == "FAILED"
        err = open(client.download_artifacts(o.run_id, "error.txt")).read()
        assert "this metric always fails" in err and "Traceback" in err
    assert client.get_run(report.parent_run_id).info.status == "FAILED"
    assert "2 failed" in report.summary()
    # a rerun retries only the failed cells
    again = run_suite(load_suite(write_suite(text)), tracking_uri=tracking_uri, progress=False)
    assert again.count("cached") == 4 and again.count("failed") == 2


def test_interrupt_marks_killed_and_resume_finishes(write_suite, tracking_uri):
    text = TINY.replace("{epochs: 3}", "{epochs: 1}") + "  stop: {source: test_interrupt}\n"
    text += "cells:\n  - metrics: [gan_test, stop]\n"
    path = write_suite(text)
    report = run_suite(load_suite(path), tracking_uri=tracking_uri, progress=False)
    assert report.interrupted
    assert [o.status for o in report.outcomes] == ["finished", "killed"]
    client = MlflowClient(tracking_uri)
    assert client.get_run(report.outcomes[-1].run_id).info.status == "KILLED"
    assert client.get_run(report.parent_run_id).info.status == "KILLED"
    # the user fixes the cause (drops the stop metric) and runs again: finished work is kept
    fixed = write_suite(text.replace("[gan_test, stop]", "[gan_test]"))
    again = run_suite(load_suite(fixed), tracking_uri=tracking_uri, progress=False)
    assert [o.status for o in again.outcomes] == ["cached", "finished"]


def test_attaches_to_an_existing_run_without_relogging_params(write_suite, tracking_uri, monkeypatch):
    """`mlflow run --experiment-name <suite's experiment>`: the suite attaches to MLflow's run
    and gives it the suite's name."""
    client = MlflowClient(tracking_uri)
    exp = client.create_experiment("tiny")
    outer = client.create_run(exp, run_name="unruly-mouse-977")
    client.log_param(outer.info.run_id, "suite", "something")
    monkeypatch.setenv("MLFLOW_RUN_ID", outer.info.run_id)
    text = TINY.replace("{epochs: 3}", "{epochs: 1}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n"
    report = run_suite(load_suite(write_suite(text)), tracking_uri=tracking_uri, progress=False)
    assert report.parent_run_id == outer.info.run_id
    run = client.get_run(outer.info.run_id)
    assert run.data.params == {"suite": "something"}
    assert run.data.tags["bench.suite"] == "tiny" and run.info.run_name.startswith("tiny 20")
    kids = children(client, exp, outer.info.run_id)
    assert len(kids) == 1 and kids[0].info.status == "FINISHED"
    cells = json.loads(open(client.download_artifacts(outer.info.run_id, "cells.json")).read())
    assert [c["status"] for c in cells.values()] == ["finished"]


def test_an_outer_run_in_another_experiment_links_to_the_suite_run(write_suite, tracking_uri, monkeypatch):
    """`mlflow run` without --experiment-name logs into "Default": the cells still land in
    the suite's experiment (so `bench leaderboard SUITE` and resume see them), and the outer
    run points at the suite run and holds the leaderboard."""
    client = MlflowClient(tracking_uri)
    other = client.create_experiment("Default-ish")
    outer = client.create_run(other)
    monkeypatch.setenv("MLFLOW_RUN_ID", outer.info.run_id)
    text = TINY.replace("{epochs: 3}", "{epochs: 1}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n"
    report = run_suite(load_suite(write_suite(text)), tracking_uri=tracking_uri, progress=False)
    exp = client.get_experiment_by_name("tiny")
    assert report.parent_run_id != outer.info.run_id and report.experiment_id == exp.experiment_id
    assert client.get_run(report.parent_run_id).info.status == "FINISHED"
    tags = client.get_run(outer.info.run_id).data.tags
    assert tags["bench.suite_run_id"] == report.parent_run_id and tags["bench.suite_experiment"] == "tiny"
    assert "leaderboard.md" in {a.path for a in client.list_artifacts(outer.info.run_id)}
    monkeypatch.delenv("MLFLOW_RUN_ID")
    again = run_suite(load_suite(write_suite(text)), tracking_uri=tracking_uri, progress=False)
    assert [o.status for o in again.outcomes] == ["cached"]


def test_a_live_runner_holds_the_suite_and_a_dead_ones_run_is_closed(write_suite, tracking_uri):
    """Two runners on one suite and store: the second refuses while the first's heartbeat is
    fresh; a suite run whose runner died (stale heartbeat) is closed KILLED by the next run."""
    import time

    from bench.core.errors import BenchError
    from bench.record.tracking import Tracker

    text = TINY.replace("{epochs: 3}", "{epochs: 1}") + "cells:\n  - models: [real]\n    metrics: [gan_test]\n"
    suite = load_suite(write_suite(text))
    tracker = Tracker(tracking_uri, "tiny")
    live = tracker.create_run("tiny", {"bench.kind": "suite", "bench.suite": "tiny",
                                       "bench.heartbeat": f"{time.time():.1f}", "bench.runner": "pid 1 on elsewhere"})
    with pytest.raises(BenchError, match="being run by pid 1 on elsewhere"):
        run_suite(suite, tracking_uri=tracking_uri, progress=False)
    client = MlflowClient(tracking_uri)
    assert not client.search_runs([tracker.experiment_id], "tags.`bench.kind` = 'cell'")  # no work done
    # the same runner, dead for 10 minutes (kill -9 leaves its run RUNNING)
    tracker.set_tags(live, {"bench.heartbeat": f"{time.time() - 600:.1f}"})
    report = run_suite(suite, tracking_uri=tracking_uri, progress=False)
    assert report.ok
    dead = client.get_run(live)
    assert dead.info.status == "KILLED" and "closed by the next run" in dead.data.tags["bench.error"]
    assert client.get_run(report.parent_run_id).data.tags["bench.heartbeat"]
