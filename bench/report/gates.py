"""Gates: the values that are pass/fail evidence, evaluated on a leaderboard table.

A value declares a gate beside its ideal (bench.record.values.Value.gate): `below` (its 95%
interval lies entirely below a number: C_T < -1.645 is Meehan et al.'s copying test) or
`below_ref` (below the held-out real row beyond the combined uncertainty: authenticity). A
gate that fires becomes a `bench.record.flags.Flag(gate=True)` on the model, beside the flags its
cells recorded themselves (output checks, GAN-test near chance). The board places every
flagged model below every model that passes and prints the reasons (docs/leaderboard.md).

Each gate looks only at the model's own value and the held-out real row: whether a model
passes never depends on which other models are in the suite.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from bench.record.flags import Flag
from bench.record.values import Value


def _num(x: float) -> str:
    return f"{x:.3g}"


def board_flags(mean: pd.DataFrame, unc: pd.DataFrame, values: dict[str, Value],
                held_out: str | None) -> dict[str, list[Flag]]:
    """model -> the gate flags its values raise on a board: `mean` and `unc` (its 95%
    half-width) are model x value, `values` the columns' declarations, `held_out` the target
    row (reference rows included: a calibration memoriser is flagged too, which is the point
    of having it). The board's parts rather than its Table, so that gates need not import
    the leaderboard that calls them."""
    out: dict[str, list[Flag]] = {}
    models = list(mean.index)
    for c in mean.columns:
        v = values[c]
        if not v.gate:
            continue
        xs = mean[c].to_numpy(dtype=float)
        us = np.nan_to_num(unc[c].to_numpy(dtype=float), nan=0.0)
        ref = ref_u = math.nan
        if v.gate == "below_ref":
            if held_out is None or held_out not in mean.index:
                continue  # no target row: the gate cannot be read, and says nothing
            ref = float(mean.at[held_out, c])
            ref_u = float(unc.at[held_out, c])
            if math.isnan(ref):
                continue
            ru = 0.0 if math.isnan(ref_u) else ref_u
            margins = np.sqrt(us**2 + ru**2)
            hit = (ref - xs) > np.maximum(margins, 1e-12)
        elif v.gate == "below" and v.gate_at is not None:
            hit = xs + us < v.gate_at
        else:
            continue
        for i in np.flatnonzero(hit & ~np.isnan(xs)):  # only the flagged: no per-model loop
            m, x, u = models[i], float(xs[i]), float(us[i])
            if m == held_out:
                continue
            if v.gate == "below":
                shown = f"{_num(x)}" + (f" (95% upper end {_num(x + u)})" if u else "")
                out.setdefault(m, []).append(Flag(
                    v.gate_kind, f"{c} = {shown} < {v.gate_at:g}: {v.gate_note}", True, c))
            else:
                out.setdefault(m, []).append(Flag(
                    v.gate_kind, f"{c} = {_num(x)} vs the held-out real row's {_num(ref)} "
                    f"(separated by more than {_num(float(margins[i]))}): {v.gate_note}", True, c))
    return out
