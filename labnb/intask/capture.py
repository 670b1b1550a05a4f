"""Route what a running task prints, logs and reports to that task's channel.

``sys.stdout``, ``sys.stderr`` and a root logging handler are routed to the
channel of the task running in the current thread (thread runner) or, in a
worker process that runs one task at a time, to that task whatever thread
writes (so output from a task's own helper threads is kept too). Writes from
anywhere else go to the original streams untouched. The routers are installed
only while some task runs and removed afterwards. ``labnb.progress`` finds
the running task's channel here too.
"""

from __future__ import annotations

import io
import logging
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple, Protocol

LOG_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
LOG_TIME_FORMAT = "%H:%M:%S"
"""A logged line says when and how loud: ``14:03:07 WARNING labnb: ...``, so
logging does not read like print (the widgets set the time and level apart)."""


class Channel(Protocol):
    """Where a running task's output and progress go (one per runner kind)."""

    def output(self, text: str) -> None: ...

    def progress(self, n: int, total: int | None, desc: str | None) -> None: ...

    def metric(self, name: str, value: float, step: int | None, when: float) -> None: ...


class Scope(NamedTuple):
    """Where the running task's output, progress and logged records go."""

    channel: Channel
    recorder: Any = None


class _Local(threading.local):
    # A class default, so that reading it in a thread that never set it is an
    # attribute lookup, not a caught AttributeError: every print of a task
    # reads it, and ``getattr(local, name, None)`` cost 3 µs of a 5 µs print.
    scope: Scope | None = None


_local = _Local()
_process_scope: Scope | None = None
_lock = threading.Lock()
_installed = 0


def current_scope() -> Scope | None:
    """The scope of the task running in this thread (or this worker process), if any."""
    return _local.scope or _process_scope


def current_channel() -> Channel | None:
    scope = current_scope()
    return None if scope is None else scope.channel


class ProcessStream(io.TextIOWrapper):
    """A stream that already captures this whole process (a worker's fd-level
    capture, ``runners/worker.py``): the routers leave it in place, so a print
    stays a C-level buffered write instead of a Python call per write."""


class _StreamRouter:
    """Stands in for sys.stdout/sys.stderr while tasks run."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def write(self, text: str) -> int:
        scope = _local.scope or _process_scope  # current_scope(), inlined: a print's hot path
        if scope is None:
            return self.original.write(text)
        if not isinstance(text, str):
            # What plain Python raises, in the task that wrote: a bytes or int
            # sent on to the channel would break the Lab's joining of the log.
            raise TypeError(f"write() argument must be str, not {type(text).__name__}")
        if text:
            scope.channel.output(text)
        return len(text)

    def flush(self) -> None:
        if current_channel() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _LogRouter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT, LOG_TIME_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        channel = current_channel()
        if channel is not None:
            try:
                channel.output(self.format(record) + "\n")
            except Exception:
                self.handleError(record)


_log_router = _LogRouter()


def _install() -> None:
    global _installed
    with _lock:
        # Checked on every task, not only the first: something may have replaced
        # sys.stdout while other tasks were running (a test runner's capture, a
        # notebook's redirect_stdout), and this task's prints must still be kept.
        for name in ("stdout", "stderr"):
            stream = getattr(sys, name)
            if not isinstance(stream, (_StreamRouter, ProcessStream)):
                setattr(sys, name, _StreamRouter(stream))
        if _installed == 0:
            logging.getLogger().addHandler(_log_router)
        _installed += 1


def _uninstall() -> None:
    global _installed
    with _lock:
        _installed -= 1
        if _installed == 0:
            for name in ("stdout", "stderr"):
                stream = getattr(sys, name)
                if isinstance(stream, _StreamRouter):
                    setattr(sys, name, stream.original)
            logging.getLogger().removeHandler(_log_router)


@contextmanager
def capture_output(
    channel: Channel, recorder: Any = None, *, whole_process: bool = False
) -> Iterator[None]:
    """Send everything printed, logged or reported while the block runs to ``channel``
    (and ``labnb.log_*`` calls to ``recorder``)."""
    global _process_scope
    _install()
    scope = Scope(channel, recorder)
    previous = _process_scope if whole_process else getattr(_local, "scope", None)
    if whole_process:
        _process_scope = scope
    else:
        _local.scope = scope
    try:
        yield
    finally:
        if whole_process:
            _process_scope = previous
        else:
            _local.scope = previous
        _uninstall()
