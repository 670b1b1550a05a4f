"""Run records: when a run was, what it computed, what failed, how long each task took.

Every run records itself in its storage's catalog (``engine/claims.py`` writes
the rows), so any process reads the history of every run on a storage:
``lab.runs()``, ``labnb runs STORAGE``. A record whose run stopped renewing
its heartbeat without finishing reads as ``lost`` (its process was killed).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING

from .index import Index, RunRow

if TYPE_CHECKING:
    import pandas as pd

STALE_SECONDS = 10.0
"""A running run silent for this long is dead: ``lost``, and its leases are free."""
RUNNING, LOST = "running", "lost"


def _when(value: float | None) -> datetime | None:
    return None if value is None else datetime.fromtimestamp(value, tz=timezone.utc)


@dataclass(frozen=True)
class TaskRun:
    """One task of a run: ``waiting``, ``loaded``, ``done``, ``failed`` or ``cancelled``."""

    task_id: str
    type: str
    label: str
    status: str
    started: datetime | None
    finished: datetime | None
    error: str | None

    @property
    def duration_s(self) -> float | None:
        if self.started is None or self.finished is None:
            return None
        return (self.finished - self.started).total_seconds()


@dataclass(frozen=True)
class RunRecord:
    """A run as its storage recorded it, read from any process."""

    id: str
    status: str
    """``running``, ``done``, ``failed``, ``cancelled``, or ``lost`` (its process died)."""
    started: datetime
    finished: datetime | None
    pid: int
    host: str
    tasks: tuple[TaskRun, ...]
    _index: Index = field(repr=False, compare=False)

    def counts(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for task in self.tasks:
            counts[task.status] = counts.get(task.status, 0) + 1
        return counts

    @property
    def done(self) -> bool:
        return self.status != RUNNING

    def refresh(self) -> RunRecord:
        """The record as it is now."""
        (record,) = read_runs(self._index, [self.id]) or [self]
        return record

    def wait(self, timeout: float | None = None, poll: float = 0.5) -> RunRecord:
        """The record once the run has ended, or as it is after ``timeout`` seconds."""
        deadline = None if timeout is None else time.monotonic() + timeout
        record = self.refresh()
        while not record.done and (deadline is None or time.monotonic() < deadline):
            time.sleep(poll)
            record = record.refresh()
        return record

    def cancel(self) -> bool:
        """Ask the run to stop, whichever process runs it (it notices within ~2 s);
        False when it is not running."""
        return self._index.request_cancel(self.id)

    def frame(self) -> pd.DataFrame:
        """The run's tasks as a DataFrame: id, type, task, status, started, finished,
        duration_s, error."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "id": task.task_id,
                    "type": task.type,
                    "task": task.label,
                    "status": task.status,
                    "started": task.started,
                    "finished": task.finished,
                    "duration_s": task.duration_s,
                    "error": task.error,
                }
                for task in self.tasks
            ],
            columns=["id", "type", "task", "status", "started", "finished", "duration_s", "error"],
        )

    def __str__(self) -> str:
        counts = ", ".join(f"{n} {status}" for status, n in sorted(self.counts().items()))
        return f"run {self.id} {self.status}, started {self.started:%Y-%m-%d %H:%M:%S}: {counts}"


def read_runs(index: Index, run_ids: list[str] | None = None) -> list[RunRecord]:
    now = time.time()
    return [_record(index, row, now) for row in index.runs(run_ids)]


def _record(index: Index, row: RunRow, now: float) -> RunRecord:
    run_id, pid, host, started, heartbeat, finished, status, tasks = row
    if status == RUNNING and heartbeat < now - STALE_SECONDS:
        status = LOST
    return RunRecord(
        id=run_id,
        status=status,
        started=_when(started) or datetime.now(timezone.utc),
        finished=_when(finished),
        pid=pid,
        host=host,
        tasks=tuple(
            TaskRun(key, type_, label, task_status, _when(begun), _when(ended), error)
            for key, type_, label, task_status, begun, ended, error in tasks
        ),
        _index=index,
    )


