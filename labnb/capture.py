"""Capture what a running task prints and logs, in order, without mixing tasks.

``sys.stdout``, ``sys.stderr`` and a root logging handler are routed to the
capture of the task running in the current thread (thread runner) or, in a
worker process that runs one task at a time, to that task whatever thread
writes (so output from a task's own helper threads is kept too). Writes from
anywhere else go to the original streams untouched. The routers are installed
only while some task runs and removed afterwards.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

Sink = Callable[[str], None]

LOG_FORMAT = "%(levelname)s:%(name)s:%(message)s"

_local = threading.local()
_process_sink: Sink | None = None
_lock = threading.Lock()
_installed = 0


def _active_sink() -> Sink | None:
    return getattr(_local, "sink", None) or _process_sink


class _StreamRouter:
    """Stands in for sys.stdout/sys.stderr while tasks run."""

    def __init__(self, original: Any) -> None:
        self.original = original

    def write(self, text: str) -> int:
        sink = _active_sink()
        if sink is None:
            return self.original.write(text)
        if text:
            sink(text)
        return len(text)

    def flush(self) -> None:
        if _active_sink() is None:
            self.original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self.original, name)


class _LogRouter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.setFormatter(logging.Formatter(LOG_FORMAT))

    def emit(self, record: logging.LogRecord) -> None:
        sink = _active_sink()
        if sink is not None:
            try:
                sink(self.format(record) + "\n")
            except Exception:
                self.handleError(record)


_log_router = _LogRouter()


def _install() -> None:
    global _installed
    with _lock:
        if _installed == 0:
            sys.stdout = _StreamRouter(sys.stdout)
            sys.stderr = _StreamRouter(sys.stderr)
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
def capture_output(sink: Sink, *, whole_process: bool = False) -> Iterator[None]:
    """Send everything printed or logged while the block runs to ``sink``."""
    global _process_sink
    _install()
    if whole_process:
        _process_sink = sink
    else:
        _local.sink = sink
    try:
        yield
    finally:
        if whole_process:
            _process_sink = None
        else:
            _local.sink = None
        _uninstall()
