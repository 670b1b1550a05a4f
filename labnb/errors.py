"""Exceptions that users catch: they carry what is needed to act on a failure.

Every labnb error derives from ``LabnbError`` (those that are also a kind of
``ValueError`` or ``TypeError`` derive from that too), so ``except
labnb.LabnbError`` catches anything labnb raises on purpose.
"""

from __future__ import annotations

from typing import Any


class LabnbError(Exception):
    """The base of every error labnb raises."""


class TaskFailed(LabnbError):
    """A task raised, its worker died, or a task it depends on failed.

    The original exception often cannot cross a process boundary (unpicklable
    payloads, classes missing in the parent), so its type name, message and
    traceback text travel as strings; when the exception object itself could be
    shipped it is also chained as ``__cause__``.
    """

    def __init__(
        self,
        task: Any,
        exc_type: str,
        message: str,
        traceback: str = "",
    ) -> None:
        self.task = task
        self.exc_type = exc_type
        self.message = message
        self.traceback = traceback
        super().__init__(task, exc_type, message, traceback)

    def __str__(self) -> str:
        text = f"{self.task!r} failed with {self.exc_type}: {self.message}"
        if self.traceback:
            text += f"\n\nTask traceback:\n{self.traceback.rstrip()}"
        return text


class StorageError(LabnbError):
    """Storage cannot be used: raised before any task runs."""


class CacheWarning(UserWarning):
    """A cached entry could not be used (missing, truncated or unreadable file).

    The task is treated as not cached and runs again; nothing else is affected.
    """
