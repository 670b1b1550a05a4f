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
from pathlib import Path
from typing import TYPE_CHECKING

from ..model.config_files import ConfigFile
from .index import Index, RunRow, TaskRow

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
    root: bool = False
    """Submitted by the user, not only a dependency of what was."""
    config: str | None = None
    """The digest of the config file the task was built from (``RunRecord.configs``)."""

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

    def configs(self) -> list[ConfigFile]:
        """The config files the run's tasks were built from (``labnb.sweep``, ``%%labtask
        --config``), each once: those of submitted tasks first."""
        ordered = sorted(self.tasks, key=lambda task: not task.root)
        digests = dict.fromkeys(task.config for task in ordered if task.config)
        found = (self._index.read_config(digest) for digest in digests)
        return [ConfigFile(*kept) for kept in found if kept is not None]

    @property
    def config(self) -> ConfigFile | None:
        """The config file the run's tasks were built from: None when they were built
        in code; the submitted tasks' first when there were several (see ``configs``)."""
        configs = self.configs()
        return configs[0] if configs else None

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


TASKS_SUFFIX = ".tasks.pkl"
"""A run's submitted tasks, cloudpickled, so a process that finds the run has them."""
OUTPUT_SUFFIX = ".log"
"""What the run process itself printed (labnb's warnings, a crash)."""


def run_file(index: Index, run_id: str, suffix: str) -> Path | None:
    folder = index.run_folder()
    return None if folder is None else folder / f"{run_id}{suffix}"


def forget_runs(index: Index, run_ids: list[str]) -> None:
    """Delete these (ended) runs' records and files."""
    index.forget_runs(run_ids)
    for run_id in run_ids:
        for suffix in (TASKS_SUFFIX, OUTPUT_SUFFIX):
            path = run_file(index, run_id, suffix)
            if path is not None:
                path.unlink(missing_ok=True)


def read_runs(index: Index, run_ids: list[str] | None = None) -> list[RunRecord]:
    now = time.time()
    return [_record(index, row, now) for row in index.runs(run_ids)]


def run_status(row: RunRow, now: float | None = None) -> str:
    """The run's status, ``lost`` for a running one whose heartbeat went stale."""
    now = time.time() if now is None else now
    if row.status == RUNNING and row.heartbeat < now - STALE_SECONDS:
        return LOST
    return row.status


def task_run(row: TaskRow) -> TaskRun:
    return TaskRun(
        row.task_id,
        row.type,
        row.label,
        row.status,
        _when(row.started),
        _when(row.finished),
        row.error,
        row.root,
        row.config,
    )


def _record(index: Index, row: RunRow, now: float) -> RunRecord:
    return RunRecord(
        id=row.run_id,
        status=run_status(row, now),
        started=_when(row.started) or datetime.now(timezone.utc),
        finished=_when(row.finished),
        pid=row.pid,
        host=row.host,
        tasks=tuple(task_run(task) for task in row.tasks),
        _index=index,
    )
