"""``Lab``: the façade users call to run, cache, find and clear tasks."""

from __future__ import annotations

import os
import pickle
import sys
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import cloudpickle

from .display.progress import TextProgress
from .engine.claims import new_run_id
from .engine.cpus import available_cpus
from .engine.explain import Explanation, explain
from .engine.handles import LocalRun, RecordedRun, Run, attach_results, found_run
from .engine.job import RunSetup
from .engine.machine import GpuChoice, this_machine
from .engine.planning import Plan, make_plan
from .engine.run_loop import RunLoop, code_hashes
from .engine.run_process import RunOrder, launch
from .engine.state import CANCELLED, DONE, FAILED, LOADED, RUNNING, STARTING, RunState
from .engine.tracebacks import Sources, notebook_sources
from .errors import CacheWarning, NotATask, RunLost, StorageError, TaskFailed
from .intask.tracking import tracking_setup
from .model import flat_pickle
from .model.code_hash import code_hash, same_code
from .model.config_files import ConfigFile
from .model.identity import decode
from .model.tasks import (
    attach_result_meta,
    code_version_of,
    defined_type,
    is_task,
    meta_of,
    task_id,
    type_name_of,
)
from .runners.backends import runner_for
from .runners.base import Runner
from .runners.choice import make_runner
from .storage import Catalog, GcReport, LocalStorage, Storage, open_storage
from .storage.runs import LOST, RunRecord, forget_runs, read_runs

if TYPE_CHECKING:
    import pandas as pd

    from .search import Search

DEFAULT_STORAGE = "labnb_storage"
_DEFAULT: Any = object()
DETACHED_RUNNERS = ("process", "thread", "serial", "ray")
"""Runners a run process can build for itself (Ray's and custom ones hold this process's state)."""
WARM_SECONDS = 300.0
"""How long, by default, a run process keeps its workers for the Lab's next run."""
STOP_SECONDS = 15.0
"""How long a cancelled run may take to stop before its run process is killed."""


class RunResults(dict):
    """``{task: result}`` for the tasks that succeeded, plus ``failures: {task: TaskFailed}``."""

    def __init__(self, results: dict[Any, Any], failures: dict[Any, TaskFailed]) -> None:
        super().__init__(results)
        self.failures = failures


class Lab:
    """Runs tasks in background workers and caches every result in ``storage``.

    ``storage`` is a directory path (default ``./labnb_storage``), a URL such as
    ``'s3://bucket/prefix'`` (``FsspecStorage``), ``None`` for no caching, or a
    ``Storage``. ``context`` is shared by all tasks (``self.context``) and is not
    part of their identity. ``runner`` is ``'process'``, ``'thread'``,
    ``'serial'``, ``'ray'`` (``RayRunner``) or a ``Runner``; labtech's
    ``runner_backend`` (``'fork'``, ``'spawn'``, ``'fork-per-task'``,
    ``'thread'``, ``'serial'``, ``RayRunnerBackend()``) is accepted instead
    (see ``runners.backends``). ``gpus`` narrows the GPUs tasks may be given:
    device numbers (``[0, 2]``), a count (``2``: the first two; ``0``: none),
    or None for every GPU NVML finds (see ``engine.machine``). ``warm_seconds``:
    how long the process runner's workers wait, idle, for this Lab's next run
    (which then skips their start-up and imports; ``engine.warm_runs`` says
    when they are replaced instead); 0 ends them with each run.
    """

    def __init__(
        self,
        storage: str | os.PathLike[str] | Storage | None = _DEFAULT,
        context: dict[str, Any] | None = None,
        max_workers: int | None = None,
        continue_on_failure: bool = False,
        notebook: bool | None = None,
        runner: str | Runner = "process",
        runner_backend: Any = None,
        gpus: GpuChoice = None,
        warm_seconds: float = WARM_SECONDS,
    ) -> None:
        if max_workers is not None and (not isinstance(max_workers, int) or max_workers < 1):
            raise ValueError(f"max_workers must be a positive int or None, not {max_workers!r}")
        self.max_workers = max_workers or available_cpus()
        # First: a process runner starts its forkserver now, which boots while storage opens.
        runner = runner_for(runner, runner_backend)
        self._runner_name = runner if isinstance(runner, str) else None
        self.runner = make_runner(runner, self.max_workers, requested=max_workers)
        self.machine = this_machine(gpus)
        """The cores, GPUs and memory the local runners pack tasks onto."""
        if storage is _DEFAULT:
            print(
                f"labnb: caching results in ./{DEFAULT_STORAGE} (choose with Lab(storage=...))",
                file=sys.stderr,
            )
            storage = DEFAULT_STORAGE
        self.storage: Storage = open_storage(storage)
        self.context: dict[str, Any] = {} if context is None else context
        self.continue_on_failure = continue_on_failure
        self.notebook = notebook
        self.warm_seconds = warm_seconds

    def __repr__(self) -> str:
        return f"Lab(storage={self.storage!r}, runner={type(self.runner).__name__})"

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """In a notebook, a Lab displays as its cache browser."""
        from .display.kernel import in_kernel

        if not in_kernel():
            return {"text/plain": repr(self)}
        from .display.widgets import CacheView

        return CacheView(self)._repr_mimebundle_(**kwargs)

    # --- running ------------------------------------------------------------

    def run_tasks(
        self,
        tasks: Iterable[Any],
        bust_cache: bool = False,
        disable_progress: bool = False,
        *,
        disable_top: bool = False,
        top_format: str | None = None,
        top_sort: str | None = None,
        top_n: int | None = None,
    ) -> RunResults:
        """Run (or load from the cache) ``tasks`` and their dependencies, and wait.

        Returns ``{task: result}``. By default the first failure stops new tasks
        from starting and raises ``TaskFailed`` once running ones finish; with
        ``continue_on_failure`` the other results are returned and failures are
        in ``.failures``. In a notebook the live widget is shown while it runs
        (its buttons respond once the cell ends; the stop button cancels).

        ``disable_top``, ``top_format``, ``top_sort`` and ``top_n`` (labtech's
        table of running tasks) are accepted and have no effect: labnb's live
        view already has a row per task with its CPU and memory, and
        ``disable_progress`` turns the whole view off.
        """
        tasks = _check_tasks(tasks)
        plan = self._plan(tasks, bust_cache)
        ordered = self._order(tasks, plan, bust_cache)
        if ordered is None:
            loop = self._loop(plan)
            notebook = not disable_progress and self._in_notebook()
            with _display(loop.state, notebook, self.storage, disable_progress):
                loop.run()
            attach_results(loop.plan, loop.payloads)
            state, first_failure = loop.state, loop.first_failure
            failures = {error.task: error for error in loop.failures.values()}
            payloads = loop.payloads
            values = {key: payload.value for key, payload in payloads.items()}
        else:
            order, context = ordered
            notebook = not disable_progress and self._in_notebook()
            launched = launch(order, context)
            run = RecordedRun(order.run_id, self.storage, tasks, plan, launched.ended)
            with (  # the display ends after the cancel: it shows how the run ended
                _display(run.state, notebook, self.storage, disable_progress, run.id),
                _cancelled_on_interrupt(run),
            ):
                run.wait()
            if run.status == LOST:
                raise RunLost(
                    f"run {run.id} was lost: its run process (pid {run.pid}) died without "
                    "finishing; what it finished is cached, and running the tasks again "
                    "computes the rest"
                )
            values = {task_id(task): value for task, value in run.results.items()}
            state, first_failure = run.state, run.first_failure()
            failures = run.failures
        _attach_result_metas(tasks, plan, state)
        lost = self.storage.missing()
        if lost is not None:  # its results went with it: no failure of a task says so as well
            raise StorageError(lost)
        if first_failure is not None and not self.continue_on_failure:
            raise first_failure
        if failures:
            _report_failures(failures)
        return RunResults(
            {task: values[task_id(task)] for task in tasks if task_id(task) in values}, failures
        )

    def submit(self, tasks: Iterable[Any], bust_cache: bool = False) -> Run:
        """Start running ``tasks`` in the background and return at once.

        The run is owned by a run process of its own: it goes on when this
        kernel restarts or exits, and ``lab.runs()`` finds it from any process.
        The returned ``Run`` shows the live widget when displayed; the kernel
        stays free for other cells meanwhile.
        """
        tasks = _check_tasks(tasks)
        plan = self._plan(tasks, bust_cache)
        ordered = self._order(tasks, plan, bust_cache)
        if ordered is None:
            return LocalRun(tasks, self._loop(plan))
        order, context = ordered
        launched = launch(order, context)
        return RecordedRun(order.run_id, self.storage, tasks, plan, launched.ended)

    def optimize(
        self,
        task_type: type,
        space: dict[str, Any],
        n_trials: int,
        *,
        direction: str = "minimize",
        metric: str | Callable[[Any], float] | None = None,
        fixed: dict[str, Any] | None = None,
        seed: int | None = None,
        sampler: Any = "tpe",
        pruner: Any = None,
        study_name: str | None = None,
        wait: bool = True,
        disable_progress: bool = False,
    ) -> Search:
        """Search ``task_type``'s parameters with Optuna; returns a ``Search``.

        ``space`` maps fields to Optuna distributions, ``fixed`` gives other
        fields; each trial is the task ``task_type(**fixed, **params)``, run on
        this Lab's workers (``max_workers`` at once) and cached as any task. Its
        value is the task's result, or with ``metric`` the last value of that
        ``labnb.log_metric`` (or ``metric(result)`` for a function), to
        ``direction`` (``'minimize'`` or ``'maximize'``). The study lives in this
        lab's storage (``optuna.sqlite``): ``n_trials`` is how many trials it
        should have, so calling again (after a restart, from another process)
        resumes it and runs only what is missing, and a cached suggestion is
        told from the cache. ``seed`` makes the suggestions reproducible;
        ``sampler`` is ``'tpe'``, ``'random'``, a function of a seed or an Optuna
        sampler; ``pruner`` an Optuna pruner, fed the metric's steps. With
        ``wait=False`` it returns at once (display the ``Search`` to watch it).
        Needs Optuna (``pip install 'labnb[optuna]'``); see ``labnb.search``.
        """
        from .search.driver import optimize
        from .search.spec import SearchSpec

        spec = SearchSpec(
            task_type,
            space,
            fixed or {},
            n_trials,
            direction,
            metric,
            seed,
            sampler,
            pruner,
            study_name or "",
            workers=self.max_workers,
        )
        return optimize(self, spec, wait=wait, disable_progress=disable_progress)

    def _plan(self, tasks: list[Any], bust_cache: bool) -> Plan:
        """What must run; a task that needs more than this machine has is refused
        here, before anything starts (Ray's cluster is not this machine)."""
        plan = make_plan(tasks, self.storage, bust_cache)
        _report_stale(plan)
        _warn_other_modules(plan)
        if self.runner.packs:
            for node in plan.nodes:
                if node.needs.declared:
                    self.machine.check(repr(plan.tasks[node.key])[:200], node.needs)
        return plan

    def _loop(self, plan: Plan) -> RunLoop:
        to_run = [plan.tasks[node.key] for node in plan.nodes]
        setup = RunSetup(
            self.context,
            self.storage.writer(),
            tracking_setup(to_run),
            notebook_sources() if to_run else Sources(),  # a fully cached run shows none
        )
        return RunLoop(
            plan, self.storage, self.runner, setup, self.continue_on_failure, machine=self.machine
        )

    def _order(
        self, tasks: list[Any], plan: Plan, bust_cache: bool
    ) -> tuple[RunOrder, bytes] | None:
        """What a run process needs to own this run (and the context, pickled), or
        None when it must run here: nothing to compute, results that would not be
        cached (they could not come back), a storage that keeps no run records, a
        runner given as an object (it holds this process's state), or a context
        that does not pickle. A Ray runner named ``'ray'`` detaches: the run
        process joins the same cluster as a driver of its own."""
        if (
            not plan.nodes
            or not isinstance(self.storage, LocalStorage)
            or self._runner_name not in DETACHED_RUNNERS
            or any(meta_of(plan.tasks[node.key]).format is None for node in plan.nodes)
        ):
            return None
        runner_options = self.runner.detached_options()
        if runner_options is None:
            return None
        try:
            shipped = flat_pickle.dumps(tasks)
            context = cloudpickle.dumps(self.context, protocol=pickle.HIGHEST_PROTOCOL)
        except Exception:
            return None
        to_run = [plan.tasks[node.key] for node in plan.nodes]
        order = RunOrder(
            run_id=new_run_id(),
            storage=str(self.storage.path),
            runner=self._runner_name,
            max_workers=self.max_workers,
            runner_options=runner_options,
            gpus=self.machine.chosen,
            code=code_hashes(plan),
            continue_on_failure=self.continue_on_failure,
            bust_cache=bust_cache,
            tasks=shipped,
            tracking=tracking_setup(to_run),
            sources=notebook_sources(),
            warm_seconds=self.warm_seconds,
        )
        return order, context

    def _in_notebook(self) -> bool:
        """Widgets need a kernel: ``notebook=True`` elsewhere (a script, pytest) means text."""
        from .display.kernel import in_kernel

        return self.notebook is not False and in_kernel()

    def run_task(
        self,
        task: Any,
        bust_cache: bool = False,
        disable_progress: bool = False,
        *,
        disable_top: bool = False,
    ) -> Any:
        """Run one task and return its result (``disable_top``: see ``run_tasks``)."""
        self.run_tasks([task], bust_cache=bust_cache, disable_progress=disable_progress)
        return task.result

    # --- the cache ----------------------------------------------------------

    def runs(self) -> list[Run]:
        """Every run recorded in this lab's storage, oldest first, from any process
        (other kernels, scripts, a kernel that restarted): each a ``Run`` with its
        ``status`` (``running``, ``done``, ``failed``, ``cancelled``, ``lost``),
        times, ``results``, ``failures``, ``frame()`` (each task's state and
        timings), ``wait()`` and ``cancel()``. Displayed in a cell, a running one
        is its live widget again."""
        return [found_run(self.storage, record.id) for record in read_runs(self.storage.index)]

    def forget_runs(self, runs: Iterable[Run | RunRecord] | None = None) -> int:
        """Delete the records of these runs (default: every run that has ended);
        running ones are kept. Returns how many were deleted."""
        chosen = read_runs(self.storage.index, None if runs is None else [r.id for r in runs])
        ended = [run.id for run in chosen if run.done]
        forget_runs(self.storage.index, ended)
        return len(ended)

    @property
    def catalog(self) -> Catalog:
        """Queries over this lab's cache: ``lab.catalog.query(Fit, where="params.C > 1")``."""
        return self.storage.catalog

    def is_cached(self, task: Any) -> bool:
        (task,) = _check_tasks([task])
        entry = self.storage.lookup(task_id(task))
        fmt = meta_of(task).format
        return entry is not None and fmt is not None and entry.format == fmt.name

    def cached_tasks(self, task_types: Sequence[type]) -> list[Any]:
        """Every cached task of these types, rebuilt from the index alone.

        Entries written by an older definition of a type (other fields or
        ``code_version``) rebuild to a different id and are left out. So are
        entries the current definition refuses (its ``__post_init__`` raises,
        a value's type is gone), with a ``CacheWarning`` saying how many: a
        new validation rule must not make the whole cache unlistable. Entries
        that a class of the same name in another module computed are kept (a
        moved class keeps its cache) with a ``CacheWarning`` naming the module.
        """
        by_name = {type_name_of(cls): cls for cls in task_types}
        tasks = []
        refused: dict[str, tuple[int, str]] = {}
        elsewhere: dict[str, set[str]] = {}
        rebuilt: dict[str, Any] = {}  # by id: a deep chain's entries refer to older ones
        for entry in self.catalog.entries(list(by_name)) if by_name else []:
            cls = by_name[entry.type]
            try:
                task = cls(**{name: decode(value, rebuilt) for name, value in entry.params.items()})
            except Exception as exc:
                count, _ = refused.get(entry.type, (0, ""))
                refused[entry.type] = (count + 1, f"{type(exc).__name__}: {exc}")
                continue
            if task_id(task) == entry.task_id:
                tasks.append(task)
                rebuilt[entry.task_id] = task
                if entry.module and entry.module != meta_of(cls).module:
                    elsewhere.setdefault(entry.type, set()).add(entry.module)
        for name, (count, last) in refused.items():
            warnings.warn(
                f"cached_tasks left out {count} cached {name} entr{'y' if count == 1 else 'ies'} "
                f"that the current definition of {name} refuses (last: {last})",
                CacheWarning,
                stacklevel=2,
            )
        for name, modules in elsewhere.items():
            warnings.warn(
                _other_module_message(name, meta_of(by_name[name]).module, modules),
                CacheWarning,
                stacklevel=2,
            )
        return tasks

    def uncache_older_versions(self, task_type: type) -> int:
        """Remove the cached results of ``task_type`` made by other definitions of it
        (another ``code_version``, or for a ``%%labtask`` cell, other cell code or
        inputs); returns how many were removed. ``lab.catalog.versions(task_type)``
        lists them first."""
        return self.catalog.remove_older_versions(task_type, code_version_of(task_type))

    def explain(self, task: Any) -> Explanation:
        """Why ``task`` is or is not cached: when and by which run it was computed,
        or the nearest cached entries of its type and exactly what differs
        (parameters, ``code_version``, the module that defines it)."""
        (task,) = _check_tasks([task])
        return explain(task, self.storage)

    def config_of(self, task: Any) -> ConfigFile | None:
        """The config file ``task``'s cached result was computed from (``labnb.sweep``,
        ``%%labtask --config``), as it was then: ``str()`` is its text, ``.save(path)``
        writes it, and ``labnb.sweep(TaskType, lab.config_of(task))`` builds its sweep
        again. None when the task was built in code; ``LookupError`` when not cached."""
        (task,) = _check_tasks([task])
        entry = self.storage.lookup(task_id(task))
        if entry is None:
            raise LookupError(f"{task!r} is not cached in this lab's storage")
        return self.storage.config(entry.config)

    def uncache_tasks(self, tasks: Iterable[Any]) -> int:
        """Remove these tasks' cached results and logs; returns how many results were removed."""
        return self.storage.remove(task_id(task) for task in _check_tasks(tasks))

    def gc(self, older_than: float = 3600.0, dry_run: bool = False) -> GcReport:
        """Reclaim files no cached entry references (left by kills), older than
        ``older_than`` seconds; see ``labnb gc``."""
        return self.catalog.gc(older_than=older_than, dry_run=dry_run)

    def logs(self, task: Any) -> str:
        """All that ``task`` printed and logged in its last run (and its traceback if it failed)."""
        (task,) = _check_tasks([task])
        text = self.storage.read_logs(task_id(task))
        if text is None:
            raise LookupError(f"no logs for {task!r}: it has not run with this lab's storage")
        return text

    def metrics(self, tasks_or_types: Iterable[Any]) -> pd.DataFrame:
        """Every metric the given cached tasks (or all cached tasks of the given types)
        logged, in long form: type, id, parameters, metric, step, value, time."""
        from .storage.tables import metrics_table

        items = list(tasks_or_types)
        ids = [task_id(item) for item in items if is_task(item)]
        names = [type_name_of(item) for item in items if not is_task(item)]
        entries = self.catalog.entries(ids=ids) if ids else []
        if names:
            entries += [entry for entry in self.catalog.entries(names) if entry.task_id not in ids]
        return metrics_table(entries)

    def logged(self, task: Any) -> dict[str, Any]:
        """What a cached task logged: params, metrics, features, artifacts (paths), models."""
        (task,) = _check_tasks([task])
        entry = self.storage.lookup(task_id(task))
        if entry is None:
            raise LookupError(f"{task!r} is not cached in this lab's storage")
        tracking = entry.tracking
        folder = self.storage.artifacts_path(entry)
        return {
            "params": dict(tracking.params),
            "metrics": [list(metric) for metric in tracking.metrics],
            "features": list(tracking.features),
            "artifacts": {name: folder / name for name in tracking.artifacts if folder is not None},
            "models": list(tracking.models),
        }

    def load_model(self, task: Any, name: str) -> Any:
        """A model the task kept with ``labnb.log_model(name, model)``."""
        import pickle

        entry = self.storage.lookup(task_id(task))
        folder = None if entry is None else self.storage.artifacts_path(entry)
        if entry is None or folder is None or name not in entry.tracking.models:
            raise LookupError(f"{task!r} has no cached model named {name!r}")
        return pickle.loads((folder / f"{name}.model.pkl").read_bytes())

    def cache_table(self, task_types: Sequence[type] | None = None) -> pd.DataFrame:
        """One row per cached task: type, id, ``params.<field>`` per parameter, timings,
        size, what the task logged (``params.X``, ``metrics.Y``, ``mlflow_run_id``),
        and ``stale``: made by an older version of its type's code than the one
        defined now (False where that cannot be told)."""
        types = None if task_types is None else [type_name_of(cls) for cls in task_types]
        table = self.catalog.table(types)
        given = {meta_of(cls).type_name: cls for cls in task_types or ()}
        current: dict[tuple[str, str], str | None] = {}
        stale = set()
        for key, (name, module, recorded) in self.catalog.code_hashes(types).items():
            if (name, module) not in current:
                cls = given.get(name) or defined_type(name, module)
                current[(name, module)] = None if cls is None else code_hash(cls)
            if same_code(recorded, current[(name, module)]) is False:
                stale.add(key)
        table["stale"] = table["id"].isin(stale)
        return table


def _report_stale(plan: Plan) -> None:
    """One line per task type whose reused results an older version of its code
    made: labtech's rule (no rerun for a code edit) stays, but not silently."""
    stale: dict[str, int] = {}
    current: dict[type, str] = {}
    for key, recorded in plan.code.items():
        cls = type(plan.tasks[key])
        if cls not in current:
            current[cls] = code_hash(cls)
        if same_code(recorded, current[cls]) is False:
            name = meta_of(cls).type_name
            stale[name] = stale.get(name, 0) + 1
    for name, count in stale.items():
        print(
            f"labnb: {count} result{'s' if count != 1 else ''} of {name} "
            f"{'were' if count != 1 else 'was'} made by an older version of its code and "
            "reused (see lab.explain(task); code_version='auto' reruns on edits)",
            file=sys.stderr,
        )


def _warn_other_modules(plan: Plan) -> None:
    """One ``CacheWarning`` per task type whose reused results a class of the same
    name in another module computed: ids leave the module out (a moved class
    keeps its cache), so another project's task of that name would be reused silently."""
    elsewhere: dict[str, tuple[str, set[str]]] = {}
    for key, module in plan.modules.items():
        meta = meta_of(plan.tasks[key])
        if module != meta.module:
            elsewhere.setdefault(meta.type_name, (meta.module, set()))[1].add(module)
    for name, (module, others) in elsewhere.items():
        warnings.warn(_other_module_message(name, module, others), CacheWarning, stacklevel=4)


def _other_module_message(name: str, module: str, others: set[str]) -> str:
    return (
        f"cached {name} entries were computed by {name} of another module "
        f"({', '.join(sorted(others))}), not {module}.{name}: "
        "the same name and parameters give the same ids; if it is another task, "
        "rename one of them or give it a code_version"
    )


def _check_tasks(tasks: Iterable[Any]) -> list[Any]:
    if is_task(tasks):
        raise NotATask("pass a list of tasks (or use run_task for one task)")
    tasks = list(tasks)
    for task in tasks:
        if not is_task(task):
            raise NotATask(f"expected labnb tasks, got {type(task).__qualname__}: {task!r}")
    return tasks


def _attach_result_metas(tasks: list[Any], plan: Plan, state: RunState) -> None:
    """Give each task its ``result_meta``: when its result was computed and how long it took
    (a loaded result's from its cache entry, a computed one's from this run)."""
    for task in tasks:
        key = task_id(task)
        timing = plan.timings.get(key)
        record = state.records.get(key)
        if timing is None and record is not None and record.finished is not None:
            timing = (record.started or record.finished, record.finished)
        if timing is not None:
            attach_result_meta(task, *timing)


@contextmanager
def _cancelled_on_interrupt(run: RecordedRun) -> Iterator[RecordedRun]:
    """While the caller waits for ``run``, Ctrl-C cancels it (workers stopped within
    seconds, finished results kept) and says so in one line; a second Ctrl-C, or a
    run that does not stop, kills its process."""
    try:
        yield run
    except KeyboardInterrupt:
        try:
            run.cancel()
            if not run.wait(STOP_SECONDS):
                run.kill()
        except KeyboardInterrupt:
            run.kill()
        counts = run.state.counts()
        kept = counts[DONE] + counts[LOADED]
        stopped = counts[CANCELLED] + counts[RUNNING] + counts[STARTING] + counts["waiting"]
        message = f"run {run.id} cancelled: {kept} result(s) kept, {stopped} task(s) stopped"
        print(f"labnb: {message}", file=sys.stderr)
        raise KeyboardInterrupt(message) from None


@contextmanager
def _display(
    state: RunState,
    notebook: bool,
    storage: Any = None,
    disabled: bool = False,
    run_id: str | None = None,
) -> Iterator[None]:
    """Show a run while it blocks: the widget in a notebook, a text bar elsewhere."""
    if disabled:
        yield
        return
    if notebook:
        from .display.widgets import RunView

        view = RunView(state, storage=storage, run_id=run_id, blocking=True)
        handle = view.show()
        try:
            yield
        finally:
            view.blocking = False
            view.refresh()
            # Again, so the plain-text fallback (nbconvert, no widgets) shows the end state.
            if handle is not None:
                handle.update(view)
        return
    loaded = len(state.records) - state.to_run
    if not state.to_run:
        print(f"labnb: {loaded} result(s) loaded from the cache", file=sys.stderr)
        yield
        return
    progress = TextProgress(state.to_run, loaded)
    with state.lock:  # what a followed run did before this bar existed, then the rest
        for _, record in state.items():
            for text in record.output:
                progress.output(record.task, text)
            if record.status in (DONE, FAILED, CANCELLED):
                progress.finished(record.task)
        state.listeners.append(progress)
    try:
        yield
    finally:
        progress.close()


def _report_failures(failures: dict[str, TaskFailed]) -> None:
    print(f"labnb: {len(failures)} task(s) failed:", file=sys.stderr)
    for error in failures.values():
        print(f"  {error.task!r}: {error.exc_type}: {error.message}", file=sys.stderr)
