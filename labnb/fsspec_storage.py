"""A storage every node of a cluster can reach: S3, GCS, a shared filesystem, by URL.

``FsspecStorage('s3://bucket/prefix')`` keeps the guarantees of ``LocalStorage``
with nothing but objects, because object stores have no transactions and no
SQLite:

- ``results/<aa>/<task id>-<token><suffix>``: payloads, written by the workers
  that produced them under a name unique to that write, so two writers of
  one task never overwrite each other's file.
- ``index/<task id>.json``: one small JSON object per cached task, written by
  the Lab only after the worker's payload write returned, and holding the
  payload's size and checksum. A reader therefore sees the old entry or the
  new one, never an entry pointing at a partial file.
- ``logs/<task id>.txt``: the logs of each task's last run.
- ``generation``: a random number rewritten whenever index entries change, so
  a cache browser notices another process's changes without listing.

Each object is written whole: on object stores (S3, GCS, Azure, ``memory://``)
one PUT is atomic; on filesystems where a write is not (``file://``, or a
shared filesystem mounted locally) the object is written to a temporary name
in the same directory and renamed over the final one.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import time
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

from .errors import StorageError
from .storage import (
    MARKER,
    STORAGE_VERSION,
    CorruptEntry,
    Entry,
    PayloadWriter,
    Record,
    Storage,
    StoredFile,
    checksum,
    verified,
)

RENAMING_PROTOCOLS = frozenset({"file", "local"})
"""Filesystems where writing in place is not atomic but renaming is."""
GENERATION = "generation"
INDEX_SUFFIX = ".json"
ARTIFACTS = "artifacts"
"""Folders of files tasks keep with their results (``labnb.log_artifact``), where supported."""


def _protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def _put(fs: Any, path: str, data: bytes, rename: bool) -> None:
    """Write one whole object so that readers see all of it or none of it (see module doc)."""
    if not rename:
        fs.pipe_file(path, data)
        return
    parent, _, name = path.rpartition("/")
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/.tmp-{secrets.token_hex(8)}-{name}"
    try:
        fs.pipe_file(temporary, data)
        fs.mv(temporary, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm_file(temporary)
        raise


class FsspecPayloadWriter(PayloadWriter):
    """Writes payloads from inside workers (process or Ray), so it must pickle small.

    It carries the filesystem object, which fsspec pickles as its class and
    storage options (credentials and endpoint included): the worker rebuilds
    an equivalent client. ``memory://`` is the exception: its objects live in
    one process, so use it only with ``runner='thread'`` or ``'serial'``.
    """

    def __init__(self, fs: Any, results_dir: str, rename: bool) -> None:
        super().__init__(results_dir)
        self.fs = fs
        self.rename = rename
        self.only_in = os.getpid() if "memory" in _protocols(fs) else None
        self.local = bool(_protocols(fs) & RENAMING_PROTOCOLS)

    def __call__(self, task_id: str, suffix: str, data: bytes) -> StoredFile:
        if self.only_in is not None and os.getpid() != self.only_in:
            # Written here, it would vanish with this worker: fail the task, clearly.
            raise StorageError(
                "memory:// storage lives in the Lab's process; use it with "
                "runner='thread' or 'serial'"
            )
        # 8 random bytes, not LocalStorage's 4: writers here may be many machines.
        name = f"{task_id[:2]}/{task_id}-{secrets.token_hex(8)}{suffix}"
        _put(self.fs, f"{self.results_dir}/{name}", data, self.rename)
        return StoredFile(name, len(data), checksum(data))

    def artifacts_folder(self, task_id: str) -> str:
        """A new local folder for a task's artifacts, as ``LocalStorage`` gives.

        Tasks write artifacts with ordinary file functions, so they need a
        folder on a filesystem: ``file://`` storage has one; object stores would
        need an upload step labnb does not have yet, so the task fails clearly.
        """
        if not self.local:
            raise StorageError(
                "artifacts need storage on a filesystem (a path, or file:// for FsspecStorage); "
                f"{sorted(_protocols(self.fs))[0]}:// storage does not keep them yet"
            )
        parent = self.results_dir.rpartition("/")[0]
        folder = f"{parent}/{ARTIFACTS}/{task_id}-{secrets.token_hex(8)}"
        os.makedirs(folder)
        return folder


class FsspecStorage(Storage):
    """A labnb storage at an fsspec URL (``s3://bucket/prefix``, ``gs://...``, ``file:///...``).

    ``storage_options`` go to fsspec (for S3 via s3fs: ``key``, ``secret``,
    ``client_kwargs={'endpoint_url': ...}``, ``anon``...). ``atomic_rename``
    chooses write-then-rename (default: only for local filesystems) over a
    single PUT per object. ``listing_seconds``: a lookup first consults a listing
    of ``index/`` at most this old, so planning a run of many uncached tasks
    costs one LIST, not one GET per task; an entry another process commits is
    therefore seen up to this late (its task would just run again). ``0``
    reads every entry directly.
    """

    def __init__(
        self,
        url: str,
        *,
        atomic_rename: bool | None = None,
        listing_seconds: float = 1.0,
        **storage_options: Any,
    ) -> None:
        try:
            from fsspec.core import url_to_fs
        except ImportError as exc:
            raise ImportError(
                'FsspecStorage needs fsspec: pip install "labnb[ray]" (or pip install fsspec, '
                "plus s3fs or gcsfs for cloud storage)"
            ) from exc
        self.url = url
        try:
            self.fs, root = url_to_fs(url, **storage_options)
        except (ImportError, ValueError) as exc:
            raise StorageError(f"cannot use {url} as labnb storage: {exc}") from exc
        self.root = root.rstrip("/")
        self.rename = (
            bool(_protocols(self.fs) & RENAMING_PROTOCOLS)
            if atomic_rename is None
            else atomic_rename
        )
        self.listing_seconds = listing_seconds
        self._known: set[str] | None = None
        self._listed_at = float("-inf")
        self._prepare()

    def __repr__(self) -> str:
        return f"FsspecStorage({self.url!r})"

    # --- paths ---------------------------------------------------------------

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def _index_path(self, task_id: str) -> str:
        return self._path("index", task_id + INDEX_SUFFIX)

    def _logs_path(self, task_id: str) -> str:
        return self._path("logs", task_id + ".txt")

    def _result_path(self, name: str) -> str:
        return self._path("results", name)

    # --- the Storage interface ---------------------------------------------------

    def writer(self) -> FsspecPayloadWriter:
        return FsspecPayloadWriter(self.fs, self._path("results"), self.rename)

    def lookup(self, task_id: str) -> Entry | None:
        known = self._known_ids()
        if known is not None and task_id not in known:
            return None
        entries = self._read_entries([task_id])
        return entries.get(task_id)

    def entries(self) -> Iterator[tuple[str, Entry]]:
        known = self._known_ids(fresh=True)
        if not known:
            return iter(())
        return iter(sorted(self._read_entries(sorted(known)).items()))

    def read(self, entry: Entry) -> bytes:
        path = self._result_path(entry["file"])
        try:
            data = self.fs.cat_file(path)
        except OSError as exc:  # FileNotFoundError, permissions, a network error
            raise CorruptEntry(f"result file {path} is missing or unreadable ({exc})") from None
        return verified(data, entry, path)

    def commit(self, records: Iterable[Record]) -> None:
        records = list(records)
        if not records:
            return
        self._put_many({self._logs_path(task_id): logs.encode() for task_id, _, logs in records})
        new = {task_id: entry for task_id, entry, _ in records if entry is not None}
        if not new:
            return
        known = self._known_ids()
        maybe_old = [task_id for task_id in new if known is None or task_id in known]
        old = self._read_entries(maybe_old) if maybe_old else {}
        # The payload files are complete (workers wrote them before reporting):
        # only now do entries pointing at them appear.
        self._put_many(
            {self._index_path(task_id): _dump_entry(entry) for task_id, entry in new.items()}
        )
        if self._known is not None:
            self._known.update(new)
        self._bump_generation()
        self._remove_files(
            [
                old[task_id]
                for task_id, entry in new.items()
                if task_id in old and old[task_id]["file"] != entry["file"]
            ]
        )

    def remove(self, task_ids: Iterable[str]) -> int:
        task_ids = list(dict.fromkeys(task_ids))
        if not task_ids:
            return 0
        old = self._read_entries(task_ids)
        # Index entries first: a payload file is never deleted while an entry points at it.
        self._remove_quietly([self._index_path(task_id) for task_id in old])
        self._remove_quietly([self._logs_path(task_id) for task_id in task_ids])
        if self._known is not None:
            self._known.difference_update(task_ids)
        self._bump_generation()
        self._remove_files(list(old.values()))
        return len(old)

    def read_logs(self, task_id: str) -> str | None:
        try:
            return self.fs.cat_file(self._logs_path(task_id)).decode()
        except FileNotFoundError:
            return None

    def generation(self) -> int:
        try:
            return int(self.fs.cat_file(self._path(GENERATION)))
        except (FileNotFoundError, ValueError):
            return 0

    def artifacts_path(self, entry: Entry) -> Path | None:
        """Where an entry's artifacts are (on ``file://`` storage; None when it logged none)."""
        folder = entry.get("artifacts")
        if folder is None or not _protocols(self.fs) & RENAMING_PROTOCOLS:
            return None
        return Path(self._path(ARTIFACTS, folder))

    # --- helpers ---------------------------------------------------------------

    def _prepare(self) -> None:
        """Create or check the storage, so a bad URL fails before any task runs."""
        fs = self.fs
        try:
            marker = self._path(MARKER)
            if fs.isfile(self.root):
                raise StorageError(f"labnb storage {self.url} exists and is not a directory")
            try:
                fs.cat_file(marker)
            except FileNotFoundError:
                fs.invalidate_cache(self.root)
                if fs.isdir(self.root) and fs.ls(self.root, detail=False):
                    raise StorageError(
                        f"{self.url} is not empty and is not a labnb storage; "
                        "choose an empty or new location"
                    ) from None
                if self.rename:
                    fs.makedirs(self.root, exist_ok=True)
                else:
                    with contextlib.suppress(FileExistsError):
                        fs.makedirs(self.root, exist_ok=True)  # creates an S3 bucket if needed
                version = json.dumps({"labnb_storage_version": STORAGE_VERSION}).encode()
                _put(fs, marker, version, self.rename)
            probe = self._path("results", f".probe-{secrets.token_hex(4)}")
            _put(fs, probe, b"", self.rename)
            fs.rm_file(probe)
        except StorageError:
            raise
        except Exception as exc:  # fsspec backends raise many kinds (OSError, botocore...)
            raise StorageError(f"cannot use {self.url} as labnb storage: {exc}") from None

    def _known_ids(self, fresh: bool = False) -> set[str] | None:
        """Task ids in the index per a listing at most ``listing_seconds`` old (None: unknown)."""
        if not fresh and self.listing_seconds <= 0:
            return None
        if fresh or time.monotonic() - self._listed_at > self.listing_seconds:
            folder = self._path("index")
            self.fs.invalidate_cache(folder)  # s3fs and others cache listings
            try:
                names = self.fs.ls(folder, detail=False)
            except FileNotFoundError:
                names = []
            self._known = {
                name.rpartition("/")[2][: -len(INDEX_SUFFIX)]
                for name in names
                if name.endswith(INDEX_SUFFIX) and not name.rpartition("/")[2].startswith(".")
            }
            self._listed_at = time.monotonic()
        return self._known

    def _read_entries(self, task_ids: list[str]) -> dict[str, Entry]:
        """Existing index entries of these tasks; one batched request on async backends."""
        paths = {self._index_path(task_id): task_id for task_id in task_ids}
        if len(paths) == 1:
            (path,) = paths
            try:
                found = {path: self.fs.cat_file(path)}
            except FileNotFoundError:
                found = {}
        else:
            found = self.fs.cat(list(paths), on_error="omit")
        entries = {}
        for path, data in found.items():
            task_id = paths.get(path) or paths.get(self.fs._strip_protocol(path))
            if task_id is None or isinstance(data, Exception):
                continue
            with contextlib.suppress(ValueError):  # not JSON: not an entry labnb wrote
                entries[task_id] = json.loads(data)
        return entries

    def _put_many(self, objects: Mapping[str, bytes]) -> None:
        if self.rename:
            for path, data in objects.items():
                _put(self.fs, path, data, rename=True)
        elif objects:
            self.fs.pipe(dict(objects))  # concurrent on async backends such as s3fs

    def _bump_generation(self) -> None:
        # A random value rather than a counter: two processes may bump at once,
        # and all a reader needs is that the value differs from the one it saw.
        value = str(secrets.randbits(62)).encode()
        _put(self.fs, self._path(GENERATION), value, self.rename)

    def _remove_files(self, entries: list[Entry]) -> None:
        """Delete the payloads (and artifacts) of entries no longer in the index."""
        self._remove_quietly([self._result_path(entry["file"]) for entry in entries])
        for entry in entries:
            if entry.get("artifacts"):
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm(self._path(ARTIFACTS, entry["artifacts"]), recursive=True)

    def _remove_quietly(self, paths: list[str]) -> None:
        if not paths:
            return
        try:
            self.fs.rm(paths)
        except FileNotFoundError:
            for path in paths:
                with contextlib.suppress(FileNotFoundError):
                    self.fs.rm_file(path)


def _dump_entry(entry: Entry) -> bytes:
    return json.dumps(entry, separators=(",", ":")).encode()
