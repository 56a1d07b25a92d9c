"""The only module that talks to MLflow.

It works with explicit run ids through `MlflowClient` (no fluent "active run" state), so
the same calls serve a single process, `mlflow run`, and workers elsewhere that log into
the suite's parent run.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import subprocess
import threading
import time
import warnings
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from mlflow import MlflowClient
    from mlflow.entities import Run

import pandas as pd

from bench.core.disk import disk_full, free_space
from bench.core.errors import BenchError
from bench.core.safe_names import safe_filename
from bench.core.version import __version__
from bench.record.cell_record import (
    PARENT_TAG,
    CellRecord,
    SuiteRunRecord,
    TrainRunRecord,
    cell_filter,
    error_tags,
    suite_filter,
)
from bench.record.cell_record import frame as record_frame
from bench.record.outage import MLFLOW_ENV_DEFAULTS, Outage, StoreUnreachable, outage_for

DEFAULT_URI = "sqlite:///mlflow.db"
# MLflow's own tag names (mlflow.utils.mlflow_tags); mlflow itself is imported on first use:
# importing it takes longer than a 10,000-run board read straight from a SQL store
MLFLOW_RUN_NAME = "mlflow.runName"
MLFLOW_PARENT_RUN_ID = PARENT_TAG
MAX_PARAM = 6000
# the loggers of MLflow's stores: a SQL store logs the SQL, its parameters and a traceback
# before it raises (the exception says the same, and the caller reports it once)
STORE_LOGGERS = ("mlflow", "alembic", "sqlalchemy")


_QUIET = threading.Lock()
_quiet_depth = 0
_quiet_saved: list[tuple[logging.Logger, int]] = []
_env_added: list[str] = []  # MLflow settings a quiet block added to os.environ


def _set_levels(levels: list[tuple[logging.Logger, int]]) -> None:
    """Each logger's level, then logging's per-logger caches cleared once: what `setLevel` does
    for each, but `setLevel` clears the caches of every logger in the process each time (a
    guard-rail suite run enters thousands of quiet blocks, a few loggers each)."""
    changed = [(lg, level) for lg, level in levels if lg.level != level]
    for lg, level in changed[:-1]:
        lg.level = level
    if changed:  # the last by setLevel, which clears every logger's cache
        lg, level = changed[-1]
        lg.setLevel(level)


@contextmanager
def quiet_store_logs() -> Iterator[None]:
    """MLflow's, Alembic's and SQLAlchemy's loggers at CRITICAL for a block, then as they were
    (never the process-wide `logging.disable`: other libraries' and the user's logs stay);
    MLflow's settings of bench.record.outage.MLFLOW_ENV_DEFAULTS that the user has not set,
    for the block only (the caller's environment is left as it was: issue 28).
    Nested and concurrent blocks (the lease's heartbeat thread) share one save and restore."""
    global _quiet_depth
    with _QUIET:
        if _quiet_depth == 0:
            _env_added[:] = [k for k in MLFLOW_ENV_DEFAULTS if k not in os.environ]
            for k in _env_added:
                os.environ[k] = MLFLOW_ENV_DEFAULTS[k]
            # the top loggers, and any below them with a level of their own (`mlflow.store`)
            names = set(STORE_LOGGERS) | {
                n for n, lg in list(logging.root.manager.loggerDict.items())
                if isinstance(lg, logging.Logger) and lg.level != logging.NOTSET
                and any(n.startswith(p + ".") for p in STORE_LOGGERS)}
            _quiet_saved[:] = [(lg, lg.level) for lg in map(logging.getLogger, sorted(names))]
            _set_levels([(lg, logging.CRITICAL) for lg, _ in _quiet_saved])
        _quiet_depth += 1
    try:
        yield
    finally:
        with _QUIET:
            _quiet_depth -= 1
            if _quiet_depth == 0:
                _set_levels(_quiet_saved)
                _quiet_saved.clear()
                for k in _env_added:
                    os.environ.pop(k, None)
                _env_added.clear()


@contextmanager
def scoped_tracking_uri(uri: str) -> Iterator[None]:
    """MLflow's fluent APIs (`mlflow.pytorch.log_model`, `load_model`, `register_model`) at
    `uri` for a block, then MLflow's URI (and MLFLOW_TRACKING_URI) as they were: every other
    call goes through a client made with its URI, so nothing else depends on a global."""
    from mlflow.tracking._tracking_service.utils import _use_tracking_uri

    env = os.environ.get("MLFLOW_TRACKING_URI")
    try:
        with _use_tracking_uri(uri):
            yield
    finally:
        if env is None:
            os.environ.pop("MLFLOW_TRACKING_URI", None)
        else:
            os.environ["MLFLOW_TRACKING_URI"] = env


class StoreFull(BenchError):
    """The disk under the tracking store or its artifacts is full."""


def check_writable(path: Path, what: str, fix: str) -> None:
    """Create the folder `path` if missing and write (and remove) a probe file in it; one
    BenchError naming the folder and `fix` otherwise (a full disk: StoreFull)."""
    import tempfile

    try:
        path.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".bench-write-probe-", dir=path)
        os.close(fd)
        os.unlink(name)
    except OSError as e:
        if disk_full(e):
            raise StoreFull(f"disk full: {path}, {free_space(path)} free ({what}); free some "
                            "space and run again.") from None
        raise BenchError(f"{what} {path} cannot be written ({e.strerror or e}): {fix}.") from None


NEW_ROOT_FIX = ("run from a folder you can write, pass --artifact-root DIR (a writable folder "
                "for the new experiment's artifacts), or fix the permissions")
OLD_ROOT_FIX = ("an experiment keeps the artifact root it was created with: make that folder "
                "writable, or use another tracking store or experiment")


def local_path(uri: str) -> Path | None:
    """The local file or folder behind a store or artifact URI (sqlite:///x.db, file:/x, a
    path); None for a server or a cloud bucket."""
    from urllib.parse import unquote, urlparse

    if uri.lower().startswith("sqlite:///"):
        path = unquote(uri[len("sqlite:///"):].split("?", 1)[0])
        return Path(path) if path and path != ":memory:" else None
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if len(parsed.scheme) <= 1 and uri:  # a plain path (or a Windows drive)
        return Path(uri)
    return None


def registered_store_schemes() -> list[str]:
    """The tracking store schemes MLflow's registry knows (plugins included); [] when its
    private registry cannot be read (the caller's fixed list is enough then)."""
    try:
        from mlflow.tracking._tracking_service.utils import _tracking_store_registry

        return list(_tracking_store_registry._registry)
    except Exception:  # noqa: BLE001 - a private API
        return []


def resolve_uri(cli: str | None, suite: str | None) -> str:
    """CLI flag, then the environment, then the suite file, then MLflow's own default.

    The environment wins over the suite so that CI jobs and `mlflow run` (which sets
    MLFLOW_TRACKING_URI for its child) can redirect a suite without editing it.
    """
    return cli or os.environ.get("MLFLOW_TRACKING_URI") or suite or DEFAULT_URI


def flatten(d: dict[str, Any], prefix: str = "") -> dict[str, str]:
    out: dict[str, str] = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and v:
            out.update(flatten(v, key + "."))
        else:
            out[key] = json.dumps(v) if isinstance(v, list | dict) else str(v)
    return out


def git_commit(path: Path) -> str | None:
    try:
        r = subprocess.run(["git", "rev-parse", "HEAD"], cwd=path, capture_output=True, text=True,
                           timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    return r.stdout.strip() or None if r.returncode == 0 else None


# the database drivers SQLAlchemy imports for a URI's dialect, and the package that has each
DRIVER_PACKAGES = {"psycopg2": "psycopg2-binary", "psycopg": "psycopg[binary]", "pg8000": "pg8000",
                   "asyncpg": "asyncpg", "MySQLdb": "mysqlclient", "pymysql": "PyMySQL",
                   "mysql": "mysql-connector-python", "pyodbc": "pyodbc", "pymssql": "pymssql"}


def check_driver(uri: str) -> None:
    """A database URI (postgresql://, mysql+pymysql://, ...) whose driver is not installed:
    one line naming the pip package, before MLflow's traceback from deep inside SQLAlchemy."""
    from bench.record.sql import is_sql

    if not is_sql(uri) or uri.lower().startswith("sqlite"):
        return
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError

    try:
        url = make_url(uri)
        url.get_dialect().import_dbapi()
    except (ArgumentError, NoSuchModuleError) as e:
        raise BenchError(f"tracking URI {_hide_password(uri)}: {e}. Use e.g. "
                         "postgresql://USER@HOST/DB or mysql+pymysql://USER@HOST/DB.") from None
    except ImportError as e:
        name = (e.name or "").split(".")[0] or str(e)
        package = DRIVER_PACKAGES.get(name, name)
        raise BenchError(f"tracking URI {_hide_password(uri)} needs the database driver '{name}', "
                         f"which is not installed: pip install \"{package}\" (or name another "
                         f"driver in the URI, e.g. {url.get_backend_name()}+DRIVER://...).") from None


def _hide_password(uri: str) -> str:
    from sqlalchemy.engine import make_url

    try:
        return make_url(uri).render_as_string(hide_password=True)
    except Exception:  # noqa: BLE001 - not a URL SQLAlchemy parses: shown as given
        return uri


def migration_race(e: BaseException) -> bool:
    """Two processes creating MLflow's tables in one fresh database at once; the loser's
    error (waiting, then opening the store again, cures it)."""
    text = str(e).lower()
    return ("online migration expected to match one row" in text
            or "duplicate column name" in text
            or ("already exists" in text and ("table" in text or "index" in text)))


@contextmanager
def _creation_lock(uri: str) -> Iterator[None]:
    """A SQLite store is opened (its tables created or migrated) by one process at a time:
    `<file>.lock` beside it. Where no lock file can be made (a read-only folder): no lock."""
    path = local_path(uri) if uri.lower().startswith("sqlite:") else None
    if path is None:
        yield
        return
    from filelock import FileLock, Timeout

    lock = FileLock(f"{path}.lock", timeout=300)
    try:
        lock.acquire()
    except (OSError, Timeout):
        yield
        return
    try:
        yield
    finally:
        lock.release()


def opening_fault(uri: str, e: BaseException) -> str:
    """Why a store could not be opened, in one line with the fix."""
    from bench.record.outage import first_line, transient

    if isinstance(e, StoreUnreachable) and e.__cause__ is not None:
        e = e.__cause__  # the store's own fault, not our retrying's
    where = _hide_password(uri)
    path = local_path(uri)
    text = str(e).replace("-", "").lower()
    if disk_full(e):
        return (f"disk full: {path or where}, {free_space(path) if path else 'unknown'} free: the "
                "tracking store cannot be written; free some space and run again.")
    if "readonly" in text or "read only" in text:
        return (f"the tracking store {path or where} is read-only ({first_line(e)}): fix its "
                "permissions, or pass another --tracking-uri.")
    if migration_race(e):
        return (f"another process is creating the tracking store {path or where} at the same time "
                f"({first_line(e)}): run again once it has started (one runner creates a new store).")
    why = "unreachable" if transient(e) else "cannot be opened"
    return (f"the MLflow tracking store {where} {why} ({first_line(e)}). Check --tracking-uri / "
            "MLFLOW_TRACKING_URI and that the store is up.")


def probe(uri: str, timeout: float = 5.0) -> None:
    """Fail fast on a tracking server that does not answer: MLflow's client retries with
    backoff for minutes before it says anything. One GET of the server's /health. A database
    URI: its driver is installed (else one line naming the package to install)."""
    check_driver(uri)
    if not uri.startswith(("http://", "https://")):
        return
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout) as r:
            if r.status < 500:
                return
            reason = f"HTTP {r.status}"
    except urllib.error.HTTPError as e:
        if e.code < 500:  # an answer (e.g. an auth proxy): reachable; MLflow reports the rest
            return
        reason = f"HTTP {e.code}"
    except (urllib.error.URLError, OSError) as e:
        reason = str(getattr(e, "reason", e))
    raise BenchError(f"the MLflow tracking server {uri} does not answer ({reason}) within "
                     f"{timeout:.0f}s. Start it, or check --tracking-uri / MLFLOW_TRACKING_URI.")


class GuardedClient:
    """An MlflowClient whose every call goes through `outage.call` with MLflow's store logs
    quiet (the fault is reported once, by whoever catches it). Attributes that are not
    methods, and private ones, are the client's own."""

    def __init__(self, client: object, outage: Outage):
        self._client, self._outage = client, outage

    @property
    def raw(self) -> object:
        """The MlflowClient itself (tests inject faults there)."""
        return self._client

    def __getattr__(self, name: str) -> object:
        attr = getattr(self._client, name)
        if name.startswith("_") or not callable(attr):
            return attr

        def guarded(*args: object, **kwargs: object) -> object:
            with quiet_store_logs():
                return self._outage.call(lambda: attr(*args, **kwargs))

        guarded.__name__ = name
        return guarded


class Tracker:
    def __init__(self, uri: str, experiment: str | None = None, experiment_id: str | None = None,
                 artifact_root: str | None = None):
        probe(uri)
        self.uri = uri
        self._client: Any = None
        self.outage = outage_for(uri)  # shared by every Tracker of this store in the process
        from bench.record.sql import SqlReader, is_sql

        # the board's reads go straight to a SQL store's tables (bench.record.sql)
        self.sql: SqlReader | None = SqlReader(uri) if is_sql(uri) else None
        if experiment_id is None and experiment is not None and self.sql is not None:
            try:
                experiment_id = self.sql.experiment_id(experiment)  # None: unknown here, or new
            except Exception as e:  # noqa: BLE001 - a database that is down or refuses: one line
                raise BenchError(opening_fault(uri, e)) from None
        if experiment_id is None:
            if experiment is None:
                raise ValueError("Tracker needs an experiment name or an experiment id")
            experiment_id = self._open_experiment(experiment, artifact_root)
        self.experiment_id = experiment_id

    def _open_experiment(self, name: str, artifact_root: str | None) -> str:
        """The experiment's id, created when new. Two runners opening a fresh SQLite file at
        once race to create MLflow's tables (the loser: "Online migration expected to match
        one row", "duplicate column name", or both left with half-made tables): one at a time
        under a lock file beside it, and tried again after a race all the same. Anything
        else: one line, exit 2."""
        for attempt in range(4):
            try:
                with _creation_lock(self.uri), quiet_store_logs(), self.outage.within(0):
                    exp = self.client.get_experiment_by_name(name)
                    if exp is not None:
                        return str(exp.experiment_id)
                    return self._create_experiment(name, artifact_root)
            except StoreUnreachable as e:
                raise BenchError(opening_fault(self.uri, e)) from None
            except BenchError:
                raise
            except Exception as e:  # noqa: BLE001 - a wrong URI surfaces here first, as any type
                # (the other runner may also have created the experiment meanwhile)
                both = getattr(e, "error_code", "") == "RESOURCE_ALREADY_EXISTS"
                if (migration_race(e) or both) and attempt < 3:
                    self._client = None  # MLflow's store is made again, on the migrated tables
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise BenchError(opening_fault(self.uri, e)) from None
        raise AssertionError("unreachable")

    @property
    def client(self) -> MlflowClient:
        """MLflow's client for this store, made on first use (never MLflow's process-wide URI):
        a board read from a SQL store needs neither it nor `import mlflow`."""
        if self._client is None:
            from mlflow import MlflowClient

            # every call retried through an outage, which is said once (bench.record.outage)
            self._client = GuardedClient(MlflowClient(tracking_uri=self.uri), self.outage)
        return self._client

    def _create_experiment(self, name: str, artifact_root: str | None) -> str:
        """A new experiment; its artifact root is fixed for good when it is created, so a local
        one (MLflow's default: ./mlruns of the working directory) is checked writable first."""
        if artifact_root is None and self.uri.lower().startswith("sqlite:"):
            check_writable(Path("mlruns").resolve(), "the default artifact root (./mlruns of "
                           "the working directory)", NEW_ROOT_FIX)
        elif artifact_root is not None and (p := local_path(artifact_root)) is not None:
            check_writable(p.resolve(), "--artifact-root", "pass a folder you can write")
            artifact_root = p.resolve().as_uri()
        return self.client.create_experiment(name, artifact_location=artifact_root)

    def artifact_root(self) -> str:
        """Where this experiment's runs keep their artifacts (fixed at its creation)."""
        return self.client.get_experiment(self.experiment_id).artifact_location

    def check_artifacts_writable(self) -> None:
        """Before any work: the experiment's artifact root, when it is a local folder, can be
        written (else every cell would fail after computing, and the suite run stay open)."""
        root = self.artifact_root()
        path = local_path(root)
        if path is not None:
            check_writable(path, f"the artifact root of experiment {self.experiment_id}", OLD_ROOT_FIX)

    def store_fault(self, e: BaseException) -> str | None:
        """What a write's failure means when it is the disk, not the store: "disk full: <path>,
        <free> free" (the store's file, or the artifact root, whichever is full); else None."""
        if not disk_full(e):
            return None
        paths = [p for p in (local_path(self.uri),) if p is not None]
        try:
            art = local_path(self.artifact_root())
            if art is not None:
                paths.append(art)
        except Exception:  # noqa: BLE001 - a full SQLite file may refuse reads too
            pass
        if not paths:
            return f"disk full under the tracking store {self.uri}"
        return "; ".join(f"disk full: {p}, {free_space(p)} free" for p in paths)

    # ---------------------------------------------------------------- runs
    def create_run(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        tags = {**tags, MLFLOW_RUN_NAME: name}
        if parent:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        return self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id

    def create_parent(self, name: str, tags: dict[str, str]) -> str:
        """The suite's run, the first write of a suite: a store that refuses writes (a
        read-only SQLite file, a read-only server) is reported here, before any work."""

        try:
            with quiet_store_logs():
                return self.create_run(name, tags)
        except Exception as e:  # noqa: BLE001 - every store fault is turned into a message below
            if (full := self.store_fault(e)) is not None:
                raise StoreFull(f"{full}: the suite run could not be created; free some space "
                                "and run the suite again.") from None
            text = str(e)
            hint = ("the database file or its folder is read-only: fix its permissions or pass "
                    "another --tracking-uri" if "readonly" in text.replace("-", "").lower()
                    else "check the tracking store and your permissions")
            lines = [ln for ln in text.strip().splitlines() if "Error" in ln] or text.strip().splitlines()
            first = lines[0][:300] if lines else type(e).__name__
            raise BenchError(f"the MLflow tracking store {self.uri} refused to create the suite "
                             f"run ({first}): {hint}.") from None

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        with quiet_store_logs():  # a failure is raised, and reported once by the caller
            from mlflow.entities import RunTag

            self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        from mlflow.entities import Param

        ps = [Param(k, v if len(v) <= MAX_PARAM else v[: MAX_PARAM - 3] + "...") for k, v in params.items()]
        for i in range(0, len(ps), 100):
            self.client.log_batch(run_id, params=ps[i : i + 100])

    def log_metrics(self, run_id: str, values: dict[str, float], step: int = 0) -> None:
        from mlflow.entities import Metric

        ts = int(time.time() * 1000)
        ms = [Metric(k, float(v), ts, step) for k, v in values.items()]
        for i in range(0, len(ms), 500):
            self.client.log_batch(run_id, metrics=ms[i : i + 500])

    def log_artifacts(self, run_id: str, path: Path, artifact_path: str | None = None) -> None:
        if path.is_dir() and any(path.iterdir()):
            self.client.log_artifacts(run_id, str(path), artifact_path)

    def log_files(self, run_id: str, files: dict[str, bytes], artifact_path: str | None = None) -> None:
        """Bytes (e.g. PNG figures) as artifacts named by their keys, each key made one safe
        file name (bench.core.safe_names): a key holds user-chosen names (a figure's dataset), and
        `../x` or `/x` joined to the folder would write outside it."""
        if not files:
            return
        import tempfile

        with tempfile.TemporaryDirectory(prefix="bench-files-") as tmp:
            for name, data in files.items():
                (Path(tmp) / safe_filename(name)).write_bytes(data)
            self.client.log_artifacts(run_id, tmp, artifact_path)

    def log_text(self, run_id: str, text: str, name: str) -> None:
        self.client.log_text(run_id, text, safe_filename(name))  # MLflow writes it to a local file

    def log_dataset(self, run_id: str, name: str, digest: str, splits: dict[str, int],
                    source: dict[str, Any]) -> None:
        from mlflow.entities import Dataset as MlflowDataset
        from mlflow.entities import DatasetInput, InputTag

        inputs = []
        for split, n in splits.items():
            # MLflow keeps one input per (name, digest) and run: give each split its own digest
            split_digest = hashlib.sha256(f"{digest}:{split}".encode()).hexdigest()[:16]
            ds = MlflowDataset(name=name, digest=split_digest, source_type="bench",
                               source=json.dumps(source, sort_keys=True),
                               profile=json.dumps({"num_rows": n, "split": split,
                                                   "dataset_digest": digest}))
            inputs.append(DatasetInput(ds, tags=[InputTag("mlflow.data.context", split)]))
        for attempt in range(5):
            try:
                self.client.log_inputs(run_id, datasets=inputs)
                return
            except StoreUnreachable:  # waited for already (bench.record.outage)
                raise
            except Exception:
                # MLflow inserts a dataset get-or-create style: two workers logging the same
                # dataset at once collide on its unique key; the retry finds it existing
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def end(self, run_id: str, status: str) -> None:
        with quiet_store_logs():
            self.client.set_terminated(run_id, status)

    def run_status(self, run_id: str) -> str | None:
        """A run's status (RUNNING, FINISHED, ...), None when this store has no such run."""
        from mlflow.exceptions import MlflowException

        try:
            return str(self.client.get_run(run_id).info.status)
        except MlflowException as e:
            if getattr(e, "error_code", "") == "RESOURCE_DOES_NOT_EXIST":
                return None
            raise

    def finished_cell_run(self, key: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=cell_filter(key=key, status="FINISHED"),
            max_results=1, order_by=["attributes.start_time DESC"],
        )
        return runs[0].info.run_id if runs else None

    def fail_stale_runs(self, key: str, reason: str, status: str = "FAILED") -> int:
        """Mark RUNNING runs of a cell FAILED before it runs again: their runner died (SIGKILL,
        lost node) without ending them. One live runner per suite and store is assumed."""
        stale = self.client.search_runs(
            [self.experiment_id], cell_filter(key=key, status="RUNNING"))
        for r in stale:
            self.set_tags(r.info.run_id, error_tags(reason))
            self.end(r.info.run_id, status)
        return len(stale)

    @staticmethod
    def experiment_of(uri: str, name: str | None = None, run_id: str | None = None) -> str | None:
        """The id of experiment `name`, or of the experiment holding `run_id`, at `uri`
        (None when there is no such experiment): for readers that open an existing one."""
        probe(uri)
        from bench.record.sql import SqlReader, is_sql

        if run_id is None and name and is_sql(uri):
            reader = SqlReader(uri)
            try:
                found = reader.experiment_id(name)
            finally:
                reader.close()
            if found is not None:
                return found
        from mlflow import MlflowClient

        client = MlflowClient(tracking_uri=uri)
        if run_id is not None:
            return client.get_run(run_id).info.experiment_id
        exp = client.get_experiment_by_name(name) if name else None
        return exp.experiment_id if exp else None

    # ---------------------------------------------------------------- suite leases
    def run_experiment(self, run_id: str) -> str | None:
        try:
            return self.client.get_run(run_id).info.experiment_id
        except Exception:  # noqa: BLE001 - a run id from another store: not ours to attach to
            return None

    def link_outer_run(self, outer: str, parent: str, experiment: str) -> None:
        """`mlflow run` created `outer` outside the suite's experiment: point it at the suite
        run, so a user who opens it in the UI finds the cells."""
        try:
            self.set_tags(outer, SuiteRunRecord.link_tags(parent, experiment))
        except Exception:  # noqa: BLE001 - the outer run lives in another store
            pass

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        """(run id, tags, start time) of the suite's RUNNING suite runs (bench.record.lease)."""
        runs = self.client.search_runs([self.experiment_id], suite_filter(suite, "RUNNING"))
        return [(r.info.run_id, dict(r.data.tags), int(r.info.start_time or 0)) for r in runs]

    def log_trained_model(self, parent: str | None, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        """A run holding a trained baseline (a child of `parent` where given): its curves, its
        params and the MLflow model.
        Skipped when this store already holds the model with the same content key."""
        import mlflow.pytorch

        runs = self.client.search_runs([self.experiment_id], TrainRunRecord.search(key), max_results=1)
        if runs:
            return runs[0].info.run_id
        rid = self.create_run(f"train {name}", TrainRunRecord(name, key).identity_tags(), parent)
        self.log_params(rid, flatten(params))
        for i, step in enumerate(history.get("step", [])):
            self.log_metrics(rid, {k: v[i] for k, v in history.items() if k != "step"}, step=int(step))
        with scoped_tracking_uri(self.uri), mlflow.start_run(run_id=rid, nested=True), \
                warnings.catch_warnings():
            # pickle format: the module class is importable wherever `bench` is installed, and
            # the traced pt2 format would need an example input per generator signature; MLflow
            # warns about that choice on every call, which only clutters a suite's output
            warnings.simplefilter("ignore")
            pytorch_log = logging.getLogger("mlflow.pytorch")
            level = pytorch_log.level
            pytorch_log.setLevel(logging.ERROR)  # the warning comes through logging, too
            try:
                mlflow.pytorch.log_model(model, name=name, serialization_format="pickle",
                                         pip_requirements=[f"torch=={_torch_version()}", "gan-bench"])
            finally:
                pytorch_log.setLevel(level)
        self.end(rid, "FINISHED")
        return rid

    def log_image(self, run_id: str, image: Any, name: str) -> None:
        """An image artifact (numpy HxW[xC] uint8 or PIL image), e.g. a sample grid."""
        self.client.log_image(run_id, image, artifact_file=safe_filename(name))

    def register_model(self, run_id: str, artifact_path: str, name: str) -> str:
        """Register the model a run logged under `artifact_path` as a new version of `name`
        in the store's model registry; returns the version."""
        import mlflow

        with scoped_tracking_uri(self.uri):
            mv = mlflow.register_model(f"runs:/{run_id}/{artifact_path}", name,
                                       await_registration_for=0)
        return str(mv.version)

    # ---------------------------------------------------------------- reading back
    def records(self, suite: str | None = None, parent: str | None = None,
                run_ids: list[str] | None = None, failed: bool = False) -> list[CellRecord]:
        """Cell runs as records (bench.record.cell_record), newest first: FINISHED ones, and FAILED ones
        too with `failed=True` (the board shows a failed cell as failed). One paged query."""
        if self.sql is not None and run_ids is None:
            from bench.record.sql import Unsupported

            try:
                return self.sql.read(self.experiment_id, suite, keep_statuses(failed), parent)
            except Unsupported as e:  # not MLflow's schema as we know it: MLflow's own search
                warnings.warn(f"reading {self.uri} through MLflow's search (slower): {e}", stacklevel=2)
                self.sql = None
        # MLflow's search takes IN lists for run ids only: read FAILED too by not filtering
        filt = cell_filter(suite, status=None if failed else "FINISHED")
        keep = keep_statuses(failed)
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], filt,
                                           max_results=1000, page_token=token,
                                           order_by=["attributes.start_time DESC"])
            runs.extend(page)
            token = page.token
            if not token:
                break
        wanted = set(run_ids) if run_ids is not None else None
        out = []
        for r in runs:
            if r.info.status not in keep or (wanted is not None and r.info.run_id not in wanted):
                continue
            if parent and wanted is None and r.data.tags.get(MLFLOW_PARENT_RUN_ID) != parent:
                continue
            out.append(CellRecord.from_run(r))
        return out

    def cell_runs(self, suite: str | None = None, parent: str | None = None,
                  run_ids: list[str] | None = None, failed: bool = False) -> pd.DataFrame:
        """`records` as a table (bench.record.cell_record.frame): one row per run, `m:<value>` columns."""
        return record_frame(self.records(suite, parent, run_ids, failed))

    def suite_runs(self, suite: str, limit: int = 50) -> list[str]:
        """Finished runs of a suite, newest first (failed suite runs still hold good cells,
        but a comparison should rest on complete ones)."""
        runs = self.client.search_runs(
            [self.experiment_id], suite_filter(suite, "FINISHED"), max_results=limit, order_by=["attributes.start_time DESC"])
        return [r.info.run_id for r in runs]

    def suite_cells(self, parent: str) -> dict[str, Any] | None:
        """The cell -> run map a suite run recorded (covers cells it found cached)."""
        try:
            path = self.client.download_artifacts(parent, "cells.json")
        except Exception:  # noqa: BLE001 - no cells.json, whatever the cause: "not a suite run"
            return None
        return json.loads(Path(path).read_text())


def keep_statuses(failed: bool) -> set[str]:
    return {"FINISHED", "FAILED"} if failed else {"FINISHED"}


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def package_version() -> str:
    return __version__
