"""Leaderboard tables from run records: mean +/- std over repeats, direction-aware sort,
merged shared values, reference rows set apart, the cross-dataset summary (mean rank, win
rate), the history of one model, and every text format (LaTeX escaping included)."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.leaderboard import (
    build_leaderboard,
    column_ranks,
    history_table,
    latex_escape,
    render,
    render_history,
    summarize,
)


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
    assert csv[0] == "dataset,model,reference,value,mean,std,n,higher_is_better,primary,rank,best"
    assert len(csv) == 3
    js = json.loads(render(tables, "json"))
    assert js["tables"][0]["rows"][0]["acc"]["mean"] == 0.5
    assert js["summary"] == [{"model": "a", "mean_rank": 1.0, "ranked": 2, "win_rate": 1.0,
                              "wins": 2, "columns": 2}]
    assert render([], "markdown") == "(no finished runs)\n"


def cross_dataset_runs(ref_name="ref"):
    """Two datasets, two metrics (q: acc primary + prec; f: fid primary, lower is better),
    three competing models and one reference that beats them all."""
    q = {"acc": True, "prec": True}
    f = {"fid": False}
    table = {  # dataset -> model -> (acc, prec, fid); None: no run
        "d1": {"a": (0.9, 0.1, 10.0), "b": (0.8, 0.2, 5.0), "c": (0.7, 0.9, 20.0), ref_name: (0.99, 1.0, 1.0)},
        "d2": {"a": (0.6, None, 3.0), "b": (0.7, None, 4.0), "c": (0.7, None, None), ref_name: (0.95, None, 0.5)},
    }
    rows = []
    for ds, models in table.items():
        for m, (acc, prec, fid) in models.items():
            ref = m == ref_name
            rows.append({"dataset": ds, "model": m, "metric": "q", "repeat": 0, "directions": q,
                         "primary": "acc", "reference": ref, "m:acc": acc,
                         **({"m:prec": prec} if prec is not None else {})})
            if fid is not None:
                rows.append({"dataset": ds, "model": m, "metric": "f", "repeat": 0, "directions": f,
                             "primary": "fid", "reference": ref, "m:fid": fid})
    return runs(rows)


def test_summary_mean_rank_over_primaries_and_win_rate_over_all_values():
    tables = build_leaderboard(cross_dataset_runs())
    s = summarize(tables)
    # ranks on (d1 acc, d1 fid, d2 acc, d2 fid): a 1,2,3,1  b 2,1,1.5,2  c 3,3,1.5,-
    assert list(s.index) == ["b", "a", "c"]  # the reference is never ranked
    assert np.isclose(s.at["b", "mean_rank"], 1.625) and np.isclose(s.at["a", "mean_rank"], 1.75)
    assert np.isclose(s.at["c", "mean_rank"], 2.5) and s.at["c", "ranked"] == 3
    # wins over every column incl. the non-primary prec: a d1.acc d2.fid; b d1.fid d2.acc (tie);
    # c d1.prec d2.acc (tie); columns: a and b 5, c 4 (no fid on d2)
    assert (s.at["a", "wins"], s.at["a", "columns"]) == (2, 5)
    assert (s.at["c", "wins"], s.at["c", "columns"]) == (2, 4)
    assert np.isclose(s.at["c", "win_rate"], 0.5) and np.isclose(s.at["b", "win_rate"], 0.4)


def test_reference_rows_are_not_ranked_and_are_set_apart_in_markdown():
    tables = build_leaderboard(cross_dataset_runs())
    d1 = tables[0]
    assert list(d1.mean.index)[0] == "ref"  # the table's sort order still includes it
    assert d1.ranked == ["a", "b", "c"] and d1.references == ["ref"]
    ranks = column_ranks(d1)
    assert np.isnan(ranks.at["ref", "acc"]) and ranks.at["a", "acc"] == 1
    md = render(tables)
    section = md[md.index("### d1"):md.index("### d2")]
    lines = [ln for ln in section.splitlines() if ln.startswith("|")]
    names = [ln.split("|")[1].strip() for ln in lines[2:]]
    assert names == ["a", "b", "c", "*reference (not ranked)*", "ref (reference)"]
    assert "**0.9000**" in section and "**0.9900**" not in section  # best among competitors only
    summary = md[:md.index("### d1")]
    assert "### Summary over 2 dataset(s)" in summary and "ref" not in summary.split("\n\n", 2)[2]
    assert "40% (2/5)" in summary


def test_all_reference_tables_have_no_summary():
    df = runs([{"dataset": "d", "model": m, "metric": "m", "repeat": 0, "directions": UP,
                "primary": "acc", "reference": True, "m:acc": v} for m, v in (("r1", 0.9), ("r2", 0.5))])
    tables = build_leaderboard(df)
    assert summarize(tables).empty
    md = render(tables)
    assert "Summary" not in md and md.index("r1 (reference)") < md.index("r2 (reference)")


def test_latex_escapes_user_text_and_uses_booktabs():
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")
    nasty = "my_model & co 100% #1"
    df = cross_dataset_runs(ref_name=nasty)
    tex = render(build_leaderboard(df), "latex")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"my\_model \& co 100\% \#1" in tex and nasty not in tex
    assert r"acc $\uparrow$" in tex and r"fid $\downarrow$" in tex
    # the reference comes after its own \midrule, under a label, never in bold
    d1 = tex[tex.index(r"\caption{d1"):]
    d1 = d1[:d1.index(r"\end{table}")]
    assert d1.index(r"\textit{reference (not ranked)}") < d1.index(r"my\_model")
    assert r"$\mathbf{0.9000}$" in d1 and r"\mathbf{0.9900}" not in d1
    assert tex.count(r"\begin{tabular}") == 3  # summary + two datasets
    assert render([], "latex").startswith("%")


def test_html_is_not_a_text_format():
    with pytest.raises(ValueError, match="html_report"):
        render([], "html")


def test_history_of_one_model_over_suite_runs():
    def night(acc, fid):
        return runs([{"dataset": "d", "model": "a", "metric": "q", "repeat": r, "directions": UP,
                      "primary": "acc", "m:acc": acc + 0.01 * r} for r in range(2)]
                    + [{"dataset": "d", "model": "a", "metric": "f", "repeat": 0, "directions": DOWN,
                        "primary": "fid", "m:fid": fid},
                       {"dataset": "d", "model": "other", "metric": "q", "repeat": 0, "directions": UP,
                        "primary": "acc", "m:acc": 0.1}])

    empty = night(0, 0).iloc[0:0]
    points = [("2026-01-01 03:00", "r1", night(0.5, 30.0)), ("2026-01-02 03:00", "r2", empty),
              ("2026-01-03 03:00", "r3", night(0.7, 20.0))]
    h = history_table(points, "a")
    assert list(h.columns) == ["date", "run_id", "d/acc ↑", "d/fid ↓"]
    assert list(h["run_id"]) == ["r1", "r2", "r3"]
    assert np.isclose(h.at[0, "d/acc ↑"], 0.505) and np.isnan(h.at[1, "d/acc ↑"])
    md = render_history(h, "a")
    assert "0.5050" in md and "0.7050" in md and "20.0000" in md and md.index("r1") < md.index("r3")
    assert json.loads(render_history(h, "a", "json"))["runs"][2]["d/fid ↓"] == 20.0
    assert render_history(h, "a", "csv").splitlines()[0] == "date,run_id,d/acc ↑,d/fid ↓"
    assert r"d/acc $\uparrow$" in render_history(h, "a", "latex")


def test_default_sort_is_the_primary_of_the_metric_that_ran_first():
    first = [{"dataset": "d", "model": m, "metric": "q", "repeat": 0, "directions": UP,
              "primary": "acc", "m:acc": v} for m, v in (("x", 0.2), ("y", 0.8))]
    later = [{"dataset": "d", "model": m, "metric": "f", "repeat": 0, "directions": DOWN,
              "primary": "fid", "m:fid": v} for m, v in (("x", 1.0), ("y", 9.0))]
    (t,) = build_leaderboard(runs(first + later))
    assert t.sort_by == "acc" and list(t.mean.columns[:2]) == ["acc", "fid"]
    assert list(t.mean.index) == ["y", "x"]
    (t,) = build_leaderboard(runs(first + later), sort_by="fid")
    assert list(t.mean.index) == ["x", "y"]
