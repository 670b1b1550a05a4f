"""The types labtech users annotate with (``from labnb.types import Task``).

``Task`` is the protocol every ``@labnb.task`` instance satisfies; it is generic
in its result type, as labtech's is, so ``Task[np.ndarray]`` reads as "a task
whose ``run()`` returns an array" to a type checker. ``LabContext`` is what
``Lab(context=...)`` takes and ``ResultMeta`` what ``task.result_meta`` is.
"""

from __future__ import annotations

from typing import Any, Protocol, TypeVar

from .model.tasks import ResultMeta, is_task, is_task_type
from .runners.base import Runner as RunnerBackend
from .storage import Storage

ResultT = TypeVar("ResultT", covariant=True)
LabContext = dict[str, Any]
"""What ``Lab(context=...)`` takes: values shared by every task, not part of any task's id."""


class Task(Protocol[ResultT]):
    """What every ``@labnb.task`` instance offers, for annotations and type checkers."""

    @property
    def result(self) -> ResultT: ...

    @property
    def result_meta(self) -> ResultMeta: ...

    @property
    def context(self) -> LabContext: ...

    @property
    def cache_key(self) -> str: ...

    @property
    def code_version(self) -> str | None: ...

    @property
    def current_code_version(self) -> str | None: ...

    def run(self) -> ResultT: ...

    def set_context(self, context: LabContext) -> None: ...

    def filter_context(self, context: LabContext) -> LabContext: ...

    def post_init(self) -> None: ...

    def runner_options(self) -> dict[str, Any]: ...


__all__ = [
    "LabContext",
    "ResultMeta",
    "ResultT",
    "RunnerBackend",
    "Storage",
    "Task",
    "is_task",
    "is_task_type",
]
