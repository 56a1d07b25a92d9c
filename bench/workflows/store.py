"""Which tracking store and experiment a suite file or suite name is read from, checked
before any work: a URI MLflow can open, a store that exists (reading never creates one), the
suite's experiment."""

from __future__ import annotations

import os
from pathlib import Path

from bench.core.errors import BenchError

# MLflow's own store schemes (its registry answers below, when it can be read)
_SCHEMES = ("", "file", "sqlite", "http", "https", "postgresql", "mysql", "mssql", "databricks",
            "databricks-uc", "uc")


def _store_schemes() -> list[str]:
    from bench.record.tracking import registered_store_schemes

    return sorted(set(_SCHEMES) | set(registered_store_schemes()))


def uri_origin(cli: str | None, suite: str | None = None) -> str:
    """Where the tracking URI that `resolve_uri` picks comes from, for messages."""
    if cli:
        return "--tracking-uri"
    if os.environ.get("MLFLOW_TRACKING_URI"):
        return "MLFLOW_TRACKING_URI"
    return "the suite's tracking_uri" if suite else "the default"


def check_tracking_uri(uri: str, origin: str = "--tracking-uri") -> str:
    """A tracking URI MLflow can open: a known scheme (`htp://` is refused here, not deep
    inside MLflow with a traceback), a complete sqlite URI. Returns the URI."""
    from urllib.parse import urlparse

    from bench.core.registry import did_you_mean

    scheme = urlparse(uri).scheme.lower()
    if len(scheme) == 1:  # a Windows drive letter: a path
        return uri
    if not scheme and uri.lower().endswith((".db", ".sqlite", ".sqlite3")):
        # a bare path is MLflow's deprecated file store (a folder), not this SQLite file
        raise BenchError(f"{origin} '{uri}': a SQLite file needs its scheme: sqlite:///{uri} "
                         "(a bare path is a folder store).")
    base = scheme.split("+", 1)[0]  # postgresql+psycopg2: a database and its driver
    # MLflow's registry (importing mlflow: seconds) only for a scheme outside the fixed list
    known = list(_SCHEMES) if base in _SCHEMES else _store_schemes()
    if base not in known:
        raise BenchError(f"{origin} '{uri}': unknown scheme '{scheme}'.{did_you_mean(scheme, known)} "
                         "Use http(s)://HOST:PORT (a tracking server), sqlite:///FILE.db, or a folder.")
    if scheme == "sqlite" and not uri.lower().startswith("sqlite:///"):
        raise BenchError(f"{origin} '{uri}': a SQLite URI has three slashes before a relative path "
                         "and four before an absolute one: sqlite:///mlflow.db, sqlite:////abs/mlflow.db.")
    if scheme in ("http", "https") and not urlparse(uri).netloc:
        raise BenchError(f"{origin} '{uri}': no host. Use {scheme}://HOST:PORT, e.g. {scheme}://localhost:5000.")
    return uri


def local_store(uri: str) -> Path | None:
    """The file or folder of a local store (sqlite:///..., file:..., a path); None for a server."""
    from bench.record.tracking import local_path

    if uri in ("databricks", "databricks-uc", "uc"):  # MLflow's names of hosted stores
        return None
    return local_path(uri)


def check_store_exists(uri: str, origin: str = "--tracking-uri") -> None:
    """Reading commands never create a store: a missing SQLite file or folder is a mistake
    (a typo, or another working directory than `bench run`'s), not an empty board."""
    path = local_store(uri)
    if path is not None and not path.exists():
        raise BenchError(f"the tracking store {path} ({origin} '{uri}') does not exist. Pass the "
                         "store `bench run` wrote (--tracking-uri), or run from its folder.")


def suite_file(target: str):
    """What a board reads of a suite file (bench.config.board_suite: no plugin imported);
    None for a suite name."""
    if not (target.endswith((".yaml", ".yml")) or Path(target).is_file()):
        return None
    from bench.config.board_suite import read_board_suite

    return read_board_suite(target)


def experiment_id(uri: str, name: str) -> str:
    from bench.record.tracking import Tracker

    exp_id = Tracker.experiment_of(uri, name)
    if exp_id is None:
        raise BenchError(f"no MLflow experiment '{name}' at {uri}. Check the name, or pass "
                         "--tracking-uri (the store `bench run` used).")
    return exp_id


def open_suite_store(target: str, tracking_uri: str | None = None, experiment: str | None = None):
    """(tracker, suite name) for a suite file or a suite name, in the right experiment."""
    from bench.record.tracking import Tracker, resolve_uri

    suite_uri = None
    if Path(target).is_dir():
        from bench.config.suite import load_suite

        load_suite(target)  # says it is a directory, naming a suite in it
    if target.endswith((".yaml", ".yml")) or Path(target).is_file():
        from bench.config.board_suite import read_board_suite

        s = read_board_suite(target)  # name, experiment and store only: no plugin imported
        name, experiment, suite_uri = s.name, experiment or s.experiment, s.tracking_uri
    else:
        name, experiment = target, experiment or target
    uri = resolve_uri(tracking_uri, suite_uri)
    origin = uri_origin(tracking_uri, suite_uri)
    check_tracking_uri(uri, origin)
    check_store_exists(uri, origin)  # reading never creates an empty store
    # the suite's own experiment, also under `mlflow run` (whose run may live in "Default"):
    # the runner always logs cells there (bench.run.runner)
    return Tracker(uri, experiment_id=experiment_id(uri, experiment)), name


def suite_uri(tracking_uri: str | None, suite) -> str:
    """The tracking URI a suite's command uses (flag, env, suite file, default), checked."""
    from bench.record.tracking import resolve_uri

    uri = resolve_uri(tracking_uri, suite.tracking_uri)
    return check_tracking_uri(uri, uri_origin(tracking_uri, suite.tracking_uri))


def check_registry_models(suite, uri: str, origin: str) -> int:
    """Every `mlflow` model of a suite (models:/name/version, @alias, model id, runs:/) exists in
    the store that will be read. Returns how many were checked."""
    from bench.models.mlflow_model import check_model_exists

    uris = [spec.options.uri for spec in suite.models.values() if spec.plugin == "mlflow"]
    if not uris:
        return 0
    if not os.environ.get("MLFLOW_REGISTRY_URI"):
        check_store_exists(uri, origin)
    problems = []
    for key, spec in suite.models.items():
        if spec.plugin == "mlflow":
            try:
                check_model_exists(spec.options.uri, uri)
            except BenchError as e:
                problems.append(f"{suite.path}: models.{key}: {e}")
    if problems:
        raise BenchError("\n".join(problems))
    return len(uris)
