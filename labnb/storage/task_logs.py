"""A task's log, kept in a file as it is printed once it grows past a few pages.

A task that prints 100 MB would otherwise be held whole by the process that
runs it, written into the index as one 100 MB row when it ends, and copied
again into every follower. Instead, past ``SPILL_CHARS`` its log goes to a
file under the storage's ``logs/`` as it arrives (an append, no index write),
and the index's ``logs`` row names the file when the task ends. Small logs,
the most common, stay rows of the index: no file per task.
"""

from __future__ import annotations

import contextlib
import secrets
from pathlib import Path
from typing import IO, NamedTuple

SPILL_CHARS = 1 << 16
"""Characters of a log held in memory before it goes to a file."""
CUT_NOTE = "[labnb] the storage's disk was full: only the end of this log was kept\n"


class LoggedFile(NamedTuple):
    """A task's log that is a file under the storage's ``logs/``, by name."""

    name: str


Logs = str | LoggedFile
"""What an index keeps of a task's last run: its text, or the file holding it."""


def text_of(logs: Logs) -> str:
    """The text of logs, for an index that keeps no log files (it is never given one:
    its storage has no ``logs/`` folder)."""
    if isinstance(logs, LoggedFile):
        raise TypeError(f"this index keeps logs as text, not as files ({logs.name})")
    return logs


class TaskLog:
    """One task's log as it is written: in memory while small, then in a file.

    When the disk fills up (the file cannot be written), the file is given up
    and removed, and only the log's last ``SPILL_CHARS`` are kept, after a
    note: a full disk costs the middle of a long log, never the run.
    """

    def __init__(self, task_id: str, folder: Path | None) -> None:
        """``folder``: the storage's ``logs/`` (None: it has none; all stays in memory)."""
        self._task_id = task_id
        self._folder = folder
        self._held: list[str] = []
        self._size = 0
        self._file: IO[str] | None = None
        self._cut = False
        """Whether the disk was full: only the end of the log is held."""
        self.name: str | None = None
        """The file's name under ``logs/``, once it has one."""

    def write(self, text: str) -> None:
        if self._file is not None:
            try:
                self._file.write(text)
                return
            except OSError:
                self._give_up_file()
        self._held.append(text)
        self._size += len(text)
        if self._size <= SPILL_CHARS:
            return
        if self._cut or self._folder is None:
            if self._cut:
                self._keep_end()
            return
        try:
            self._spill(self._folder)
        except OSError:
            self._give_up_file()
            self._keep_end()

    def close(self) -> Logs:
        """The log: its text while it was small (or with no folder), else its file."""
        if self._file is None or self.name is None:
            note = CUT_NOTE if self._cut else ""
            return note + "".join(self._held)
        try:
            self._file.close()
        except OSError:  # the last of it did not fit
            self._give_up_file()
            return CUT_NOTE + "".join(self._held)
        return LoggedFile(self.name)

    def _spill(self, folder: Path) -> None:
        name = f"{self._task_id[:2]}/{self._task_id}-{secrets.token_hex(4)}.log"
        path = folder / name
        self.name = name
        path.parent.mkdir(parents=True, exist_ok=True)
        # A lone surrogate (a non-UTF-8 file name printed) is kept as Python prints it.
        self._file = open(path, "w", encoding="utf-8", errors="backslashreplace")  # noqa: SIM115
        self._file.write("".join(self._held))
        self._held = []

    def _give_up_file(self) -> None:
        """The disk is full: remove the partial file (it only fills the disk more)."""
        self._cut = True
        if self._file is not None:
            with contextlib.suppress(OSError):
                self._file.close()
        if self.name is not None and self._folder is not None:
            with contextlib.suppress(OSError):
                (self._folder / self.name).unlink()
        self._file, self.name = None, None

    def _keep_end(self) -> None:
        text = "".join(self._held)[-SPILL_CHARS:]
        self._held, self._size = [text], len(text)


def read_log_file(folder: Path, name: str) -> str:
    """A log a ``TaskLog`` wrote (raises ``OSError`` when it is gone)."""
    return (folder / name).read_text(encoding="utf-8", errors="backslashreplace")
