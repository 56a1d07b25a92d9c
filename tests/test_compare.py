"""Regression detection: a planted regression is found, noise alone is not, improvements
and metric-version changes are not alarms; and the CLI on real suite runs."""

import numpy as np
import pandas as pd
import pytest
from mlflow import MlflowClient

from bench.cli import main
from bench.record.values import Value, diagnostic, score
from bench.report.compare import CompareConfig, compare, render

DECL = {"fid": score("lower", "quality"), "acc": score("higher", "utility"),
        "auth": score("target", "memorisation", ref=True), "ct": score("target", target=0.0)}


def suite_run(values: dict[tuple[str, str], list[float]], version: str = "1",
              decl: dict[str, Value] | None = None, held_out: str | None = None) -> pd.DataFrame:
    """Cell runs of one suite run: {(model, value): [one float per repeat]}."""
    rows = []
    for (model, value), xs in values.items():
        for r, x in enumerate(xs):
            rows.append({"dataset": "d", "model": model, "metric": "m", "repeat": r,
                         "metric_version": version, "values": decl or DECL,
                         "held_out": model == held_out, f"m:{value}": x})
    return pd.DataFrame(rows)


def noisy_history(rng, n=7, center=20.0, sd=0.5):
    return [suite_run({("g", "fid"): [center + rng.normal(0, sd)]}) for _ in range(n)]


def status(df, model="g", value="fid"):
    return df.set_index(["model", "value"]).loc[(model, value), "status"]


def test_planted_regression_is_found_against_history():
    rng = np.random.default_rng(0)
    hist = noisy_history(rng)
    base = hist[0]
    new = suite_run({("g", "fid"): [25.0]})  # +25%: fid is lower-is-better
    df = compare(base, new, hist)
    assert status(df) == "regression" and df.iloc[0]["noise"] == "history"


@pytest.mark.heavy  # 11 nights of 200 cells
def test_noise_alone_is_not_a_regression():
    """200 cells of pure noise (10% SD: twice the threshold, inside the band) against 10 nights
    of history (`bench compare`'s default): about 1% false alarms."""
    rng = np.random.default_rng(1)

    def night():
        return suite_run({(f"g{i}", "fid"): [20.0 + rng.normal(0, 2.0)] for i in range(200)})

    hist = [night() for _ in range(10)]
    df = compare(hist[0], night(), hist)
    assert (df["status"] == "regression").mean() <= 0.03 and (df["noise"] == "history").all()


def test_a_diagnostic_that_moves_is_shown_never_counted_as_a_regression():
    decl = {**DECL, "tsts": diagnostic("higher")}
    df = compare(suite_run({("g", "tsts"): [0.9]}, decl=decl), suite_run({("g", "tsts"): [0.5]}, decl=decl))
    assert status(df, value="tsts") == "changed"


def test_direction_decides_regression_or_improvement():
    base = suite_run({("g", "acc"): [0.9]})
    worse = suite_run({("g", "acc"): [0.7]})
    better = suite_run({("g", "acc"): [0.99]})
    assert status(compare(base, worse), value="acc") == "regression"
    assert status(compare(base, better), value="acc") == "improvement"


def test_a_target_value_regresses_when_it_moves_away_from_its_target_either_way():
    """authenticity's ideal is the held-out row's value (0.5 here): 0.55 -> 0.9 (towards a
    constant image) and 0.55 -> 0.1 (towards copying) are both regressions; 0.7 -> 0.52 is an
    improvement although the value fell."""
    def night(x):
        return suite_run({("g", "auth"): [x], ("held", "auth"): [0.5]}, held_out="held")

    assert status(compare(night(0.55), night(0.9)), value="auth") == "regression"
    assert status(compare(night(0.55), night(0.1)), value="auth") == "regression"
    assert status(compare(night(0.7), night(0.52)), value="auth") == "improvement"
    # a fixed target (0): -3 -> -1 is better, 1 -> 3 is worse
    assert status(compare(suite_run({("g", "ct"): [-3.0]}), suite_run({("g", "ct"): [-1.0]})), value="ct") == "improvement"
    assert status(compare(suite_run({("g", "ct"): [1.0]}), suite_run({("g", "ct"): [3.0]})), value="ct") == "regression"
    row = compare(night(0.55), night(0.9)).set_index("model").loc["g"]
    assert row["ideal"] == "→ref" and row["target"] == 0.5


def test_repeats_give_the_noise_band_without_history():
    base = suite_run({("g", "fid"): [20, 24, 16]})
    new = suite_run({("g", "fid"): [22, 27, 18]})  # +12% but well inside the repeat spread
    assert status(compare(base, new)) == "unchanged"
    tight = suite_run({("g", "fid"): [22.1, 22.0, 22.2]})
    assert status(compare(suite_run({("g", "fid"): [20.0, 20.1, 19.9]}), tight)) == "regression"


def test_threshold_per_value_and_version_segments():
    base = suite_run({("g", "fid"): [20.0]})
    new = suite_run({("g", "fid"): [21.5]})  # +7.5%
    assert status(compare(base, new)) == "regression"
    assert status(compare(base, new, cfg=CompareConfig(thresholds={"fid": 0.1}))) == "unchanged"
    bumped = suite_run({("g", "fid"): [40.0]}, version="2")
    assert status(compare(base, bumped)) == "new segment"
    md = render(compare(base, new))
    assert "1 regression(s)" in md and "+7.5%" in md


def test_compare_and_nightly_cli_on_real_runs(write_suite, tmp_path, capsys):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    base = """\
name: nightly
datasets:
  digits: {source: digits}
models:
  m: {source: reference, kind: real}
metrics:
  gan_test: {classifier: {epochs: 4}}
"""
    path = write_suite(base)
    assert main(["nightly", str(path), "--tracking-uri", uri, "--history", "0"]) == 0
    assert "nothing to compare yet" in capsys.readouterr().out
    assert main(["nightly", str(path), "--tracking-uri", uri, "--history", "0"]) == 0
    out = capsys.readouterr().out
    assert "0 regression(s)" in out
    # last night's change: the model now produces noisy images
    write_suite(base.replace("kind: real", "kind: noise, sigma: 0.4"))
    assert main(["nightly", str(path), "--tracking-uri", uri, "--history", "0"]) == 1
    assert "1 regression(s)" in capsys.readouterr().out
    assert main(["compare", str(path), "previous", "latest", "--tracking-uri", uri, "--history", "0",
                 "--format", "json", "--out", str(tmp_path / "c.json")]) == 1
    import json

    doc = json.loads((tmp_path / "c.json").read_text())
    assert doc["suite"] == "nightly" and doc["regressions"] == 1 and doc["threshold"] == 0.05
    client = MlflowClient(uri)
    runs = {r.info.run_id: r for r in client.search_runs(
        [client.get_experiment_by_name("nightly").experiment_id], "tags.`bench.kind` = 'suite'",
        order_by=["attributes.start_time DESC"])}
    assert doc["new"] == list(runs)[0] and doc["base"] == list(runs)[1]
    # each night's verdict is a tag of its suite run (later nights leave those cells out of
    # their baseline); --accept makes the latest run the baseline, as a tag too
    verdicts = [json.loads(r.data.tags["bench.regressed"]) for r in runs.values()]
    assert verdicts[1:] == [[], []] and [v[3] for v in verdicts[0]] == ["gan_test_acc"]
    assert main(["compare", str(path), "--tracking-uri", uri, "--accept"]) == 0
    assert client.get_run(doc["new"]).data.tags["bench.baseline"] == "accepted"
    assert main(["compare", str(path), "latest", "latest", "--tracking-uri", uri]) == 2
    rows = doc["rows"]
    assert {r["status"] for r in rows if r["value"] == "gan_test_acc"} == {"regression"}
    assert {r["ideal"] for r in rows} <= {"higher", "lower", "target"}  # the leaderboard's words
    # diagnostics move with the model but are never counted as regressions
    assert all(r["role"] == "score" for r in rows if r["status"] == "regression")
    assert sum(r["status"] == "regression" for r in rows) == doc["regressions"]
    # suite runs are named by suite and time, cell params hold the values actually used
    names = [r.data.tags["mlflow.runName"] for r in runs.values()]
    assert all(n.startswith("nightly 20") for n in names)
    cell = client.search_runs([client.get_experiment_by_name("nightly").experiment_id],
                              "tags.`bench.kind` = 'cell'", max_results=1)[0]
    assert cell.data.params["metric.classifier.batch_size"] == "128"
    assert cell.data.params["metric.classifier.name"] == "small_cnn"


def test_compare_json_uses_the_leaderboards_vocabulary():
    import json

    decl = {**DECL, "tsts": diagnostic("higher")}
    base = suite_run({("g", "fid"): [20.0], ("g", "tsts"): [0.9], ("g", "ct"): [1.0]}, decl=decl)
    new = suite_run({("g", "fid"): [30.0], ("g", "tsts"): [0.5], ("g", "ct"): [1.0]}, decl=decl)
    cfg = CompareConfig(thresholds={"fid": 0.1})
    doc = json.loads(render(compare(base, new, cfg=cfg), "json", suite="s", base="b1", new="n1", cfg=cfg))
    assert (doc["suite"], doc["base"], doc["new"], doc["regressions"]) == ("s", "b1", "n1", 1)
    assert doc["thresholds"] == {"fid": 0.1}
    rows = {r["value"]: r for r in doc["rows"]}
    assert rows["fid"]["ideal"] == "lower" and rows["fid"]["status"] == "regression"
    assert rows["tsts"]["status"] == "changed" and rows["tsts"]["role"] == "diagnostic"
    assert rows["ct"]["ideal"] == "target" and rows["ct"]["target"] == "0"
    assert rows["ct"]["target_value"] == 0.0 and rows["fid"]["target"] is None
    assert "↓" not in json.dumps(doc)


def test_a_threshold_for_an_unknown_value_is_refused():
    import pytest

    from bench.core.errors import BenchError

    base, new = suite_run({("g", "fid"): [20.0]}), suite_run({("g", "fid"): [21.0]})
    with pytest.raises(BenchError, match="no value of this name.*Did you mean 'fid'"):
        compare(base, new, cfg=CompareConfig(thresholds={"fdi": 0.1}))
