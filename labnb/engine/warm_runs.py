"""A run process that outlives its run, so the next run of the same Lab finds warm workers.

After a run, a run process whose workers are kept (``Lab(warm_seconds=...)``)
waits at a Unix socket of its own for the next run of the same Lab settings
from the same submitting process; ``knock`` is how that next ``launch`` finds
it. The socket lives in a per-user temporary folder (mode 0700), one folder
per submitting process (its pid and start time), one socket per Lab settings
(storage, runner, max_workers, gpus).

The rule (what "nothing stale can run" means here): a waiting run process
takes a run only when the submitting process's working directory,
``sys.path`` and environment are what they were, and no module it imported
changed on disk; otherwise it refuses and exits, and the run gets a fresh run
process. Each worker is asked the same about its own modules when the run
starts and replaced if it is stale (``runners.warmth``); a different context
replaces every worker. It stops waiting, and exits with its workers, after
``warm_seconds`` idle, when the submitting process ends, when its storage's
folder is removed, or when another waiting run process of the same submitter
takes its place (one warm pool per submitting process: the latest Lab's). It
accepts one run at a time: while a run goes its socket is gone, and another
run of that Lab starts a fresh run process.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import pickle
import socket
import tempfile
import time
from multiprocessing.connection import Connection
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psutil

from ..runners.warmth import ModuleStamps

if TYPE_CHECKING:
    from .run_process import RunOrder

CHECK_SECONDS = 0.5
"""How often a waiting run process looks whether it is still wanted."""
HELLO_SECONDS = 5.0
"""How long either side waits for the other's first words."""
TAKEN = "taken"


def caller_identity() -> tuple[int, float]:
    """This process, as a waiting run process tells it from a later one with its pid."""
    return os.getpid(), psutil.Process().create_time()


def address(order: RunOrder) -> Path:
    """Where a run process waits for the next run of ``order``'s Lab from its submitter."""
    pid, started = order.caller
    settings = repr((order.storage, order.runner, order.max_workers, order.gpus))
    key = hashlib.blake2b(settings.encode(), digest_size=8).hexdigest()
    return Path(
        tempfile.gettempdir(), f"labnb-{os.getuid()}", f"{pid}-{started:.3f}", f"{key}.sock"
    )


def _surroundings(order: RunOrder) -> tuple[Any, ...]:
    """What a run's workers inherit from the process that asked for it."""
    return order.cwd, order.path, order.environment


def knock(order: RunOrder) -> Connection | None:
    """A connection to a waiting run process that takes this run, or None (start a fresh one)."""
    client = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        client.connect(str(address(order)))
    except OSError:  # none waits (no socket), or it just went away
        client.close()
        return None
    conn = Connection(client.detach())
    try:
        conn.send_bytes(pickle.dumps(_surroundings(order), protocol=pickle.HIGHEST_PROTOCOL))
        if conn.poll(HELLO_SECONDS) and conn.recv() == TAKEN:
            return conn
    except (EOFError, OSError):
        pass
    conn.close()
    return None


class Door:
    """Where a run process waits for the next run of its Lab: opened before the
    caller hears that the last run ended, so a run asked for at once finds it."""

    def __init__(self, order: RunOrder, path: Path, listener: socket.socket) -> None:
        self._order = order
        self._path = path
        self._listener = listener
        self._inode = path.stat().st_ino

    @classmethod
    def open(cls, order: RunOrder) -> Door | None:
        """The door for ``order``'s Lab, or None where no socket can be made (a path
        too long, a full disk: no warm start then)."""
        path = address(order)
        listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.parent.parent.chmod(0o700)
            for other in path.parent.glob("*.sock"):  # one warm pool per submitter: ours now
                other.unlink(missing_ok=True)
            listener.bind(str(path))
            listener.listen()
            door = cls(order, path, listener)
        except OSError:
            listener.close()
            return None
        listener.settimeout(CHECK_SECONDS)
        return door

    def wait(self, stamps: ModuleStamps) -> tuple[Connection, RunOrder, bytes] | None:
        """Wait for the next run (see the module's rule), then close the door; its
        connection, order and pickled context, or None when this process should end."""
        order = self._order
        deadline = time.monotonic() + order.warm_seconds
        try:
            while time.monotonic() < deadline and _still_wanted(order, self._path, self._inode):
                try:
                    client, _ = self._listener.accept()
                except TimeoutError:
                    continue
                client.settimeout(None)
                conn = Connection(client.detach())
                try:
                    if not conn.poll(HELLO_SECONDS):
                        conn.close()
                        continue
                    fits = pickle.loads(conn.recv_bytes()) == _surroundings(order)
                    if not fits or stamps.changed():
                        conn.send("refused")
                        conn.close()
                        return None
                    conn.send(TAKEN)
                    new_order: RunOrder = pickle.loads(conn.recv_bytes())
                    return conn, new_order, conn.recv_bytes()
                except (EOFError, OSError):
                    conn.close()
            return None
        finally:
            self._listener.close()
            if _ours(self._path, self._inode):
                self._path.unlink()
            with contextlib.suppress(OSError):
                self._path.parent.rmdir()  # the last one of this submitter's


def _ours(path: Path, inode: int) -> bool:
    try:
        return path.stat().st_ino == inode
    except OSError:
        return False


def _still_wanted(order: RunOrder, path: Path, inode: int) -> bool:
    pid, started = order.caller
    try:
        caller = psutil.Process(pid)
        alive = caller.status() != psutil.STATUS_ZOMBIE and caller.create_time() == started
    except psutil.Error:
        alive = False
    return alive and os.path.isdir(order.storage) and _ours(path, inode)
