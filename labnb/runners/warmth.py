"""What lets a worker (and its run process) serve more than one run without running stale code.

A warm worker keeps the modules its tasks imported, which is the point (the
next run skips importing scikit-learn), and the danger: a module edited on
disk since must not run in its old form. ``ModuleStamps`` remembers the size
and modification time of the file of every module a process has imported;
when any of them differs, the process is too old for the next run and is
replaced by a fresh one.

The messages between a run process and its warm workers are here too: between
runs a worker is told the run is over (``REST``: it ends the processes its
tasks left, as a worker that exits would) and, when the next run starts, that
a new one begins (``NEW_RUN``, then the run's setup); it answers each with
``Ready``.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass

NEW_RUN = b"labnb:new-run"
"""A new run begins; the next message is its setup (``RunSetup``, pickled)."""
REST = b"labnb:rest"
"""The run is over: end what its tasks left running, and wait for the next."""


@dataclass
class Ready:
    """A worker's answer to ``NEW_RUN`` or ``REST``: False when it is stale (and exits)."""

    pid: int
    fresh: bool


Stamp = tuple[int, int]
"""A file's modification time (ns) and size."""


def _stamp(path: str) -> Stamp | None:
    try:
        status = os.stat(path)
    except OSError:
        return None
    return status.st_mtime_ns, status.st_size


class ModuleStamps:
    """The files of the modules this process has imported, as they were when first seen."""

    def __init__(self) -> None:
        self._stamps: dict[str, Stamp | None] = {}
        self.take()

    def take(self) -> None:
        """Remember the modules imported since the last call (cheap: only new ones are read)."""
        for module in list(sys.modules.values()):
            path = getattr(module, "__file__", None)
            if isinstance(path, str) and path not in self._stamps:
                self._stamps[path] = _stamp(path)

    def changed(self) -> list[str]:
        """Files of imported modules that were edited, replaced or removed since."""
        return [path for path, stamp in self._stamps.items() if _stamp(path) != stamp]
