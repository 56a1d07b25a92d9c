"""The board's verdict on known defects (suites/guardrails.yaml): every reference kind and
three broken generators ranked like models beside the built-in cGAN, the held-out real
images as the target row. A benchmark that ranks wrong is worse than none, so this is
asserted end to end on the shipped suite: the NaN generator fails with one line; exact and
100-image copies, shuffled labels, the constant image and a wrong declared range are flagged
by a gate; none of them is placed above the cGAN; no flagged model is bold anywhere."""

from pathlib import Path

import pytest

from bench.config.suite import declared_pairs, load_suite
from bench.record.tracking import Tracker
from bench.report.leaderboard import best_mask, build_leaderboard, render, summarize
from bench.run.runner import run_suite

SUITE = Path(__file__).resolve().parents[1] / "suites" / "guardrails.yaml"
LABEL_FREE = SUITE.with_name("guardrails_labelfree.yaml")

# the module's tests on one xdist worker, one after another: the second suite run reads what
# the first trained from their shared cache (below)
pytestmark = pytest.mark.xdist_group("test_guardrails")


@pytest.fixture(scope="module")
def bench_cache(tmp_path_factory) -> str:
    """One bench cache for both suites: they train the same cGAN (1,000 steps) and the same
    classifier (10 epochs) on the same digits, content-addressed, so whichever runs second
    reads them (about a minute and a half of CPU) instead of training them again."""
    return str(tmp_path_factory.mktemp("guardrails-cache"))


@pytest.fixture(scope="module")
def board(tmp_path_factory, bench_cache):
    tmp = tmp_path_factory.mktemp("guardrails")
    uri = f"sqlite:///{tmp}/mlflow.db"
    suite = load_suite(SUITE)
    report = run_suite(suite, tracking_uri=uri, progress=False, cache_dir=bench_cache)
    # only the diverged generator's cells fail
    assert {o.cell.model.key for o in report.outcomes if o.status == "failed"} == {"nan"}, report.summary()
    runs = Tracker(uri, "guardrails").cell_runs(suite="guardrails", failed=True)
    tables = build_leaderboard(runs, declared=declared_pairs(suite))
    return tables, summarize(tables), render(tables)


FLAGGED = {"copies": "copies", "memorize": "copies", "label_shuffle": "ignores_labels",
           "constant": "constant", "wrong_range": "output_range"}


@pytest.mark.slow
def test_verdict_on_known_defects(board):
    tables, s, md = board
    (t,) = tables
    assert t.held_out == "held_out" and set(t.references) == {"held_out", "real"}
    assert "held_out" not in s.index and "real" not in s.index
    assert t.headline == "gan_train_acc"
    # the diverged generator: every cell failed with one line, placed last
    assert t.failed("nan") and s.index[-1] == "nan", md
    assert s.at["nan", "verdict"].startswith("failed: ") and "non-finite" in s.at["nan", "verdict"]
    # each known defect is flagged by a gate, for the right reason
    for model, kind in FLAGGED.items():
        assert kind in {f.kind for f in t.flags.get(model, []) if f.gate}, (model, s.at[model, "verdict"])
    # the honest model passes, and no flagged or failed model is placed above it
    order = list(s.index)
    assert s.at["cgan", "verdict"] == "pass", md
    for model in s.index:
        if s.at[model, "verdict"] != "pass":
            assert order.index(model) > order.index("cgan"), (model, md)
    # the paper's pair orders the board: no model worse than the cGAN on both GAN-test (distance
    # to the held-out row) and FID is placed above it, whatever its GAN-train
    assert t.headline_pair == ["gan_train_acc", "gan_test_acc"]
    good = t.goodness()
    for model in order[:order.index("cgan")]:
        worse_test = good.at[model, "gan_test_acc"] < good.at["cgan", "gan_test_acc"]
        worse_fid = t.mean.at[model, "fid"] > t.mean.at["cgan", "fid"]
        assert not (worse_test and worse_fid), (model, md)
    # among the passing models, mild noise above strong noise (the headline's order)
    passing = [m for m in order if s.at[m, "verdict"] == "pass"]
    noise = [m for m in ("noise_low", "noise_mid", "noise_high") if m in passing]
    assert noise == sorted(noise, key=passing.index), md
    # every reason is printed where the model's row is
    for model in FLAGGED:
        assert f"| {model} ✗" in md and f"✗ `{model}`" in md, model


@pytest.mark.slow
def test_bold_winners_are_sensible(board):
    tables, _, md = board
    (t,) = tables
    best = best_mask(t)
    # the constant image, strong noise, blur and every flagged model win no column; data
    # values are never bold
    for m in ("constant", "noise_high", "blur", *FLAGGED):
        assert not best.loc[m].any(), (m, md)
    assert "real_val_acc" not in t.mean.columns and "`real_val_acc`" in md
    # target values: the copier and the constant image are both far from the held-out row
    for col in ("authenticity", "data_copying_ct", "nn_similarity_gap"):
        assert not best.at["constant", col] and not best.at["memorize", col], (col, md)
    # the diagnostics table has no bold
    diag = md[md.index("**Diagnostics"):md.index("**Data reference")]
    assert "**" not in diag.replace("**Diagnostics (shown, not ranked)**", "")


@pytest.mark.slow
def test_a_label_free_board_flags_training_copies_and_places_none_first(tmp_path, bench_cache):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    suite = load_suite(LABEL_FREE)
    run_suite(suite, tracking_uri=uri, progress=False, cache_dir=bench_cache)
    runs = Tracker(uri, "guardrails_labelfree").cell_runs(suite="guardrails_labelfree", failed=True)
    (t,) = build_leaderboard(runs, declared=declared_pairs(suite))
    s, md = summarize([t]), render([t])
    assert t.headline_pair == ["recall", "precision"], md
    for model in ("copies", "replay"):  # no memorisation metric in the suite, yet gated
        assert "copies" in {f.kind for f in t.flags.get(model, []) if f.gate}, (model, md)
        assert "near_copies_p" in s.at[model, "verdict"], md
    assert s.index[0] not in ("copies", "replay", "noisy_copies"), md
    assert s.at["cgan", "verdict"].startswith("pass"), md
