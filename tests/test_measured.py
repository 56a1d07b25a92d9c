"""Measured values in the record (bench.record.values.Measured): typed in memory, MLflow's flat
keys (`<v>`, `<v>.lo`, `<v>.hi`, `<v>.bound`) only at its border. `encode`/`decode` round trip
any flat dict exactly (NaN intervals, bounds, companions without their value); a record written
to an MLflow store reads back with equal typed values by both readers (SQL and search_runs), as
the in-memory log gives them; spool records of older versions (flat values) still load."""

from __future__ import annotations

import json
import math

import pytest

from bench.metrics import METRICS
from bench.record.cell_record import CellRecord, frame
from bench.record.memory import MemoryLog
from bench.record.spool import Spool
from bench.record.values import BOUND, HI, LO, Measured, bounded, decode, encode, with_interval

NAN = float("nan")


def _same_flat(a: dict[str, float], b: dict[str, float]) -> bool:
    """The same keys with the same numbers, NaN equal to NaN."""
    return sorted(a) == sorted(b) and all(
        a[k] == b[k] or (math.isnan(a[k]) and math.isnan(b[k])) for k in a)


FLATS = [
    {},
    with_interval("fid", 3.5, 3.0, 4.0),
    with_interval("acc", 0.5, NAN, NAN),  # an interval that could not be computed: still logged
    {**bounded("effective_size", 100, -1), **bounded("saturation_size", 7, 1), "x": NAN},
    {"fid": NAN, "fid.lo": NAN, "fid.hi": 2.0, "kid_mean": 0.01},
    {"orphan.lo": 1.0, "orphan.hi": 2.0},  # no value `orphan`: kept under their own keys
    {"a": 1.0, "a.bound": 0.0, "b": 2.0, "b.bound": NAN},  # bounds other than ±1: kept as keys
    {"c": 1.0, "c.lo": 0.5, "c.lo.lo": 0.1},  # a companion of a companion: its own key
    {"only_lo": 1.0, "only_lo.lo": 0.5},
]


@pytest.mark.parametrize("flat", FLATS)
def test_flat_keys_round_trip_exactly(flat):
    typed = decode(flat)
    back = encode(typed)
    assert _same_flat(back, flat)
    assert decode(back) == typed  # and the typed side too (NaN equals NaN)


def test_decode_folds_companions_into_their_value():
    flat = {**with_interval("fid", 3.5, 3.0, 4.0), **with_interval("acc", 0.5, NAN, NAN),
            **bounded("effective_size", 100, -1), "kid_mean": 0.01, "orphan.lo": 1.0,
            "a": 1.0, "a.bound": 0.0}
    assert decode(flat) == {"fid": Measured(3.5, 3.0, 4.0), "acc": Measured(0.5, NAN, NAN),
                            "effective_size": Measured(100.0, bound=-1), "kid_mean": Measured(0.01),
                            "orphan.lo": Measured(1.0), "a": Measured(1.0), "a.bound": Measured(0.0)}
    assert list(decode(flat)) == ["fid", "acc", "effective_size", "kid_mean", "orphan.lo", "a", "a.bound"]
    # no interval logged (None) and an interval logged as NaN are different records
    assert Measured(0.5) != Measured(0.5, NAN, NAN) and encode({"v": Measured(0.5)}) == {"v": 0.5}
    assert math.isnan(Measured(0.5).interval[0]) and Measured(1.0, 0.5, 2.0).interval == (0.5, 2.0)


def test_measured_equality_and_mistakes():
    assert Measured(NAN, NAN, 1.0) == Measured(float("nan"), float("nan"), 1.0)
    assert hash(Measured(NAN, NAN, 1.0)) == hash(Measured(float("nan"), float("nan"), 1.0))
    assert Measured(1.0) != Measured(1.0, bound=1) and Measured(1.0) != 1.0
    with pytest.raises(ValueError, match="bound"):
        Measured(1.0, bound=2)
    with pytest.raises(ValueError, match="values 'a' and 'a.lo' both write the key 'a.lo'"):
        encode({"a": Measured(1.0, lo=0.5), "a.lo": Measured(0.4)})


TYPED = {"fid": Measured(3.5, 3.0, 4.0), "acc": Measured(0.5, NAN, NAN),
         "effective_size": Measured(100.0, bound=-1), "saturation_size": Measured(7.0, bound=1),
         "kid_mean": Measured(NAN)}


def _record(model: str, values: dict[str, Measured]) -> CellRecord:
    cls = METRICS.get("fid")
    return CellRecord(suite="s", model=model, dataset="digits", metric="fid", cell_key=f"s-{model}",
                      metric_plugin="fid", metric_version=cls.version, primary="fid",
                      values=dict(values), declarations=cls.values, run_name=f"{model} / fid")


def test_a_record_through_mlflow_reads_back_equal_typed_values(tmp_path, monkeypatch):
    from bench.record.tracking import Tracker
    from bench.record.writer import RecordWriter

    monkeypatch.chdir(tmp_path)  # the store's artifacts
    tracker = Tracker(f"sqlite:///{tmp_path / 'mlflow.db'}", "exp")
    parent = tracker.create_parent("s", {"bench.kind": "suite", "bench.suite": "s"})
    mem = MemoryLog()
    mem_parent = mem.open_suite("s", {"bench.kind": "suite", "bench.suite": "s"}, {})
    for log, p in ((RecordWriter(tracker), parent), (mem, mem_parent)):
        for model, values in (("a", TYPED), ("b", {"fid": Measured(9.0)}), ("c", {})):
            rec = _record(model, values)
            rec.parent = p
            log.begin(rec)
            log.finish(rec)
    # the keys MLflow holds are the flat ones a metric returns, unchanged
    [a_run] = [r for r in tracker.client.search_runs([tracker.experiment_id])
               if r.data.tags.get("bench.model") == "a"]
    assert _same_flat(a_run.data.metrics, {**with_interval("fid", 3.5, 3.0, 4.0),
                                           **with_interval("acc", 0.5, NAN, NAN),
                                           **bounded("effective_size", 100, -1),
                                           **bounded("saturation_size", 7, 1), "kid_mean": NAN})
    assert mem.runs[mem.begun[0].run_id].metrics == {}  # memory keeps them typed, unflattened
    fast = {r.model: r for r in tracker.records(suite="s")}
    tracker.sql = None  # MLflow's search_runs
    slow = {r.model: r for r in tracker.records(suite="s")}
    memory = {r.model: r for r in mem.records(list(mem.runs))}
    for model, values in (("a", TYPED), ("b", {"fid": Measured(9.0)}), ("c", {})):
        assert fast[model].values == slow[model].values == memory[model].values == values, model
        assert fast[model].declarations == memory[model].declarations
    # the table the board reads: the same from either store, one column per MLflow key
    cols = lambda recs: {c: v for c, v in frame([recs["a"]]).iloc[0].items() if c.startswith("m:")}  # noqa: E731
    assert _same_flat(cols(fast), cols(memory)) and _same_flat(cols(slow), cols(memory))
    assert sorted(cols(memory)) == sorted(f"m:{k}" for k in a_run.data.metrics)


def test_frame_columns_are_the_flat_keys():
    df = frame([_record("a", TYPED), _record("b", {"fid": Measured(9.0)})])
    assert [c for c in df.columns if c.startswith("m:")] == [
        "m:fid", "m:fid" + LO, "m:fid" + HI, "m:acc", "m:acc" + LO, "m:acc" + HI,
        "m:effective_size", "m:effective_size" + BOUND, "m:saturation_size",
        "m:saturation_size" + BOUND, "m:kid_mean"]
    assert df["m:effective_size.bound"].tolist()[0] == -1.0 and math.isnan(df["m:fid.lo"].tolist()[1])


def test_spool_records_of_older_versions_still_load(tmp_path):
    spool = Spool(tmp_path / "spool")
    rec = _record("a", TYPED)
    spool.save(rec)
    saved = json.loads((spool._dir(rec.cell_key) / "record.json").read_text())
    assert _same_flat(saved["values"], encode(TYPED))  # kept as the keys the store will get
    assert spool.load(rec.cell_key).values == TYPED
    # a record.json as versions before typed values wrote it: values a flat dict, in `_PLAIN` order
    old = {"suite": "s", "model": "m", "dataset": "digits", "metric": "fid", "repeat": 0,
           "cell_key": "s-old", "status": "FINISHED", "run_id": "", "start_time": 0,
           "values": {"fid": 3.5, "fid.lo": 3.0, "fid.hi": 4.0, "effective_size": 100.0,
                      "effective_size.bound": -1.0},
           "declarations": json.dumps({"fid": {"role": "score", "ideal": "lower"}}),
           "flags": "[]", "error": "", "parent": "", "tags": {}, "run_name": "", "params": {},
           "dataset_input": None, "traceback": ""}
    (tmp_path / "spool" / "s-old").mkdir()
    (tmp_path / "spool" / "s-old" / "record.json").write_text(json.dumps(old))
    loaded = spool.load("s-old")
    assert loaded is not None and loaded.values == {"fid": Measured(3.5, 3.0, 4.0),
                                                    "effective_size": Measured(100.0, bound=-1)}
    assert loaded.declarations["fid"].ideal == "lower"
