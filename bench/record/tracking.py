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
import time
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Dataset as MlflowDataset
from mlflow.entities import DatasetInput, InputTag, Metric, Param, Run, RunTag
from mlflow.utils.mlflow_tags import MLFLOW_PARENT_RUN_ID, MLFLOW_RUN_NAME

import bench
from bench.core.errors import BenchError
from bench.core.safe_names import safe_filename
from bench.record.cell_record import TAG, CellRecord
from bench.record.cell_record import frame as record_frame

DEFAULT_URI = "sqlite:///mlflow.db"
HEARTBEAT_S = float(os.environ.get("BENCH_HEARTBEAT_S", 20))  # a live runner's lease renewal
STALE_S = float(os.environ.get("BENCH_STALE_S", 90))  # no heartbeat this long: the runner is dead
MAX_PARAM = 6000


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


def probe(uri: str, timeout: float = 5.0) -> None:
    """Fail fast on a tracking server that does not answer: MLflow's client retries with
    backoff for minutes before it says anything. One GET of the server's /health."""
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


class Tracker:
    def __init__(self, uri: str, experiment: str | None = None, experiment_id: str | None = None):
        probe(uri)
        self.uri = uri
        mlflow.set_tracking_uri(uri)
        self.client = MlflowClient(uri)
        from bench.record.sql import SqlReader, is_sql

        # the board's reads go straight to a SQL store's tables (bench.record.sql)
        self.sql: SqlReader | None = SqlReader(uri) if is_sql(uri) else None
        if experiment_id is None:
            if experiment is None:
                raise ValueError("Tracker needs an experiment name or an experiment id")
            try:
                exp = self.client.get_experiment_by_name(experiment)
            except Exception as e:  # noqa: BLE001 - a wrong URI surfaces here first, as any type
                raise BenchError(f"cannot reach the MLflow tracking store '{uri}': {e}. "
                                 "Check --tracking-uri / MLFLOW_TRACKING_URI.") from None
            experiment_id = exp.experiment_id if exp else self.client.create_experiment(experiment)
        self.experiment_id = experiment_id

    # ---------------------------------------------------------------- runs
    def create_run(self, name: str, tags: dict[str, str], parent: str | None = None) -> str:
        tags = {**tags, MLFLOW_RUN_NAME: name}
        if parent:
            tags[MLFLOW_PARENT_RUN_ID] = parent
        return self.client.create_run(self.experiment_id, tags=tags, run_name=name).info.run_id

    def create_parent(self, name: str, tags: dict[str, str]) -> str:
        """The suite's run, the first write of a suite: a store that refuses writes (a
        read-only SQLite file, a read-only server) is reported here, before any work."""

        logging.disable(logging.CRITICAL)  # MLflow logs the SQL, parameters and a traceback first
        try:
            return self.create_run(name, tags)
        except Exception as e:  # noqa: BLE001
            text = str(e)
            hint = ("the database file or its folder is read-only: fix its permissions or pass "
                    "another --tracking-uri" if "readonly" in text.replace("-", "").lower()
                    else "check the tracking store and your permissions")
            lines = [ln for ln in text.strip().splitlines() if "Error" in ln] or text.strip().splitlines()
            first = lines[0][:300] if lines else type(e).__name__
            raise BenchError(f"the MLflow tracking store {self.uri} refused to create the suite "
                             f"run ({first}): {hint}.") from None
        finally:
            logging.disable(logging.NOTSET)

    def set_tags(self, run_id: str, tags: Mapping[str, object]) -> None:
        self.client.log_batch(run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_params(self, run_id: str, params: dict[str, str]) -> None:
        ps = [Param(k, v if len(v) <= MAX_PARAM else v[: MAX_PARAM - 3] + "...") for k, v in params.items()]
        for i in range(0, len(ps), 100):
            self.client.log_batch(run_id, params=ps[i : i + 100])

    def log_metrics(self, run_id: str, values: dict[str, float], step: int = 0) -> None:
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
            except Exception:
                # MLflow inserts a dataset get-or-create style: two workers logging the same
                # dataset at once collide on its unique key; the retry finds it existing
                if attempt == 4:
                    raise
                time.sleep(0.2 * (attempt + 1))

    def end(self, run_id: str, status: str) -> None:
        self.client.set_terminated(run_id, status)

    def finished_cell_run(self, key: str) -> str | None:
        runs = self.client.search_runs(
            [self.experiment_id],
            filter_string=f"tags.`{TAG}cell_key` = '{key}' and attributes.status = 'FINISHED'",
            max_results=1, order_by=["attributes.start_time DESC"],
        )
        return runs[0].info.run_id if runs else None

    def fail_stale_runs(self, key: str, reason: str, status: str = "FAILED") -> int:
        """Mark RUNNING runs of a cell FAILED before it runs again: their runner died (SIGKILL,
        lost node) without ending them. One live runner per suite and store is assumed."""
        stale = self.client.search_runs(
            [self.experiment_id], f"tags.`{TAG}cell_key` = '{key}' and attributes.status = 'RUNNING'")
        for r in stale:
            self.set_tags(r.info.run_id, {f"{TAG}error": reason})
            self.end(r.info.run_id, status)
        return len(stale)

    @staticmethod
    def experiment_of(uri: str, name: str | None = None, run_id: str | None = None) -> str | None:
        """The id of experiment `name`, or of the experiment holding `run_id`, at `uri`
        (None when there is no such experiment): for readers that open an existing one."""
        probe(uri)
        client = MlflowClient(uri)
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
            self.client.set_tag(outer, f"{TAG}suite_run_id", parent)
            self.client.set_tag(outer, f"{TAG}suite_experiment", experiment)
        except Exception:  # noqa: BLE001 - the outer run lives in another store
            pass

    def heartbeat(self, run_id: str, every: float = HEARTBEAT_S) -> Heartbeat:
        """Keep `bench.heartbeat` on a live suite run fresh: the lease that tells a second
        runner this suite is being worked on (and a dead runner's run from a live one)."""
        return Heartbeat(self, run_id, every)

    def close_dead_suite_runs(self, suite: str, stale_after: float = STALE_S) -> int:
        """End the RUNNING suite runs of `suite` whose runner is gone (no heartbeat for
        `stale_after` s: kill -9, lost node, store fault): KILLED, with a reason. A RUNNING
        suite run with a fresh heartbeat is a live runner: refuse rather than run the same
        cells twice."""
        runs = self.client.search_runs(
            [self.experiment_id],
            f"tags.`{TAG}kind` = 'suite' and tags.`{TAG}suite` = '{suite}' and attributes.status = 'RUNNING'")
        closed = 0
        now = time.time()
        for r in runs:
            beat = float(r.data.tags.get(f"{TAG}heartbeat", r.info.start_time / 1000))
            if now - beat < stale_after and not _runner_gone(r.data.tags):
                host = r.data.tags.get(f"{TAG}runner", "another process")
                raise BenchError(
                    f"suite '{suite}' is being run by {host} (suite run {r.info.run_id}, last "
                    f"heartbeat {now - beat:.0f}s ago). Wait for it to finish, or stop it; a "
                    f"runner that died is taken over {stale_after:.0f}s after its last heartbeat.")
            self.set_tags(r.info.run_id, {f"{TAG}error": "its runner stopped without ending it "
                                          "(killed?); closed by the next run of the suite"})
            self.end(r.info.run_id, "KILLED")
            closed += 1
        return closed

    def log_trained_model(self, parent: str, name: str, key: str, model: Any,
                          history: dict[str, list[float]], params: dict[str, Any]) -> str:
        """A child run holding a trained baseline: its curves, its params and the MLflow model.
        Skipped when this store already holds the model with the same content key."""
        import mlflow.pytorch

        runs = self.client.search_runs(
            [self.experiment_id], f"tags.`{TAG}train_key` = '{key}' and attributes.status = 'FINISHED'",
            max_results=1)
        if runs:
            return runs[0].info.run_id
        rid = self.create_run(f"train {name}", {f"{TAG}kind": "train", f"{TAG}model": name,
                                                f"{TAG}train_key": key}, parent)
        self.log_params(rid, flatten(params))
        for i, step in enumerate(history.get("step", [])):
            self.log_metrics(rid, {k: v[i] for k, v in history.items() if k != "step"}, step=int(step))
        with mlflow.start_run(run_id=rid, nested=True), warnings.catch_warnings():
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
        filt = [f"tags.`{TAG}kind` = 'cell'"] + ([] if failed else ["attributes.status = 'FINISHED'"])
        keep = keep_statuses(failed)
        if suite:
            filt.append(f"tags.`{TAG}suite` = '{suite}'")
        runs: list[Run] = []
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id], " and ".join(filt),
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
            [self.experiment_id],
            f"tags.`{TAG}kind` = 'suite' and tags.`{TAG}suite` = '{suite}' and attributes.status = 'FINISHED'",
            max_results=limit, order_by=["attributes.start_time DESC"])
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


def _runner_gone(tags: dict[str, str]) -> bool:
    """A runner on this machine whose process no longer exists (kill -9) is gone at once,
    heartbeat or not; on another machine only the heartbeat can tell."""
    import socket

    if tags.get(f"{TAG}runner_host") != socket.gethostname():
        return False
    try:
        pid = int(tags.get(f"{TAG}runner_pid", ""))
    except ValueError:
        return False
    if pid == os.getpid():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False
    try:  # a killed child its parent has not reaped yet is a zombie: gone, too
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return False


class Heartbeat:
    """A daemon thread that stamps `bench.heartbeat` (and who runs) on a suite run until
    stopped. A failed stamp is ignored: a store fault is reported by the cells themselves."""

    def __init__(self, tracker: Tracker, run_id: str, every: float):
        import socket
        import threading

        self.tracker, self.run_id, self.every = tracker, run_id, every
        self.host = socket.gethostname()
        self.runner = f"pid {os.getpid()} on {self.host}"
        self._stop = threading.Event()
        self._beat()
        self._thread = threading.Thread(target=self._loop, name="bench-heartbeat", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        try:
            self.tracker.set_tags(self.run_id, {f"{TAG}heartbeat": f"{time.time():.1f}",
                                                f"{TAG}runner": self.runner,
                                                f"{TAG}runner_pid": str(os.getpid()),
                                                f"{TAG}runner_host": self.host})
        except Exception:  # noqa: BLE001
            pass

    def _loop(self) -> None:
        while not self._stop.wait(self.every):
            self._beat()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


def _torch_version() -> str:
    import torch

    return torch.__version__.split("+")[0]


def package_version() -> str:
    return bench.__version__
