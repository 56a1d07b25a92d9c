"""Generate the docs' per-value table from the metrics' declarations (`Metric.values`).

docs/metrics.md's table "What each value is" lies between the marker lines `START` and
`END`; `python -m bench.report.docgen` rewrites it from the registered metrics, `--check` exits 1
when the file differs from what the declarations say (tests/test_docgen.py runs the check).

Pure: imports the metric classes (their declarations), never runs a metric.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from bench.record.values import Value

START = "<!-- values-table:start -->"
END = "<!-- values-table:end -->"
DOC = Path(__file__).resolve().parents[2] / "docs" / "metrics.md"
HEADER = ("metric", "value (or prefix)", "role", "ideal", "without a held-out row", "aspect",
          "why")


def _cell(text: str) -> str:
    """A markdown table cell: one line, `|` escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def without_held_out(v: Value) -> str:
    """What a `ref` target ranks against when the suite has no held-out real row, in the
    order the leaderboard and `bench compare` try them: the fallback value of the same run,
    else the fixed target, else nothing (not ranked). Empty for any other value."""
    if v.ideal != "target" or not v.ref:
        return ""
    if v.fallback is not None:
        return f"→{v.fallback}"
    if v.target is not None:
        return f"→{v.target:g}"
    return "not ranked"


def rows() -> list[tuple[str, ...]]:
    """One row per declared value of each built-in metric: sorted by metric, then in
    declaration order. Third-party metrics (entry points) are left out, so the table does
    not depend on what else is installed; a built-in metric that fails to import is an error
    rather than a silently missing row."""
    from bench.metrics import METRICS

    broken = {n: why for n, why in METRICS.failures().items()
              if not n.startswith("entry point")}
    if broken:
        raise RuntimeError("cannot generate the values table: "
                           + "; ".join(f"{n}: {why}" for n, why in sorted(broken.items())))
    out: list[tuple[str, ...]] = []
    for name, cls in METRICS.items():
        if not cls.__module__.startswith("bench."):
            continue
        for value, v in cls.values.items():
            label = f"`{value}`" + (" (primary)" if value == cls.primary else "")
            out.append((f"`{name}`", label, v.role, v.symbol, without_held_out(v),
                        v.aspect or "", _cell(v.note)))
    return out


def values_table() -> str:
    """The markdown table (no trailing newline)."""
    lines = ["| " + " | ".join(HEADER) + " |", "| " + " | ".join("---" for _ in HEADER) + " |"]
    lines += ["| " + " | ".join(r) + " |" for r in rows()]
    return "\n".join(lines)


def render(text: str) -> str:
    """`text` with the region between the marker lines replaced by the current table."""
    lines = text.split("\n")
    starts = [i for i, line in enumerate(lines) if line.strip() == START]
    ends = [i for i, line in enumerate(lines) if line.strip() == END]
    if len(starts) != 1 or len(ends) != 1 or ends[0] < starts[0]:
        raise ValueError(f"expected one line {START} followed by one line {END}")
    s, e = starts[0], ends[0]
    return "\n".join(lines[:s + 1] + values_table().split("\n") + lines[e:])


def update(path: str | Path = DOC) -> bool:
    """Rewrite the marked table of `path` from the declarations; True if it changed."""
    path = Path(path)
    old = path.read_text(encoding="utf-8")
    new = render(old)
    if new == old:
        return False
    path.write_text(new, encoding="utf-8")
    return True


def is_current(path: str | Path = DOC) -> bool:
    text = Path(path).read_text(encoding="utf-8")
    return render(text) == text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.report.docgen", description=__doc__.splitlines()[0])
    p.add_argument("path", nargs="?", default=str(DOC), help="the markdown file (docs/metrics.md)")
    p.add_argument("--check", action="store_true",
                   help="change nothing; exit 1 if the table differs from the declarations")
    args = p.parse_args(argv)
    try:
        if args.check:
            if not is_current(args.path):
                print(f"{args.path}: the values table differs from the metrics' declarations; "
                      "run `python -m bench.report.docgen`", file=sys.stderr)
                return 1
            return 0
        changed = update(args.path)
    except (OSError, ValueError, RuntimeError) as e:
        print(f"{args.path}: {e}", file=sys.stderr)
        return 2
    print(f"{args.path}: {'updated' if changed else 'already up to date'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
