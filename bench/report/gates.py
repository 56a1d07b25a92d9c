"""Gates: the values that are pass/fail evidence, evaluated on a leaderboard table.

A value declares a gate beside its ideal (bench.record.values.Value.gate):

- `p`: the value is a one-sided p-value of a test whose null is "honest" (near-copies of
  the training images, the data-copying test);
- `below_ref`: below the held-out real row (authenticity): a one-sided z test of the
  difference, each side's standard error from its 95% interval (intervals count distinct
  images: bench.metrics.base.Context.distinct);
- `below`: the value's 95% interval lies entirely below a fixed number.

`p` and `below_ref` gates of one kind (e.g. `copies`) form one family per board: a model is
flagged when its p-value is below `level / M`, M the number of such tests on the board
(Bonferroni; a test that several metrics log, such as near-copies on one extractor, counts
once). So the chance that a board of honest models shows any flag of that kind is at
most `level` (5% unless declared), whatever the number of models, and a model's flag
depends on its own values, the held-out row and the count M, never on another model's
values. benchmarks/gate_calibration.py measures the rates; docs/leaderboard.md has them.

A gate that fires becomes a `bench.record.flags.Flag(gate=True)` on the model, beside the
flags its cells recorded themselves (output checks, GAN-test near chance). The board places
every flagged model below every model that passes and prints the reasons.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.record.flags import Flag
from bench.record.values import Value

LEVEL = 0.05  # a family's board-wide false-alarm level when its values declare none
Z95 = 1.959963984540054


def _num(x: float) -> str:
    return f"{x:.3g}"


def _p_values(c: str, v: Value, mean: pd.DataFrame, unc: pd.DataFrame,
              held_out: str | None) -> tuple[np.ndarray, str]:
    """One-sided p-values of column c's test per model (NaN: no test), and what the test
    compared, for the flag's reason."""
    xs = mean[c].to_numpy(dtype=float)
    if v.gate == "p":
        return np.clip(xs, 0.0, 1.0), ""
    # below_ref: is the model's value below the held-out row's beyond both uncertainties?
    if held_out is None or held_out not in mean.index or math.isnan(float(mean.at[held_out, c])):
        return np.full(len(xs), np.nan), ""  # no target row: the gate says nothing
    from scipy.special import ndtr  # the normal cdf; scipy.stats costs 1 s to import

    ref = float(mean.at[held_out, c])
    ref_se = float(np.nan_to_num(unc.at[held_out, c], nan=0.0)) / Z95
    se = np.nan_to_num(unc[c].to_numpy(dtype=float), nan=0.0) / Z95
    sd = np.sqrt(se**2 + ref_se**2)
    z = np.where(sd > 0, (ref - xs) / np.maximum(sd, 1e-300), np.where(ref > xs, np.inf, -np.inf))
    return ndtr(-z), f" vs the held-out real row's {_num(ref)}"


def _same_test(p1: np.ndarray, p2: np.ndarray) -> bool:
    """Two columns of one value (`fid.near_copies_p`, `kid.near_copies_p`) are one test when
    they agree on every model: the near-copies check that every feature metric on one
    extractor logs (one result per model and extractor, shared through the run's store) gets
    a column per metric as soon as another extractor's differs
    (bench.report.leaderboard._long), yet it is one test."""
    return bool(np.isfinite(p1).any()) and np.array_equal(p1, p2, equal_nan=True)


def board_flags(mean: pd.DataFrame, unc: pd.DataFrame, values: dict[str, Value],
                held_out: str | None, names: dict[str, str] | None = None
                ) -> dict[str, list[Flag]]:
    """model -> the gate flags its values raise on a board: `mean` and `unc` (its 95%
    half-width) are model x value, `values` the columns' declarations, `held_out` the target
    row (reference rows included: a calibration memoriser is flagged too, which is the point
    of having it; the held-out row itself is never tested), `names` the value each column
    holds where that is not the column's name (`fid.near_copies_p` -> `near_copies_p`): the
    columns of one value that agree on every model count once. The board's parts rather than
    its Table, so that gates need not import the leaderboard that calls them."""
    out: dict[str, list[Flag]] = {}
    models = list(mean.index)
    tested = np.array([m != held_out for m in models], dtype=bool)
    families: dict[str, list[tuple[str, np.ndarray, str]]] = {}
    names = names or {}
    for c in mean.columns:
        v = values[c]
        if v.gate in ("p", "below_ref"):
            p, what = _p_values(c, v, mean, unc, held_out)
            p = np.where(tested, p, np.nan)
            family = families.setdefault(v.gate_kind, [])
            name = names.get(c, c)
            if not any(names.get(c2, c2) == name and _same_test(p2, p) for c2, p2, _ in family):
                family.append((c, p, what))
        elif v.gate == "below" and v.gate_at is not None:
            xs = mean[c].to_numpy(dtype=float)
            us = np.nan_to_num(unc[c].to_numpy(dtype=float), nan=0.0)
            for i in np.flatnonzero((xs + us < v.gate_at) & tested):
                x, u = float(xs[i]), float(us[i])
                shown = f"{_num(x)}" + (f" (95% upper end {_num(x + u)})" if u else "")
                out.setdefault(models[i], []).append(Flag(
                    v.gate_kind, f"{c} = {shown} < {v.gate_at:g}: {v.gate_note}", True, c))
    for kind, tests in families.items():
        count = int(sum(np.isfinite(p).sum() for _, p, _ in tests))  # M: the board's tests
        for c, p, what in tests:
            v = values[c]
            level = v.gate_at if v.gate == "p" and v.gate_at is not None else LEVEL
            cut = level / max(count, 1)
            for i in np.flatnonzero(np.isfinite(p) & (p < cut)):  # only the flagged
                x = float(mean.iat[i, mean.columns.get_loc(c)])
                shown = f"{c} = {_num(float(p[i]))}" if v.gate == "p" else \
                    f"{c} = {_num(x)}{what} (one-sided p = {_num(float(p[i]))})"
                out.setdefault(models[i], []).append(Flag(
                    kind, f"{shown} < {level:g}/{count} (Bonferroni over the board's {count} "
                    f"{kind} tests): {v.gate_note}", True, c))
    return out
