"""bench: how good is my GAN? Classifier-based and distribution metrics, tracked in MLflow.

    import bench
    bench.evaluate(real="real/", fake="fake.npz", metrics=["fid", "kid"])  # values, intervals
    bench.run_suite("suites/quickstart.yaml")                            # or a dict, a YAML string

and, over a suite's runs in its store, what the commands print, as values:

    bench.nightly("suites/nightly.yaml")             # bench nightly: .ok, .regressions, .table
    bench.compare("nightly", "previous", "latest")   # bench compare: .ok, .table, .render()
    bench.accept("nightly")                          # bench compare --accept
    bench.leaderboard("suites/nightly.yaml")         # bench leaderboard (format="html": the page)
    bench.history("nightly", "cgan")                 # bench leaderboard --model cgan --history
    bench.trends("nightly", last=7)                  # the HTML board's trends table

The first two live in bench.api, the others in bench.workflows.api; each is imported on
first use, so `import bench` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.api import Evaluation, EvaluationFailed, Result, SuiteRun, evaluate, run_suite
    from bench.workflows.api import (
        Accepted,
        Comparison,
        NightlyResult,
        SuiteInProgress,
        accept,
        compare,
        history,
        leaderboard,
        nightly,
        trends,
    )

from bench.core.version import __version__

# name -> the module that defines it, imported when the name is first read
_LAZY = {**dict.fromkeys(("Evaluation", "EvaluationFailed", "Result", "SuiteRun", "evaluate",
                          "run_suite"), "bench.api"),
         **dict.fromkeys(("Accepted", "Comparison", "NightlyResult", "SuiteInProgress", "accept",
                          "compare", "history", "leaderboard", "nightly", "trends"),
                         "bench.workflows.api")}

__all__ = ["Accepted", "Comparison", "Evaluation", "EvaluationFailed", "NightlyResult", "Result",
           "SuiteInProgress", "SuiteRun", "__version__", "accept", "compare", "evaluate",
           "history", "leaderboard", "nightly", "run_suite", "trends"]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'bench' has no attribute '{name}'")
