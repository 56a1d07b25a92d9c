"""A model's name in the suite is how people know it: two names with the same options are two
rows, and a rename shows the new name instead of resuming under the old one."""

from bench.config.suite import load_suite
from bench.record.tracking import Tracker
from bench.report.leaderboard import build_leaderboard
from bench.run.runner import run_suite

SUITE = """\
name: ident
datasets:
  digits: {source: digits}
models:
  a_noise: {source: reference, kind: noise}
  b_noise: {source: reference, kind: noise}
metrics:
  test_constant: {}
"""


def test_two_names_with_the_same_options_are_two_rows(write_suite, tracking_uri):
    suite = load_suite(write_suite(SUITE))
    assert len({c.key for c in suite.cells}) == 2
    report = run_suite(suite, tracking_uri=tracking_uri, progress=False)
    assert [o.status for o in report.outcomes] == ["finished", "finished"]
    (t,) = build_leaderboard(Tracker(tracking_uri, "ident").cell_runs(suite="ident"))
    assert sorted(t.mean.index) == ["a_noise", "b_noise"]


def test_a_rename_shows_the_new_name(write_suite, tracking_uri):
    run_suite(load_suite(write_suite(SUITE)), tracking_uri=tracking_uri, progress=False)
    renamed = load_suite(write_suite(SUITE.replace("b_noise", "c_noise")))
    report = run_suite(renamed, tracking_uri=tracking_uri, progress=False)
    assert [o.status for o in report.outcomes] == ["cached", "finished"]
    runs = Tracker(tracking_uri, "ident").cell_runs(suite="ident", run_ids=[o.run_id for o in report.outcomes])
    (t,) = build_leaderboard(runs)
    assert sorted(t.mean.index) == ["a_noise", "c_noise"]


def test_duplicate_keys_are_refused_with_both_lines(write_suite):
    import pytest

    from bench.core.errors import BenchError

    text = SUITE.replace("  b_noise: {source: reference, kind: noise}\n",
                         "  a_noise: {source: reference, kind: blur}\n")
    with pytest.raises(BenchError, match=r"suite.yaml:6: models.a_noise: defined twice \(first at line 5\)"):
        load_suite(write_suite(text))


def test_a_binary_file_is_refused_clearly(tmp_path):
    import pytest

    from bench.core.errors import BenchError

    p = tmp_path / "suite.yaml"
    p.write_bytes(b"\x89PNG\r\n\x1a\n\x00\xff\xfe")
    with pytest.raises(BenchError, match="not a text file"):
        load_suite(p)
