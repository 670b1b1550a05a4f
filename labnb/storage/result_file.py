"""Result files written and checked as streams: a big result is never also held as bytes.

A worker writes its result straight into its file (``ResultFormat.dump``)
through a ``HashingWriter``, which counts and hashes what passes, so the index
still gets the file's size and checksum. What travels on is a ``ResultFile``
(the file's path and size, a ``PayloadSource``), and whoever needs the value
loads it from the file: the run process never reads a result it only passes on.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from typing import IO, Any

import xxhash

from ..errors import CacheError
from ..model.formats import ResultFormat

CHUNK_BYTES = 1 << 20
"""What a check reads at a time: its memory stays this, whatever the file's size."""


class CorruptEntry(CacheError):
    """An index entry whose payload file is missing, truncated or unreadable."""


XXH3 = "xxh3-128:"
"""The prefix of the checksums labnb writes: xxh3's 128 bits. It hashes at
memory speed (~10 GB/s, blake2b ~1 GB/s), so checking a result costs little
next to loading it. Checksums without the prefix are blake2b's, as earlier
versions wrote them, and are checked as such."""


class Checksum:
    """A checksum made as data passes, in the algorithm of ``like`` (an entry's
    checksum; None: the one labnb writes now)."""

    def __init__(self, like: str | None = None) -> None:
        self._prefix = XXH3 if like is None or like.startswith(XXH3) else ""
        self._hash: Any = xxhash.xxh3_128() if self._prefix else hashlib.blake2b(digest_size=16)

    def update(self, data: Any) -> None:
        self._hash.update(data)

    def hexdigest(self) -> str:
        return self._prefix + str(self._hash.hexdigest())


def checksum(data: bytes, like: str | None = None) -> str:
    digest = Checksum(like)
    digest.update(data)
    return digest.hexdigest()


def problem(size: int, digest: str, entry_size: int, entry_checksum: str) -> str:
    """What is wrong with a payload of ``size`` bytes hashing to ``digest`` ("" when nothing)."""
    if size != entry_size:
        return f"is truncated ({size} of {entry_size} bytes)"
    if digest != entry_checksum:
        return "does not match its checksum"
    return ""


def file_problem(path: str, size: int, expected: str) -> str:
    """What is wrong with the file at ``path`` ("" when nothing), read in chunks
    into one buffer (raises ``OSError`` when it cannot be read)."""
    digest, total = Checksum(expected), 0
    buffer = bytearray(min(CHUNK_BYTES, size + 1))  # a small result's check zeroes no MiB
    view = memoryview(buffer)
    with open(path, "rb", buffering=0) as file:
        while count := file.readinto(buffer):
            digest.update(view[:count])
            total += count
    return problem(total, digest.hexdigest(), size, expected)


class HashingWriter:
    """A file that counts and hashes what is written to it, as it passes.

    ``pickle`` hands big buffers to ``write`` as they are (protocol 5), so
    hashing them here costs no copy."""

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._digest = Checksum()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self._file.write(view)
        self.size += view.nbytes
        return view.nbytes

    def flush(self) -> None:
        self._file.flush()

    def hexdigest(self) -> str:
        return self._digest.hexdigest()


@dataclass(frozen=True)
class ResultFile:
    """A result file on this machine, already checked: its writer hashed it as
    it wrote, or a read checked it against its entry. Result files are never
    changed once written (only deleted), so a load checks its size alone."""

    path: str
    size: int

    def read(self) -> bytes:
        self._check()
        with open(self.path, "rb") as file:
            return file.read()

    def load(self, fmt: ResultFormat) -> Any:
        self._check()
        return fmt.load_file(self.path)

    def _check(self) -> None:
        try:
            size = os.stat(self.path).st_size
        except OSError as exc:
            raise CorruptEntry(f"result file {self.path} is missing ({exc})") from None
        if size != self.size:
            raise CorruptEntry(f"result file {self.path} {problem(size, '', self.size, '')}")
