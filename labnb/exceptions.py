"""labtech's exception family, by labtech's names (``from labnb.exceptions import LabError``).

They are labnb's own exceptions (``labnb.errors``), so one ``except`` clause
catches an error whichever name it is written with: ``LabtechError`` is
``LabnbError``, and ``TaskFailed`` (what a failed run raises) is a
``LabError``.
"""

from __future__ import annotations

from .errors import (
    CacheError,
    LabError,
    LabnbError,
    MissingRun,
    NotATask,
    ParameterError,
    ResultNotAvailable,
    RunnerError,
    SerializationError,
    StorageError,
    TaskDefinitionError,
    TaskDiedError,
    TaskError,
    TaskFailed,
    TaskNotFound,
    WorkerDied,
)

LabtechError = LabnbError

__all__ = [
    "CacheError",
    "LabError",
    "LabnbError",
    "LabtechError",
    "MissingRun",
    "NotATask",
    "ParameterError",
    "ResultNotAvailable",
    "RunnerError",
    "SerializationError",
    "StorageError",
    "TaskDefinitionError",
    "TaskDiedError",
    "TaskError",
    "TaskFailed",
    "TaskNotFound",
    "WorkerDied",
]
