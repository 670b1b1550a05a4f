"""The runner interface: where jobs run, never which job runs next."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..engine.job import Job, Outcome, RunSetup


@dataclass(frozen=True)
class Output:
    """Text a running task printed or logged, as it was written."""

    task_id: str
    text: str


@dataclass(frozen=True)
class Started:
    task_id: str
    pid: int
    time: float


@dataclass(frozen=True)
class Progress:
    """A running task's ``labnb.progress`` loop has reached ``n`` of ``total``."""

    task_id: str
    n: int
    total: int | None
    desc: str | None


@dataclass(frozen=True)
class Metric:
    """A running task logged a metric (``labnb.log_metric``)."""

    task_id: str
    name: str
    value: float
    step: int | None
    time: float


Event = Output | Started | Progress | Metric | Outcome


class EventChannel:
    """A task's channel that turns its output and progress into events at once."""

    def __init__(self, task_id: str, put: Callable[[Event], object]) -> None:
        self.task_id = task_id
        self._put = put

    def output(self, text: str) -> None:
        self._put(Output(self.task_id, text))

    def progress(self, n: int, total: int | None, desc: str | None) -> None:
        self._put(Progress(self.task_id, n, total, desc))

    def metric(self, name: str, value: float, step: int | None, when: float) -> None:
        self._put(Metric(self.task_id, name, value, step, when))


class Runner(ABC):
    """Runs jobs and reports their events.

    The Lab calls ``open`` once per run, ``submit`` while ``busy < capacity``,
    ``poll`` for events (each job ends with exactly one ``Outcome``) and
    ``close`` at the end; ``close(cancel=True)`` must stop running jobs.
    """

    capacity: int = 1
    packs: bool = False
    """Whether its jobs run on this machine, so the scheduler packs them onto its
    cores and GPUs (``engine.packing``) and jobs carry their ``Grant``."""

    @abstractmethod
    def open(self, setup: RunSetup) -> None: ...

    @abstractmethod
    def submit(self, job: Job) -> None: ...

    @abstractmethod
    def poll(self, timeout: float) -> list[Event]: ...

    @abstractmethod
    def close(self, cancel: bool = False) -> None: ...

    def detached_options(self) -> dict[str, Any] | None:
        """What ``make_runner`` needs to build this runner again in a run process
        (beyond its name and ``max_workers``: a Ray runner's cluster address), or
        None when it cannot be (the run then stays in this process)."""
        return {}

    def stop(self, task_id: str) -> bool:
        """Stop one running job (its ``Outcome`` is then a failure); False when this
        runner cannot stop a single job (threads cannot be killed)."""
        return False

    @property
    @abstractmethod
    def busy(self) -> int:
        """How many submitted jobs have not yet reported their Outcome."""
