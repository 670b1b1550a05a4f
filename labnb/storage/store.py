"""``Storage``: the one implementation of the storage logic, over an index and blobs.

Commit order is what keeps a storage consistent through a crash at any
moment: a worker writes the payload (``PayloadWriter``) before it reports;
only then is the index entry, with the payload's size and checksum, committed;
the payload an entry replaced is deleted only after the commit. Removal is the
reverse: entries and logs go first (one transaction), files after. A kill
therefore leaves at worst a file no entry points at, which ``gc`` reclaims,
never an entry pointing at a missing or partial file.

``LocalStorage`` (a directory: ``catalog.sqlite`` and files) and
``FsspecStorage`` (any fsspec URL: JSON objects and files) differ only in the
index and blobs they are built from.
"""

from __future__ import annotations

import contextlib
import errno
import json
import logging
import os
import secrets
import sqlite3
from collections.abc import Callable, Iterable, Iterator
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

from typing_extensions import Self

from ..errors import StorageError
from ..model.config_files import ConfigFile
from ..model.formats import Payload, ResultFormat
from .blobs import RESULTS, Blobs, LocalBlobs, PayloadWriter
from .entry import DAMAGED, MISSING, IndexEntry
from .index import Index, SqliteIndex
from .keyed import LABNB_ATTRIBUTES, attach, is_key_store
from .result_file import CorruptEntry, ResultFile, checksum, file_problem, problem
from .task_logs import CUT_NOTE, LoggedFile, Logs

if TYPE_CHECKING:
    from .catalog import Catalog

log = logging.getLogger("labnb")
T = TypeVar("T")

Record = tuple[str, "IndexEntry | None", Logs]
"""(task id, index entry or None, logs of its last run: text, or a file under ``logs/``)."""

MARKER = "labnb-storage.json"
CATALOG_FILE = "catalog.sqlite"
STORAGE_VERSION = 2
"""1: labnb 0.1.0 (diskcache index of pickles); 2: the catalog (``schema.py``)."""


LOG_TAIL = 2000
"""Characters of a log kept when the whole log does not fit on a full disk."""


SQLITE_FULL = 13
"""SQLite's result code for a full disk (``sqlite3.SQLITE_FULL`` from Python 3.11)."""


def is_disk_full(exc: BaseException) -> bool:
    """Whether ``exc`` says the disk (or the user's quota) is full: ENOSPC writing
    a file, SQLite's "database or disk is full"."""
    if isinstance(exc, sqlite3.Error):
        code = getattr(exc, "sqlite_errorcode", None)  # Python 3.11+
        return code == SQLITE_FULL or "disk is full" in str(exc)
    return isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT)


def damage(data: bytes, entry: IndexEntry) -> str:
    """What is wrong with ``data`` as the payload of ``entry`` ("" when nothing)."""
    return problem(len(data), checksum(data, entry.checksum), entry.size, entry.checksum)


class Storage:
    """Where results, their index entries and task logs live.

    Also labtech's base for storages of your own: a subclass that implements
    ``find_keys``, ``exists``, ``file_handle`` and ``delete`` (as labtech's
    ``Storage`` documents them) is a complete labnb storage, whatever its
    ``__init__`` does (``keyed.py``). labnb keeps its own parts of it in the
    attributes ``index``, ``blobs``, ``where`` and ``catalog``.
    """

    index: Index
    blobs: Blobs | None
    where: str

    def __new__(cls, *args: Any, **kwargs: Any) -> Self:
        self = super().__new__(cls)
        if is_key_store(cls):
            attach(self)  # before __init__, which a labtech-style subclass writes itself
        return self

    def __init__(
        self, index: Index | None = None, blobs: Blobs | None = None, where: str = ""
    ) -> None:
        if index is None:
            if is_key_store(type(self)):
                return
            raise TypeError(
                "Storage needs an index and blobs; for a storage of your own, subclass it and "
                "implement find_keys, exists, file_handle and delete (or use LocalStorage, "
                "FsspecStorage)"
            )
        self.index = index
        self.blobs = blobs
        self.where = where

    def __getstate__(self) -> dict[str, Any]:
        """A labtech-style storage travels to workers without labnb's parts (its
        unpickled copy gets new ones)."""
        state = dict(self.__dict__)
        if is_key_store(type(self)):
            for name in LABNB_ATTRIBUTES:
                state.pop(name, None)
        return state

    def __repr__(self) -> str:
        if is_key_store(type(self)):
            return f"{type(self).__name__}()"
        return f"{type(self).__name__}({self.where!r})"

    @cached_property
    def catalog(self) -> Catalog:
        """Queries, pages, removal and housekeeping of this storage's entries."""
        from .catalog import Catalog

        return Catalog(self)

    def missing(self) -> str | None:
        """Why this storage is no longer where it was (deleted, replaced), or None."""
        return None

    def writer(self) -> PayloadWriter | None:
        """The callable workers use to write payloads (None: nothing is cached)."""
        return None if self.blobs is None else self.blobs.writer()

    def lookup(self, task_id: str) -> IndexEntry | None:
        return self.index.get(task_id)

    def lookup_many(self, task_ids: Iterable[str]) -> dict[str, IndexEntry]:
        """Entries of those of these tasks that are cached (one query, not one per task)."""
        return self.index.get_many(list(dict.fromkeys(task_ids)))

    def config(self, digest: str | None) -> ConfigFile | None:
        """The config file kept under ``digest`` (an entry's or run task's ``config``)."""
        found = None if digest is None else self.index.read_config(digest)
        return None if found is None else ConfigFile(*found)

    def entries(self) -> Iterator[IndexEntry]:
        """Every entry, oldest first (for whole-storage listings; the catalog pages)."""
        return iter(self.catalog.entries())

    def read(self, entry: IndexEntry) -> bytes:
        """The payload of an entry, checked against its size and checksum (raises CorruptEntry)."""
        blobs = self._blobs()
        data = self._checked(entry, lambda: blobs.read(entry.file))
        self._check(entry, damage(data, entry))
        return data

    def payload(self, entry: IndexEntry, fmt: ResultFormat) -> Payload:
        """The result of an entry, checked against its size and checksum (raises
        CorruptEntry). A local file is checked as a stream and not read into
        memory: the payload is a reference to it, loaded where its value is needed."""
        path = self._blobs().local_file(entry.file)
        if path is None:
            return Payload(fmt, data=self.read(entry))
        found = self._checked(entry, lambda: file_problem(path, entry.size, entry.checksum))
        self._check(entry, found)
        return Payload(fmt, source=ResultFile(path, entry.size))

    def _blobs(self) -> Blobs:
        if self.blobs is None:
            raise CorruptEntry("nothing is stored without storage")
        return self.blobs

    def _checked(self, entry: IndexEntry, look: Callable[[], T]) -> T:
        """What ``look`` finds in the entry's file; a file it cannot read is marked missing."""
        try:
            return look()
        except (OSError, StorageError) as exc:
            self._mark(entry, MISSING)
            where = self._blobs().location(entry.file)
            raise CorruptEntry(f"result file {where} is missing or unreadable ({exc})") from None

    def _check(self, entry: IndexEntry, found: str) -> None:
        """Mark the entry damaged and raise when its file has a problem."""
        if found:
            self._mark(entry, DAMAGED)
            raise CorruptEntry(f"result file {self._blobs().location(entry.file)} {found}")

    def _mark(self, entry: IndexEntry, status: str) -> None:
        """Record what a read found, so the catalog shows it (``status`` column)."""
        try:
            self.index.mark({entry.task_id: (entry.file, status)})
        except Exception:  # a read-only or unreachable index: the warning still reaches the user
            log.warning("labnb could not record that %s is %s", entry.task_id, status)

    def commit(self, records: Iterable[Record]) -> None:
        """Save finished runs: an index entry (None for a failed or uncached task) and logs."""
        records = list(records)
        if not records:
            return
        entries = [entry for _, entry, _ in records if entry is not None]
        replaced = self.index.commit(entries, {key: logs for key, _, logs in records})
        self._delete_files(replaced)

    def commit_what_fits(self, records: list[Record]) -> list[str]:
        """``commit``, on a disk that may be full: a batch that does not fit is
        committed one record at a time, a log that does not fit is replaced by
        its tail and a note, and a task whose entry still does not fit has its
        payload file deleted. Returns the ids of those tasks (their results are
        not kept); every other result is."""
        try:
            self.commit(records)
            return []
        except Exception as exc:
            if not is_disk_full(exc):
                raise
        lost = []
        for key, entry, logs in records:
            tail = () if isinstance(logs, LoggedFile) else (f"{CUT_NOTE}{logs[-LOG_TAIL:]}",)
            for attempt in (logs, *tail, CUT_NOTE):
                try:
                    self.commit([(key, entry, attempt)])
                    break
                except Exception as exc:
                    if not is_disk_full(exc):
                        raise
            else:
                lost.append(key)
                self._delete_files([entry] if entry is not None else [])
        return lost

    def remove(self, task_ids: Iterable[str]) -> int:
        """Forget these tasks' results and logs; returns how many results were removed."""
        removed = self.index.remove(list(dict.fromkeys(task_ids)))
        self._delete_files(removed)
        return len(removed)

    def read_logs(self, task_id: str) -> str | None:
        return self.index.read_logs(task_id)

    def logs_folder(self) -> Path | None:
        """Where a long log goes as it is written (None: held in memory until committed)."""
        return self.index.logs_folder()

    def generation(self) -> int:
        """A number that changes whenever entries are added or removed (by any process)."""
        return self.index.generation()

    def artifacts_path(self, entry: IndexEntry) -> Path | None:
        """Where an entry's artifacts and models are (None when it logged none)."""
        if entry.artifacts is None or self.blobs is None:
            return None
        return self.blobs.artifacts_path(entry.artifacts)

    def _delete_files(self, entries: list[IndexEntry]) -> None:
        """Delete the files of entries that are no longer in the index."""
        if self.blobs is None or not entries:
            return
        self.blobs.remove(entry.file for entry in entries)
        self.blobs.remove_artifacts(entry.artifacts for entry in entries if entry.artifacts)


class NullStorage(Storage):
    """``Lab(storage=None)``: nothing is cached, logs of the last run stay in memory."""

    def __init__(self) -> None:
        super().__init__(SqliteIndex(":memory:"), None, "")

    def __repr__(self) -> str:
        return "NullStorage()"


class LocalStorage(Storage):
    """A directory: ``catalog.sqlite`` (entries and logs), ``results/`` and ``artifacts/``."""

    def __init__(self, path: str | os.PathLike[str]) -> None:
        from .migrate import migrate_local

        self.path = Path(path).expanduser().absolute()
        version = prepare_directory(self.path)
        try:
            if version < STORAGE_VERSION:
                migrate_local(self.path)
            index = SqliteIndex(self.path / CATALOG_FILE)
            self._catalog_inode = (self.path / CATALOG_FILE).stat().st_ino
        except OSError as exc:
            raise StorageError(f"cannot use {self.path} as labnb storage: {exc}") from None
        super().__init__(index, LocalBlobs(self.path), str(self.path))

    def missing(self) -> str | None:
        """The catalog this storage opened is checked to still be the one at its
        path, beside its marker: an open SQLite file goes on working after an
        ``rm -rf``, with nothing of it left on disk."""
        try:
            there = (self.path / CATALOG_FILE).stat().st_ino == self._catalog_inode
        except OSError:
            there = False
        if there and (self.path / MARKER).exists():
            return None
        return (
            f"labnb storage {self.path} was deleted (or replaced) while the run wrote into it; "
            "what it computed there is gone"
        )


def read_marker(text: str, where: object) -> int:
    try:
        version = int(json.loads(text)["labnb_storage_version"])
    except (ValueError, KeyError, TypeError):
        raise StorageError(f"{where} has a damaged labnb storage marker ({MARKER})") from None
    if version > STORAGE_VERSION:
        raise StorageError(
            f"{where} was written by a newer labnb (storage version {version}); upgrade labnb"
        )
    return version


def marker_text(version: int = STORAGE_VERSION) -> str:
    return json.dumps({"labnb_storage_version": version})


def is_own_leftover(name: str) -> bool:
    """Files a storage being created at this moment may hold before its marker."""
    return name.startswith(f".{MARKER}.") or (name.startswith(".tmp-") and name.endswith(MARKER))


def prepare_directory(path: Path) -> int:
    """Create or check a storage directory, so a bad path fails before any task runs.

    The marker is written first (atomically, by rename), before anything else,
    so processes creating one storage at the same moment all succeed. Returns
    the storage version found (the current one for a new storage).
    """
    marker = path / MARKER
    try:
        if path.exists() and not path.is_dir():
            raise StorageError(f"labnb storage {path} exists and is not a directory")
        path.mkdir(parents=True, exist_ok=True)
        if marker.exists():
            version = read_marker(marker.read_text(), path)
        else:
            if any(not is_own_leftover(c.name) for c in path.iterdir()) and not marker.exists():
                from .labtech_import import is_labtech_storage

                if is_labtech_storage(path):
                    raise StorageError(
                        f"{path} is a labtech storage; labnb leaves it as it is and imports "
                        f"its results into a storage of its own: labnb import-labtech {path} DEST"
                    )
                raise StorageError(
                    f"{path} is not empty and is not a labnb storage directory; "
                    "choose an empty or new directory"
                )
            temporary = path / f".{MARKER}.{secrets.token_hex(4)}"
            temporary.write_text(marker_text())
            os.replace(temporary, marker)
            version = read_marker(marker.read_text(), path)
        (path / RESULTS).mkdir(exist_ok=True)
        probe = path / RESULTS / f".probe-{secrets.token_hex(4)}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise StorageError(f"cannot use {path} as labnb storage: {exc}") from None
    return version


class FsspecStorage(Storage):
    """A labnb storage at an fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``file:///...``).

    ``storage_options`` go to fsspec (for S3 via s3fs: ``key``, ``secret``,
    ``client_kwargs={'endpoint_url': ...}``, ``anon``...). ``atomic_rename``
    chooses write-then-rename (default: only for local filesystems) over a
    single PUT per object. ``listing_seconds``: a lookup while planning
    consults a listing of ``index/`` at most this old, so planning a run of
    many uncached tasks costs one LIST, not one GET per task; an entry another
    process commits is therefore seen up to this late (its task would just run
    again). ``0`` reads every entry directly.

    labtech's extension point works too: a subclass that defines
    ``fs_constructor()`` (returning an fsspec filesystem) is given a path
    within that filesystem instead of a URL, e.g.
    ``S3Storage('bucket/lab')`` with ``fs_constructor`` returning an
    ``S3FileSystem(endpoint_url=...)``.
    """

    def __init__(
        self,
        url: str,
        *,
        atomic_rename: bool | None = None,
        listing_seconds: float = 1.0,
        **storage_options: Any,
    ) -> None:
        from .fsspec_blobs import RENAMING_PROTOCOLS, FsspecBlobs, protocols
        from .object_index import ObjectIndex

        try:
            from fsspec.core import url_to_fs
        except ImportError as exc:
            raise ImportError(
                'FsspecStorage needs fsspec: pip install "labnb[ray]" (or pip install fsspec, '
                "plus s3fs or gcsfs for cloud storage)"
            ) from exc
        self.url = url
        try:
            constructor = getattr(self, "fs_constructor", None)
            if constructor is not None:
                self.fs = constructor()
                root = self.fs._strip_protocol(url)
                self.url = self.fs.unstrip_protocol(root)
            else:
                self.fs, root = url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot use {url} as labnb storage: {exc}") from exc
        self.root = root.rstrip("/")
        self.rename = (
            bool(protocols(self.fs) & RENAMING_PROTOCOLS)
            if atomic_rename is None
            else atomic_rename
        )
        self._prepare()
        index = ObjectIndex(self.fs, self.root, self.rename, listing_seconds)
        super().__init__(index, FsspecBlobs(self.fs, self.root, self.rename), self.url)

    def _prepare(self) -> None:
        """Create or check the storage, so a bad URL fails before any task runs.

        Version 1 (0.1.0) entries are read as they are (``IndexEntry.from_json``
        accepts them), so migrating only rewrites the marker.
        """
        from .fsspec_blobs import put

        fs, marker = self.fs, f"{self.root}/{MARKER}"
        try:
            if fs.isfile(self.root):
                raise StorageError(f"labnb storage {self.url} exists and is not a directory")
            try:
                version = read_marker(bytes(fs.cat_file(marker)).decode(), self.url)
            except FileNotFoundError:
                fs.invalidate_cache(self.root)
                names = fs.ls(self.root, detail=False) if fs.isdir(self.root) else []
                if any(not is_own_leftover(name.rpartition("/")[2]) for name in names):
                    raise StorageError(
                        f"{self.url} is not empty and is not a labnb storage; "
                        "choose an empty or new location"
                    ) from None
                with contextlib.suppress(FileExistsError):
                    fs.makedirs(self.root, exist_ok=True)  # creates an S3 bucket if needed
                version = STORAGE_VERSION
            if version < STORAGE_VERSION or not fs.exists(marker):
                put(fs, marker, marker_text().encode(), self.rename)
            probe = f"{self.root}/{RESULTS}/.probe-{secrets.token_hex(4)}"
            put(fs, probe, b"", self.rename)
            fs.rm_file(probe)
        except StorageError:
            raise
        except Exception as exc:  # fsspec backends raise many kinds (OSError, botocore...)
            raise StorageError(f"cannot use {self.url} as labnb storage: {exc}") from None


def open_storage(location: str | os.PathLike[str] | Storage | None) -> Storage:
    """A storage from what ``Lab(storage=...)`` and the CLI accept: a path, a URL, None."""
    if isinstance(location, Storage):
        if not isinstance(getattr(location, "index", None), Index):
            raise StorageError(
                f"{type(location).__qualname__} sets self.index, which labnb's Storage uses "
                f"for its own index: give that attribute another name"
            )
        return location
    if location is None:
        return NullStorage()
    if isinstance(location, str) and "://" in location:
        return FsspecStorage(location)
    if isinstance(location, (str, os.PathLike)):
        return LocalStorage(location)
    raise StorageError(f"storage must be a path, a URL, None or a labnb Storage, not {location!r}")
