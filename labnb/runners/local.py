"""Runners inside the Lab's own process: ``'serial'`` (one at a time, in the caller's
thread, easiest to debug) and ``'thread'`` (a thread pool, for tasks that release the GIL)."""

from __future__ import annotations

import os
import queue
import time
from concurrent.futures import ThreadPoolExecutor

from ..engine.job import Failure, Job, Outcome, RunSetup, execute
from .base import Event, EventChannel, Runner, Started


class SerialRunner(Runner):
    capacity = 1
    packs = True

    def __init__(self) -> None:
        self._pending: list[Job] = []
        self._setup = RunSetup()

    def open(self, setup: RunSetup) -> None:
        self._setup = setup

    @property
    def busy(self) -> int:
        return len(self._pending)

    def submit(self, job: Job) -> None:
        self._pending.append(job)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        while self._pending:
            job = self._pending.pop(0)
            events.append(Started(job.task_id, os.getpid(), time.time()))
            events.append(execute(job, self._setup, EventChannel(job.task_id, events.append)))
        return events

    def close(self, cancel: bool = False) -> None:
        self._pending.clear()


class ThreadRunner(Runner):
    def __init__(self, max_workers: int) -> None:
        self.capacity = max_workers
        self.packs = True
        self._events: queue.SimpleQueue[Event] = queue.SimpleQueue()
        self._executor: ThreadPoolExecutor | None = None
        self._setup = RunSetup()
        self._busy = 0

    def open(self, setup: RunSetup) -> None:
        self._setup = setup
        # A new queue per run: threads of a cancelled run (threads cannot be
        # killed) keep posting to their own run's queue, never to this one.
        self._events = queue.SimpleQueue()
        self._executor = ThreadPoolExecutor(self.capacity, thread_name_prefix="labnb-worker")

    @property
    def busy(self) -> int:
        return self._busy

    def submit(self, job: Job) -> None:
        assert self._executor is not None, "open() the runner first"
        self._busy += 1
        self._executor.submit(self._work, job, self._setup, self._events)

    @staticmethod
    def _work(job: Job, setup: RunSetup, events: queue.SimpleQueue[Event]) -> None:
        events.put(Started(job.task_id, os.getpid(), time.time()))
        try:
            outcome = execute(job, setup, EventChannel(job.task_id, events.put))
        except BaseException as exc:  # a bug in labnb itself: still end the job
            outcome = Outcome(
                job.task_id, time.time(), time.time(), failure=Failure.from_exception(exc)
            )
        events.put(outcome)

    def poll(self, timeout: float) -> list[Event]:
        events: list[Event] = []
        try:
            events.append(self._events.get(timeout=timeout))
            while True:
                events.append(self._events.get_nowait())
        except queue.Empty:
            pass
        self._busy -= sum(isinstance(event, Outcome) for event in events)
        return events

    def close(self, cancel: bool = False) -> None:
        if self._executor is not None:
            # Threads cannot be killed: a cancel stops queued jobs and leaves running ones be.
            self._executor.shutdown(wait=not cancel, cancel_futures=True)
            self._executor = None
        self._busy = 0
