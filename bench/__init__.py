"""bench: how good is my GAN? Classifier-based and distribution metrics, tracked in MLflow.

    import bench
    bench.evaluate(real="real/", fake="fake.npz", metrics=["fid", "kid"])  # values, intervals
    bench.run_suite("suites/quickstart.yaml")                            # or a dict, a YAML string

Both live in bench.api and are imported on first use: `import bench` stays light.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bench.api import Evaluation, EvaluationFailed, Result, SuiteRun, evaluate, run_suite

from bench.core.version import __version__

__all__ = ["Evaluation", "EvaluationFailed", "Result", "SuiteRun", "__version__", "evaluate",
           "run_suite"]

_API = {"Evaluation", "EvaluationFailed", "Result", "SuiteRun", "evaluate", "run_suite"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from bench import api

        return getattr(api, name)
    raise AttributeError(f"module 'bench' has no attribute '{name}'")
