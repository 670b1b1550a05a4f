"""The catalog's SQLite schema: one row per cached task, with real columns.

Fixed columns hold what every entry has (type, id, payload, timings, run
ids). Each task parameter, logged parameter and metric gets a real column
too, added when the first entry that has it is written, so filtering, sorting,
counting and paging run inside SQLite. Their public names (``params.C``,
``metrics.accuracy``: mlflow's naming, so no task field can collide with a
fixed column) map to short internal names (``c1``, ``c2``...) in the
``columns`` table: SQLite column names are case-insensitive, Python fields are
not. Every dynamic column is indexed together with ``type``, so "type Fit,
sorted by metrics.accuracy, page 3" reads one index range.

The same schema serves the local index (a file beside the results) and the
in-memory mirror of an object-store index. Logs live in the same database as
entries, so removing an entry and its logs is one transaction.

Runs and leases live here too: ``runs`` (one row per run, with a heartbeat)
and ``leases`` (which run is computing which task), so that a task a live run
is computing is not started again by another process (``engine/claims.py``).

A run's record is also what viewers follow while it goes: each task row
holds its live state (worker pid, progress, latest metrics), ``run_output``
the text tasks print until their logs are committed, and ``runs.version``
counts the run's updates, so a follower reads only what changed.

Config files that tasks were built from (``labnb.sweep``, ``%%labtask
--config``) are kept once each, content-addressed, in ``configs`` (digest,
name, text); an entry's ``config`` and a run task's ``config`` hold the
digest, so the file a result came from can be shown and swept again. The
versions of ``%%labtask`` cells are kept there too, under their
``code_version`` (``model.cell_versions``), so ``lab.explain`` can say what
changed in a cell.

Each entry records the hash of the code that computed it (``code``), so a
result made by an older version of its type's code shows as stale, and its
result when that is a number (``result``), a column like any metric.

Schema versions (``PRAGMA user_version``): 8 is this one; 7 kept every log as
text in ``logs`` (opening it adds ``logs.file``: a long log is a file under
``logs/``, ``task_logs.py``); 6 recorded no code
hashes or numeric results (opening it adds ``entries.code`` and
``entries.result``); 5 had no config files (opening it adds ``configs`` and
the ``config`` columns); 4 did not record the GPUs and cores a running task
holds (opening it adds the column); 3 had no live state (opening it adds the
columns and ``run_output``); 2 had no runs or
leases (opening it adds them); 0.1.0's index was a diskcache of pickled dicts
(version 1, migrated by ``migrate.py``).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterable, Mapping
from typing import Any

from .entry import IndexEntry, Tracking
from .task_logs import LoggedFile, Logs

SCHEMA_VERSION = 8
PARAMS = "params."
METRICS = "metrics."
ENTRY_COLUMNS = (
    "task_id",
    "type",
    "module",
    "code_version",
    "format",
    "file",
    "size",
    "checksum",
    "started",
    "finished",
    "run_id",
    "mlflow_run_id",
    "artifacts",
    "status",
    "params",
    "tracking",
    "config",
    "code",
    "result",
    "search",
)
_CREATE = """
CREATE TABLE IF NOT EXISTS entries (
    task_id TEXT PRIMARY KEY, type TEXT NOT NULL, module TEXT, code_version TEXT,
    format TEXT NOT NULL, file TEXT NOT NULL, size INTEGER NOT NULL, checksum TEXT NOT NULL,
    started REAL NOT NULL, finished REAL NOT NULL, run_id TEXT, mlflow_run_id TEXT,
    artifacts TEXT, status TEXT NOT NULL DEFAULT 'ok',
    params TEXT NOT NULL, tracking TEXT NOT NULL, search TEXT NOT NULL, config TEXT, code TEXT,
    result REAL
);
CREATE INDEX IF NOT EXISTS entries_by_type ON entries (type, started);
CREATE INDEX IF NOT EXISTS entries_by_start ON entries (started);
CREATE TABLE IF NOT EXISTS columns (name TEXT PRIMARY KEY, col TEXT NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS type_columns (
    type TEXT NOT NULL, name TEXT NOT NULL, position INTEGER NOT NULL, kind TEXT NOT NULL,
    source TEXT NOT NULL, PRIMARY KEY (type, name)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS logs (
    task_id TEXT PRIMARY KEY, text TEXT NOT NULL, written REAL NOT NULL, file TEXT
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value);
CREATE TABLE IF NOT EXISTS runs (
    run_id TEXT PRIMARY KEY, pid INTEGER NOT NULL, host TEXT NOT NULL, started REAL NOT NULL,
    heartbeat REAL NOT NULL, finished REAL, status TEXT NOT NULL,
    cancel INTEGER NOT NULL DEFAULT 0, version INTEGER NOT NULL DEFAULT 0
);
CREATE TABLE IF NOT EXISTS run_tasks (
    run_id TEXT NOT NULL, task_id TEXT NOT NULL, type TEXT NOT NULL, label TEXT NOT NULL,
    status TEXT NOT NULL, started REAL, finished REAL, error TEXT,
    root INTEGER NOT NULL DEFAULT 0, pid INTEGER, progress TEXT, metrics TEXT, failure TEXT,
    resources TEXT, version INTEGER NOT NULL DEFAULT 0, config TEXT,
    PRIMARY KEY (run_id, task_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS run_output (
    seq INTEGER PRIMARY KEY, run_id TEXT NOT NULL, task_id TEXT NOT NULL, text TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS run_output_by_run ON run_output (run_id, seq);
CREATE TABLE IF NOT EXISTS configs (
    digest TEXT PRIMARY KEY, name TEXT NOT NULL, text TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS leases (task_id TEXT PRIMARY KEY, run_id TEXT NOT NULL);
INSERT OR IGNORE INTO meta VALUES ('generation', 0);
"""
MAX_DYNAMIC_COLUMNS = 1800
"""SQLite allows 2000 columns a table; beyond this, values stay in the JSON only."""
CHUNK = 500
"""Ids per ``IN (...)`` list: well under SQLite's limit on bound variables."""


_ADDED_COLUMNS = {
    "entries": ("config TEXT", "code TEXT", "result REAL"),
    "runs": ("version INTEGER NOT NULL DEFAULT 0",),
    "logs": ("file TEXT",),
    "run_tasks": (
        "root INTEGER NOT NULL DEFAULT 0",
        "pid INTEGER",
        "progress TEXT",
        "metrics TEXT",
        "failure TEXT",
        "version INTEGER NOT NULL DEFAULT 0",
        "resources TEXT",
        "config TEXT",
    ),
}
"""Columns later versions added to older tables (``CREATE ... IF NOT EXISTS`` keeps old
tables): version 4 the live state of ``runs`` and ``run_tasks``, version 5
``run_tasks.resources``, version 6 ``config``, version 7 ``entries.code`` and
``entries.result``."""


def create(connection: sqlite3.Connection) -> None:
    """Create the schema, or bring an older one up to date (idempotent; inside
    the caller's transaction, unlike ``executescript``)."""
    for statement in _CREATE.split(";"):
        if statement.strip():
            connection.execute(statement)
    for table, columns in _ADDED_COLUMNS.items():
        have = {row[1] for row in connection.execute(f"PRAGMA table_info({table})")}
        for column in columns:
            if column.split()[0] not in have:
                connection.execute(f"ALTER TABLE {table} ADD COLUMN {column}")
    connection.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")


def chunks(items: list[str]) -> Iterable[list[str]]:
    for start in range(0, len(items), CHUNK):
        yield items[start : start + CHUNK]


def marks(items: list[Any]) -> str:
    return ",".join("?" * len(items))


def column_map(connection: sqlite3.Connection) -> dict[str, str]:
    """Public column name (``params.C``) to internal column (``c1``)."""
    return dict(connection.execute("SELECT name, col FROM columns"))


def bump_generation(connection: sqlite3.Connection) -> None:
    connection.execute("UPDATE meta SET value = value + 1 WHERE key = 'generation'")


def generation(connection: sqlite3.Connection) -> int:
    row = connection.execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
    return 0 if row is None else int(row[0])


def cell_value(encoded: Any) -> Any:
    """A parameter's stored encoding as one readable, sortable cell: scalars as they
    are, Enum members as ``Enum.NAME``, tasks as ``Type:id``, containers as JSON."""
    if encoded is None or isinstance(encoded, (str, int, float)):
        return encoded
    readable = _readable(encoded)
    return readable if isinstance(readable, str) else json.dumps(readable, default=str)


def _readable(encoded: Any) -> Any:
    if isinstance(encoded, list):
        return [_readable(item) for item in encoded]
    if not isinstance(encoded, dict):
        return encoded
    if "dict" in encoded:
        return {key: _readable(item) for key, item in encoded["dict"].items()}
    if "enum" in encoded:
        return f"{encoded['enum']}.{encoded['name']}"
    return f"{encoded['task']}:{str(encoded['id'])[:8]}"


FIELD, LOGGED, METRIC = "field", "logged", "metric"
"""Where a dynamic column's value comes from (``type_columns.source``)."""


def dynamic_values(entry: IndexEntry) -> dict[str, tuple[Any, str, str]]:
    """The entry's dynamic columns as (cell, source, kind): parameters, then logged
    parameters (a task field wins over a logged parameter of the same name), then
    the last value of each metric."""
    values = {
        PARAMS + name: (cell_value(value), FIELD, kind_of(value))
        for name, value in entry.params.items()
    }
    for name, value in entry.tracking.params.items():
        values.setdefault(PARAMS + name, (cell_value(value), LOGGED, kind_of(value)))
    for name, value in entry.tracking.last_metrics().items():
        values[METRICS + name] = (value, METRIC, "value")
    return values


def kind_of(encoded: Any) -> str:
    """How ``cache_table`` gives a column back: ``bool`` (SQLite stores 0 and 1),
    ``json`` (lists and dicts, stored as JSON text) or ``value`` (as stored)."""
    if isinstance(encoded, bool):
        return "bool"
    if isinstance(encoded, list) or (isinstance(encoded, dict) and "dict" in encoded):
        return "json"
    return "value"


def write(connection: sqlite3.Connection, entries: list[IndexEntry]) -> None:
    """Insert or replace entries (inside the caller's write transaction)."""
    if not entries:
        return
    mapping = column_map(connection)
    known_types: dict[tuple[str, str], tuple[str, str]] = {}
    groups: dict[tuple[str, ...], list[tuple[Any, ...]]] = {}
    for entry in entries:
        values = dynamic_values(entry)
        for name, (_, source, kind) in values.items():
            if name not in mapping and len(mapping) < MAX_DYNAMIC_COLUMNS:
                mapping[name] = _add_column(connection, name, len(mapping))
            old = known_types.get((entry.type, name))
            known_types[(entry.type, name)] = (
                _merge_kind(None if old is None else old[0], kind),
                source,
            )
        names = tuple(name for name in values if name in mapping)
        groups.setdefault(names, []).append((*_fixed_row(entry), *(values[n][0] for n in names)))
    for names, rows in groups.items():
        columns = (*ENTRY_COLUMNS, *(mapping[name] for name in names))
        connection.executemany(
            f"INSERT OR REPLACE INTO entries ({','.join(columns)}) VALUES ({marks(list(columns))})",
            rows,
        )
    _register_type_columns(connection, known_types)


def _merge_kind(old: str | None, new: str) -> str:
    return new if old in (None, new) else "value"


def _add_column(connection: sqlite3.Connection, name: str, count: int) -> str:
    column = f"c{count + 1}"
    while connection.execute("SELECT 1 FROM columns WHERE col = ?", (column,)).fetchone():
        count += 1
        column = f"c{count + 1}"
    connection.execute(f"ALTER TABLE entries ADD COLUMN {column}")
    connection.execute(f"CREATE INDEX entries_{column} ON entries (type, {column})")
    connection.execute("INSERT INTO columns VALUES (?, ?)", (name, column))
    return column


def _register_type_columns(
    connection: sqlite3.Connection, kinds: dict[tuple[str, str], tuple[str, str]]
) -> None:
    existing = {
        (type_, name): kind
        for type_, name, kind in connection.execute("SELECT type, name, kind FROM type_columns")
        if (type_, name) in kinds
    }
    for (type_, name), (kind, source) in kinds.items():
        old = existing.get((type_, name))
        if old is None:
            connection.execute(
                "INSERT INTO type_columns VALUES (?, ?, "
                "(SELECT count(*) FROM type_columns WHERE type = ?), ?, ?)",
                (type_, name, type_, kind, source),
            )
        elif _merge_kind(old, kind) != old:
            connection.execute(
                "UPDATE type_columns SET kind = 'value' WHERE type = ? AND name = ?", (type_, name)
            )


def _fixed_row(entry: IndexEntry) -> tuple[Any, ...]:
    params = {name: cell_value(value) for name, value in entry.params.items()}
    search = " ".join([entry.type, entry.task_id, *(str(value) for value in params.values())])
    tracking = entry.tracking
    return (
        entry.task_id,
        entry.type,
        entry.module,
        entry.code_version,
        entry.format,
        entry.file,
        entry.size,
        entry.checksum,
        entry.started,
        entry.finished,
        entry.run_id,
        entry.mlflow_run_id,
        entry.artifacts,
        entry.status,
        json.dumps(entry.params, separators=(",", ":")),
        json.dumps(
            {
                "params": tracking.params,
                "metrics": tracking.metrics,
                "features": tracking.features,
                "artifacts": tracking.artifacts,
                "models": tracking.models,
            },
            separators=(",", ":"),
        ),
        entry.config,
        entry.code,
        entry.result,
        search.lower(),
    )


SELECT_ENTRY = f"SELECT {','.join(ENTRY_COLUMNS[:-1])} FROM entries"


def entry_from_row(row: tuple[Any, ...]) -> IndexEntry:
    (task_id, type_, module, code_version, fmt, file, size, checksum, started, finished,
     run_id, mlflow_run_id, artifacts, status, params, tracking, config, code,
     result) = row  # fmt: skip
    return IndexEntry(
        task_id=task_id,
        type=type_,
        module=module or "",
        code_version=code_version,
        params=json.loads(params),
        format=fmt,
        file=file,
        size=size,
        checksum=checksum,
        started=started,
        finished=finished,
        mlflow_run_id=mlflow_run_id,
        tracking=Tracking.from_json(json.loads(tracking)),
        artifacts=artifacts,
        run_id=run_id,
        status=status,
        config=config,
        code=code,
        result=result,
    )


def read_entries(connection: sqlite3.Connection, task_ids: list[str]) -> dict[str, IndexEntry]:
    found: dict[str, IndexEntry] = {}
    for chunk in chunks(task_ids):
        for row in connection.execute(f"{SELECT_ENTRY} WHERE task_id IN ({marks(chunk)})", chunk):
            found[row[0]] = entry_from_row(row)
    return found


def delete(connection: sqlite3.Connection, task_ids: list[str]) -> None:
    for chunk in chunks(task_ids):
        connection.execute(f"DELETE FROM entries WHERE task_id IN ({marks(chunk)})", chunk)
        connection.execute(f"DELETE FROM logs WHERE task_id IN ({marks(chunk)})", chunk)


def write_configs(connection: sqlite3.Connection, configs: Iterable[tuple[str, str, str]]) -> None:
    """Keep config files, ``(digest, name, text)``: each text once, under its digest."""
    connection.executemany(
        "INSERT OR IGNORE INTO configs VALUES (?, ?, ?)",
        [(digest, name, safe_text(text)) for digest, name, text in configs],
    )


def read_config(connection: sqlite3.Connection, digest: str) -> tuple[str, str] | None:
    """``(name, text)`` of the config file kept under ``digest``."""
    row = connection.execute("SELECT name, text FROM configs WHERE digest = ?", (digest,))
    found = row.fetchone()
    return None if found is None else (found[0], found[1])


def write_logs(connection: sqlite3.Connection, logs: Mapping[str, Logs]) -> None:
    """A task's log is its text, or (``file``) the name of the file under ``logs/`` holding it."""
    now = time.time()
    connection.executemany(
        "INSERT OR REPLACE INTO logs (task_id, text, written, file) VALUES (?, ?, ?, ?)",
        [
            (task_id, "", now, text.name)
            if isinstance(text, LoggedFile)
            else (task_id, safe_text(text), now, None)
            for task_id, text in logs.items()
        ],
    )


def log_files(connection: sqlite3.Connection, task_ids: list[str]) -> list[str]:
    """The log files of these tasks' logs rows (to delete once the rows are gone)."""
    return [
        name
        for chunk in chunks(task_ids)
        for (name,) in connection.execute(
            f"SELECT file FROM logs WHERE task_id IN ({marks(chunk)}) AND file IS NOT NULL", chunk
        )
    ]


def safe_text(text: str) -> str:
    """Text SQLite can store: a lone surrogate (a non-UTF-8 file name printed by a
    task) is written the way Python's stderr prints it, as ``\\udcxx``."""
    return text.encode("utf-8", "backslashreplace").decode("utf-8")
