"""Migrating a local storage written by labnb 0.1.0 to the catalog, in place.

0.1.0 kept its index in a diskcache (``index/``: SQLite rows whose values are
pickled dicts) and logs in another (``logs/``). Migration reads both without
unpickling anything but plain data (a crafted storage cannot run code here),
writes the catalog to a temporary file, and renames it to ``catalog.sqlite``:
until that rename the storage is untouched, so a kill at any moment leaves
the old storage or the migrated one. Only then is the marker rewritten and
the old index removed. An exclusive lock on ``.migrate.lock`` makes
processes opening the storage at the same moment migrate it once.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import os
import pickle
import secrets
import shutil
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .entry import IndexEntry
from .index import SqliteIndex

OLD_INDEX = "index"
OLD_LOGS = "logs"
_DISKCACHE_DB = "cache.db"
_MODE_RAW, _MODE_BINARY, _MODE_TEXT, _MODE_PICKLE = 1, 2, 3, 4


class _DataOnly(pickle.Unpickler):
    """Unpickles plain data (dicts, lists, tuples, numbers, strings); refuses any class."""

    def find_class(self, module: str, name: str) -> Any:
        raise pickle.UnpicklingError(f"refusing {module}.{name}: a 0.1.0 index holds only data")


def migrate_local(path: Path) -> None:
    from .store import CATALOG_FILE, MARKER, marker_text

    with _exclusive(path / ".migrate.lock"):
        catalog = path / CATALOG_FILE
        if not catalog.exists():
            temporary = path / f".{CATALOG_FILE}.migrating-{secrets.token_hex(4)}"
            try:
                index = SqliteIndex(temporary)
                entries = list(_old_entries(path / OLD_INDEX))
                logs = dict(_old_values(path / OLD_LOGS))
                index.commit(entries, logs)
                index.close()
                os.replace(temporary, catalog)
            finally:
                for leftover in path.glob(f".{CATALOG_FILE}.migrating-*"):
                    leftover.unlink(missing_ok=True)
        marker = path / MARKER
        written = path / f".{MARKER}.{secrets.token_hex(4)}"
        written.write_text(marker_text())
        os.replace(written, marker)
        for old in (OLD_INDEX, OLD_LOGS):
            shutil.rmtree(path / old, ignore_errors=True)


@contextlib.contextmanager
def _exclusive(lock: Path) -> Iterator[None]:
    with open(lock, "a") as file:
        fcntl.flock(file, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(file, fcntl.LOCK_UN)


def _old_values(folder: Path) -> Iterator[tuple[str, Any]]:
    """(key, value) rows of a 0.1.0 diskcache, values decoded as diskcache stored them."""
    database = folder / _DISKCACHE_DB
    if not database.exists():
        return
    db = sqlite3.connect(f"file:{database}?mode=ro", uri=True)
    try:
        rows = db.execute("SELECT key, mode, filename, value FROM Cache WHERE raw = 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise StorageError(
            f"cannot migrate {folder}: its 0.1.0 index is unreadable ({exc})"
        ) from None
    finally:
        db.close()
    for key, mode, filename, value in rows:
        if not isinstance(key, str) or key.startswith("labnb:"):
            continue
        data = value
        if filename:
            from .paths import checked_name

            data = (folder / checked_name(filename)).read_bytes()
        if mode == _MODE_PICKLE:
            try:
                yield key, _DataOnly(io.BytesIO(bytes(data))).load()
            except (pickle.UnpicklingError, EOFError, ValueError) as exc:
                raise StorageError(
                    f"cannot migrate {folder.parent}: its 0.1.0 index entry {key[:40]!r} "
                    f"is not plain data ({exc}); nothing was changed"
                ) from None
        elif mode == _MODE_TEXT and isinstance(data, bytes):
            yield key, data.decode("utf-8")
        elif mode in (_MODE_RAW, _MODE_BINARY, _MODE_TEXT):
            yield key, data


def _old_entries(folder: Path) -> Iterator[IndexEntry]:
    for key, value in _old_values(folder):
        if isinstance(value, dict):
            yield IndexEntry.from_json(key, value)
