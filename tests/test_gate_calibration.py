"""A small run of benchmarks/gate_calibration.py: the script the docs' calibration table comes
from runs, honest boards pass through the board's own gates and copiers are caught."""

import importlib.util
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "gate_calibration.py"


def test_a_small_calibration_run():
    spec = importlib.util.spec_from_file_location("gate_calibration", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    table = mod.run(3, rows=["real split", "exact copies"], every=1).set_index("case")
    honest = table.loc["real split (898 / 450 / 449), board of 1"]
    copier = table.loc["exact copies of T (1,258)"]
    assert honest["kind"] == "honest" and honest["boards"] == 3
    assert copier["flagged per model"] == 1.0
    assert copier["flags by near_copies_p"] == copier["flags by authenticity"] == 3
