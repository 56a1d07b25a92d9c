"""Cell records read straight from an MLflow SQL store (SQLite, PostgreSQL, MySQL): the board's
fast path.

`MlflowClient.search_runs` builds an ORM object for every tag, param and metric of every run
(10,000 cell runs: about 13 s on a 2-core machine, most of it object construction, and the
params the board never reads). The board needs three things per run: its status and start
time, its tags and its latest metric values. Here they come from three read-only queries
over MLflow's own tables (`runs`, `tags`, `latest_metrics`), whatever the number of runs.

Only reads, never writes: MLflow stays the only writer of its schema. The tables and columns
used have been stable since MLflow 1.x; if a store lacks them (a future schema, a
non-SQL store), `read` raises `Unsupported` and the caller falls back to `search_runs`.
tests/test_record_sql.py checks that both paths give the same records.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from bench.record.cell_record import KIND, PARENT_TAG, SUITE, TAG, CellRecord

SQL_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")  # mlflow.store.db.db_types


class Unsupported(Exception):
    """This store cannot be read here (not SQL, or not MLflow's schema as we know it)."""


def is_sql(uri: str) -> bool:
    return uri.split(":", 1)[0].split("+", 1)[0] in SQL_SCHEMES


def _fetch(result: Any) -> list[Any]:
    """All rows of a result as the driver's plain tuples: SQLAlchemy's Row objects cost about
    0.3 s of CPU per 200,000 tag rows (a board of 10,000 cell runs reads 180,000)."""
    cursor = getattr(result, "cursor", None)  # the DBAPI cursor of a CursorResult
    if cursor is None:
        return list(result.all())
    try:
        return list(cursor.fetchall())
    finally:
        result.close()


class SqlReader:
    """Reads cell records from one SQL store; owns its SQLAlchemy engine (a connection pool,
    made on first use and disposed with `close`)."""

    def __init__(self, uri: str):
        self.uri = uri
        self._engine: Any = None

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    def _connect(self) -> Any:
        import sqlalchemy
        from sqlalchemy.exc import OperationalError

        path = self.uri[len("sqlite:///"):] if self.uri.startswith("sqlite:///") else None
        if path and path != ":memory:" and not os.path.exists(path):
            # connecting would create an empty file: reading never makes a store
            raise OperationalError(f"no such file: {path}", None, FileNotFoundError(path))
        if self._engine is None:
            self._engine = sqlalchemy.create_engine(self.uri)
        return self._engine.connect()

    def experiment_id(self, name: str) -> str | None:
        """The id of the active experiment `name`; None when there is none, or when the store
        cannot be read here (the caller then asks MLflow, which also creates one)."""
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        try:
            with self._connect() as con:
                row = con.execute(sqlalchemy.text(
                    "SELECT experiment_id FROM experiments WHERE name = :name "
                    "AND lifecycle_stage = 'active'"), {"name": name}).first()
        except SQLAlchemyError:
            return None
        return str(row[0]) if row is not None else None

    def read(self, experiment_id: str, suite: str | None, statuses: Iterable[str],
             parent: str | None = None) -> list[CellRecord]:
        """The cell runs of an experiment (of one suite, under one parent run when given) with
        one of `statuses`, as records, newest first."""
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        statuses = sorted(statuses)
        params: dict[str, Any] = {"exp": int(experiment_id) if str(experiment_id).isdigit() else experiment_id,
                                  "kind": KIND, "suite_key": SUITE, "suite": suite,
                                  "parent_key": PARENT_TAG, "parent": parent,
                                  "ours": f"{TAG}%"}
        status_marks = ", ".join(f":s{i}" for i in range(len(statuses)))
        params.update({f"s{i}": s for i, s in enumerate(statuses)})
        joins = "JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = :kind AND k.value = 'cell'"
        if suite is not None:
            joins += " JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = :suite_key AND s.value = :suite"
        if parent is not None:
            joins += " JOIN tags p ON p.run_uuid = r.run_uuid AND p.key = :parent_key AND p.value = :parent"
        selected = (f"SELECT r.run_uuid FROM runs r {joins} WHERE r.experiment_id = :exp "
                    f"AND r.lifecycle_stage = 'active' AND r.status IN ({status_marks})")
        text = sqlalchemy.text
        try:
            with self._connect() as con:
                runs = _fetch(con.execute(text(
                    f"SELECT r.run_uuid, r.status, r.start_time FROM runs r {joins} "
                    f"WHERE r.experiment_id = :exp AND r.lifecycle_stage = 'active' "
                    f"AND r.status IN ({status_marks}) ORDER BY r.start_time DESC"), params))
                tags = _fetch(con.execute(text(
                    # only our tags and the parent link: MLflow's own (user, source, run name,
                    # log-model history) are about half the rows and the board reads none
                    f"SELECT t.run_uuid, t.key, t.value FROM tags t WHERE t.run_uuid IN ({selected}) "
                    "AND (t.key LIKE :ours OR t.key = :parent_key)"),
                    params))
                metrics = _fetch(con.execute(text(
                    f"SELECT m.run_uuid, m.key, m.value, m.is_nan FROM latest_metrics m "
                    f"WHERE m.run_uuid IN ({selected})"), params))
        except SQLAlchemyError as e:
            raise Unsupported(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
        tags_of: dict[str, dict[str, str]] = {r[0]: {} for r in runs}
        for rid, key, value in tags:
            if rid in tags_of:
                tags_of[rid][key] = value
        metrics_of: dict[str, dict[str, float]] = {r[0]: {} for r in runs}
        for rid, key, value, is_nan in metrics:
            if rid in metrics_of:  # MLflow stores NaN as 0 with is_nan set
                metrics_of[rid][key] = float("nan") if is_nan else float(value)
        return [CellRecord.from_parts(rid, status, int(start or 0), tags_of[rid], metrics_of[rid])
                for rid, status, start in runs]

    def running_suite_runs(self, experiment_id: str, suite: str) -> list[tuple[str, dict[str, str], int]]:
        """(run id, our tags, start time in ms) of the suite's RUNNING suite runs, newest first:
        what a board asks of a lease (bench.record.lease.live_suite_run) before it is drawn,
        here without MLflow's client (importing it costs seconds on every board). Only our
        tags: the lease's stamp is among them."""
        import sqlalchemy
        from sqlalchemy.exc import SQLAlchemyError

        params: dict[str, Any] = {"exp": int(experiment_id) if str(experiment_id).isdigit() else experiment_id,
                                  "kind": KIND, "suite_key": SUITE, "suite": suite, "ours": f"{TAG}%"}
        selected = ("FROM runs r JOIN tags k ON k.run_uuid = r.run_uuid AND k.key = :kind AND "
                    "k.value = 'suite' JOIN tags s ON s.run_uuid = r.run_uuid AND s.key = :suite_key "
                    "AND s.value = :suite WHERE r.experiment_id = :exp AND r.lifecycle_stage = "
                    "'active' AND r.status = 'RUNNING'")
        text = sqlalchemy.text
        try:
            with self._connect() as con:
                runs = con.execute(text(f"SELECT r.run_uuid, r.start_time {selected} "
                                        "ORDER BY r.start_time DESC, r.run_uuid"), params).all()
                tags = con.execute(text(
                    f"SELECT t.run_uuid, t.key, t.value FROM tags t WHERE t.run_uuid IN "
                    f"(SELECT r.run_uuid {selected}) AND t.key LIKE :ours"), params).all() if runs else []
        except SQLAlchemyError as e:
            raise Unsupported(f"{type(e).__name__}: {str(e).splitlines()[0][:200]}") from None
        tags_of: dict[str, dict[str, str]] = {r[0]: {} for r in runs}
        for rid, key, value in tags:
            if rid in tags_of:
                tags_of[rid][key] = value
        return [(rid, tags_of[rid], int(start or 0)) for rid, start in runs]


@dataclass
class SuiteRunsView:
    """One experiment's RUNNING suite runs read through SQL, in the shape a lease reads them
    (bench.record.lease.RunningSuiteRuns); a store this reader cannot read: `fallback`'s."""

    reader: SqlReader
    experiment_id: str
    fallback: Any = None  # anything with running_suite_runs(suite), e.g. the Tracker

    def running_suite_runs(self, suite: str) -> list[tuple[str, dict[str, str], int]]:
        try:
            return self.reader.running_suite_runs(self.experiment_id, suite)
        except Unsupported:
            if self.fallback is None:
                raise
            return list(self.fallback.running_suite_runs(suite))
