"""Running one task, wherever it runs: what goes in (a Job) and what comes out (an Outcome).

Every runner calls ``execute``; only how jobs and outcomes travel differs.
The worker writes the result payload itself, so large results are written in
parallel; the parent only commits the index entry.
"""

from __future__ import annotations

import contextlib
import numbers
import pickle
import time
from dataclasses import dataclass, field
from typing import Any

from ..errors import TaskFailed
from ..intask.capture import Channel, capture_output
from ..intask.recording import Recorder
from ..intask.tracking import TrackingSetup, tracked_run
from ..model.formats import Payload, PickleFormat
from ..model.tasks import attach_context, attach_result, dependencies_of, meta_of, task_id
from ..storage.blobs import PayloadWriter
from ..storage.entry import StoredFile
from .packing import Grant
from .tracebacks import Sources, register_sources, user_traceback

SHIPPING_FORMAT = PickleFormat()


@dataclass
class RunSetup:
    """What every task of one run shares; sent to each worker once."""

    context: Any = None
    """The Lab's context, or a ``Payload`` of its pickle (a run process passes the
    bytes it was sent on to its workers, never decoding and encoding it again)."""
    writer: PayloadWriter | None = None
    tracking: TrackingSetup | None = None
    sources: Sources = field(default_factory=Sources)
    """Notebook cells' sources, so tracebacks show the failing lines (``tracebacks``)."""

    def task_context(self) -> Any:
        """The context itself, decoded on first use in this process."""
        return self.context.value if isinstance(self.context, Payload) else self.context


@dataclass
class Job:
    task_id: str
    task: Any
    dependencies: dict[str, Payload] = field(default_factory=dict)
    cache: bool = True
    dependency_runs: dict[str, str] = field(default_factory=dict)
    """mlflow run ids of dependencies that were mlflow runs, to link the pipeline."""
    grant: Grant | None = None
    """The GPUs and cores it was given, when its runner packs (``engine.packing``)."""


@dataclass
class Failure:
    exc_type: str
    message: str
    traceback: str = ""
    exception: bytes | None = None

    @classmethod
    def from_exception(cls, exc: BaseException, note: str = "") -> Failure:
        try:
            data = pickle.dumps(exc)
            pickle.loads(data)
            pickled: bytes | None = data
        except Exception:
            pickled = None
        message = f"{note}: {exc}" if note else str(exc)
        return cls(type(exc).__qualname__, message, user_traceback(exc), pickled)

    def to_error(self, task: Any) -> TaskFailed:
        error = TaskFailed(task, self.exc_type, self.message, self.traceback)
        if self.exception is not None:
            with contextlib.suppress(Exception):
                error.__cause__ = pickle.loads(self.exception)
        return error


@dataclass
class Outcome:
    """The end of one task's execution: a payload, or a failure."""

    task_id: str
    started: float
    finished: float
    payload: Payload | None = None
    stored: StoredFile | None = None
    failure: Failure | None = None
    mlflow_run_id: str | None = None
    record: dict[str, Any] | None = None
    """What the task logged (``labnb.log_*``), kept with its result."""
    artifacts: str | None = None
    """The folder holding its artifacts and models, if it logged any."""
    number: float | None = None
    """The result, when it is a number (the cache browser shows it as a column)."""


def as_number(value: Any) -> float | None:
    """A result that is a real number (int, float, a NumPy scalar), as a float."""
    if isinstance(value, numbers.Real) and not isinstance(value, bool):
        return float(value)
    return None


def execute(
    job: Job,
    setup: RunSetup,
    channel: Channel,
    *,
    whole_process: bool = False,
    ship: bool = False,
) -> Outcome:
    """Run ``job.task`` with its dependencies' results attached and its output captured.

    ``ship`` encodes the result even when it is not cached, because it is about
    to cross a process boundary: an unpicklable result then fails this task
    with a clear message instead of breaking the worker.
    """
    task = job.task
    register_sources(setup.sources)
    for dependency in dependencies_of(task):
        attach_result(dependency, job.dependencies[task_id(dependency)])
    attach_context(task, setup.task_context())
    writer = setup.writer
    artifacts = None if writer is None else (lambda: writer.artifacts_folder(job.task_id))
    recorder = Recorder(channel, artifacts, meta_of(task).mlflow_run)
    run_id = None
    started = time.time()
    try:
        with (
            capture_output(channel, recorder, whole_process=whole_process),
            tracked_run(task, setup.tracking, job.dependency_runs) as run_id,
        ):
            value = task.run()
    except (Exception, SystemExit) as exc:
        return Outcome(job.task_id, started, time.time(), failure=Failure.from_exception(exc))
    finished = time.time()
    payload = Payload(meta_of(task).format or SHIPPING_FORMAT, value=value)
    stored = None
    try:
        if job.cache and setup.writer is not None:
            # A local writer streams the result to its file, and the payload
            # sent on is a reference to the file, not its bytes.
            stored, payload = setup.writer.write_result(job.task_id, payload)
        elif ship:
            payload.data  # noqa: B018 - encode now, inside this try
    except Exception as exc:
        failure = Failure.from_exception(exc, note="its result could not be saved")
        return Outcome(job.task_id, started, finished, failure=failure)
    return Outcome(
        job.task_id,
        started,
        finished,
        payload,
        stored,
        mlflow_run_id=run_id,
        record=recorder.record(),
        artifacts=recorder.folder_name,
        number=as_number(value),
    )
