"""Names read from an index are data, never trusted paths.

A crafted or damaged index could name ``/etc/passwd`` or ``../../x`` as a
result file; every name is checked here before it is joined to the storage's
root, so reads and removals never leave the storage.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Iterator

from ..errors import StorageError

log = logging.getLogger("labnb")

_PART = re.compile(r"^(\.tmp-)?[A-Za-z0-9_][A-Za-z0-9_.\-]*$")
"""A plain file or folder name (``.tmp-`` names are a storage's own leftovers)."""


def checked_name(name: object) -> str:
    """``name`` if it is a relative path of plain parts (no ``..``, no root, no backslash)."""
    if not isinstance(name, str) or not name or len(name) > 512:
        raise StorageError(f"unsafe path in a labnb index: {str(name)[:100]!r}")
    parts = name.split("/")
    if any(not _PART.match(part) or part in (".", "..") for part in parts):
        raise StorageError(f"unsafe path in a labnb index: {name[:100]!r}")
    return name


def safe_names(names: Iterable[str]) -> Iterator[str]:
    """The names that are safe to remove; an unsafe one is skipped with a warning,
    so a damaged entry never stops (or misdirects) a removal."""
    for name in names:
        try:
            yield checked_name(name)
        except StorageError as error:
            log.warning("labnb skipped removing %s", error)
