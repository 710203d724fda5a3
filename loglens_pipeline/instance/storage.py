"""Dagster's SQLite instance storage with its connections kept open.

The stock SQLite storages build a SQLAlchemy engine and open a new SQLite connection for every
statement, and commit with `synchronous=FULL`. Every Dagster event is such a statement (twice
for asset events: the run's shard and the index shard), so metrics runs and backfills spent
most of their time there. Keeping one engine per database file with a small connection pool,
and committing with `synchronous=NORMAL` (the databases are in WAL mode), makes events and
lookups about 5x cheaper (`benchmarks/instance_storage.py`, docs/benchmarks.md).

`synchronous=NORMAL` in WAL mode never corrupts a database and loses nothing when a process
crashes; a power loss can roll back the last commits. Those are Dagster's records of runs and
events: the warehouse does not depend on them, and anything re-run after such a loss is
idempotent.

The file layout is the stock one (`history/runs.db`, `history/runs/<run>.db`,
`schedules/schedules.db` under `base_dir`), so an existing DAGSTER_HOME keeps its history.
"""

from __future__ import annotations

import os
import tempfile
import threading
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

from dagster import _check as check
from dagster._core.storage.event_log.sqlite.sqlite_event_log import (
    INDEX_SHARD_NAME,
    SQLITE_BUSY_TIMEOUT_SECONDS,
    SqliteEventLogStorage,
)
from dagster._core.storage.runs.sqlite.sqlite_run_storage import SqliteRunStorage
from dagster._core.storage.schedules.sqlite.sqlite_schedule_storage import SqliteScheduleStorage
from dagster._core.storage.sqlite_storage import (
    DagsterSqliteStorage,
    _event_logs_directory,
    _runs_directory,
    _schedule_directory,
)
from dagster._serdes import ConfigurableClassData
from dagster._utils import mkdir_p
from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.pool import NullPool, QueuePool

# Engines kept per process for the event log's per-run shards; the least recently used is closed.
# The webserver reads many runs' shards, and each open shard holds three file descriptors.
MAX_OPEN_RUN_SHARDS = 16


def _commit_without_fsync_per_transaction(dbapi_connection, _record) -> None:
    """Use `synchronous=NORMAL` on a WAL database (the WAL is synced at checkpoints)."""
    cursor = dbapi_connection.cursor()
    try:
        (mode,) = cursor.execute("PRAGMA journal_mode").fetchone()
        if str(mode).lower() == "wal":
            cursor.execute("PRAGMA synchronous=NORMAL")
    finally:
        cursor.close()


class EngineCache:
    """One pooled engine per SQLite database file, per process, the least recently used closed.

    A process that forks gets a fresh cache: pooled connections must not cross a fork.
    """

    def __init__(self, max_engines: int | None = None):
        self._max_engines = max_engines
        self._engines: OrderedDict[str, Engine] = OrderedDict()
        self._lock = threading.Lock()
        self._pid = os.getpid()

    def get(self, conn_string: str, timeout_seconds: float | None = None) -> Engine:
        with self._lock:
            if self._pid != os.getpid():
                self._engines = OrderedDict()
                self._pid = os.getpid()
            engine = self._engines.get(conn_string)
            if engine is None:
                connect_args = {} if timeout_seconds is None else {"timeout": timeout_seconds}
                # pool_size 1 covers the usual one statement at a time; the webserver's and the
                # daemon's threads get overflow connections, closed when returned.
                engine = create_engine(
                    conn_string,
                    poolclass=QueuePool,
                    pool_size=1,
                    max_overflow=16,
                    connect_args=connect_args,
                )
                event.listen(engine, "connect", _commit_without_fsync_per_transaction)
                self._engines[conn_string] = engine
                while self._max_engines is not None and len(self._engines) > self._max_engines:
                    _, evicted = self._engines.popitem(last=False)
                    evicted.dispose()
            else:
                self._engines.move_to_end(conn_string)
            return engine

    def dispose(self) -> None:
        with self._lock:
            engines, self._engines = list(self._engines.values()), OrderedDict()
        for engine in engines:
            engine.dispose()


@contextmanager
def _transaction(engine: Engine) -> Iterator[Connection]:
    with engine.connect() as conn, conn.begin():
        yield conn


class _PooledConnection:
    """`connect()` of Dagster's single-file SQLite storages over one pooled engine."""

    _conn_string: str

    def __init__(self, conn_string: str, inst_data: ConfigurableClassData | None = None):
        super().__init__(conn_string, inst_data)  # ty: ignore[too-many-positional-arguments]
        self._engines = EngineCache()

    @contextmanager
    def connect(self) -> Iterator[Connection]:
        with _transaction(self._engines.get(self._conn_string)) as conn:
            yield conn

    def dispose(self) -> None:
        super().dispose()  # ty: ignore[unresolved-attribute]
        self._engines.dispose()


class PooledSqliteRunStorage(_PooledConnection, SqliteRunStorage):
    """`SqliteRunStorage` (runs, tags, backfills) over one pooled engine."""


class PooledSqliteScheduleStorage(_PooledConnection, SqliteScheduleStorage):
    """`SqliteScheduleStorage` (sensor cursors, ticks) over one pooled engine."""


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    """`SqliteEventLogStorage` (one shard per run plus the index shard) over pooled engines.

    A new run's shard is a copy of an empty shard this process built once: building one (the
    tables, then Dagster's schema-revision check and stamp) costs ~185 ms, once per run.
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines = EngineCache(max_engines=MAX_OPEN_RUN_SHARDS + 1)
        self._tables: set[str] = set()
        self._empty_shard: bytes | None = None
        super().__init__(base_dir, inst_data)

    @contextmanager
    def _connect(self, shard: str) -> Iterator[Connection]:
        # Same as the stock method (one statement at a time per process, under its lock, the
        # shard created on first use), with the engine kept instead of built and disposed.
        with self._db_lock:
            check.str_param(shard, "shard")
            if (
                shard not in self._initialized_dbs
                and shard != INDEX_SHARD_NAME
                and self._place_empty_shard(self.path_for_shard(shard))
            ):
                self._initialized_dbs.add(shard)  # a copy of a shard this process initialized
            engine = self._engines.get(
                self.conn_string_for_shard(shard), timeout_seconds=SQLITE_BUSY_TIMEOUT_SECONDS
            )
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with _transaction(engine) as conn:
                yield conn

    def _place_empty_shard(self, path: str) -> bool:
        """Put a copy of an empty, stamped shard at `path`; False if a file is already there.

        The copy is written beside it and hard-linked into place: the link fails if another
        process created the shard meanwhile, and the stock initialization takes over.
        """
        if os.path.exists(path):
            return False
        if self._empty_shard is None:
            with tempfile.TemporaryDirectory() as folder:
                engine = create_engine(f"sqlite:///{folder}/shard.db", poolclass=NullPool)
                self._initdb(engine)
                engine.dispose()  # the last connection checkpoints the WAL into the file
                with open(f"{folder}/shard.db", "rb") as built:
                    self._empty_shard = built.read()
        staging = f"{path}.{os.getpid()}.{threading.get_ident()}.tmp"
        try:
            with open(staging, "wb") as out:
                out.write(self._empty_shard)
            os.link(staging, path)
            return True
        except OSError:  # created meanwhile, or a file system without hard links
            return False
        finally:
            if os.path.exists(staging):
                os.unlink(staging)

    def has_table(self, table_name: str) -> bool:
        # Asked on every asset event; the stock method builds an engine each time. Tables are
        # only ever added, so a table found stays found (until a wipe).
        if table_name in self._tables:
            return True
        engine = self._engines.get(
            self.conn_string_for_shard(INDEX_SHARD_NAME),
            timeout_seconds=SQLITE_BUSY_TIMEOUT_SECONDS,
        )
        with engine.connect() as conn:
            found = bool(engine.dialect.has_table(conn, table_name))
        if found:
            self._tables.add(table_name)
        return found

    def wipe(self) -> None:
        # Wiping deletes the shard files: close their connections first.
        self._engines.dispose()
        self._tables.clear()
        super().wipe()

    def dispose(self) -> None:
        super().dispose()
        self._engines.dispose()


class PooledSqliteStorage(DagsterSqliteStorage):
    """The instance storage LogLens ships in `dagster.yaml` (`storage: custom:`).

    Config: `base_dir`, the same directory the stock `storage: sqlite:` takes (DAGSTER_HOME by
    default there).
    """

    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        # Deliberately not DagsterSqliteStorage.__init__, which builds the stock storages.
        self.base_dir = check.str_param(base_dir, "base_dir")
        self._run_storage = PooledSqliteRunStorage.from_local(_runs_directory(base_dir))
        self._event_log_storage = PooledSqliteEventLogStorage(_event_logs_directory(base_dir))
        self._schedule_storage = PooledSqliteScheduleStorage.from_local(
            _schedule_directory(base_dir)
        )
        self._inst_data = check.opt_inst_param(inst_data, "inst_data", ConfigurableClassData)
        super(DagsterSqliteStorage, self).__init__()

    @classmethod
    def from_config_value(cls, inst_data, config_value) -> PooledSqliteStorage:  # ty: ignore[invalid-method-override]
        base_dir = check.str_param(config_value["base_dir"], "base_dir")
        mkdir_p(base_dir)
        return cls(base_dir, inst_data=inst_data)
