"""``Run``: a run under way in the background, started by ``lab.submit``.

The run loop lives in a daemon thread of the kernel, so the kernel stays idle:
other cells run and widget clicks are handled at once. Results land in the
cache exactly as with ``run_tasks`` (it is the same loop).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from typing import Any

from ..errors import TaskFailed
from ..model.formats import Payload
from ..model.tasks import attach_result, task_id
from .planning import Plan
from .running import Execution
from .state import RunState

log = logging.getLogger("labnb")


def attach_results(plan: Plan, payloads: dict[str, Payload]) -> None:
    """Give every task object of the plan its ``.result`` (decoded on first access)."""
    for key, instances in plan.instances.items():
        payload = payloads.get(key)
        if payload is not None:
            for instance in instances:
                attach_result(instance, payload)


class Run:
    """A background run: ``done``, ``wait()``, ``results``, ``failures``, ``cancel()``.

    Displayed as the last expression of a notebook cell, it shows the live widget.
    """

    def __init__(self, tasks: list[Any], execution: Execution) -> None:
        self._tasks = tasks
        self._execution = execution
        self._finished = threading.Event()
        self._error: BaseException | None = None
        self._callbacks: list[Callable[[Run], object]] | None = []
        self._callbacks_lock = threading.Lock()
        self._thread = threading.Thread(target=self._work, name="labnb-run", daemon=True)
        self._thread.start()

    def _work(self) -> None:
        try:
            self._execution.run()
        except BaseException as error:  # reported by wait(); the thread must not die silently
            self._error = error
        finally:
            attach_results(self._execution.plan, self._execution.payloads)
            with self._callbacks_lock:
                callbacks, self._callbacks = self._callbacks or [], None
            for callback in callbacks:
                self._call(callback)
            self._finished.set()  # after the callbacks: wait() returns once they ran

    def add_done_callback(self, callback: Callable[[Run], object]) -> None:
        """Call ``callback(run)`` when the run ends (at once if it has), from the run's thread."""
        with self._callbacks_lock:
            if self._callbacks is not None:
                self._callbacks.append(callback)
                return
        self._call(callback)

    def _call(self, callback: Callable[[Run], object]) -> None:
        try:
            callback(self)
        except Exception:
            log.exception("labnb: a Run done-callback failed")

    @property
    def state(self) -> RunState:
        return self._execution.state

    @property
    def done(self) -> bool:
        return self._finished.is_set()

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the run ends (True) or ``timeout`` seconds pass (False)."""
        finished = self._finished.wait(timeout)
        if finished and self._error is not None:
            raise self._error
        return finished

    @property
    def results(self) -> dict[Any, Any]:
        """``{task: result}`` for the submitted tasks that have finished so far."""
        payloads = self._execution.payloads
        found = {task: payloads.get(task_id(task)) for task in self._tasks}
        return {task: payload.value for task, payload in found.items() if payload is not None}

    @property
    def failures(self) -> dict[Any, TaskFailed]:
        return {error.task: error for error in dict(self._execution.failures).values()}

    def cancel(self) -> None:
        """Start nothing more and stop running tasks; finished results stay cached."""
        self._execution.cancel()

    def __repr__(self) -> str:
        counts = self.state.counts()
        finished = counts["done"] + counts["loaded"]
        return (
            f"<labnb.Run {self.state.outcome}: {finished}/{len(self.state.records)} finished, "
            f"{counts['running']} running, {counts['failed']} failed>"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from ..display.kernel import in_kernel

        if not in_kernel():
            return {"text/plain": repr(self)}
        from ..display.widgets import RunView

        return RunView(
            self.state, cancel=self.cancel, storage=self._execution.storage
        )._repr_mimebundle_(**kwargs)
