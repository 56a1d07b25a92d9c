"""A suite file made ready to run (`bench run`, `bench validate`, `bench nightly`): loaded and
validated, its `models:/` URIs found in the store that will be read, its executor built with
the command line's overrides, its per-value thresholds checked against its metrics. Everything
here happens before any run exists."""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench.core.errors import BenchError
from bench.workflows.store import check_registry_models, suite_uri, uri_origin

if TYPE_CHECKING:
    from bench.config.suite import Suite
    from bench.executors import Executor


@dataclass(frozen=True)
class CheckedSuite:
    suite: Suite
    uri: str  # the tracking URI its runs go to (flag, env, suite file, default)
    registered: int  # its MLflow registry models, found at `uri`


def load_checked(path: str | os.PathLike, tracking_uri: str | None = None) -> CheckedSuite:
    """The suite at `path`, validated (bench.config.suite.load_suite), with its tracking URI
    checked and every `mlflow` model of it found in that store's registry."""
    from bench.config.suite import load_suite

    return checked(load_suite(Path(path)), tracking_uri)


def checked(suite: Suite, tracking_uri: str | None = None) -> CheckedSuite:
    """As load_checked, for a suite already loaded."""
    uri = suite_uri(tracking_uri, suite)
    registered = check_registry_models(suite, uri, uri_origin(tracking_uri, suite.tracking_uri))
    return CheckedSuite(suite, uri, registered)


def build_executor(suite: Suite, name: str | None = None,
                   flags: Mapping[str, Any] | None = None) -> Executor:
    """The suite's executor (validated with the suite), overridden by another executor `name`
    and the executor flags given (`--workers` -> value; None: not given)."""
    from pydantic import ValidationError

    try:
        return suite.executor.override(name, flags).build()
    except ValidationError as e:
        who = name or suite.executor.name
        raise BenchError(f"executor '{who}': {e.errors()[0]['loc']}: {e.errors()[0]['msg']}") from None


def check_threshold_names(suite: Suite, names: Iterable[str]) -> None:
    """Each per-value threshold names a value the suite's metrics declare (exactly, or under a
    declared prefix such as `swd`), checked before the suite runs."""
    from bench.core.registry import did_you_mean

    declared = list(dict.fromkeys(v for spec in suite.metrics.values() for v in spec.cls.values))
    for name in names:
        if not any(name == d or name.startswith(d) for d in declared):
            raise BenchError(f"--threshold-for {name}: no metric of suite '{suite.name}' logs this "
                             f"value.{did_you_mean(name, declared)} Values: {', '.join(declared)}.")
