"""Where results, their metadata and task logs live.

The index (diskcache, i.e. SQLite) maps a task id to its metadata, so lookups
and listings never scan the filesystem. Result payloads are files written by
the workers that produced them: first to a temporary name, then renamed to a
name unique to that write. An index entry is only committed once its file is
complete and it records the file's size and checksum, so a crash at any moment
leaves either the old entry or the new one, and two Labs writing the same task
never leave an entry pointing at the other's file.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import secrets
import shutil
from abc import ABC, abstractmethod
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import StorageError

Entry = dict[str, Any]
"""Index metadata of one cached task: type, module, params, code_version, format,
file, size, checksum, started, finished, mlflow_run_id."""
Record = tuple[str, "Entry | None", str]
"""(task id, index entry or None, logs of its last run)."""

MARKER = "labnb-storage.json"
ARTIFACTS = "artifacts"
GENERATION_KEY = "labnb:generation"
DISKCACHE_OPTIONS = {"eviction_policy": "none", "statistics": False}
"""diskcache must never drop an entry to save space."""
"""Kept in the index beside the task ids (which are hex, so they never collide)."""
STORAGE_VERSION = 1


class CorruptEntry(Exception):
    """An index entry whose payload file is missing, truncated or unreadable."""


@dataclass(frozen=True)
class StoredFile:
    name: str
    size: int
    checksum: str


def checksum(data: bytes) -> str:
    return hashlib.blake2b(data, digest_size=16).hexdigest()


def verified(data: bytes, entry: Entry, where: object) -> bytes:
    """``data`` if it is the complete payload the entry describes, else CorruptEntry."""
    if len(data) != entry["size"]:
        raise CorruptEntry(
            f"result file {where} is truncated ({len(data)} of {entry['size']} bytes)"
        )
    if checksum(data) != entry["checksum"]:
        raise CorruptEntry(f"result file {where} does not match its checksum")
    return data


class PayloadWriter:
    """Writes result payloads; small and picklable because it runs in workers."""

    def __init__(self, results_dir: str) -> None:
        self.results_dir = results_dir

    def __call__(self, task_id: str, suffix: str, data: bytes) -> StoredFile:
        folder = os.path.join(self.results_dir, task_id[:2])
        os.makedirs(folder, exist_ok=True)
        token = secrets.token_hex(4)
        name = f"{task_id[:2]}/{task_id}-{token}{suffix}"
        temporary = os.path.join(folder, f".tmp-{task_id}-{token}")
        with open(temporary, "wb") as file:
            file.write(data)
        os.replace(temporary, os.path.join(self.results_dir, name))
        return StoredFile(name, len(data), checksum(data))

    def artifacts_folder(self, task_id: str) -> str:
        """A new folder for this run's artifacts: a rerun never overwrites the cached one's."""
        folder = os.path.join(
            os.path.dirname(self.results_dir), ARTIFACTS, f"{task_id}-{secrets.token_hex(4)}"
        )
        os.makedirs(folder)
        return folder


class Storage(ABC):
    """What a Lab needs from a store; ``LocalStorage`` is the one on disk."""

    @abstractmethod
    def writer(self) -> PayloadWriter | None:
        """The callable workers use to write payloads (None: nothing is cached)."""

    @abstractmethod
    def lookup(self, task_id: str) -> Entry | None: ...

    @abstractmethod
    def entries(self) -> Iterator[tuple[str, Entry]]: ...

    @abstractmethod
    def read(self, entry: Entry) -> bytes:
        """The payload of an entry, checked against its size and checksum (raises CorruptEntry)."""

    @abstractmethod
    def commit(self, records: Iterable[Record]) -> None:
        """Save finished runs: an index entry (None for a failed or uncached task) and logs."""

    @abstractmethod
    def remove(self, task_ids: Iterable[str]) -> int:
        """Forget these tasks' results and logs; returns how many results were removed."""

    @abstractmethod
    def read_logs(self, task_id: str) -> str | None: ...

    @abstractmethod
    def generation(self) -> int:
        """A number that changes whenever entries are added or removed (by any process)."""

    def artifacts_path(self, entry: Entry) -> Path | None:
        """Where an entry's artifacts and models are (None when it logged none)."""
        return None


class NullStorage(Storage):
    """``Lab(storage=None)``: nothing is cached, logs of the last run stay in memory."""

    def __init__(self) -> None:
        self._logs: dict[str, str] = {}

    def __repr__(self) -> str:
        return "NullStorage()"

    def writer(self) -> None:
        return None

    def lookup(self, task_id: str) -> None:
        return None

    def entries(self) -> Iterator[tuple[str, Entry]]:
        return iter(())

    def read(self, entry: Entry) -> bytes:
        raise CorruptEntry("nothing is stored in NullStorage")

    def commit(self, records: Iterable[Record]) -> None:
        for task_id, _, logs in records:
            self._logs[task_id] = logs

    def remove(self, task_ids: Iterable[str]) -> int:
        for task_id in task_ids:
            self._logs.pop(task_id, None)
        return 0

    def read_logs(self, task_id: str) -> str | None:
        return self._logs.get(task_id)

    def generation(self) -> int:
        return 0


class LocalStorage(Storage):
    """A directory: ``index/`` and ``logs/`` (diskcache) and ``results/`` (payload files)."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        import diskcache

        self.path = Path(path).expanduser().absolute()
        self._results = self.path / "results"
        _prepare_directory(self.path)
        self._index = diskcache.Cache(str(self.path / "index"), **DISKCACHE_OPTIONS)
        self._logs_cache: Any = None

    def __repr__(self) -> str:
        return f"LocalStorage({str(self.path)!r})"

    def writer(self) -> PayloadWriter:
        return PayloadWriter(str(self._results))

    def lookup(self, task_id: str) -> Entry | None:
        return self._index.get(task_id)

    def entries(self) -> Iterator[tuple[str, Entry]]:
        index = self._index
        with index.transact():  # one read transaction, not one per entry
            found = [(key, index.get(key)) for key in index.iterkeys() if key != GENERATION_KEY]
        return iter([(key, entry) for key, entry in found if entry is not None])

    def read(self, entry: Entry) -> bytes:
        path = self._results / entry["file"]
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise CorruptEntry(f"result file {path} is missing or unreadable ({exc})") from None
        return verified(data, entry, path)

    def commit(self, records: Iterable[Record]) -> None:
        records = list(records)
        replaced = []
        with self._logs.transact():
            for task_id, _, logs in records:
                self._logs.set(task_id, logs)
        with self._index.transact():
            for task_id, entry, _ in records:
                if entry is None:
                    continue
                old = self._index.get(task_id)
                self._index.set(task_id, entry)
                if old is not None and old["file"] != entry["file"]:
                    replaced.append(old)
            self._index.incr(GENERATION_KEY)
        self._unlink(replaced)

    def remove(self, task_ids: Iterable[str]) -> int:
        removed = []
        with self._index.transact():
            for task_id in task_ids:
                entry = self._index.pop(task_id, None)
                self._logs.delete(task_id)
                if entry is not None:
                    removed.append(entry)
            self._index.incr(GENERATION_KEY)
        self._unlink(removed)
        return len(removed)

    def read_logs(self, task_id: str) -> str | None:
        return self._logs.get(task_id)

    def generation(self) -> int:
        return self._index.get(GENERATION_KEY, 0)

    @property
    def _logs(self) -> Any:
        """Opened on first use: reading results never needs it (each open costs disk syncs)."""
        if self._logs_cache is None:
            import diskcache

            self._logs_cache = diskcache.Cache(str(self.path / "logs"), **DISKCACHE_OPTIONS)
        return self._logs_cache

    def artifacts_path(self, entry: Entry) -> Path | None:
        folder = entry.get("artifacts")
        return None if folder is None else self.path / ARTIFACTS / folder

    def _unlink(self, entries: Iterable[Entry]) -> None:
        """Delete the files of entries that are no longer in the index."""
        for entry in entries:
            with contextlib.suppress(FileNotFoundError):
                (self._results / entry["file"]).unlink()
            folder = self.artifacts_path(entry)
            if folder is not None:
                shutil.rmtree(folder, ignore_errors=True)


def _prepare_directory(path: Path) -> None:
    """Create or check a storage directory, so a bad path fails before any task runs."""
    marker = path / MARKER
    try:
        if path.exists() and not path.is_dir():
            raise StorageError(f"labnb storage {path} exists and is not a directory")
        if path.is_dir() and not marker.exists() and any(path.iterdir()):
            raise StorageError(
                f"{path} is not empty and is not a labnb storage directory; "
                "choose an empty or new directory"
            )
        (path / "results").mkdir(parents=True, exist_ok=True)
        if not marker.exists():
            temporary = path / f".{MARKER}.{secrets.token_hex(4)}"
            temporary.write_text(json.dumps({"labnb_storage_version": STORAGE_VERSION}))
            os.replace(temporary, marker)
        probe = path / "results" / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"cannot use {path} as labnb storage: {exc}") from None
