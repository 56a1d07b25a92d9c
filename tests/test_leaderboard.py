"""Leaderboard tables from run records: mean +/- std over repeats, direction-aware sort,
merged shared values, reference rows, and every output format."""

import json

import numpy as np
import pandas as pd

from bench.leaderboard import build_leaderboard, render


def runs(rows):
    base = {"suite": "s", "cell_key": "k", "primary": "", "reference": False, "directions": {}}
    return pd.DataFrame([{**base, "start_time": i, **r} for i, r in enumerate(rows)])


UP = {"acc": True, "real_val_acc": True}
DOWN = {"fid": False}


def test_mean_std_over_repeats_and_sort_by_direction():
    df = runs(
        [{"dataset": "d", "model": "a", "metric": "m", "repeat": r, "directions": UP, "primary": "acc",
          "m:acc": v, "m:real_val_acc": 0.9} for r, v in enumerate([0.5, 0.7])]
        + [{"dataset": "d", "model": "b", "metric": "m", "repeat": 0, "directions": UP, "primary": "acc",
            "m:acc": 0.8, "m:real_val_acc": 0.9, "reference": True}]
    )
    (t,) = build_leaderboard(df)
    assert list(t.mean.index) == ["b", "a"] and t.sort_by == "acc"
    assert np.isclose(t.mean.at["a", "acc"], 0.6) and np.isclose(t.std.at["a", "acc"], np.std([0.5, 0.7], ddof=1))
    md = render([t])
    assert "acc ↑" in md and "0.6000 ± 0.1414" in md and "b (reference)" in md


def test_lower_is_better_sorts_ascending_and_shows_down_arrow():
    df = runs([{"dataset": "d", "model": m, "metric": "fid", "repeat": 0, "directions": DOWN,
                "primary": "fid", "m:fid": v} for m, v in (("x", 30.0), ("y", 10.0))])
    (t,) = build_leaderboard(df)
    assert list(t.mean.index) == ["y", "x"]
    assert "fid ↓" in render([t])


def test_latest_run_of_a_cell_wins():
    df = runs([{"dataset": "d", "model": "a", "metric": "m", "repeat": 0, "directions": UP, "m:acc": v}
               for v in (0.1, 0.9)])  # second has the later start_time
    (t,) = build_leaderboard(df)
    assert t.mean.at["a", "acc"] == 0.9 and t.n.at["a", "acc"] == 1


def test_shared_values_merge_when_equal_and_split_when_not():
    same = runs([{"dataset": "d", "model": "a", "metric": m, "repeat": 0, "directions": UP,
                  "m:real_val_acc": 0.95} for m in ("gan_train", "gan_test")])
    (t,) = build_leaderboard(same)
    assert list(t.mean.columns) == ["real_val_acc"]
    diff = runs([{"dataset": "d", "model": "a", "metric": m, "repeat": 0, "directions": UP,
                  "m:real_val_acc": v} for m, v in (("cnn", 0.95), ("resnet", 0.97))])
    (t,) = build_leaderboard(diff)
    assert sorted(t.mean.columns) == ["cnn.real_val_acc", "resnet.real_val_acc"]


def test_one_table_per_dataset_and_csv_json():
    df = runs([{"dataset": d, "model": "a", "metric": "m", "repeat": 0, "directions": UP, "m:acc": 0.5}
               for d in ("d1", "d2")])
    tables = build_leaderboard(df)
    assert [t.dataset for t in tables] == ["d1", "d2"]
    csv = render(tables, "csv").splitlines()
    assert csv[0] == "dataset,model,reference,value,mean,std,n,higher_is_better" and len(csv) == 3
    js = json.loads(render(tables, "json"))
    assert js[0]["rows"][0]["acc"]["mean"] == 0.5
    assert render([], "markdown") == "(no finished runs)\n"
