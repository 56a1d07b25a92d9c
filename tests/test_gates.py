"""The board's Bonferroni count (bench.report.gates): the near-copies test that every feature
metric logs is one test per (model, feature extractor), however many metrics log it."""

from __future__ import annotations

import pandas as pd

from bench.metrics._distribution import NEAR_COPIES_VALUES
from bench.record.values import score
from bench.report.leaderboard import build_leaderboard

FID = {"fid": score("lower", "quality"), **NEAR_COPIES_VALUES}
KID = {"kid": score("lower", "quality"), **NEAR_COPIES_VALUES}
PR = {"precision": score("higher", "quality"), **NEAR_COPIES_VALUES}


def _run(i: int, model: str, metric: str, values: dict, primary: str, **m: float) -> dict:
    return {"suite": "s", "cell_key": "k", "reference": False, "held_out": False,
            "start_time": i, "dataset": "d", "model": model, "metric": metric, "repeat": 0,
            "values": values, "primary": primary, **{f"m:{k}": v for k, v in m.items()}}


def test_near_copies_from_metrics_on_one_extractor_count_once_in_bonferroni():
    # fid and kid run on one extractor (the same near-copies result, shared through the
    # run's store); precision on another, so its near-copies values differ and every
    # metric's column is kept apart (fid.near_copies_p, kid.near_copies_p, ...)
    p_same = {"a": 0.01, "b": 0.6}  # a: below 0.05 / 4, above 0.05 / 6
    p_other = {"a": 0.3, "b": 0.7}
    rows, i = [], 0
    for m in ("a", "b"):
        same = {"near_copies": 0.08, "near_copies_expected": 0.05, "near_copies_p": p_same[m]}
        other = {"near_copies": 0.06, "near_copies_expected": 0.05, "near_copies_p": p_other[m]}
        for metric, values, primary, extra in (("fid", FID, "fid", {"fid": 3.0, **same}),
                                               ("kid", KID, "kid", {"kid": 0.01, **same}),
                                               ("precision", PR, "precision",
                                                {"precision": 0.7, **other})):
            rows.append(_run(i, m, metric, values, primary, **extra))
            i += 1
    (t,) = build_leaderboard(pd.DataFrame(rows))
    cols = [c for c in t.mean.columns if c.endswith("near_copies_p")]
    assert sorted(cols) == ["fid.near_copies_p", "kid.near_copies_p", "precision.near_copies_p"]
    # 2 models x 2 extractors = 4 tests, not 2 x 3 metrics = 6: a is flagged at 0.05 / 4
    assert t.gated("a") and not t.gated("b")
    (flag,) = [f for f in t.flags["a"] if f.gate]
    assert "Bonferroni over the board's 4 copies tests" in flag.reason, flag.reason
    assert flag.value == "fid.near_copies_p"  # the test once, under its first column


def test_different_tests_that_happen_to_agree_on_one_model_still_count_apart():
    # two extractors whose p-values agree on one model but not on the other: two tests each
    rows, i = [], 0
    for m, (p1, p2) in {"a": (0.001, 0.001), "b": (0.5, 0.9)}.items():
        for metric, values, primary, extra in (
                ("fid", FID, "fid", {"fid": 3.0, "near_copies_p": p1}),
                ("precision", PR, "precision", {"precision": 0.7, "near_copies_p": p2})):
            rows.append(_run(i, m, metric, values, primary, **extra))
            i += 1
    (t,) = build_leaderboard(pd.DataFrame(rows))
    reasons = [f.reason for f in t.flags["a"] if f.gate]
    assert len(reasons) == 2 and all("board's 4 copies tests" in r for r in reasons), reasons


def test_two_values_with_equal_p_values_stay_two_tests():
    # data-copying and near-copies p-values can both be exactly 0 for a copier: two tests
    from bench.record.values import Value
    from bench.report.gates import board_flags

    decl = Value("diagnostic", "higher", gate="p", gate_at=0.05, gate_kind="copies")
    mean = pd.DataFrame({"ct_p": [0.0, 0.5], "nc_p": [0.0, 0.5]}, index=["copier", "honest"])
    flags = board_flags(mean, mean * float("nan"), {"ct_p": decl, "nc_p": decl}, None)
    assert [f.value for f in flags["copier"]] == ["ct_p", "nc_p"] and "honest" not in flags
    assert all("board's 4 copies tests" in f.reason for f in flags["copier"])
    # the same value twice (a metric's copy, named metric.value) with equal results: once
    names = {"a.nc_p": "nc_p", "b.nc_p": "nc_p"}
    twice = mean.rename(columns={"ct_p": "a.nc_p", "nc_p": "b.nc_p"})
    flags = board_flags(twice, twice * float("nan"), {"a.nc_p": decl, "b.nc_p": decl}, None,
                        names)
    assert [f.value for f in flags["copier"]] == ["a.nc_p"]
    assert "board's 2 copies tests" in flags["copier"][0].reason
