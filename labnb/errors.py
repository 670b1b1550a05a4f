"""Exceptions that users catch: they carry what is needed to act on a failure.

Every labnb error derives from ``LabnbError`` (those that are also a kind of
``ValueError`` or ``TypeError`` derive from that too), so ``except
labnb.LabnbError`` catches anything labnb raises on purpose.

The classes also form labtech's documented exception family
(``labnb.exceptions`` gives them labtech's names): ``LabnbError`` is
``LabtechError``, a failed task is a ``LabError``, a worker that died a
``TaskDiedError`` (a ``RunnerError``), a badly defined task or parameter a
``TaskError`` and a storage problem a ``StorageError``. Code written for
labtech therefore catches what it expects, and code written for labnb keeps
catching ``TaskFailed`` and ``StorageError`` as before.
"""

from __future__ import annotations

from typing import Any

WORKER_DIED = "WorkerDied"
"""The ``exc_type`` of a failure whose worker process (or Ray worker) died."""


class LabnbError(Exception):
    """The base of every error labnb raises (labtech's ``LabtechError``)."""


class LabError(LabnbError):
    """Something went wrong running a lab: a task failed, or what was passed is not a task."""


class RunnerError(LabnbError):
    """A runner could not run a task where it was asked to."""


class TaskDiedError(RunnerError):
    """The process running a task died (killed, out of memory, crashed)."""


class TaskError(LabnbError):
    """A task type or task is defined or used wrongly."""


class SerializationError(LabnbError):
    """A value could not be written to, or read back from, its stored form."""


class CacheError(LabnbError):
    """A cached result could not be found, saved or loaded."""


class TaskNotFound(CacheError):
    """A task asked for is not in the cache."""


class TaskFailed(LabError):
    """A task raised, its worker died, or a task it depends on failed.

    The original exception often cannot cross a process boundary (unpicklable
    payloads, classes missing in the parent), so its type name, message and
    traceback text travel as strings; when the exception object itself could be
    shipped it is also chained as ``__cause__``.

    Runners report a dead worker as a failure whose ``exc_type`` is
    ``"WorkerDied"``; constructing a ``TaskFailed`` for one gives a
    ``WorkerDied`` (also a ``TaskDiedError``), so that ``except
    TaskDiedError`` works without every runner knowing about the family.
    """

    def __new__(cls, task: Any, exc_type: str, *args: Any, **kwargs: Any) -> TaskFailed:
        if cls is TaskFailed and exc_type == WORKER_DIED:
            cls = WorkerDied
        return super().__new__(cls)

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


class WorkerDied(TaskFailed, TaskDiedError):
    """A task failed because the process running it died."""


class NotATask(LabError, TypeError):
    """``run_tasks`` (or another Lab method) was given something that is not a task."""


class TaskDefinitionError(TaskError, TypeError):
    """A class cannot be a task type (a reserved field name, for instance)."""


class MissingRun(TaskDefinitionError, NotImplementedError):
    """A task type has no ``run()`` method (labtech raises ``NotImplementedError``)."""


class ParameterError(TaskError, TypeError):
    """A task parameter's value is not one of the allowed types."""


class ConfigError(TaskError, ValueError):
    """A config file (``labnb.sweep``, ``%%labtask --config``) that cannot make tasks.

    One error for the first problem found, naming the file, the key (``model.C``)
    and its line; no task is returned, so nothing runs.
    """

    def __init__(self, file: str, key: str, line: int | None, problem: str) -> None:
        self.file = file
        self.key = key
        """The key path, ``model.C`` (``""``: the file as a whole)."""
        self.line = line
        """1-based; None where the format tells no line (see ``config_files``)."""
        self.problem = problem
        where = file if line is None else f"{file}, line {line}"
        super().__init__(f"{where}: {key}: {problem}" if key else f"{where}: {problem}")

    def __reduce__(self) -> Any:
        return type(self), (self.file, self.key, self.line, self.problem)


class ResultNotAvailable(TaskError, AttributeError):
    """``task.result`` was read before a Lab ran or loaded the task."""


class RunLost(LabError):
    """The run process of the run being waited for died without finishing it."""


class StorageError(LabnbError):
    """Storage cannot be used: raised before any task runs."""


class CacheWarning(UserWarning):
    """A cached entry could not be used (missing, truncated or unreadable file).

    The task is treated as not cached and runs again; nothing else is affected.
    """
