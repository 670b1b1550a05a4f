"""``optimize``: start (or resume, or follow) a search and hand back its ``Search``."""

from __future__ import annotations

import contextlib
import pickle
import sys
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING

import cloudpickle

from ..engine.claims import new_run_id
from ..engine.handles import LocalRun, RecordedRun, Run
from ..engine.job import RunSetup
from ..engine.planning import Plan, make_plan
from ..engine.run_loop import code_hashes
from ..engine.run_process import RunOrder, launch
from ..engine.tracebacks import notebook_sources
from ..intask.tracking import tracking_setup
from ..model import flat_pickle
from ..model.tasks import needs_of
from ..storage import LocalStorage
from .handle import Search
from .loop import SearchLoop
from .spec import SearchError, SearchSpec
from .study import RUN, counted, driving_run, open_study, tidy

if TYPE_CHECKING:
    from ..lab import Lab

STOP_SECONDS = 15.0


def optimize(
    lab: Lab, spec: SearchSpec, wait: bool = True, disable_progress: bool = False
) -> Search:
    """Start, resume or follow the search ``spec`` on ``lab`` (see ``Lab.optimize``)."""
    from ..lab import DETACHED_RUNNERS

    if not isinstance(lab.storage, LocalStorage):
        raise SearchError(
            "a search keeps its Optuna study in the lab's directory: "
            "use a Lab with a local storage (Lab(storage='some/dir'))"
        )
    if lab.runner.packs:
        lab.machine.check(repr(spec.sample)[:200], needs_of(spec.sample))
    study = open_study(spec, lab.storage.path)
    running = driving_run(study, lab.storage.index)
    if running is not None:  # another kernel or process drives it: follow that run
        followed = Search(lab, spec, study, RecordedRun(running, lab.storage, []))
        if not wait:
            return followed
        _wait(followed, lab, disable_progress)  # then add what it did not ask, if anything
    tidy(study)
    run: Run | None = None
    if counted(study) < spec.n_trials:
        spec.run_id = new_run_id()
        study.set_user_attr(RUN, spec.run_id)
        run = _start(lab, spec, DETACHED_RUNNERS)
    elif running is not None:
        return followed
    search = Search(lab, spec, study, run)
    if wait:
        _wait(search, lab, disable_progress)
    return search


def _start(lab: Lab, spec: SearchSpec, detached: tuple[str, ...]) -> Run:
    """The search's run: in a run process of its own where the Lab's runner and
    context allow it (it outlives the kernel), else in a thread here."""
    tracking = tracking_setup([spec.task_type])
    sources = notebook_sources()
    # The code of the trials' type and its dependencies', hashed here where their source is.
    code = code_hashes(make_plan([spec.sample], lab.storage, bust_cache=True, decode_roots=False))
    loop = partial(SearchLoop, search=spec)
    context = None
    runner_options = lab.runner.detached_options()
    if lab._runner_name in detached and runner_options is not None:
        with contextlib.suppress(Exception):
            context = cloudpickle.dumps(lab.context, protocol=pickle.HIGHEST_PROTOCOL)
    if context is not None:
        assert lab._runner_name is not None
        order = RunOrder(
            run_id=spec.run_id,
            storage=str(lab.storage.path),  # type: ignore[attr-defined]
            runner=lab._runner_name,
            max_workers=lab.max_workers,
            runner_options=runner_options,
            gpus=[gpu.index for gpu in lab.machine.gpus],
            continue_on_failure=True,
            bust_cache=False,
            tasks=flat_pickle.dumps([]),
            tracking=tracking,
            sources=sources,
            code=code,
            loop=loop,
        )
        launched = launch(order, context)
        return RecordedRun(spec.run_id, lab.storage, [], ended=launched.ended)
    setup = RunSetup(lab.context, lab.storage.writer(), tracking, sources)
    here = loop(
        Plan(),
        lab.storage,
        lab.runner,
        setup,
        True,
        run_id=spec.run_id,
        machine=lab.machine,
        code=code,
    )
    return LocalRun([], here)


def _wait(search: Search, lab: Lab, disable_progress: bool) -> None:
    """Show the search while it runs (the widget in a notebook, lines of text
    elsewhere); Ctrl-C cancels it. Ends with its summary on stderr."""
    run = search.run
    notebook = not disable_progress and lab._in_notebook()
    with _cancelled_on_interrupt(search):
        if notebook:
            from IPython.display import display

            from .view import SearchHeader

            header = SearchHeader(search)
            handle = display(header, display_id=True)
            if run is not None:
                from ..display.widgets import RunView

                view = RunView(run.state, storage=lab.storage, run_id=run.id, blocking=True)
                shown = view.show()
                header.follow(handle)
                view.blocking = False
                view.refresh()
                if shown is not None:
                    shown.update(view)
        elif not disable_progress and run is not None:
            search._follow_text()
        search.wait()
    if not disable_progress:
        print(f"labnb: {search.summary()}", file=sys.stderr)


@contextlib.contextmanager
def _cancelled_on_interrupt(search: Search) -> Iterator[None]:
    try:
        yield
    except KeyboardInterrupt:
        search.cancel()
        run = search.run
        if run is not None and not run.wait(STOP_SECONDS) and isinstance(run, RecordedRun):
            run.kill()
        print(f"labnb: search cancelled: {search.summary()}", file=sys.stderr)
        raise
