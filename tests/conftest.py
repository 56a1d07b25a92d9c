from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

import bench.metrics  # noqa: F401  (registers the built-in metrics)
from bench.core.errors import BenchError
from bench.features.base import FEATURES, FeatureExtractor
from bench.metrics import METRICS
from bench.metrics.base import Metric
from bench.record.values import score


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    """Every test gets its own cache, working directory (MLflow puts artifacts of a SQLite
    store under ./mlruns) and no inherited MLflow run or store."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("BENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.delenv("MLFLOW_RUN_ID", raising=False)
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_EXPERIMENT_ID", raising=False)


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread: on a shared 2-core machine two spinning threads per process slow
    small-batch training by 10x or more; results do not depend on it."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def digits():
    """The bundled digits dataset (sklearn's 1,797 8x8 images as uint8 (N, 1, 8, 8), split
    train/val), loaded once per test module; tests must not modify it."""
    from bench.data.digits import Digits

    return Digits().load()


@pytest.fixture
def tracking_uri(tmp_path) -> str:
    return f"sqlite:///{tmp_path}/mlflow.db"


# ---------------------------------------------------------------- MLflow stores from a template
# MLflow builds a new SQLite store's schema with alembic migrations: 2-8 s per store (about 70
# tests create one), while copying an already migrated file takes about 0.1 s. So, in this
# process, MLflow's table initialisation of an empty SQLite file copies a template migrated
# once per session instead. Any way a test makes a store (a fixture, an inline
# sqlite:/// URI, bench.evaluate's temporary store, the CLI in-process) goes through it; a
# subprocess (`bench` on the command line, `mlflow server`) sees no hook: the slow tests copy
# the template into place for it (fixture `sqlite_template`), the others migrate as a user's do.
# The template is read-only and in this session's own temporary folder (one per xdist
# worker), and every store is a copy in its test's folder: no two processes write one file.
class _StoreTemplate:
    def __init__(self, folder: Path, initialize):
        self.folder, self._initialize, self._file = folder, initialize, None

    def file(self) -> Path:
        """The migrated template (built on first use: tests without a store don't pay it)."""
        if self._file is None:
            from mlflow.store.db.utils import create_sqlalchemy_engine_with_retry

            path = self.folder / "template.db"
            engine = create_sqlalchemy_engine_with_retry(f"sqlite:///{path}")
            try:
                self._initialize(engine)  # tables only: the default experiment is made per copy
            finally:
                engine.dispose()
            path.chmod(0o444)  # a store that wrote here would fail, not leak into other tests
            self._file = path
        return self._file

    def initialize(self, engine) -> None:
        """MLflow's `_initialize_tables`, by copy for an empty SQLite file."""
        import shutil

        import sqlalchemy

        url = engine.url
        file = url.database
        if (url.get_backend_name() != "sqlite" or not file or file == ":memory:"
                or url.query.get("uri") or sqlalchemy.inspect(engine).get_table_names()):
            return self._initialize(engine)  # another database, or not empty: MLflow's own way
        engine.dispose()  # no open connection sees the file change under it
        shutil.copyfile(self.file(), file)  # a copy has the default mode, writable


_TEMPLATE: _StoreTemplate | None = None


def _split_the_cores() -> None:
    """An xdist worker takes its share of the cores for torch (bench.executors.threads' budget:
    cores // workers, or BENCH_THREADS): two workers with torch's default of every core run 4
    spinning threads on CI's 2 cores, and small-batch training slows down many times over."""
    import os

    workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    if workers > 1:
        import scipy.linalg  # noqa: F401  (its OpenBLAS loaded, so that the limit below reaches it)
        import torch
        from threadpoolctl import threadpool_limits

        from bench.executors.threads import budget

        n = budget(workers)
        torch.set_num_threads(n)
        # numpy's and scipy's OpenBLAS too (loaded by now, they read no variable any more):
        # dsygst (FID, intra-FID) on 128 dimensions with 2 OpenBLAS threads beside the other
        # worker took 85x the CPU of 1 thread; it was 17% of the guard-rail suite's run
        threadpool_limits(n)


def child_env(**extra: str) -> dict[str, str]:
    """The environment for a process a test starts that computes (a suite run, a `bench`
    command): this process's share of the cores (bench.executors.threads' variables, which the
    child's torch and bench read), so that it does not spin a thread per core beside the other
    xdist worker."""
    import os

    import torch

    from bench.executors.threads import thread_env

    return {**os.environ, **thread_env(torch.get_num_threads()), **extra}


def pytest_configure(config):
    """MLflow's table initialisation copies this process's template (set up here, before any
    test, so that no test's time includes MLflow's imports). BENCH_TEST_MIGRATE=1 turns it
    off: every store migrates (to compare, or to test MLflow's own path after an upgrade)."""
    import os
    import shutil
    import tempfile

    _split_the_cores()
    global _TEMPLATE
    if os.environ.get("BENCH_TEST_MIGRATE") == "1":
        return
    import mlflow.store.db.utils as db_utils
    import mlflow.store.model_registry.sqlalchemy_store as registry

    folder = Path(tempfile.mkdtemp(prefix="bench-store-template-"))  # this process's own
    _TEMPLATE = _StoreTemplate(folder, db_utils._initialize_tables)
    mp = pytest.MonkeyPatch()
    # both stores call it: tracking through the module, the model registry by name
    mp.setattr(db_utils, "_initialize_tables", _TEMPLATE.initialize)
    mp.setattr(registry, "_initialize_tables", _TEMPLATE.initialize)
    config.add_cleanup(lambda: shutil.rmtree(folder, ignore_errors=True))
    config.add_cleanup(mp.undo)


@pytest.fixture
def sqlite_template() -> Path | None:
    """The migrated SQLite template (read-only: copy it), for a store that a subprocess opens
    (it sees no hook); None under BENCH_TEST_MIGRATE=1."""
    return _TEMPLATE.file() if _TEMPLATE is not None else None


@pytest.fixture
def write_suite(tmp_path):
    def write(text: str, name: str = "suite.yaml") -> Path:
        p = tmp_path / name
        p.write_text(textwrap.dedent(text))
        return p

    return write


# A metric that fails on purpose, one that simulates Ctrl-C and an instant one, for the runner's
# tests: registered around every test (METRICS.scoped), never left in the global registry.
class _Failing(Metric):
    """Always raises (test only)."""

    values = {"x": score()}

    def compute(self, generator, dataset, ctx):
        raise RuntimeError("this metric always fails")


class _Interrupt(Metric):
    """Raises KeyboardInterrupt (test only)."""

    values = {"x": score()}

    def compute(self, generator, dataset, ctx):
        raise KeyboardInterrupt


class _Constant(Metric):
    """Returns the mean pixel of 16 samples (test only, instant)."""

    values = {"mean_pixel": score()}
    primary = "mean_pixel"

    def compute(self, generator, dataset, ctx):
        import torch

        x = generator.sample(16, torch.arange(16) % dataset.num_classes, ctx.seed)
        if not x.float().mean() >= 0:
            raise BenchError("impossible")
        return {"mean_pixel": float(x.float().mean())}


TEST_METRICS = {"test_failing": _Failing, "test_interrupt": _Interrupt, "test_constant": _Constant}


@pytest.fixture(autouse=True)
def _test_metrics():
    with METRICS.scoped(TEST_METRICS):
        yield


TINY = """\
name: tiny
seed: 0
datasets:
  digits: {source: digits}
models:
  real: {source: reference, kind: real}
  noisy: {source: reference, kind: noise, sigma: 0.5}
metrics:
  gan_train:
    classifier: {epochs: 3}
  gan_test:
    classifier: {epochs: 3}
"""


# ---------------------------------------------------------------- a real tracking server
def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def server(tmp_path):
    """An MLflow tracking server on loopback (what multi-process executors need)."""
    import shutil

    if _TEMPLATE is not None:  # a subprocess sees no hook: it starts from a migrated file
        shutil.copyfile(_TEMPLATE.file(), tmp_path / "server.db")
    yield from _mlflow_server(f"sqlite:///{tmp_path}/server.db", tmp_path / "artifacts")


def _mlflow_server(store: str, artifacts: Path):
    import os
    import subprocess
    import sys
    import time

    import requests

    port = _free_port()
    # without MLflow's job execution (GenAI jobs, which bench never submits): it starts about
    # 9 more processes, each importing MLflow, that poll while the server is up: measured
    # 13 s of CPU to start instead of 6, and 0.3 s more each second the server is up
    env = {**os.environ, "MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    proc = subprocess.Popen(
        [str(Path(sys.executable).parent / "mlflow"), "server", "--host", "127.0.0.1", "--port",
         str(port), "--backend-store-uri", store,
         "--artifacts-destination", str(artifacts), "--workers", "1"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True, env=env)
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 120
    while time.time() < deadline:
        try:
            if requests.get(f"{url}/health", timeout=2).ok:
                break
        except requests.RequestException:
            pass
        time.sleep(0.5)
    else:
        proc.kill()
        pytest.fail("mlflow server did not start on loopback")
    yield url
    os.killpg(proc.pid, 15)
    proc.wait(30)


def _pg_bin() -> Path | None:
    """Debian's PostgreSQL binaries (apt-get install postgresql; .ci/run installs it)."""
    import glob

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(found[-1]).parent if found else None


@pytest.fixture
def postgres(tmp_path):
    """A throw-away PostgreSQL cluster on a loopback port (the production store that
    docker/compose.yaml runs), as the `postgres` user when we are root (initdb refuses root)."""
    import os
    import shutil
    import subprocess

    pg = _pg_bin()
    if pg is None:
        pytest.skip("PostgreSQL is not installed (apt-get install postgresql)")
    pytest.importorskip("psycopg2")
    import tempfile

    # not under tmp_path: pytest's base folder is private to root, which `postgres` cannot enter
    root = Path(tempfile.mkdtemp(prefix="bench-pg-"))
    data = root / "pgdata"
    as_user: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(root, "postgres")
        as_user = ["runuser", "-u", "postgres", "--"]
    port = _free_port()

    def run(*cmd: str) -> None:
        subprocess.run([*as_user, *cmd], check=True, capture_output=True, timeout=120)

    run(str(pg / "initdb"), "-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8")
    run(str(pg / "pg_ctl"), "-D", str(data), "-l", str(data / "log"), "-w", "-o",
        f"-p {port} -k {data} -c listen_addresses=127.0.0.1", "start")
    try:
        run(str(pg / "createdb"), "-h", "127.0.0.1", "-p", str(port), "-U", "postgres", "mlflow")
        yield f"postgresql+psycopg2://postgres@127.0.0.1:{port}/mlflow"
    finally:
        run(str(pg / "pg_ctl"), "-D", str(data), "-m", "fast", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def pg_server(postgres, tmp_path):
    """An MLflow tracking server on loopback backed by PostgreSQL."""
    yield from _mlflow_server(postgres, tmp_path / "pg-artifacts")


# ---------------------------------------------------------------- the fast tier
# `make test-fast` (-m "not slow and not heavy") is the tier to run before each commit: the
# same tests on every machine and from a clean clone, decided from the code alone (a tier
# from measured times would change with the machine's load and charge a shared fixture to
# whichever of its tests ran first). A test is `heavy` when
# - it is marked so (`@pytest.mark.heavy`, or `pytestmark` for a whole module): what its names
#   do not show (a metric on thousands of images, a network built from scratch), or
# - it is not marked `fast` and uses a fixture of HEAVY_FIXTURES, or it (or a function or
#   fixture of its module that it reaches) names one of HEAVY_NAMES: what runs a suite, opens
#   a store, trains, or starts another process. `fast` declares a test quick whatever it
#   names (a CLI refusal before any work; a quick test in a module of trainings).
# A run lists the fast-tier tests that took over FAST_LIMIT seconds (setup included): mark
# them heavy (or make them quick) so the tier stays under 2 minutes on 2 cores.
FAST_LIMIT = 1.0
HEAVY_FIXTURES = {"server", "pg_server", "postgres", "browser", "one_thread", "tracking_uri"}
HEAVY_NAMES = {"run_suite", "evaluate", "main", "subprocess", "Popen", "get_context", "Process",
               "MlflowClient", "Tracker", "mlflow", "train", "train_classifier", "load_classifier",
               "run_cells"}


def _names(code, seen: set) -> set[str]:
    """The global and attribute names a code object and its nested ones refer to."""
    if code in seen:
        return set()
    seen.add(code)
    out = set(code.co_names)
    for const in code.co_consts:
        if hasattr(const, "co_names"):
            out |= _names(const, seen)
    return out


def _reached(func, module, seen: set) -> set[str]:
    """Names of `func`, and of the functions of its own module that it names, transitively."""
    import inspect

    func = inspect.unwrap(func)
    code = getattr(func, "__code__", None)
    if code is None:
        return set()
    names = _names(code, seen)
    for name in list(names):
        f = getattr(module, name, None)
        if inspect.isfunction(f) and f.__module__ == module.__name__:
            names |= _reached(f, module, seen)
    return names


def _looks_heavy(item) -> bool:
    import sys

    fixtures = set(getattr(item, "fixturenames", ()))
    if fixtures & HEAVY_FIXTURES:
        return True
    seen: set = set()
    names = _reached(item.function, item.module, seen)
    info = getattr(item, "_fixtureinfo", None)
    for name in fixtures:
        for fdef in (info.name2fixturedefs.get(name, ()) if info else ()):
            mod = sys.modules.get(getattr(fdef.func, "__module__", ""))
            if mod is not None and mod.__name__ != __name__:  # conftest's own: every test's
                names |= _reached(fdef.func, mod, seen)
    return bool(names & HEAVY_NAMES)


def _shared_group(item) -> str | None:
    """The xdist group of a test that uses an expensive fixture shared by a module (a suite
    run, a trained classifier, a store): one worker runs its tests, so it is built once."""
    import sys

    info = getattr(item, "_fixtureinfo", None)
    for name in sorted(getattr(item, "fixturenames", ())):
        for fdef in (info.name2fixturedefs.get(name, ()) if info else ()):
            mod = sys.modules.get(getattr(fdef.func, "__module__", ""))
            if fdef.scope == "function" or mod is None or mod.__name__ == __name__:
                continue
            args = set(fdef.argnames)
            if (args & (HEAVY_FIXTURES | {"tmp_path_factory"})
                    or _reached(fdef.func, mod, set()) & HEAVY_NAMES):
                return f"{mod.__name__}.{name}"
    return None


@pytest.hookimpl(tryfirst=True)  # after pytest-randomly's shuffle, before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        if not hasattr(item, "function"):
            continue
        if not (item.get_closest_marker("slow") or item.get_closest_marker("heavy")
                or item.get_closest_marker("fast")) and _looks_heavy(item):
            item.add_marker(pytest.mark.heavy)
        if item.get_closest_marker("slow") or item.get_closest_marker("heavy"):
            group = _shared_group(item)
            if group is not None and not item.get_closest_marker("xdist_group"):
                item.add_marker(pytest.mark.xdist_group(group))

    # the longest first (slow, then heavy, then the rest, each in the shuffled order): with
    # `--dist loadgroup` the two workers then finish together, not one waiting on a late
    # minute-long test
    def cost(item) -> int:
        return 0 if item.get_closest_marker("slow") else 1 if item.get_closest_marker("heavy") else 2

    items.sort(key=cost)


_SETUP: dict[str, float] = {}
_SLOW_FAST: dict[str, float] = {}


def pytest_runtest_logreport(report):
    """Fast-tier tests over FAST_LIMIT, setup + call (the xdist controller gets its workers'
    reports, with each test's markers among its keywords)."""
    if "slow" in report.keywords or "heavy" in report.keywords:
        return
    if report.when == "setup" and report.passed:
        _SETUP[report.nodeid] = report.duration
    elif report.when == "call" and report.passed:
        took = _SETUP.pop(report.nodeid, 0.0) + report.duration
        if took > FAST_LIMIT:
            _SLOW_FAST[report.nodeid] = took


def pytest_terminal_summary(terminalreporter, config):
    seed = getattr(config.option, "randomly_seed", None)
    if config.pluginmanager.hasplugin("randomly") and isinstance(seed, int):
        # `-q` hides pytest-randomly's header line: the order is said at the end, to replay
        terminalreporter.write_line(f"tests ran in a random order: --randomly-seed={seed} (or "
                                    "--randomly-seed=last) replays it, -p no:randomly: file order")
    if _SLOW_FAST and not hasattr(config, "workerinput"):
        terminalreporter.section(f"fast-tier tests over {FAST_LIMIT:g} s (on a loaded machine "
                                 "every test is slower): mark them heavy or make them quick")
        for nodeid, took in sorted(_SLOW_FAST.items(), key=lambda kv: -kv[1]):
            terminalreporter.write_line(f"{took:7.2f}s {nodeid}")


class PixelFeatures(FeatureExtractor):
    """Flattened pixels / 255: a feature extractor for tests (cheap, deterministic)."""

    def tag(self) -> str:
        return "test-pixels"

    def _forward(self, x):
        return x.float().flatten(1) / 255.0, None


@pytest.fixture
def pixels():
    """`test_pixels` registered for the test (FEATURES.scoped), never left in the registry;
    a module asks for it with `pytestmark = pytest.mark.usefixtures("pixels")`."""
    with FEATURES.scoped({"test_pixels": PixelFeatures}):
        yield "test_pixels"
