"""The search loop: a run whose tasks come from an Optuna study as workers free up.

``SearchLoop`` is a ``RunLoop`` (the same runners, leases, commits and run
record) with a scheduler that grows (``GrowingScheduler``). At the start of
each pass of the loop it first hands queued trials to free workers, then
tells the study the trials that ended and asks new ones, so Optuna's work
overlaps the trials' instead of keeping a worker waiting:

- a trial is a task ``Type(**fixed, **trial.params)``, planned like any
  other: a cached one is told from the cache without computing anything
  (``labnb_cached``), a repeat of a task this run already has shares it;
- at most ``workers + LOOKAHEAD`` trials are asked and not yet told, so one
  is queued for the next free worker;
- with a seed, trials are told in the order they were asked and trial ``k``
  is asked right after trial ``k - window`` is told: what the sampler has
  seen when it suggests trial ``k`` (and its seed, from the seed and ``k``)
  does not depend on how long trials took, so the same seeded search
  suggests the same parameters again and a rerun over the cache computes
  nothing. Without a seed, trials are told as they end and asked as soon as
  a slot frees (a slow trial never holds the others up);
- a trial whose task fails is told failed (``labnb_error``); a metric the
  task logs with a step is reported to the study, and when the pruner says
  so the task's worker is stopped and the trial told pruned;
- when the loop ends before a trial did (a cancel, an interrupt), the trial
  is interrupted (``study.interrupt``): told failed, not counted, and asked
  again by the next search.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..engine.job import Failure, Outcome
from ..engine.packing import Pool
from ..engine.planning import make_plan
from ..engine.run_loop import RunLoop
from ..engine.scheduler import Node, Scheduler
from ..engine.state import CANCELLED, DONE, FAILED, LOADED, WAITING, TaskRecord
from ..errors import TaskFailed
from ..model.tasks import needs_of, task_id
from ..runners.base import Metric
from .spec import SearchSpec, import_optuna
from .study import CACHED, ERROR, RUN, TASK_ID, counted, interrupt, open_study

if TYPE_CHECKING:
    import optuna

log = logging.getLogger("labnb")

LOOKAHEAD = 1
"""Trials asked beyond one per worker: the next free worker starts at once."""
ENDED = (DONE, LOADED, FAILED, CANCELLED)


DEPENDENCY_FAILED = "DependencyFailed"


def _dependency_failed(tasks: dict[str, Any], key: str, failed: str) -> TaskFailed:
    return TaskFailed(
        tasks[key], DEPENDENCY_FAILED, f"it depends on {tasks[failed]!r}, which failed"
    )


class GrowingScheduler(Scheduler):
    """A ``Scheduler`` that takes new nodes while it runs (``add``); every node
    fails alone (a trial's failure is the study's to know). It is over when
    nothing runs and ``more()`` (the loop has trials to ask or tell) is False.
    """

    def __init__(self, nodes: Iterable[Node], continue_on_failure: bool = False, pool: Any = None):
        super().__init__(nodes, True, pool)
        self.more: Callable[[], bool] = lambda: False

    def add(self, node: Node) -> None:
        """A new node; its dependencies are nodes already here (or loaded, left out)."""
        dependencies = tuple(key for key in node.dependencies if key in self._nodes)
        node = Node(node.key, dependencies, node.group, node.limit, node.needs)
        self._nodes[node.key] = node
        self._dependents[node.key] = []
        waiting = 0
        for dependency in set(dependencies):
            if dependency in self.failed or dependency in self.blocked:
                self.blocked[node.key] = dependency
            if dependency not in self.done:
                waiting += 1
                self._dependents[dependency].append(node.key)
        self._waiting[node.key] = waiting
        if waiting == 0 and node.key not in self.blocked:
            self._make_ready(node.key)

    @property
    def over(self) -> bool:
        return super().over and (self.halted or not self.more())


@dataclass
class Asked:
    """A trial asked and not yet told."""

    trial: optuna.Trial
    key: str
    reported: set[int] = field(default_factory=set)
    """Steps already reported to the study."""


class SearchLoop(RunLoop):
    scheduler_type = GrowingScheduler
    scheduler: GrowingScheduler

    def __init__(self, *args: Any, search: SearchSpec, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.search = search
        self.roots: set[str] = set(self.roots)
        machine = kwargs.get("machine")
        if machine is not None and self.runner.packs and needs_of(search.sample).gpus:
            # RunLoop leaves GPUs out of a pool no planned task needs: trials come later.
            pool = Pool.of(machine, self.runner.capacity)
            self.scheduler = GrowingScheduler(self.plan.nodes, True, pool)
        self.scheduler.more = self._more
        self.window = max(1, self.runner.capacity) + LOOKAHEAD
        self.pending: list[Asked] = []
        self._pruned: dict[str, int] = {}
        self._study: optuna.Study | None = None
        self._asks_left: int | None = None
        self._first: dict[str, int] = {}
        """Task id -> the first trial of this run that asked for it (later ones cost nothing)."""
        self._stopped: list[Asked] = []
        self._numbers = 0
        """Trials the study has (waiting ones too): the next new trial's number."""

    # --- the loop's hooks ----------------------------------------------------

    def run(self, recorded: Callable[[], object] | None = None) -> None:
        """Run the search to its end (recorded even when every trial is cached)."""
        try:
            super().run(recorded or (lambda: None))
        finally:
            if self.pending or self._stopped:
                self._end()

    def _stop(self, why: str) -> None:
        super()._stop(why)
        self._end()  # before the run's record says it ended

    def _submit_ready(self) -> None:
        super()._submit_ready()  # queued trials first: a free worker never waits for Optuna
        if not self.scheduler.halted and not self._cancel_requested:
            self._tell_and_ask()
            super()._submit_ready()

    def _handle(self, events: list[Any]) -> None:
        for event in events:
            if isinstance(event, Outcome) and event.failure and event.task_id in self._pruned:
                step = self._pruned[event.task_id]
                event.failure = Failure("TrialPruned", f"the pruner stopped it at step {step}")
        super()._handle(events)
        if self.search.metric_name is not None and self.search.pruner is not None:
            for event in events:
                if (
                    isinstance(event, Metric)
                    and event.name == self.search.metric_name
                    and event.step is not None
                ):
                    self._report(event)

    # --- asking and telling --------------------------------------------------

    @property
    def study(self) -> optuna.Study:
        if self._study is None:
            self._study = open_study(self.search, self.storage.path, checked=True)  # type: ignore[attr-defined]
            self._asks_left = self.search.n_trials - counted(self._study)
            self._numbers = len(self._study.get_trials(deepcopy=False))
        return self._study

    def _more(self) -> bool:
        self.study  # noqa: B018 - opened (and counted) on first use
        return bool(self.pending) or bool(self._asks_left)

    def _tell_and_ask(self) -> None:
        study = self.study
        ordered = self.search.seed is not None
        while True:
            asked = 0
            while len(self.pending) < self.window and self._asks_left:
                self._ask(study)
                asked += 1
            ended = [entry for entry in self.pending if self._ended(entry.key)]
            if ordered:  # the oldest only, then ask again: trial k follows tell k - window
                ended = ended[:1] if ended and ended[0] is self.pending[0] else []
            for entry in ended:
                self.pending.remove(entry)
                self._tell(entry)
            if not asked and not ended:
                return

    def _ended(self, key: str) -> bool:
        record = self.state.records[key]
        return record.status in ENDED or record.error is not None

    def _ask(self, study: optuna.Study) -> None:
        assert self._asks_left is not None
        study.sampler = self.search.sampler_for(self._numbers)
        trial = study.ask(self.search.space)
        self._asks_left -= 1
        self._numbers = max(self._numbers, trial.number + 1)
        try:
            task = self.search.task(trial.params)
            key = task_id(task)
        except Exception as error:  # e.g. its __post_init__ refuses these parameters
            trial.set_user_attr(ERROR, f"{type(error).__name__}: {error}"[:1000])
            study.tell(trial, state=import_optuna().trial.TrialState.FAIL)
            return
        trial.set_user_attr(TASK_ID, key)
        trial.set_user_attr(RUN, self.claims.run_id)
        self._first.setdefault(key, trial.number)
        if key not in self.state.records:
            self._add(task)
        self.pending.append(Asked(trial, key))

    def _add(self, task: Any) -> None:
        """Plan ``task`` into the running loop: loaded if cached, else a new node."""
        plan = make_plan([task], self.storage, bust_cache=False, decode_roots=False)
        with self.state.lock:
            for key, instances in plan.instances.items():
                self.plan.instances.setdefault(key, []).extend(instances)
            for key, payload in plan.loaded.items():
                if key in self.state.records:
                    continue
                self.plan.tasks[key] = plan.tasks[key]
                self.plan.loaded[key] = self.payloads[key] = payload
                self.plan.timings[key] = plan.timings[key]
                if key in plan.run_ids:
                    self.run_ids[key] = plan.run_ids[key]
                self.state.records[key] = TaskRecord(plan.tasks[key], LOADED)
                self._changed.add(key)
            new = [node for node in plan.nodes if node.key not in self.state.records]
            for node in new:
                self.plan.tasks[node.key] = plan.tasks[node.key]
                self.plan.nodes.append(node)
                self.state.records[node.key] = TaskRecord(plan.tasks[node.key], WAITING)
                self.state.to_run += 1
                self._changed.add(node.key)
            self.state.version += 1
        self.roots.add(task_id(task))
        self.claims.add([node.key for node in new if self._shared(node.key)])
        for node in new:
            self.scheduler.add(node)
            failed = self.scheduler.blocked.get(node.key)
            if failed is not None:  # its dependency failed earlier in this run
                self._record_failure(
                    node.key, _dependency_failed(self.plan.tasks, node.key, failed)
                )

    def _tell(self, asked: Asked) -> None:
        states = import_optuna().trial.TrialState
        trial, key = asked.trial, asked.key
        record = self.state.records[key]
        cached = record.status == LOADED or self._first[key] != trial.number
        if key in self._pruned:
            self.study.tell(trial, state=states.PRUNED)
            return
        if record.status in (DONE, LOADED):
            try:
                value = self.search.value(self._result(key), self._metrics(key, record))
            except Exception as error:
                self._fail(trial, f"{type(error).__name__}: {error}")
                return
            if cached:
                trial.set_user_attr(CACHED, True)
            self.study.tell(trial, value)
        elif record.error is not None:
            self._fail(trial, f"{record.error.exc_type}: {record.error.message}")
            if record.error.exc_type == DEPENDENCY_FAILED:  # so would every other trial
                self.scheduler.halt()
                self._asks_left = 0
        else:  # stopped before it ended: _end interrupts it
            self._stopped.append(asked)

    def _fail(self, trial: optuna.Trial, why: str) -> None:
        trial.set_user_attr(ERROR, why[:1000])
        self.study.tell(trial, state=import_optuna().trial.TrialState.FAIL)

    def _result(self, key: str) -> Any:
        if self.search.metric_name is not None:
            return None  # the value is a logged metric: the result is never decoded
        return self.payloads[key].value

    def _metrics(self, key: str, record: TaskRecord) -> dict[str, float]:
        """Each metric's last logged value: from this run's events, else from the cache."""
        if self.search.metric_name is None:
            return {}
        if record.metrics:
            return {name: points[-1][1] for name, points in record.metrics.items() if points}
        entry = self.storage.lookup(key)
        return {} if entry is None else entry.tracking.last_metrics()

    def _report(self, event: Metric) -> None:
        assert event.step is not None
        for asked in self.pending:
            if asked.key != event.task_id or event.step in asked.reported:
                continue
            asked.reported.add(event.step)
            asked.trial.report(event.value, event.step)
            if event.task_id not in self._pruned and asked.trial.should_prune():
                self._pruned[event.task_id] = event.step
                self.runner.stop(event.task_id)

    def _end(self) -> None:
        """The loop is over: tell the trials that ended, interrupt the rest."""
        try:
            for asked in [a for a in self.pending if self._ended(a.key)]:
                if self.state.records[asked.key].status != CANCELLED:
                    self.pending.remove(asked)
                    self._tell(asked)
            left = [*self._stopped, *self.pending]
            self.pending, self._stopped = [], []
            interrupt(self.study, [(asked.trial.number, asked.trial.params) for asked in left])
        except Exception:  # the run's end must still be recorded
            log.exception("labnb could not tell the study how the search's last trials ended")
