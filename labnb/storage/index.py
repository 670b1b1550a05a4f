"""The index interface, and the index of a local storage (one SQLite file).

An ``Index`` stores entries and logs and answers queries through a SQLite
connection with the catalog's schema (``schema.py``). ``SqliteIndex`` is that
database itself, in the storage directory; ``ObjectIndex``
(``object_index.py``) keeps entries as JSON objects in an object store and
queries an in-memory mirror of them.

Writes happen in ``BEGIN IMMEDIATE`` transactions: reading the entry being
replaced and writing its successor happen under one lock, so two processes
committing the same task never both think the other's file is still wanted
(the payload of the loser is removed, not leaked). WAL mode lets readers
(a cache browser, the CLI) read while a run commits.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
import zlib
from abc import ABC, abstractmethod
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

from . import schema
from .entry import IndexEntry
from .paths import checked_name
from .task_logs import Logs, read_log_file

LOGS = "logs"
"""The folder beside the catalog that holds long logs (``task_logs``)."""

BUSY_SECONDS = 60.0
OUTPUT_KEPT_SECONDS = 600.0
"""How long the live output of a finished run is kept (its tasks' logs keep it all)."""


class TaskRow(NamedTuple):
    """One task of a run, as its record holds it (the columns of ``run_tasks``)."""

    task_id: str
    type: str
    label: str
    status: str
    started: float | None
    finished: float | None
    error: str | None
    """``ExcType: message``, short, for tables."""
    root: bool = False
    """Submitted by the user (not only a dependency)."""
    pid: int | None = None
    progress: str | None = None
    """JSON ``[n, total, desc]`` of its ``labnb.progress`` loop."""
    metrics: str | None = None
    """JSON ``{name: [[step, value], ...]}`` logged so far."""
    failure: str | None = None
    """JSON ``{"type", "message", "traceback"}`` when it failed."""
    resources: str | None = None
    """The GPUs and cores it was given (``"GPU 0 · 4 CPUs"``), when it declared needs."""
    version: int = 0
    """The run's update that last changed this row."""
    config: str | None = None
    """The digest of the config file the task was built from (``Index.read_config``)."""


class RunRow(NamedTuple):
    run_id: str
    pid: int
    host: str
    started: float
    heartbeat: float
    finished: float | None
    status: str
    version: int
    tasks: list[TaskRow]


class RunUpdate(NamedTuple):
    """What changed in a run since a follower's last look (``Index.run_update``)."""

    run: RunRow
    """The run, with only the task rows changed since ``since``."""
    output: list[tuple[int, str, str]]
    """``(seq, task id, text)`` printed since ``after_output``, in order."""


_TASK_FIELDS = ", ".join(TaskRow._fields)
_TASK_COLUMNS = f"run_id, {_TASK_FIELDS}"
_SELECT_RUN = "SELECT run_id, pid, host, started, heartbeat, finished, status, version FROM runs"


def _task_row(row: tuple[object, ...] | list[object]) -> TaskRow:
    task = TaskRow._make(row)
    return task._replace(root=bool(task.root))


def _use_wal(db: sqlite3.Connection) -> None:
    """Switch to WAL mode, waiting for other processes as for any lock: SQLite
    answers "database is locked" at once (no busy handler) when several
    connections switch a new database at the same moment."""
    deadline = time.monotonic() + BUSY_SECONDS
    while True:
        try:
            db.execute("PRAGMA journal_mode = WAL")
            return
        except sqlite3.OperationalError as error:
            if "locked" not in str(error) or time.monotonic() > deadline:
                raise
            time.sleep(0.02)


class Index(ABC):
    """Entries and logs of one storage."""

    @abstractmethod
    def get(self, task_id: str) -> IndexEntry | None: ...

    @abstractmethod
    def get_many(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        """The entries of those of these tasks that are cached, in one round trip."""

    @abstractmethod
    def commit(self, entries: list[IndexEntry], logs: Mapping[str, Logs]) -> list[IndexEntry]:
        """Write entries and logs; returns the entries replaced by another payload."""

    def logs_folder(self) -> Path | None:
        """Where long logs are kept as files (``task_logs``); None: all are text in the index."""
        return None

    def remove_stray_log_files(self, older_than: float, dry_run: bool = False) -> int:
        """Delete log files no logs row names, last written before ``older_than``
        (a run killed while its task printed); returns how many there were."""
        return 0

    @abstractmethod
    def remove(self, task_ids: list[str]) -> list[IndexEntry]:
        """Forget entries and logs in one step; returns the removed entries."""

    @abstractmethod
    def read_logs(self, task_id: str) -> str | None: ...

    @abstractmethod
    def keep_configs(self, configs: Sequence[tuple[str, str, str]]) -> None:
        """Keep config files, ``(digest, name, text)``; a digest already kept is left as it is."""

    @abstractmethod
    def read_config(self, digest: str) -> tuple[str, str] | None:
        """``(name, text)`` of the config file kept under ``digest``, or None."""

    @abstractmethod
    def generation(self) -> int:
        """Changes whenever entries are added or removed, by any process."""

    @abstractmethod
    def reading(self) -> contextlib.AbstractContextManager[sqlite3.Connection]:
        """A connection to query (the catalog's schema), current as of this call."""

    def orphan_logs(self, older_than: float) -> list[str]:
        """Ids of tasks with logs but no entry, whose logs were written before ``older_than``."""
        with self.reading() as db:
            return [
                row[0]
                for row in db.execute(
                    "SELECT task_id FROM logs WHERE written < ? AND task_id NOT IN "
                    "(SELECT task_id FROM entries)",
                    (older_than,),
                )
            ]

    @abstractmethod
    def mark(self, statuses: dict[str, tuple[str, str]]) -> None:
        """Set entries' payload status: ``{task id: (file, status)}``; an entry whose
        file is no longer ``file`` (committed again meanwhile) keeps its own."""

    @abstractmethod
    def remove_orphan_logs(self, task_ids: list[str]) -> None:
        """Delete logs of these tasks, unless an entry appeared for them meanwhile."""

    # --- runs and leases: who is computing what ------------------------------

    @abstractmethod
    def start_run(self, run_id: str, pid: int, host: str) -> None: ...

    @abstractmethod
    def heartbeat(self, run_id: str) -> None:
        """The run is alive: its leases hold for ``stale_after`` seconds more."""

    @abstractmethod
    def finish_run(self, run_id: str, status: str) -> None:
        """The run ended: its status is kept, its leases go."""

    @abstractmethod
    def claim(self, task_ids: list[str], run_id: str, stale_after: float) -> dict[str, str]:
        """Lease these tasks to ``run_id``, except those another live run holds:
        returns ``{task id: holding run}`` for those. A run whose heartbeat is
        older than ``stale_after`` seconds is dead, and its leases are taken."""

    @abstractmethod
    def release(self, task_ids: list[str], run_id: str) -> None: ...

    @abstractmethod
    def record_tasks(
        self, run_id: str, rows: list[TaskRow], output: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Insert or update what the run knows of its tasks, append what they printed
        (``(task id, text)``) and count one update of the run, in one transaction."""

    @abstractmethod
    def runs(self, run_ids: list[str] | None = None) -> list[RunRow]:
        """Runs, oldest first, with their tasks (all runs, or these)."""

    @abstractmethod
    def run_update(self, run_id: str, since: int, after_output: int) -> RunUpdate | None:
        """The run's task rows changed after update ``since`` and the output after
        sequence number ``after_output``; None if there is no such run."""

    def run_folder(self) -> Path | None:
        """Where files of runs are kept beside this index (the submitted tasks, the run
        process's own output), or None: the index itself holds no pickles."""
        return None

    @abstractmethod
    def request_cancel(self, run_id: str) -> bool:
        """Ask a running run (in any process) to stop; False when it is not running."""

    @abstractmethod
    def cancel_requested(self, run_id: str) -> bool: ...

    @abstractmethod
    def forget_runs(self, run_ids: list[str]) -> None:
        """Delete the records of these (finished) runs."""

    def close(self) -> None:
        """Release the connection (the index stays usable: it reopens on demand)."""
        return None


class SqliteIndex(Index):
    """The catalog database itself: a SQLite file (or ``:memory:``)."""

    def __init__(self, path: str | Path) -> None:
        self.path = str(path)
        self._lock = threading.RLock()
        self._db: sqlite3.Connection | None = None
        with self._writing() as db:
            if db.execute("PRAGMA user_version").fetchone()[0] < schema.SCHEMA_VERSION:
                schema.create(db)

    def __repr__(self) -> str:
        return f"SqliteIndex({self.path!r})"

    @property
    def _connection(self) -> sqlite3.Connection:
        if self._db is None:
            db = sqlite3.connect(
                self.path, timeout=BUSY_SECONDS, isolation_level=None, check_same_thread=False
            )
            if self.path != ":memory:":
                _use_wal(db)
                db.execute("PRAGMA synchronous = NORMAL")
            self._db = db
        return self._db

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            yield self._connection

    @contextlib.contextmanager
    def _writing(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            db = self._connection
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                if db.in_transaction:  # SQLite rolls back by itself on a full disk
                    db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    def get(self, task_id: str) -> IndexEntry | None:
        with self.reading() as db:
            row = db.execute(f"{schema.SELECT_ENTRY} WHERE task_id = ?", (task_id,)).fetchone()
        return None if row is None else schema.entry_from_row(row)

    def get_many(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        with self.reading() as db:
            return schema.read_entries(db, task_ids)

    def logs_folder(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path).parent / LOGS

    def commit(self, entries: list[IndexEntry], logs: Mapping[str, Logs]) -> list[IndexEntry]:
        with self._writing() as db:
            replaced_logs = schema.log_files(db, list(logs))
            schema.write_logs(db, logs)
            old = schema.read_entries(db, [entry.task_id for entry in entries])
            if entries:
                schema.write(db, entries)
                schema.bump_generation(db)
        self._delete_log_files(replaced_logs)
        return [
            old[entry.task_id]
            for entry in entries
            if entry.task_id in old and old[entry.task_id].file != entry.file
        ]

    def remove(self, task_ids: list[str]) -> list[IndexEntry]:
        with self._writing() as db:
            old = schema.read_entries(db, task_ids)
            removed_logs = schema.log_files(db, task_ids)
            schema.delete(db, task_ids)
            if old:
                schema.bump_generation(db)
        self._delete_log_files(removed_logs)
        return list(old.values())

    def remove_stray_log_files(self, older_than: float, dry_run: bool = False) -> int:
        folder = self.logs_folder()
        if folder is None or not folder.is_dir():
            return 0
        old = [
            f"{path.parent.name}/{path.name}"
            for path in folder.glob("*/*.log")
            if path.stat().st_mtime < older_than
        ]
        with self._writing() as db:  # named ones are read under the lock commits take
            named = {name for (name,) in db.execute("SELECT file FROM logs WHERE file IS NOT NULL")}
            stray = [name for name in old if name not in named]
            if not dry_run:
                self._delete_log_files(stray)
        return len(stray)

    def _delete_log_files(self, names: list[str]) -> None:
        """Delete log files no row names any more (after the commit that dropped them)."""
        folder = self.logs_folder()
        if folder is None:
            return
        for name in names:
            with contextlib.suppress(OSError):
                (folder / checked_name(name)).unlink()

    def mark(self, statuses: dict[str, tuple[str, str]]) -> None:
        with self._writing() as db:
            db.executemany(
                "UPDATE entries SET status = ? WHERE task_id = ? AND file = ?",
                [(status, key, file) for key, (file, status) in statuses.items()],
            )
            schema.bump_generation(db)

    def remove_orphan_logs(self, task_ids: list[str]) -> None:
        with self._writing() as db:
            orphans = [
                key
                for chunk in schema.chunks(task_ids)
                for (key,) in db.execute(
                    f"SELECT task_id FROM logs WHERE task_id IN ({schema.marks(chunk)}) "
                    "AND task_id NOT IN (SELECT task_id FROM entries)",
                    chunk,
                )
            ]
            removed_logs = schema.log_files(db, orphans)
            for chunk in schema.chunks(orphans):
                db.execute(f"DELETE FROM logs WHERE task_id IN ({schema.marks(chunk)})", chunk)
        self._delete_log_files(removed_logs)

    def start_run(self, run_id: str, pid: int, host: str) -> None:
        now = time.time()
        with self._writing() as db:
            db.execute(
                "INSERT INTO runs (run_id, pid, host, started, heartbeat, status) "
                "VALUES (?, ?, ?, ?, ?, 'running')",
                (run_id, pid, host, now, now),
            )
            # Live output outlives its run a while, for followers catching up;
            # the tasks' logs keep it for good.
            db.execute(
                "DELETE FROM run_output WHERE run_id IN "
                "(SELECT run_id FROM runs WHERE finished < ?)",
                (now - OUTPUT_KEPT_SECONDS,),
            )

    def heartbeat(self, run_id: str) -> None:
        with self._writing() as db:
            db.execute("UPDATE runs SET heartbeat = ? WHERE run_id = ?", (time.time(), run_id))

    def finish_run(self, run_id: str, status: str) -> None:
        now = time.time()
        with self._writing() as db:
            db.execute(
                "UPDATE runs SET status = ?, finished = ?, heartbeat = ? WHERE run_id = ?",
                (status, now, now, run_id),
            )
            db.execute("DELETE FROM leases WHERE run_id = ?", (run_id,))
            db.execute("UPDATE runs SET version = version + 1 WHERE run_id = ?", (run_id,))

    def claim(self, task_ids: list[str], run_id: str, stale_after: float) -> dict[str, str]:
        held: dict[str, str] = {}
        with self._writing() as db:
            for chunk in schema.chunks(task_ids):
                held.update(
                    db.execute(
                        "SELECT l.task_id, l.run_id FROM leases l JOIN runs r USING (run_id) "
                        f"WHERE l.task_id IN ({schema.marks(chunk)}) AND l.run_id != ? "
                        "AND r.status = 'running' AND r.heartbeat > ?",
                        [*chunk, run_id, time.time() - stale_after],
                    )
                )
            db.executemany(
                "INSERT OR REPLACE INTO leases VALUES (?, ?)",
                [(key, run_id) for key in task_ids if key not in held],
            )
        return held

    def release(self, task_ids: list[str], run_id: str) -> None:
        with self._writing() as db:
            for chunk in schema.chunks(task_ids):
                db.execute(
                    f"DELETE FROM leases WHERE run_id = ? AND task_id IN ({schema.marks(chunk)})",
                    [run_id, *chunk],
                )

    def record_tasks(
        self, run_id: str, rows: list[TaskRow], output: Sequence[tuple[str, str]] = ()
    ) -> None:
        with self._writing() as db:
            db.execute("UPDATE runs SET version = version + 1 WHERE run_id = ?", (run_id,))
            (version,) = db.execute(
                "SELECT version FROM runs WHERE run_id = ?", (run_id,)
            ).fetchone() or (0,)
            db.executemany(
                f"INSERT OR REPLACE INTO run_tasks ({_TASK_COLUMNS}) "
                f"VALUES (?, {schema.marks(list(TaskRow._fields))})",
                [(run_id, *row._replace(version=version)) for row in rows],
            )
            db.executemany(
                "INSERT INTO run_output (run_id, task_id, text) VALUES (?, ?, ?)",
                [(run_id, key, schema.safe_text(text)) for key, text in output],
            )

    def runs(self, run_ids: list[str] | None = None) -> list[RunRow]:
        with self.reading() as db:
            clause, args = "", []
            if run_ids is not None:
                clause, args = f" WHERE run_id IN ({schema.marks(run_ids)})", list(run_ids)
            runs = db.execute(f"{_SELECT_RUN}{clause} ORDER BY started", args).fetchall()
            tasks: dict[str, list[TaskRow]] = {}
            for run_id, *row in db.execute(
                f"SELECT run_id, {_TASK_FIELDS} FROM run_tasks{clause} "
                "ORDER BY started IS NULL, started",
                args,
            ):
                tasks.setdefault(run_id, []).append(_task_row(row))
        return [RunRow._make((*run, tasks.get(run[0], []))) for run in runs]

    def run_update(self, run_id: str, since: int, after_output: int) -> RunUpdate | None:
        with self.reading() as db:
            run = db.execute(f"{_SELECT_RUN} WHERE run_id = ?", (run_id,)).fetchone()
            if run is None or run[-1] <= since:
                return None if run is None else RunUpdate(RunRow._make((*run, [])), [])
            tasks = [
                _task_row(row)
                for row in db.execute(
                    f"SELECT {_TASK_FIELDS} FROM run_tasks WHERE run_id = ? AND version > ?",
                    (run_id, since),
                )
            ]
            output = db.execute(
                "SELECT seq, task_id, text FROM run_output WHERE run_id = ? AND seq > ? "
                "ORDER BY seq",
                (run_id, after_output),
            ).fetchall()
        return RunUpdate(RunRow._make((*run, tasks)), output)

    def run_folder(self) -> Path | None:
        return None if self.path == ":memory:" else Path(self.path).parent / "runs"

    def request_cancel(self, run_id: str) -> bool:
        with self._writing() as db:
            changed = db.execute(
                "UPDATE runs SET cancel = 1 WHERE run_id = ? AND status = 'running'", (run_id,)
            ).rowcount
        return changed > 0

    def cancel_requested(self, run_id: str) -> bool:
        with self.reading() as db:
            row = db.execute("SELECT cancel FROM runs WHERE run_id = ?", (run_id,)).fetchone()
        return bool(row and row[0])

    def forget_runs(self, run_ids: list[str]) -> None:
        with self._writing() as db:
            for chunk in schema.chunks(run_ids):
                marks = schema.marks(chunk)
                db.execute(f"DELETE FROM run_tasks WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM run_output WHERE run_id IN ({marks})", chunk)
                db.execute(f"DELETE FROM runs WHERE run_id IN ({marks})", chunk)

    def read_logs(self, task_id: str) -> str | None:
        with self.reading() as db:
            row = db.execute("SELECT text, file FROM logs WHERE task_id = ?", (task_id,)).fetchone()
        folder = self.logs_folder()
        if row is None or row[1] is None or folder is None:
            return None if row is None else row[0]
        try:
            return read_log_file(folder, checked_name(row[1]))
        except OSError as error:
            return f"[labnb] this task's log file is gone ({error})\n"

    def keep_configs(self, configs: Sequence[tuple[str, str, str]]) -> None:
        if configs:
            with self._writing() as db:
                schema.write_configs(db, configs)

    def read_config(self, digest: str) -> tuple[str, str] | None:
        with self.reading() as db:
            return schema.read_config(db, digest)

    def generation(self) -> int:
        with self.reading() as db:
            return schema.generation(db)

    def close(self) -> None:
        with self._lock:
            if self._db is not None and self.path != ":memory:":
                self._db.close()
                self._db = None


class RunlessIndex(Index):
    """An index that coordinates no runs and keeps no run records.

    For stores with no atomic "create if absent" that works everywhere (object
    stores, a user's own labtech-style storage): every run computes what it
    needs, the last commit of a task wins, and runs stay in the Lab's process.
    """

    def start_run(self, run_id: str, pid: int, host: str) -> None:
        return None

    def heartbeat(self, run_id: str) -> None:
        return None

    def finish_run(self, run_id: str, status: str) -> None:
        return None

    def claim(self, task_ids: list[str], run_id: str, stale_after: float) -> dict[str, str]:
        return {}

    def release(self, task_ids: list[str], run_id: str) -> None:
        return None

    def record_tasks(
        self, run_id: str, rows: list[TaskRow], output: Sequence[tuple[str, str]] = ()
    ) -> None:
        return None

    def runs(self, run_ids: list[str] | None = None) -> list[RunRow]:
        return []

    def run_update(self, run_id: str, since: int, after_output: int) -> RunUpdate | None:
        return None

    def request_cancel(self, run_id: str) -> bool:
        return False

    def cancel_requested(self, run_id: str) -> bool:
        return False

    def forget_runs(self, run_ids: list[str]) -> None:
        return None


class MirroredIndex(RunlessIndex):
    """Entries kept outside SQLite (objects, a user's files), queried through an
    in-memory SQLite mirror with the catalog's schema. A subclass reads the
    store's generation and brings the mirror in step (``_sync``) when it changed."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._mirror = sqlite3.connect(":memory:", check_same_thread=False, isolation_level=None)
        schema.create(self._mirror)

    @abstractmethod
    def _read_generation(self) -> bytes:
        """The store's generation as written (``b"0"`` before the first change)."""

    @abstractmethod
    def _sync(self) -> None:
        """Bring the mirror in step with the store (called under the lock)."""

    def generation(self) -> int:
        value = self._read_generation()
        try:
            return int(value)
        except ValueError:
            return zlib.crc32(value)

    @contextlib.contextmanager
    def reading(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._sync()
            yield self._mirror
