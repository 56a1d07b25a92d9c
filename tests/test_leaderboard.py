"""Leaderboard tables from run records: roles (score / diagnostic / data reference), ideals
(higher, lower, target: fixed, held-out row, fallback value), uncertainty (repeats or a logged
interval) in ranks, bolding and printed digits, the per-aspect summary, reference rows set
apart, the history of one model, and every text format (escaping included)."""

import json

import numpy as np
import pandas as pd
import pytest

from bench.record.values import Value, diagnostic, reference, score
from bench.report.leaderboard import (
    best_mask,
    build_leaderboard,
    column_ranks,
    decimals_for,
    fmt_value,
    history_table,
    latex_escape,
    render,
    render_history,
    summarize,
)

ACC = {"acc": score("higher", "utility"), "real_val_acc": reference("higher"),
       "tsts": diagnostic("higher")}
FID = {"fid": score("lower", "quality")}
AUTH = {"auth": score("target", "memorisation", ref=True)}
GTEST = {"gtest": score("target", "quality", ref=True, fallback="real_val_acc"),
         "real_val_acc": reference("higher")}
COPY = {"ct": score("target", "memorisation", ref=True, target=0.0)}


def runs(rows):
    base = {"suite": "s", "cell_key": "k", "primary": "", "reference": False, "held_out": False,
            "values": {}}
    return pd.DataFrame([{**base, "start_time": i, **r} for i, r in enumerate(rows)])


def cell(model, metric, values, primary, ds="d", repeat=0, **m):
    """One run; m holds value=x or value=(x, lo, hi)."""
    row = {"dataset": ds, "model": model, "metric": metric, "repeat": repeat, "values": values,
           "primary": primary}
    for k, v in m.items():
        if k in ("reference", "held_out"):
            row[k] = v
        elif isinstance(v, tuple):
            row[f"m:{k}"], row[f"m:{k}.lo"], row[f"m:{k}.hi"] = v
        else:
            row[f"m:{k}"] = v
    return row


def section(md, dataset):
    start = md.index(f"### {dataset}")
    nxt = md.find("### ", start + 4)
    return md[start:] if nxt < 0 else md[start:nxt]


def test_mean_std_over_repeats_digits_from_uncertainty_and_sort():
    df = runs([cell("a", "m", ACC, "acc", repeat=r, acc=v, real_val_acc=0.9) for r, v in enumerate([0.5, 0.7])]
              + [cell("b", "m", ACC, "acc", acc=0.8, real_val_acc=0.9, reference=True)])
    (t,) = build_leaderboard(df)
    assert list(t.mean.index) == ["b", "a"] and t.sort_by == "acc"
    assert np.isclose(t.mean.at["a", "acc"], 0.6) and np.isclose(t.std.at["a", "acc"], np.std([0.5, 0.7], ddof=1))
    md = render([t])
    # the spread (0.1414) with two significant digits, the mean to match: never "± 0"
    assert "acc ↑" in md and "0.60 ± 0.14" in md and "b (reference)" in md
    assert "mean ± std over 2 repeats" in md


def test_printed_digits_follow_the_interval():
    assert decimals_for(0.024) == 2 and decimals_for(0.012) == 3 and decimals_for(3.0) == 0
    assert decimals_for(float("nan")) is None
    assert fmt_value(0.91034, lo=0.886, hi=0.934, u=0.024) == "0.91 [0.89, 0.93]"
    assert fmt_value(0.91034) == "0.9103"


def test_lower_is_better_sorts_ascending_and_shows_down_arrow():
    df = runs([cell(m, "fid", FID, "fid", fid=v) for m, v in (("x", 30.0), ("y", 10.0))])
    (t,) = build_leaderboard(df)
    assert list(t.mean.index) == ["y", "x"]
    assert "fid ↓" in render([t])


def test_latest_run_of_a_cell_wins():
    df = runs([cell("a", "m", ACC, "acc", acc=v) for v in (0.1, 0.9)])
    (t,) = build_leaderboard(df)
    assert t.mean.at["a", "acc"] == 0.9 and t.n.at["a", "acc"] == 1


def test_shared_values_merge_when_equal_and_split_when_not():
    same = runs([cell("a", m, ACC, "acc", acc=0.5, real_val_acc=0.95) for m in ("gan_train", "gan_test")])
    (t,) = build_leaderboard(same)
    assert list(t.data["value"]) == ["real_val_acc"]
    diff = runs([cell("a", m, ACC, "acc", acc=0.5, real_val_acc=v) for m, v in (("cnn", 0.95), ("resnet", 0.97))])
    (t,) = build_leaderboard(diff)
    assert sorted(t.data["value"]) == ["cnn.real_val_acc", "resnet.real_val_acc"]


def test_data_values_are_shown_once_never_ranked_and_diagnostics_never_bold():
    df = runs([cell(m, "gan_train", ACC, "acc", acc=(a, a - 0.01, a + 0.01), tsts=ts,
                    real_val_acc=(0.99, 0.98, 0.995))
               for m, a, ts in (("cgan", 0.9, 0.5), ("noise", 0.5, 1.0))])
    (t,) = build_leaderboard(df)
    assert "real_val_acc" not in t.mean.columns and t.scores == ["acc"] and t.diagnostics == ["tsts"]
    ranks = column_ranks(t)
    assert ranks["tsts"].isna().all() and ranks.at["cgan", "acc"] == 1
    md = render([t])
    assert "**0.900 [0.890, 0.910]**" in md  # separated from the runner-up: bold
    assert "**1" not in md  # the diagnostic tsts of noise is the highest, never bold
    assert "Data reference" in md and "`real_val_acc` 0.990 [0.980, 0.995]" in md
    assert md.count("real_val_acc") == 1


def test_ties_within_uncertainty_share_a_rank_and_nobody_is_bold():
    df = runs([cell(m, "q", ACC, "acc", acc=(a, a - 0.03, a + 0.03)) for m, a in
               (("a", 0.90), ("b", 0.89), ("c", 0.50))])
    (t,) = build_leaderboard(df)
    ranks = column_ranks(t)
    assert ranks.at["a", "acc"] == 1 and ranks.at["b", "acc"] == 1 and ranks.at["c", "acc"] == 3
    assert not best_mask(t)["acc"].any()
    s = summarize([t])
    assert s.at["a", "wins"] == 0 and s.at["b", "wins"] == 0  # a tie is not a win for everyone
    assert s.at["a", "place"] == s.at["b", "place"] == 1 and s.at["c", "place"] == 3


def test_target_ideal_ranks_by_distance_to_the_held_out_row():
    """A constant grey image is 'perfectly authentic' (1.0): far from what held-out real images
    get, so it must rank last, not first; copying (0.0) is just as wrong."""
    vals = {"good": 0.52, "grey": 1.0, "copy": 0.0, "noisy": 0.7, "held": 0.5}
    df = runs([cell(m, "authenticity", AUTH, "auth", auth=(v, v - 0.02, v + 0.02),
                    reference=m == "held", held_out=m == "held") for m, v in vals.items()])
    (t,) = build_leaderboard(df)
    assert t.held_out == "held" and np.allclose(t.targets["auth"], 0.5)
    assert list(t.ranked) == ["good", "noisy", "grey", "copy"] or list(t.ranked)[:2] == ["good", "noisy"]
    ranks = column_ranks(t)
    assert ranks.at["good", "auth"] == 1 and ranks.at["grey", "auth"] == 3 and ranks.at["copy", "auth"] == 3
    assert best_mask(t).at["good", "auth"]
    md = render([t])
    assert "auth →ref" in md and "held (held-out reference)" in md and "`held`" in md


def test_target_falls_back_to_a_value_of_the_run_or_a_number_or_is_not_ranked():
    gt = runs([cell(m, "gan_test", GTEST, "gtest", gtest=(v, v - 0.01, v + 0.01), real_val_acc=0.95)
               for m, v in (("memoriser", 1.0), ("good", 0.94), ("bad", 0.5))])
    (t,) = build_leaderboard(gt)
    assert t.target_source["gtest"] == "real_val_acc"
    assert column_ranks(t).at["good", "gtest"] == 1 and "gtest →real_val_acc" in render([t])
    ct = runs([cell(m, "copy", COPY, "ct", ct=v) for m, v in (("copier", -5.0), ("fine", 0.3), ("far", 9.0))])
    (t,) = build_leaderboard(ct)
    # a C_T gate is declared on data_copying_ct, not on this test's `ct`: ranked by distance
    assert list(t.ranked) == ["fine", "copier", "far"] and "ct →0" in render([t])
    no_ref = runs([cell(m, "a", AUTH, "auth", auth=v) for m, v in (("x", 0.2), ("y", 1.0))])
    (t,) = build_leaderboard(no_ref)
    assert column_ranks(t)["auth"].isna().all() and summarize([t]).empty
    assert "Not ranked" in render([t]) and "split: val" in render([t])


def test_one_table_per_dataset_and_csv_json():
    df = runs([cell("a", "m", ACC, "acc", ds=d, acc=(0.5, 0.4, 0.6), real_val_acc=0.9) for d in ("d1", "d2")])
    tables = build_leaderboard(df)
    assert [t.dataset for t in tables] == ["d1", "d2"]
    csv = render(tables, "csv").splitlines()
    assert csv[0].startswith("dataset,model,reference,value,role,ideal,aspect,target,primary,mean")
    assert len(csv) == 5 and any(",(data),True,real_val_acc,reference" in ln for ln in csv)
    js = json.loads(render(tables, "json"))
    cellv = js["tables"][0]["rows"][0]["acc"]
    assert cellv["mean"] == 0.5 and cellv["ci_low"] == 0.4 and cellv["rank"] == 1
    assert js["tables"][0]["values"]["acc"]["role"] == "score"
    assert js["summary"][0]["model"] == "a" and js["summary"][0]["utility"] == 1.0
    assert render([], "markdown") == "(no finished runs)\n"


def cross_dataset_runs(ref_name="ref"):
    """Two datasets, a utility metric (acc) and a quality metric (fid), three competing models
    (exact values: no uncertainty) and one reference that beats them all."""
    table = {  # dataset -> model -> (acc, fid); None: no run
        "d1": {"a": (0.9, 10.0), "b": (0.8, 5.0), "c": (0.7, 20.0), ref_name: (0.99, 1.0)},
        "d2": {"a": (0.6, 3.0), "b": (0.7, 4.0), "c": (0.7, None), ref_name: (0.95, 0.5)},
    }
    rows = []
    for ds, models in table.items():
        for m, (acc, fid) in models.items():
            rows.append(cell(m, "q", ACC, "acc", ds=ds, acc=acc, reference=m == ref_name))
            if fid is not None:
                rows.append(cell(m, "f", FID, "fid", ds=ds, fid=fid, reference=m == ref_name))
    return runs(rows)


def test_summary_ranks_primaries_by_aspect():
    s = summarize(build_leaderboard(cross_dataset_runs()))
    # utility (acc): d1 a1 b2 c3; d2 b1 c1 a3 -> a 2, b 1.5, c 2
    # quality (fid): d1 b1 a2 c3; d2 a1 b2 -> a 1.5, b 1.5, c 3
    assert list(s.columns) == ["place", "verdict", "headline", "quality", "utility", "ranked", "wins"]
    # the aspect view (descriptive): mean dominance ranks per aspect
    assert np.isclose(s.at["a", "utility"], 2.0) and np.isclose(s.at["b", "quality"], 1.5)
    assert np.isclose(s.at["c", "quality"], 3.0) and s.at["c", "ranked"] == 3
    # the order: the headline (the first metric's primary, acc) place, mean over datasets:
    # d1 a1 b2 c3, d2 b1 c1 a3 -> b 1.5, a 2, c 2 (a before c on wins)
    assert np.isclose(s.at["b", "place"], 1.5) and np.isclose(s.at["a", "place"], 2.0)
    assert list(s.index) == ["b", "a", "c"]  # the reference is never ranked
    assert set(s["verdict"]) == {"pass"} and s.at["a", "headline"] == "acc"
    # wins: only where a model alone is first (d2 acc is a b/c tie: nobody wins it)
    assert (s.at["a", "wins"], s.at["b", "wins"], s.at["c", "wins"]) == (2, 1, 0)


def test_reference_rows_are_not_ranked_and_are_set_apart_in_markdown():
    tables = build_leaderboard(cross_dataset_runs())
    d1 = tables[0]
    assert d1.ranked == ["a", "b", "c"] and d1.references == ["ref"]
    ranks = column_ranks(d1)
    assert np.isnan(ranks.at["ref", "acc"]) and ranks.at["a", "acc"] == 1
    md = render(tables)
    lines = [ln for ln in section(md, "d1").splitlines() if ln.startswith("|")]
    names = [ln.split("|")[1].strip() for ln in lines[2:]]
    assert names == ["a", "b", "c", "*reference (not ranked)*", "ref (reference)"]
    assert "**0.9**" in section(md, "d1") and "**0.99**" not in md  # best among competitors only
    summary = md[:md.index("### d1")]
    assert "### Summary over 2 dataset(s)" in summary and "| ref" not in summary


def test_all_reference_tables_have_no_summary():
    df = runs([cell(m, "m", ACC, "acc", acc=v, reference=True) for m, v in (("r1", 0.9), ("r2", 0.5))])
    tables = build_leaderboard(df)
    assert summarize(tables).empty
    md = render(tables)
    assert "Summary" not in md and md.index("r1 (reference)") < md.index("r2 (reference)")


def test_legacy_runs_without_declarations_are_shown_not_ranked():
    df = runs([{**cell(m, "q", {}, "acc", acc=v), "values": {"acc": Value("diagnostic", "higher")}}
               for m, v in (("a", 0.9), ("b", 0.1))])
    (t,) = build_leaderboard(df)
    assert t.scores == [] and summarize([t]).empty and "0.9" in render([t])


def test_markdown_escapes_pipes_in_names():
    md = render(build_leaderboard(runs([cell("my|model", "q", ACC, "acc", acc=0.5)])))
    assert "my\\|model" in md and "| my|model" not in md


def test_latex_escapes_user_text_and_uses_booktabs():
    assert latex_escape("a_b&c%d$e#f{g}h~i^j\\k") == (
        r"a\_b\&c\%d\$e\#f\{g\}h\textasciitilde{}i\textasciicircum{}j\textbackslash{}k")
    nasty = "my_model & co 100% #1"
    tex = render(build_leaderboard(cross_dataset_runs(ref_name=nasty)), "latex")
    assert r"\toprule" in tex and r"\midrule" in tex and r"\bottomrule" in tex
    assert r"my\_model \& co 100\% \#1" in tex and nasty not in tex
    assert r"acc $\uparrow$" in tex and r"fid $\downarrow$" in tex
    d1 = tex[tex.index(r"\caption{d1"):]
    d1 = d1[:d1.index(r"\end{table}")]
    assert d1.index(r"\textit{reference (not ranked)}") < d1.index(r"my\_model")
    assert r"$\mathbf{0.9}$" in d1 and r"\mathbf{0.99}" not in d1
    assert tex.count(r"\begin{tabular}") == 3  # summary + two datasets
    assert render([], "latex").startswith("%")
    only_refs = render(build_leaderboard(runs([cell("r", "q", ACC, "acc", acc=0.5, reference=True)])), "latex")
    assert r"\midrule" + "\n" + r"\midrule" not in only_refs


def test_html_is_not_a_text_format():
    with pytest.raises(ValueError, match="bench.report.html"):
        render([], "html")


def test_history_of_one_model_over_suite_runs():
    def night(acc, fid):
        return runs([cell("a", "q", ACC, "acc", repeat=r, acc=acc + 0.01 * r) for r in range(2)]
                    + [cell("a", "f", FID, "fid", fid=fid), cell("other", "q", ACC, "acc", acc=0.1)])

    empty = night(0, 0).iloc[0:0]
    points = [("2026-01-01 03:00", "r1", night(0.5, 30.0)), ("2026-01-02 03:00", "r2", empty),
              ("2026-01-03 03:00", "r3", night(0.7, 20.0))]
    h = history_table(points, "a")
    assert list(h.columns) == ["date", "run_id", "d/fid ↓", "d/acc ↑"]
    assert list(h["run_id"]) == ["r1", "r2", "r3"]
    assert np.isclose(h.at[0, "d/acc ↑"], 0.505) and np.isnan(h.at[1, "d/acc ↑"])
    md = render_history(h, "a")
    assert "0.505" in md and "0.705" in md and md.index("r1") < md.index("r3")
    assert json.loads(render_history(h, "a", "json"))["runs"][2]["d/fid ↓"] == 20.0
    assert render_history(h, "a", "csv").splitlines()[0] == "date,run_id,d/fid ↓,d/acc ↑"
    assert r"d/acc $\uparrow$" in render_history(h, "a", "latex")


def test_default_sort_is_the_primary_of_the_metric_that_ran_first():
    first = [cell(m, "q", ACC, "acc", acc=v) for m, v in (("x", 0.2), ("y", 0.8))]
    later = [cell(m, "f", FID, "fid", fid=v) for m, v in (("x", 1.0), ("y", 9.0))]
    (t,) = build_leaderboard(runs(first + later))
    assert t.sort_by == "acc" and list(t.mean.index) == ["y", "x"]
    (t,) = build_leaderboard(runs(first + later), sort_by="fid")
    assert list(t.mean.index) == ["x", "y"]


def test_ranking_agreement_is_oriented_by_ideal_and_wide_tables_split_by_aspect():
    from bench.report.leaderboard import ranking_agreement

    rows = []
    for i, m in enumerate("abcdefghij"):
        rows.append(cell(m, "gan_train", {"gan_train_acc": score("higher", "utility"),
                                          "tsts_acc": diagnostic("higher")},
                         "gan_train_acc", gan_train_acc=0.5 + 0.04 * i, tsts_acc=0.9 - 0.01 * i))
        rows.append(cell(m, "fid", {"fid": score("lower", "quality")}, "fid", fid=10.0 - i))
    (t,) = build_leaderboard(runs(rows))
    ag = ranking_agreement(t).set_index("b")
    assert np.isclose(ag.at["fid", "rho"], 1.0)  # lower fid = better: same order as gan_train
    assert np.isclose(ag.at["tsts_acc", "rho"], -1.0)
    assert "Ranking agreement" in render([t])
    wide = {f"v{i}": score("higher", ("quality", "diversity")[i % 2]) for i in range(10)}
    (t,) = build_leaderboard(runs([cell("a", "w", wide, "v0", **{f"v{i}": 0.5 for i in range(10)})]))
    md = render([t])
    assert "**Scores: quality**" in md and "**Scores: diversity**" in md


def test_ranking_agreement_equals_scipy_spearmanr():
    from scipy.stats import spearmanr

    from bench.report.leaderboard import ranking_agreement

    rng = np.random.default_rng(3)
    acc, fid = rng.uniform(0.4, 0.9, 12), rng.uniform(5, 30, 12)
    fid[3] = fid[7]  # a tie: average ranks
    rows = []
    for i in range(12):
        rows.append(cell(f"m{i}", "gan_train", {"gan_train_acc": score("higher", "utility")},
                         "gan_train_acc", gan_train_acc=acc[i]))
        rows.append(cell(f"m{i}", "fid", {"fid": score("lower", "quality")}, "fid", fid=fid[i]))
    (t,) = build_leaderboard(runs(rows))
    got = ranking_agreement(t).set_index("b").loc["fid"]
    rho, p = spearmanr(acc, -fid)
    assert np.isclose(got["rho"], rho, atol=1e-12) and np.isclose(got["p"], p, rtol=1e-9)


# ---------------------------------------------------------------- the verdict: gates, failures, bounds

from bench.metrics.authenticity import Authenticity  # noqa: E402
from bench.metrics.data_copying import DataCopying  # noqa: E402
from bench.record.flags import Flag  # noqa: E402
from bench.report.leaderboard import dominance  # noqa: E402

TRAIN = {"gan_train_acc": score("higher", "utility")}
CT = dict(DataCopying.values)
AUTHENTIC = dict(Authenticity.values)


def test_gates_keep_copiers_and_flagged_models_below_every_passing_model():
    rows = []
    for m, acc, ct, auth in (("copier", 0.97, -6.0, 0.20), ("honest", 0.80, 0.4, 0.62),
                             ("weak", 0.60, 0.1, 0.70), ("label_blind", 0.90, 0.3, 0.60),
                             ("held", None, 0.0, 0.60)):
        ref = m == "held"
        if acc is not None:
            rows.append(cell(m, "gan_train", TRAIN, "gan_train_acc", gan_train_acc=(acc, acc - 0.03, acc + 0.03)))
        from scipy.special import ndtr

        rows.append(cell(m, "data_copying", CT, "data_copying_ct", data_copying_ct=ct,
                         data_copying_p=float(ndtr(ct / 0.25)), reference=ref))
        rows.append({**cell(m, "authenticity", AUTHENTIC, "authenticity",
                            authenticity=(auth, auth - 0.02, auth + 0.02), reference=ref), "held_out": ref})
    df = runs(rows)
    df["flags"] = [[Flag("ignores_labels", "GAN-test 0.10 near chance", True, "gan_test_acc")]
                   if m == "label_blind" else [] for m in df["model"]]
    (t,) = build_leaderboard(df)
    assert t.headline == "gan_train_acc" and t.held_out == "held"
    assert {f.kind for f in t.flags["copier"]} == {"copies"} and t.gated("label_blind")
    assert not t.gated("honest") and not t.gated("weak")
    # the copier has the best GAN-train, yet both flagged models come after every passing one
    assert list(t.ranked) == ["honest", "weak", "copier", "label_blind"]
    s = summarize([t])
    assert list(s.index) == ["honest", "weak", "copier", "label_blind"]
    assert s.at["honest", "verdict"] == "pass" and "copies" in s.at["copier", "verdict"]
    assert s.at["copier", "verdict"] == "copies (authenticity, data_copying_p)"
    assert not best_mask(t).loc["copier"].any()  # a flagged model is never a column's winner
    md = render([t])
    assert "copier ✗" in md and "✗ `copier` copies" in md and "ignores_labels" in md
    assert "Bonferroni over the board's 8 copies tests" in md and "held-out real row" in md  # in full


def test_the_order_of_two_models_does_not_depend_on_a_third():
    def board(models):
        rows = [cell(m, "gan_train", TRAIN, "gan_train_acc", gan_train_acc=(a, a - 0.02, a + 0.02))
                for m, a in models]
        rows += [cell(m, "fid", FID, "fid", fid=f) for (m, _), f in zip(models, (9.0, 1.0, 5.0), strict=False)]
        return summarize(build_leaderboard(runs(rows)))

    two = board([("a", 0.80), ("b", 0.70)])
    three = board([("a", 0.80), ("b", 0.70), ("c", 0.75)])
    assert list(two.index) == ["a", "b"]
    assert list(three.index).index("a") < list(three.index).index("b")


def test_failed_models_are_rows_and_removed_models_are_not_shown():
    df = runs([cell("good", "gan_train", TRAIN, "gan_train_acc", gan_train_acc=(0.8, 0.77, 0.83)),
               cell("old", "gan_train", TRAIN, "gan_train_acc", gan_train_acc=(0.9, 0.87, 0.93)),
               {**cell("broken", "gan_train", TRAIN, "gan_train_acc"), "status": "FAILED",
                "error": "model 'broken': generated images have shape (8, 1, 8), expected (1, 8, 8)\nmore"}])
    declared = {("d", "good"), ("d", "broken"), ("d", "never")}
    (t,) = build_leaderboard(df, declared=declared)
    assert "old" not in t.mean.index and {"good", "broken", "never"} <= set(t.mean.index)
    assert t.failed("broken") and not t.failed("never") and not t.failed("good")
    s = summarize([t])
    assert s.index[0] == "good" and s.at["broken", "verdict"].startswith("failed: model 'broken'")
    assert s.at["never", "verdict"] == "not run"  # no run recorded is not a failure (issue 29)
    md = render([t])
    assert "| broken ✗" in md and "failed" in md and "more" not in md  # the first error line only
    assert "old" in render(build_leaderboard(df))  # without a declaration (or --all), it is kept


def test_two_repeats_separate_080_from_028_and_never_print_plus_minus_zero():
    from bench.record.values import accuracy_with_interval

    rows = []
    for m, accs in (("dcgan", (0.81, 0.79)), ("cgan", (0.30, 0.26))):
        for r, a in enumerate(accs):
            iv = accuracy_with_interval("gtest", a, 539)
            rows.append(cell(m, "gan_test", {"gtest": score("higher", "quality")}, "gtest", repeat=r,
                             gtest=(iv["gtest"], iv["gtest.lo"], iv["gtest.hi"])))
    rows += [cell(m, "fid", FID, "fid", repeat=r, fid=f) for m, fs in (("dcgan", (1.048, 1.204)),
                                                                      ("cgan", (4.201, 4.737)))
             for r, f in enumerate(fs)]
    (t,) = build_leaderboard(runs(rows))
    ranks = column_ranks(t)
    assert ranks.at["dcgan", "gtest"] == 1 and ranks.at["cgan", "gtest"] == 2
    md = render([t])
    assert "± 0 " not in md and "± 0|" not in md.replace(" ", "")
    assert "1.13 ± 0.11" in md and "4.47 ± 0.38" in md


def test_a_bound_prints_as_a_bound_and_never_beats_a_number():
    eff = {"effective_size": score("higher", "utility")}
    rows = [cell("clamped_low", "curve", eff, "effective_size", effective_size=179.0),
            cell("clamped_lower", "curve", eff, "effective_size", effective_size=179.0),
            cell("measured", "curve", eff, "effective_size", effective_size=150.0)]
    df = runs(rows)
    for m in ("clamped_low", "clamped_lower"):
        df.loc[df["model"] == m, "m:effective_size.bound"] = -1.0
    (t,) = build_leaderboard(df)
    ranks = column_ranks(t)
    # ≤ 179 may be below 150: neither bound is shown better than the measured 150
    assert ranks.at["measured", "effective_size"] == 1
    assert ranks.at["clamped_low", "effective_size"] == ranks.at["clamped_lower", "effective_size"] == 1
    assert "≤ 179" in render([t])


def test_vectorised_dominance_equals_the_pairwise_definition():
    rng = np.random.default_rng(0)
    g, u = rng.normal(size=300), rng.uniform(0, 0.5, size=300)
    g[::37] = np.nan
    up, lo = rng.random(300) < 0.1, rng.random(300) < 0.1
    fast = dominance(g, u, up, lo, chunk=64)
    for i in range(300):
        if np.isnan(g[i]):
            assert np.isnan(fast[i])
            continue
        better = sum(1 for j in range(300) if not np.isnan(g[j]) and not up[j] and not lo[i]
                     and g[j] - g[i] > max(np.hypot(u[i], u[j]), 1e-12))
        assert fast[i] == 1 + better


def _all_pairs(g, u, up, lo):
    margin = np.maximum(np.hypot(u[:, None], u[None, :]), 1e-12)
    better = ((g[None, :] - g[:, None]) > margin) & ~up[None, :] & ~lo[:, None] & ~np.isnan(g)[None, :]
    return np.where(np.isnan(g), np.nan, 1 + better.sum(axis=1))


@pytest.mark.parametrize("seed", range(6))
def test_sorted_dominance_is_exact_on_ties_zero_and_outlying_uncertainties(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        n = int(rng.integers(1, 400))
        g = rng.normal(0, rng.choice([0.1, 1, 10]), n)
        if seed % 2:
            g = np.round(g, 1)  # ties
        u = np.abs(rng.normal(0, rng.choice([0, 0.1, 1]), n))  # 0: no uncertainty at all
        u[rng.integers(0, n)] = rng.choice([1e-9, 50.0])  # one far narrower or wider than the rest
        g[rng.random(n) < 0.1] = np.nan
        up, lo = rng.random(n) < 0.1, rng.random(n) < 0.1
        np.testing.assert_array_equal(dominance(g, u, up, lo, chunk=int(rng.integers(1, 100))),
                                      _all_pairs(g, u, up, lo))


def test_no_negative_zero_and_no_eight_decimals():
    assert fmt_value(-7.105e-15) == "0"
    assert fmt_value(-0.0001, u=0.01, lo=-0.01, hi=0.01) == "0.000 [-0.010, 0.010]"
    assert fmt_value(0.97590923, lo=0.97199123, hi=0.97982724, u=0.0039) == "0.976 [0.972, 0.980]"
    assert fmt_value(1.0, lo=0.99999999, hi=1.00000001, u=1e-8) == "1.000 [1.000, 1.000]"
    # an exact 0 whose bootstrap interval is float noise (intra-FID of exact copies)
    assert fmt_value(3e-13, lo=-2e-12, hi=4e-12, u=3e-12) == "0 [0, 0]"
    assert fmt_value(0.0, u=1e-12) == "0"


# ---------------------------------------------------------------- the headline pair

from bench.metrics.fid import FID as FIDMetric  # noqa: E402
from bench.metrics.gan_test import GanTest as GANTest  # noqa: E402
from bench.metrics.gan_train import GanTrain as GANTrain  # noqa: E402
from bench.metrics.precision_recall import PrecisionRecall  # noqa: E402
from bench.report.leaderboard import pair_dominance, places  # noqa: E402


def _paper_board(models):
    """(model, gan_train, gan_test) with Wilson-like half-widths; `held` is the held-out row."""
    rows = []
    for m, tr, te in models:
        held = m == "held"
        if tr is not None:
            rows.append(cell(m, "gan_train", dict(GANTrain.values), "gan_train_acc",
                             gan_train_acc=(tr, tr - 0.02, tr + 0.02)))
        rows.append({**cell(m, "gan_test", dict(GANTest.values), "gan_test_acc",
                            gan_test_acc=(te, te - 0.02, te + 0.02), reference=held),
                     "held_out": held})
    (t,) = build_leaderboard(runs(rows))
    return t


def test_the_headline_is_the_papers_pair_and_a_noisy_copy_does_not_crown_itself():
    # the review's case: noisy training digits (sigma 90) beat the cGAN on GAN-train alone
    t = _paper_board([("noisy_copies", 0.967, 0.61), ("cgan", 0.87, 0.972),
                      ("worse_on_both", 0.80, 0.60), ("held", None, 0.991)])
    assert t.headline_pair == ["gan_train_acc", "gan_test_acc"]
    p = places(t)
    assert p["noisy_copies"] == p["cgan"] == 1  # a trade-off: neither dominates
    assert p["worse_on_both"] > p["cgan"]
    s = summarize([t])
    assert s.at["cgan", "headline"] == "gan_train_acc + gan_test_acc"
    assert "ties: better gan_train_acc and worse gan_test_acc than cgan" in s.at["noisy_copies", "verdict"]
    assert "`gan_train_acc` + `gan_test_acc`" in render([t])


def test_a_label_free_board_orders_by_its_declared_fidelity_and_coverage_never_by_run_order():
    def board(first):
        rows = []
        for m, prec, rec, fid in (("collapse", 0.95, 0.10, 30.0), ("good", 0.70, 0.70, 2.0)):
            pr = cell(m, "precision_recall", dict(PrecisionRecall.values), "precision",
                      precision=(prec, prec - 0.03, prec + 0.03), recall=(rec, rec - 0.03, rec + 0.03))
            fd = cell(m, "fid", dict(FIDMetric.values), "fid", fid=(fid, fid - 0.5, fid + 0.5))
            rows += [pr, fd] if first == "pr" else [fd, pr]
        df = runs(rows)
        return build_leaderboard(df)[0]

    for first in ("pr", "fid"):
        t = board(first)
        assert t.headline_pair == ["recall", "precision"]  # declared sides, whatever ran first
        assert places(t)["collapse"] == places(t)["good"] == 1  # collapse trades recall away


def test_a_model_is_placed_above_every_model_it_dominates_whoever_else_is_on_the_board():
    rng = np.random.default_rng(0)
    for _ in range(30):
        n = int(rng.integers(3, 12))
        g = rng.uniform(0, 1, (n, 2))
        u = rng.uniform(0.01, 0.2, (n, 2))
        no = np.zeros((n, 2), bool)
        place, _ = pair_dominance(g, u, no, no)
        for i in range(n):
            for j in range(n):
                d = g[j] - g[i]
                m = np.sqrt(u[i] ** 2 + u[j] ** 2)
                if ((d > m).any()) and not ((d < -m).any()):  # j dominates i
                    assert place[j] < place[i]
        # a third model never inverts a dominated pair: drop any one model and check again
        keep = np.arange(n) != int(rng.integers(n))
        sub, _ = pair_dominance(g[keep], u[keep], no[keep], no[keep])
        gi, ui = g[keep], u[keep]
        for i in range(len(gi)):
            for j in range(len(gi)):
                d, m = gi[j] - gi[i], np.sqrt(ui[i] ** 2 + ui[j] ** 2)
                if (d > m).any() and not (d < -m).any():
                    assert sub[j] < sub[i]


def test_ranking_agreement_p_is_exact_for_few_models():
    from itertools import permutations

    from bench.report.leaderboard import ranking_agreement

    def board(acc, fid):
        rows = []
        for i, (a, f) in enumerate(zip(acc, fid, strict=True)):
            rows.append(cell(f"m{i}", "gan_train", {"gan_train_acc": score("higher", "utility")},
                             "gan_train_acc", gan_train_acc=a))
            rows.append(cell(f"m{i}", "fid", {"fid": score("lower", "quality")}, "fid", fid=f))
        return build_leaderboard(runs(rows))[0]

    got = ranking_agreement(board([0.9, 0.8, 0.7], [1.0, 2.0, 3.0])).set_index("b").loc["fid"]
    assert got["rho"] == pytest.approx(1.0) and got["p"] == pytest.approx(1 / 3)  # not 0
    acc, fid = [0.9, 0.5, 0.7, 0.6, 0.8], [2.0, 5.0, 1.0, 4.0, 3.0]
    got = ranking_agreement(board(acc, fid)).set_index("b").loc["fid"]
    from scipy.stats import spearmanr

    rho = spearmanr(acc, [-f for f in fid]).statistic
    null = [spearmanr(range(5), p).statistic for p in permutations(range(5))]
    assert got["p"] == pytest.approx(np.mean(np.abs(null) >= abs(rho) - 1e-12))
