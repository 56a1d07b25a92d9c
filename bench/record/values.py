"""What a logged value means: its role, its ideal and the aspect of a model it measures.

Every value a metric logs is declared with a `Value`. The leaderboard and `bench compare`
read these declarations (logged on each cell run as the `bench.values` tag) and nothing
else, so what wins, what is only shown and what describes the data is decided in one place:

- role `score`: a property of the model; ranked, bolded, counted in the summary.
- role `diagnostic`: shown beside the scores (a spread, a per-level detail, a secondary
  arm), never bolded or ranked.
- role `reference`: a property of the data (the real classifier's accuracy), shown once per
  dataset, not per model.

The ideal is `higher`, `lower` or `target`. A target is a fixed number (`target=0`), or
`ref=True`: "the value the held-out real data gets in the same suite", falling back to
`target` (a number) or `fallback` (another value of the same run, e.g. `real_val_acc`)
when the suite has no held-out row. Target values rank by their distance to the target.

Intervals: a metric logs a value's 95% interval as two more values named `<value>.lo` and
`<value>.hi` (see `interval_names`); tables fold them into their value's cell.

Bounds: a value that is only known to be at most (or at least) what is logged (an effective
size below the curve's smallest real point) logs `<value>.bound` = -1 (at most, shown
`≤ x`) or +1 (at least, `≥ x`) beside it (see `bounded`); the board never counts a bound as
better than a number it might not beat.

What one run measured for a value is a `Measured` (the number, its interval, its bound): the
record (bench.record.cell_record) holds those. The flat companion keys above are how a metric
returns them and how MLflow stores them; `decode` and `encode` convert between the two, at
those two borders only.

Pure Python (no torch): the leaderboard imports it without loading any model code.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Literal

Role = Literal["score", "diagnostic", "reference"]
Ideal = Literal["higher", "lower", "target"]

# The aspects a summary groups scores by, in display order.
ASPECTS: tuple[str, ...] = ("quality", "diversity", "conditioning", "memorisation", "utility")
LO, HI, BOUND = ".lo", ".hi", ".bound"
_PARTS = frozenset(("lo", "hi", "bound"))  # the companions' suffixes, without the dot


@dataclass(frozen=True)
class Value:
    """The declaration of one logged value (see the module docstring)."""

    role: Role = "score"
    ideal: Ideal = "higher"
    aspect: str | None = None
    target: float | None = None  # fixed target, or the fallback when ref=True
    ref: bool = False  # target = the held-out real data's value in the same suite
    fallback: str | None = None  # target = this value of the same run when there is no ref
    note: str = ""  # shown in docs/`bench list`: why this ideal
    # a gate (bench.report.gates): evidence that fails the model rather than ranking it.
    # "below": the value's 95% interval lies entirely below `gate_at`; "below_ref": below the
    # held-out real row's value (a one-sided z test on the two intervals); "p": the value is
    # a one-sided p-value and `gate_at` the board's family-wise level. "below_ref" and "p"
    # gates of one kind are read together, Bonferroni over the board. `gate_kind` names the flag.
    gate: Literal["", "below", "below_ref", "p"] = ""
    gate_at: float | None = None
    gate_kind: str = ""
    gate_note: str = ""  # why this threshold (docs, and the flag's reason)
    # the board's headline pair (bench.report.leaderboard.headline_of): this value can stand
    # for a model's "fidelity" (quality, precision) or "coverage" (diversity, recall); of the
    # values a table has for each side, the lowest `headline_rank` is used
    headline: Literal["", "fidelity", "coverage"] = ""
    headline_rank: int = 0

    def __post_init__(self) -> None:
        if self.role not in ("score", "diagnostic", "reference"):
            raise ValueError(f"role {self.role!r}: use score, diagnostic or reference")
        if self.ideal not in ("higher", "lower", "target"):
            raise ValueError(f"ideal {self.ideal!r}: use higher, lower or target")
        if self.ideal == "target" and self.target is None and not self.ref and self.fallback is None:
            raise ValueError("ideal 'target' needs target=<number>, ref=True or fallback=<value>")
        if self.gate and not self.gate_kind:
            raise ValueError("a gate needs gate_kind (the flag's name, e.g. 'copies')")
        if self.gate in ("below", "p") and self.gate_at is None:
            raise ValueError(f"gate '{self.gate}' needs gate_at=<number>")
        if self.headline not in ("", "fidelity", "coverage"):
            raise ValueError(f"headline {self.headline!r}: use fidelity or coverage")
        if self.aspect is not None and self.aspect not in ASPECTS:
            raise ValueError(f"aspect {self.aspect!r}: use one of {ASPECTS}")

    # ------------------------------------------------------------ (de)serialisation
    def to_json(self) -> dict:
        # `is`, not `in`: 0.0 == False, and a target of 0 must survive the round trip
        return {k: v for k, v in asdict(self).items()
                if not (v is None or v is False or v == "" or (k == "headline_rank" and v == 0))}

    @classmethod
    def from_json(cls, d: dict) -> Value:
        return cls(**{k: v for k, v in d.items() if k in cls.__dataclass_fields__})

    @property
    def symbol(self) -> str:
        """Header mark: ↑, ↓, →0, →ref."""
        if self.ideal == "higher":
            return "↑"
        if self.ideal == "lower":
            return "↓"
        if self.ref:
            return "→ref"
        if self.fallback:
            return f"→{self.fallback}"
        return f"→{self.target:g}"


@dataclass(frozen=True, eq=False)
class Measured:
    """What one cell run measured for one value: the number `x`, its 95% interval `lo`..`hi`
    and whether `x` is only a bound (`bound` -1: at most x, +1: at least x, 0: x itself).

    Not `Value`: a `Value` is the declaration of a value name (role, ideal, aspect), the same
    for every run of a metric version; a `Measured` is one run's number for it. A record holds
    both (`CellRecord.declarations` and `CellRecord.values`), side by side.

    `lo`/`hi` are None when no interval was logged and NaN when one was logged that could not
    be computed: kept apart so that a record writes back exactly the MLflow keys it was read
    from (`encode`). Equality treats NaN as equal to NaN (a record read back equals the one
    written)."""

    x: float
    lo: float | None = None
    hi: float | None = None
    bound: int = 0

    def __post_init__(self) -> None:
        if self.bound not in (-1, 0, 1):
            raise ValueError("bound: -1 (at most), +1 (at least) or 0 (none)")

    @property
    def interval(self) -> tuple[float, float]:
        """(lo, hi), NaN for an end not logged."""
        return (math.nan if self.lo is None else self.lo, math.nan if self.hi is None else self.hi)

    def _key(self) -> tuple:
        return tuple("nan" if isinstance(v, float) and math.isnan(v) else v
                     for v in (self.x, self.lo, self.hi, self.bound))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Measured) and self._key() == other._key()

    def __hash__(self) -> int:
        return hash(self._key())


def encode(values: Mapping[str, Measured]) -> dict[str, float]:
    """The flat keys MLflow stores: `<v>`, and `<v>.lo`, `<v>.hi`, `<v>.bound` where logged."""
    out: dict[str, float] = {}
    owner: dict[str, str] = {}  # key -> the value that wrote it (a clash would lose a number)
    for name, m in values.items():
        keys = [(name, m.x), (name + LO, m.lo), (name + HI, m.hi),
                (name + BOUND, float(m.bound) if m.bound else None)]
        for key, v in keys:
            if v is None:
                continue
            if key in out:
                raise ValueError(f"values {owner[key]!r} and {name!r} both write the key {key!r}")
            out[key], owner[key] = float(v), name
    return out


def decode(flat: Mapping[str, float]) -> dict[str, Measured]:
    """Flat keys (a metric's result, an MLflow run's metrics) as measured values, in the order
    of their values' keys. A companion joins its value when that value was logged; one that
    cannot join (no such value, a bound other than ±1) stays a value under its own key, so
    `encode(decode(flat)) == flat` for any `flat`."""
    joined: dict[str, dict[str, float]] = {}
    companions = set()
    for key, v in flat.items():  # (rpartition, not endswith x 3: the board decodes every run)
        base, dot, part = key.rpartition(".")
        if (dot and part in _PARTS and base in flat and not is_interval(base)
                and (part != "bound" or v in (-1.0, 1.0))):
            joined.setdefault(base, {})[part] = float(v)
            companions.add(key)
    out: dict[str, Measured] = {}
    for key, v in flat.items():
        if key in companions:
            continue
        parts = joined.get(key)
        out[key] = (Measured(float(v)) if parts is None else
                    Measured(float(v), parts.get("lo"), parts.get("hi"), int(parts.get("bound", 0))))
    return out


def score(ideal: Ideal = "higher", aspect: str | None = None, **kw) -> Value:
    return Value("score", ideal, aspect, **kw)


def diagnostic(ideal: Ideal = "higher", **kw) -> Value:
    return Value("diagnostic", ideal, **kw)


def reference(ideal: Ideal = "higher", **kw) -> Value:
    return Value("reference", ideal, **kw)


def lookup(declared: dict[str, Value], name: str) -> Value:
    """A value's declaration: exact, else its longest declared prefix (`swd` covers
    `swd_8`), else a diagnostic (an undeclared value is shown, never ranked)."""
    if name in declared:
        return declared[name]
    prefixes = [k for k in declared if name.startswith(k)]
    return declared[max(prefixes, key=len)] if prefixes else Value("diagnostic")


def interval_names(name: str) -> tuple[str, str]:
    return name + LO, name + HI


def is_interval(name: str) -> bool:
    """True for the companions of a value (interval ends and bound marks), which are folded
    into their value's cell rather than shown as values of their own."""
    return name.endswith(LO) or name.endswith(HI) or name.endswith(BOUND)


def bounded(name: str, value: float, side: int) -> dict[str, float]:
    """{name: value, name.bound: side}: `value` is an upper (side=-1) or lower (+1) bound."""
    if side not in (-1, 1):
        raise ValueError("side: -1 (at most) or +1 (at least)")
    return {name: float(value), name + BOUND: float(side)}


def with_interval(name: str, value: float, lo: float, hi: float) -> dict[str, float]:
    """{name: value, name.lo: lo, name.hi: hi}: what a metric returns for a value with a CI."""
    a, b = interval_names(name)
    return {name: float(value), a: float(lo), b: float(hi)}


def wilson(correct: int, total: int, confidence: float = 0.95) -> tuple[float, float]:
    """Wilson score interval of a proportion (scipy.stats.binomtest): the accuracy of a
    classifier on `total` test images is a binomial proportion."""
    from scipy.stats import binomtest

    if total <= 0:
        return math.nan, math.nan
    ci = binomtest(int(correct), int(total)).proportion_ci(confidence, method="wilson")
    return float(ci.low), float(ci.high)


def accuracy_with_interval(name: str, accuracy: float, total: int) -> dict[str, float]:
    lo, hi = wilson(round(accuracy * total), total)
    return with_interval(name, accuracy, lo, hi)


def dumps(declared: dict[str, Value], names: list[str]) -> str:
    """The `bench.values` tag of a run: the declaration of each value it logged."""
    return json.dumps({n: lookup(declared, n).to_json() for n in names if not is_interval(n)},
                      sort_keys=True)


def loads(tag: str | None, legacy_directions: str | None = None) -> dict[str, Value]:
    """Read `bench.record.values`; runs logged before it existed carry `bench.directions`
    ({value: higher_is_better}): those become diagnostics (shown, never ranked), since
    their role was never declared."""
    if tag:
        return {k: Value.from_json(v) for k, v in json.loads(tag).items()}
    if legacy_directions:
        return {k: Value("diagnostic", "higher" if h else "lower")
                for k, h in json.loads(legacy_directions).items()}
    return {}
