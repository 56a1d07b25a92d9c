"""The leaderboard ranks known defects in the known order (suites/guardrails.yaml): every
reference kind ranked like a model beside the built-in cGAN, the held-out real images as the
target row. A benchmark that ranks wrong is worse than none, so this is asserted end to end
on the shipped suite: mild noise above medium above strong, a generator that ignores its
labels below mild noise and last on conditioning, the memoriser flagged on memorisation,
the constant grey image last overall and bold nowhere."""

from pathlib import Path

import pytest

from bench.leaderboard import best_mask, build_leaderboard, render, summarize
from bench.runner import run_suite
from bench.suite import load_suite
from bench.tracking import Tracker

SUITE = Path(__file__).resolve().parents[1] / "suites" / "guardrails.yaml"


@pytest.fixture(scope="module")
def board(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("guardrails")
    uri = f"sqlite:///{tmp}/mlflow.db"
    report = run_suite(load_suite(SUITE), tracking_uri=uri, progress=False, cache_dir=str(tmp / "cache"))
    assert report.ok, report.summary()
    runs = Tracker(uri, "guardrails").cell_runs(suite="guardrails")
    tables = build_leaderboard(runs)
    return tables, summarize(tables), render(tables)


@pytest.mark.slow
def test_summary_order_of_known_defects(board):
    tables, s, md = board
    (t,) = tables
    assert t.held_out == "held_out" and set(t.references) == {"held_out", "real"}
    assert "held_out" not in s.index and "real" not in s.index
    overall = s["overall"]
    # the constant grey image: last, and wins nothing
    assert s.index[-1] == "constant" and s.at["constant", "wins"] == 0, md
    # noise levels in order
    assert overall["noise_low"] < overall["noise_mid"] < overall["noise_high"], md
    # a conditional model that ignores its condition: below mild noise, last on conditioning
    assert overall["label_shuffle"] > overall["noise_low"], md
    assert s["conditioning"].idxmax() == "label_shuffle", md
    # the memoriser: good looking images, flagged where it matters
    assert s.at["memorize", "memorisation"] > s.at["noise_low", "memorisation"], md
    assert s.at["memorize", "memorisation"] > s.at["cgan", "memorisation"], md
    assert overall["cgan"] < overall["constant"] and overall["cgan"] < overall["noise_high"], md


@pytest.mark.slow
def test_bold_winners_are_sensible(board):
    tables, _, md = board
    (t,) = tables
    best = best_mask(t)
    # the constant image, strong noise and blur win no column; data values are never bold
    for m in ("constant", "noise_high", "blur"):
        assert not best.loc[m].any(), (m, md)
    assert "real_val_acc" not in t.mean.columns and "`real_val_acc`" in md
    # target values: the copier and the constant image are both far from the held-out row
    for col in ("authenticity", "data_copying_ct", "nn_similarity_gap"):
        assert not best.at["constant", col] and not best.at["memorize", col], (col, md)
    # the diagnostics table has no bold
    diag = md[md.index("**Diagnostics"):md.index("**Data reference")]
    assert "**" not in diag.replace("**Diagnostics (shown, not ranked)**", "")
