"""labtech's storage extension point: a ``Storage`` subclass with four methods.

labtech documents a custom storage as a subclass of ``labtech.storage.Storage``
that implements ``find_keys() -> Sequence[str]``, ``exists(key) -> bool``,
``file_handle(key, filename, *, mode='r') -> IO`` and ``delete(key)``. Such a
class works as a labnb storage too (``labnb.Lab(storage=MyStorage())``): this
module builds labnb's index and blobs over those four methods, so caching,
the catalog (``cached_tasks``, queries), uncaching and logs are labnb's own.

Layout, one key per task (its 32-character id), files written in binary mode:

- ``entry.json``: the task's ``IndexEntry``, written only after its payload,
  so a reader never sees an entry pointing at a file not yet written;
- ``result-<token><suffix>``: the payload, under a name unique to that write;
  the size and checksum in the entry catch a partial or damaged file;
- ``logs.txt``: the logs of the task's last run (failed tasks keep them too;
  a key with no ``entry.json`` is not cached).

One more key, ``labnb-storage``, holds the storage marker, the config files
tasks were built from (``config-<digest>.json``) and a ``generation``
rewritten (a random number) whenever entries change, so a reader notices
another process's changes without reading every entry. Keys that are not
task ids (a labtech run's results, say) are never read or changed.

The four methods give no way to delete one file of a key, so the payload an
entry replaced is emptied rather than deleted; ``delete(key)`` (uncaching)
removes everything. Nor can files of a key be listed, so ``gc`` finds no
stray files here. Queries run on an in-memory SQLite mirror of the entries,
as for ``FsspecStorage``: this process's own commits update it directly, and
a generation written by another process makes it read every entry again.
Lookups while planning go to the store itself (one ``exists`` per task, or one
``find_keys`` for many). No runs are coordinated or recorded
(``RunlessIndex``), so runs stay in the Lab's process.

Workers in other processes write payloads through a pickled copy of the
storage. One whose data lives only in the Lab's process (a dict) would lose
them: each commit therefore checks that the payload can be opened here, and
caches nothing, with a warning, where it cannot.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import re
import secrets
from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import IO, Any, Protocol

from ..errors import StorageError
from . import schema
from .blobs import Blob, Blobs, PayloadWriter, checksum
from .entry import IndexEntry, StoredFile
from .index import MirroredIndex
from .paths import checked_name
from .task_logs import Logs, text_of

log = logging.getLogger("labnb")

LABTECH_METHODS = ("find_keys", "exists", "file_handle", "delete")
OWN_KEY = "labnb-storage"
"""The key of the marker and generation (task ids are 32 hex characters)."""
MARKER_FILE = "labnb-storage.json"
GENERATION_FILE = "generation"
CONFIG_FILE = "config-{}.json"
"""A config file tasks were built from, ``{"name", "text"}``, by its digest (in ``OWN_KEY``)."""
ENTRY_FILE = "entry.json"
LOGS_FILE = "logs.txt"
PAYLOAD_PREFIX = "result-"
TASK_KEY = re.compile(r"[0-9a-f]{32}")
"""The keys labnb writes tasks under (their ids); other keys are not read."""
FEW_LOOKUPS = 8
"""Up to this many tasks are looked up with ``exists`` each; more with one ``find_keys``."""


class KeyStore(Protocol):
    """labtech's four storage methods (the signatures its ``Storage`` documents)."""

    def find_keys(self) -> Sequence[str]: ...

    def exists(self, key: str) -> bool: ...

    def file_handle(self, key: str, filename: str, *, mode: str = "r") -> IO[Any]: ...

    def delete(self, key: str) -> None: ...


def is_key_store(cls: type) -> bool:
    """Whether ``cls`` implements labtech's storage methods; one that implements
    only some of them is refused as labtech's abstract ``Storage`` refuses it."""
    present = [name for name in LABTECH_METHODS if callable(getattr(cls, name, None))]
    if not present:
        return False
    missing = [name for name in LABTECH_METHODS if name not in present]
    if missing:
        raise TypeError(
            f"Can't instantiate {cls.__qualname__}: a labtech-style Storage implements "
            f"find_keys, exists, file_handle and delete; it lacks {', '.join(missing)}"
        )
    return True


def read_file(store: KeyStore, key: str, filename: str) -> bytes:
    """A file's bytes; ``FileNotFoundError`` however the store says it is missing."""
    try:
        with store.file_handle(key, filename, mode="rb") as handle:
            data = handle.read()
    except (OSError, LookupError) as exc:
        raise FileNotFoundError(f"{key}/{filename}: {exc}") from None
    return data if isinstance(data, bytes) else str(data).encode()


def _json(data: object) -> bytes:
    return json.dumps(data).encode()


def write_file(store: KeyStore, key: str, filename: str, data: bytes) -> None:
    with store.file_handle(key, filename, mode="wb") as handle:
        handle.write(data)


class KeyedPayloadWriter(PayloadWriter):
    """Writes payloads through the store's ``file_handle`` (pickled to workers with it)."""

    def __init__(self, store: KeyStore) -> None:
        super().__init__("")
        self.store = store

    def __call__(self, task_id: str, suffix: str, data: bytes) -> StoredFile:
        filename = f"{PAYLOAD_PREFIX}{secrets.token_hex(8)}{suffix}"
        write_file(self.store, task_id, filename, data)
        return StoredFile(f"{task_id}/{filename}", len(data), checksum(data))

    def artifacts_folder(self, task_id: str) -> str:
        raise StorageError(
            f"artifacts need storage on a filesystem (a path, or file:// for FsspecStorage); "
            f"{type(self.store).__qualname__} keeps only files it is handed"
        )


class KeyedBlobs(Blobs):
    def __init__(self, store: KeyStore) -> None:
        self.store = store

    def writer(self) -> KeyedPayloadWriter:
        return KeyedPayloadWriter(self.store)

    def read(self, name: str) -> bytes:
        key, _, filename = checked_name(name).partition("/")
        return read_file(self.store, key, filename)

    def remove(self, names: Iterable[str]) -> None:
        """Empty replaced payloads (a key's single files cannot be deleted); a key
        already deleted is not created again."""
        for name in names:
            key, _, filename = name.partition("/")
            if filename.startswith(PAYLOAD_PREFIX) and self.store.exists(key):
                write_file(self.store, key, filename, b"")

    def remove_artifacts(self, folders: Iterable[str]) -> None:
        return None

    def scan(self) -> Iterator[Blob]:
        return iter(())

    def location(self, name: str) -> str:
        key, _, filename = name.partition("/")
        return f"{filename!r} of key {key!r} in {type(self.store).__qualname__}"


class KeyedIndex(MirroredIndex):
    def __init__(self, store: KeyStore) -> None:
        self.store = store
        super().__init__()
        self._mirrored: bytes | None = None
        """The generation the mirror is in step with (None: never filled)."""
        self._marked = False

    # --- entries -------------------------------------------------------------

    def get(self, task_id: str) -> IndexEntry | None:
        return self.get_many([task_id]).get(task_id)

    def get_many(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        if len(task_ids) <= FEW_LOOKUPS:
            present = [key for key in task_ids if self.store.exists(key)]
        else:
            keys = set(self.store.find_keys())
            present = [key for key in task_ids if key in keys]
        return self._fetch(present)

    def commit(self, entries: list[IndexEntry], logs: Mapping[str, Logs]) -> list[IndexEntry]:
        self._mark_storage()
        for key, text in logs.items():
            write_file(self.store, key, LOGS_FILE, schema.safe_text(text_of(text)).encode())
        kept = [entry for entry in entries if self._payload_here(entry)]
        if not kept:
            return []
        old = self._fetch([entry.task_id for entry in kept])
        for entry in kept:  # the payloads are written: only now do entries point at them
            write_file(self.store, entry.task_id, ENTRY_FILE, entry.to_json().encode())
        self._changed(write=kept)
        return [
            old[entry.task_id]
            for entry in kept
            if entry.task_id in old and old[entry.task_id].file != entry.file
        ]

    def remove(self, task_ids: list[str]) -> list[IndexEntry]:
        old = self._fetch(task_ids)
        for key in task_ids:
            if self.store.exists(key):
                self.store.delete(key)
        if old:
            self._changed(delete=list(old))
        return list(old.values())

    def mark(self, statuses: dict[str, tuple[str, str]]) -> None:
        current = self._fetch(list(statuses))
        changed = [
            dataclasses.replace(entry, status=statuses[key][1])
            for key, entry in current.items()
            if entry.file == statuses[key][0] and entry.status != statuses[key][1]
        ]
        for entry in changed:
            write_file(self.store, entry.task_id, ENTRY_FILE, entry.to_json().encode())
        if changed:
            self._changed(write=changed)

    def read_logs(self, task_id: str) -> str | None:
        try:
            return read_file(self.store, task_id, LOGS_FILE).decode(errors="replace")
        except FileNotFoundError:
            return None

    def keep_configs(self, configs: Sequence[tuple[str, str, str]]) -> None:
        for digest, name, text in configs:
            data = {"name": name, "text": schema.safe_text(text)}
            write_file(self.store, OWN_KEY, CONFIG_FILE.format(checked_name(digest)), _json(data))

    def read_config(self, digest: str) -> tuple[str, str] | None:
        try:
            name = CONFIG_FILE.format(checked_name(digest))
            data = json.loads(read_file(self.store, OWN_KEY, name))
        except (FileNotFoundError, ValueError, StorageError):
            return None
        return str(data["name"]), str(data["text"])

    def orphan_logs(self, older_than: float) -> list[str]:
        return []  # the store tells no file times: logs of failed tasks are kept

    def remove_orphan_logs(self, task_ids: list[str]) -> None:
        return None

    # --- the store -----------------------------------------------------------

    def _fetch(self, task_ids: list[str]) -> dict[str, IndexEntry]:
        """Entries of those of these tasks that have one labnb can read."""
        entries = {}
        for key in task_ids:
            try:
                data = read_file(self.store, key, ENTRY_FILE)
            except FileNotFoundError:
                continue
            with contextlib.suppress(StorageError):  # not an entry labnb wrote: not cached
                entries[key] = IndexEntry.from_json(key, data)
        return entries

    def _payload_here(self, entry: IndexEntry) -> bool:
        """Whether this process can open the payload a worker wrote (see module doc)."""
        key, _, filename = entry.file.partition("/")
        try:
            with self.store.file_handle(key, filename, mode="rb"):
                return True
        except (OSError, LookupError):
            log.warning(
                "labnb did not cache %s: %s has no result file %r here; a storage whose "
                "data lives in the Lab's process needs runner='thread' or 'serial'",
                key,
                type(self.store).__qualname__,
                filename,
            )
            return False

    def _mark_storage(self) -> None:
        """Write the marker once (and refuse a storage a newer labnb wrote)."""
        if self._marked:
            return
        from .store import marker_text, read_marker

        try:
            read_marker(read_file(self.store, OWN_KEY, MARKER_FILE).decode(), self.store)
        except FileNotFoundError:
            write_file(self.store, OWN_KEY, MARKER_FILE, marker_text().encode())
        self._marked = True

    def _read_generation(self) -> bytes:
        try:
            return read_file(self.store, OWN_KEY, GENERATION_FILE)
        except FileNotFoundError:
            return b"0"

    def _changed(self, write: Sequence[IndexEntry] = (), delete: Sequence[str] = ()) -> None:
        """Write a new generation; the mirror takes the change itself when it was in
        step before it (else the next read brings it in step)."""
        with self._lock:
            before = self._read_generation()
            value = str(secrets.randbits(62)).encode()
            write_file(self.store, OWN_KEY, GENERATION_FILE, value)
            if self._mirrored is None or before != self._mirrored:
                return
            db = self._mirror
            db.execute("BEGIN")
            schema.delete(db, list(delete))
            schema.write(db, list(write))
            db.execute("COMMIT")
            self._mirrored = value

    def _sync(self) -> None:
        """Bring the mirror in step with the store: every entry is read again."""
        current = self._read_generation()
        if current == self._mirrored:
            return
        keys = [key for key in self.store.find_keys() if TASK_KEY.fullmatch(key)]
        fetched = self._fetch(keys)
        db = self._mirror
        db.execute("BEGIN")
        mirrored = [row[0] for row in db.execute("SELECT task_id FROM entries")]
        schema.delete(db, mirrored)
        schema.write(db, list(fetched.values()))
        db.execute("COMMIT")
        self._mirrored = current


def attach(storage: Any) -> None:
    """Give a labtech-style storage labnb's index and blobs over its own methods."""
    storage.index = KeyedIndex(storage)
    storage.blobs = KeyedBlobs(storage)
    storage.where = type(storage).__qualname__


LABNB_ATTRIBUTES = ("index", "blobs", "where", "catalog")
"""What ``attach`` (and the catalog) add to the storage: not pickled with it."""


__all__ = ["LABTECH_METHODS", "KeyStore", "KeyedBlobs", "KeyedIndex", "attach", "is_key_store"]
