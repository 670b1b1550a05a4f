"""Blobs at an fsspec URL: S3, GCS, a shared filesystem (``file://``).

Each object is written whole: on object stores (S3, GCS, Azure, ``memory://``)
one PUT is atomic; on filesystems where a write is not (``file://``, or a
shared filesystem mounted locally) the object is written to a temporary name
in the same directory and renamed over the final one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import time
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import StorageError
from .blobs import ARTIFACTS, RESULTS, TEMPORARY_PREFIX, Blob, Blobs, PayloadWriter, checksum
from .entry import StoredFile
from .paths import checked_name, safe_names

RENAMING_PROTOCOLS = frozenset({"file", "local"})
"""Filesystems where writing in place is not atomic but renaming is."""


def protocols(fs: Any) -> set[str]:
    protocol = fs.protocol
    return {protocol} if isinstance(protocol, str) else set(protocol)


def put(fs: Any, path: str, data: bytes, rename: bool) -> None:
    """Write one whole object so that readers see all of it or none of it (see module doc)."""
    if not rename:
        fs.pipe_file(path, data)
        return
    parent, _, name = path.rpartition("/")
    fs.makedirs(parent, exist_ok=True)
    temporary = f"{parent}/{TEMPORARY_PREFIX}{secrets.token_hex(8)}-{name}"
    try:
        fs.pipe_file(temporary, data)
        fs.mv(temporary, path)
    except BaseException:
        with contextlib.suppress(Exception):
            fs.rm_file(temporary)
        raise


def remove_quietly(fs: Any, paths: list[str]) -> None:
    if not paths:
        return
    try:
        fs.rm(paths)
    except FileNotFoundError:
        for path in paths:
            with contextlib.suppress(FileNotFoundError):
                fs.rm_file(path)


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
        self.only_in = os.getpid() if "memory" in protocols(fs) else None
        self.local = bool(protocols(fs) & RENAMING_PROTOCOLS)

    def __call__(self, task_id: str, suffix: str, data: bytes) -> StoredFile:
        if self.only_in is not None and os.getpid() != self.only_in:
            # Written here, it would vanish with this worker: fail the task, clearly.
            raise StorageError(
                "memory:// storage lives in the Lab's process; use it with "
                "runner='thread' or 'serial'"
            )
        # 8 random bytes, not LocalStorage's 4: writers here may be many machines.
        name = f"{task_id[:2]}/{task_id}-{secrets.token_hex(8)}{suffix}"
        put(self.fs, f"{self.results_dir}/{name}", data, self.rename)
        return StoredFile(name, len(data), checksum(data))

    def artifacts_folder(self, task_id: str) -> str:
        """A new local folder for a task's artifacts, as local storage gives.

        Tasks write artifacts with ordinary file functions, so they need a
        folder on a filesystem: ``file://`` storage has one; object stores would
        need an upload step labnb does not have yet, so the task fails clearly.
        """
        if not self.local:
            raise StorageError(
                "artifacts need storage on a filesystem (a path, or file:// for FsspecStorage); "
                f"{sorted(protocols(self.fs))[0]}:// storage does not keep them yet"
            )
        parent = self.results_dir.rpartition("/")[0]
        folder = f"{parent}/{ARTIFACTS}/{task_id}-{secrets.token_hex(8)}"
        os.makedirs(folder)
        return folder


class FsspecBlobs(Blobs):
    def __init__(self, fs: Any, root: str, rename: bool) -> None:
        self.fs = fs
        self.root = root
        self.rename = rename

    def _path(self, *parts: str) -> str:
        return "/".join((self.root, *parts))

    def writer(self) -> FsspecPayloadWriter:
        return FsspecPayloadWriter(self.fs, self._path(RESULTS), self.rename)

    def read(self, name: str) -> bytes:
        return bytes(self.fs.cat_file(self._path(RESULTS, checked_name(name))))

    def remove(self, names: Iterable[str]) -> None:
        remove_quietly(self.fs, [self._path(RESULTS, name) for name in safe_names(names)])

    def remove_artifacts(self, folders: Iterable[str]) -> None:
        for folder in safe_names(folders):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(self._path(ARTIFACTS, folder), recursive=True)

    def artifacts_path(self, folder: str) -> Path | None:
        if not protocols(self.fs) & RENAMING_PROTOCOLS:
            return None
        return Path(self._path(ARTIFACTS, checked_name(folder)))

    def location(self, name: str) -> str:
        return self._path(RESULTS, name)

    def scan(self) -> Iterator[Blob]:
        for area in (RESULTS, ARTIFACTS):
            base = self._path(area)
            self.fs.invalidate_cache(base)
            try:
                found = self.fs.find(base, detail=True, withdirs=area == ARTIFACTS)
            except FileNotFoundError:
                continue
            folders: dict[str, tuple[float, int]] = {}
            for path, info in found.items():
                relative = self.fs._strip_protocol(path)[len(self.fs._strip_protocol(base)) + 1 :]
                if not relative:
                    continue
                modified = _modified(info)
                if area == RESULTS:
                    if info.get("type") != "directory" and "/" in relative:
                        yield Blob(area, relative, modified, int(info.get("size") or 0))
                    continue
                top = relative.split("/")[0]
                newest, size = folders.get(top, (0.0, 0))
                if info.get("type") == "directory":
                    # Folders count by name; their own time only where the listing has one.
                    known = _modified(info, default=0.0)
                    folders[top] = (max(newest, known), size)
                else:
                    folders[top] = (max(newest, modified), size + int(info.get("size") or 0))
            for name, (modified, size) in sorted(folders.items()):
                yield Blob(area, name, modified, size)


def _modified(info: dict[str, Any], default: float | None = None) -> float:
    """A listing's modification time as a unix time (fsspec backends name it differently);
    unknown: ``default``, or now (treated as new, so housekeeping never removes it)."""
    for key in ("mtime", "LastModified", "last_modified", "created", "updated"):
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        with contextlib.suppress(TypeError, ValueError):
            return float(value)
    return time.time() if default is None else default


__all__ = ["FsspecBlobs", "FsspecPayloadWriter", "protocols", "put", "remove_quietly"]
