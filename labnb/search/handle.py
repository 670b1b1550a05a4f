"""``Search``: the handle ``Lab.optimize`` returns, over the study and its run.

Everything it says is read from the study (in the lab's storage) and the
labnb cache, so a handle made in another process, or after a kernel
restart, says the same.
"""

from __future__ import annotations

import sys
import threading
from typing import TYPE_CHECKING, Any

from ..engine.handles import Run
from .spec import SearchSpec, import_optuna
from .study import CACHED, ERROR, RUN, TASK_ID, interrupted

if TYPE_CHECKING:
    import optuna
    import pandas as pd

    from ..lab import Lab

REFRESH_SECONDS = 0.5
"""How often a live search's summary is read from the study while it is shown."""


class Search:
    """A hyper-parameter search: its Optuna ``study``, the labnb ``run`` that
    computes its trials (None when there was nothing to compute), and what
    the trials gave: ``best_value``, ``best_params``, ``best_task``,
    ``trials_dataframe()``. Displayed in a notebook, the run's live widget
    with the best value so far above it."""

    def __init__(self, lab: Lab, spec: SearchSpec, study: optuna.Study, run: Run | None) -> None:
        self.lab = lab
        self.spec = spec
        self.study = study
        self.run = run

    # --- the run ------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.run is None or self.run.done

    def wait(self, timeout: float | None = None) -> bool:
        """Block until the search ends (True) or ``timeout`` seconds pass (False)."""
        return self.run is None or self.run.wait(timeout)

    def cancel(self) -> bool:
        """Stop the search: running trials are stopped and asked again by the next
        ``optimize``; finished ones stay in the study and the cache."""
        return self.run is not None and self.run.cancel()

    # --- what the trials gave ---------------------------------------------------

    def trials(self) -> list[optuna.trial.FrozenTrial]:
        """The study's trials, in the order they were asked."""
        return self.study.get_trials(deepcopy=False)

    @property
    def best_trial(self) -> optuna.trial.FrozenTrial:
        return self.study.best_trial

    @property
    def best_value(self) -> float:
        return float(self.study.best_value)

    @property
    def best_params(self) -> dict[str, Any]:
        return dict(self.study.best_params)

    @property
    def best_task(self) -> Any:
        """The task of the best trial, its ``.result`` loaded from the cache (computed
        again only if its cached result was removed)."""
        task = self.spec.task(self.best_params)
        self.lab.run_tasks([task], disable_progress=True)
        return task

    def task(self, trial: optuna.trial.FrozenTrial | int) -> Any:
        """The task of a trial (or of the trial with this number)."""
        if isinstance(trial, int):
            trial = self.study.trials[trial]
        return self.spec.task(trial.params)

    def trials_dataframe(self) -> pd.DataFrame:
        """One row per trial: number, state, value, ``params.<name>`` for each
        parameter searched, the trial's ``task_id``, ``cached`` (told from the
        cache, nothing computed), ``run`` (the labnb run that asked it),
        ``error``, started, finished and ``duration_s``."""
        import pandas as pd

        stopped = interrupted(self.study)
        rows = []
        for trial in self.trials():
            attrs = trial.user_attrs
            started, finished = trial.datetime_start, trial.datetime_complete
            row: dict[str, Any] = {
                "number": trial.number,
                "state": "INTERRUPTED" if trial.number in stopped else trial.state.name,
                "value": trial.value,
            }
            row.update({f"params.{name}": trial.params.get(name) for name in self.spec.space})
            row.update(
                {
                    "task_id": attrs.get(TASK_ID),
                    "cached": bool(attrs.get(CACHED, False)),
                    "run": attrs.get(RUN),
                    "error": attrs.get(ERROR),
                    "started": started,
                    "finished": finished,
                    "duration_s": None
                    if started is None or finished is None
                    else (finished - started).total_seconds(),
                }
            )
            rows.append(row)
        columns = ["number", "state", "value", *(f"params.{n}" for n in self.spec.space)]
        columns += ["task_id", "cached", "run", "error", "started", "finished", "duration_s"]
        return pd.DataFrame(rows, columns=columns)

    def counts(self) -> dict[str, int]:
        """How many trials the study has in each state, and how many of them this
        search's run computed (``computed``) or told from the cache (``cached``)."""
        states = import_optuna().trial.TrialState
        stopped = interrupted(self.study)
        counts = {"trials": 0, "complete": 0, "pruned": 0, "failed": 0, "running": 0}
        counts.update({"interrupted": 0, "computed": 0, "cached": 0})
        run_id = None if self.run is None else self.run.id
        names = {
            states.COMPLETE: "complete",
            states.PRUNED: "pruned",
            states.FAIL: "failed",
            states.RUNNING: "running",
        }
        for trial in self.trials():
            if trial.state == states.WAITING:
                continue
            counts["trials"] += 1
            if trial.number in stopped:
                counts["interrupted"] += 1
            elif trial.state in names:
                counts[names[trial.state]] += 1
            if (
                run_id is not None
                and trial.user_attrs.get(RUN) == run_id
                and trial.state
                in (
                    states.COMPLETE,
                    states.PRUNED,
                    states.FAIL,
                )
            ):
                counts["cached" if trial.user_attrs.get(CACHED) else "computed"] += 1
        return counts

    def summary(self) -> str:
        """One line: the study, its trials, and the best value so far."""
        counts = self.counts()
        ended = counts["complete"] + counts["pruned"] + counts["failed"]
        text = f"search {self.study.study_name}: {ended} of {self.spec.n_trials} trials"
        if self.run is not None:
            text += f" ({counts['computed']} computed, {counts['cached']} from the cache)"
        else:
            text += " (nothing to compute)"
        kinds = ("running", "failed", "pruned")
        details = [f"{counts[name]} {name}" for name in kinds if counts[name]]
        if details:
            text += ", " + ", ".join(details)
        best = self._best()
        if best is not None:
            params = ", ".join(f"{name}={_short(value)}" for name, value in best.params.items())
            text += (
                f"; best {self.spec.describe_metric} {_short(best.value)} "
                f"(trial {best.number}: {params})"
            )
        return text

    def _best(self) -> optuna.trial.FrozenTrial | None:
        try:
            return self.study.best_trial
        except ValueError:  # no trial is complete yet
            return None

    def __repr__(self) -> str:
        return f"<labnb.Search {self.summary()}>"

    def _ipython_display_(self) -> None:
        from IPython.display import display

        from ..display.kernel import in_kernel

        if not in_kernel():
            print(repr(self))
            return
        from .view import SearchHeader

        header = SearchHeader(self)
        handle = display(header, display_id=True)
        if self.run is not None:
            display(self.run)
            if not self.run.done:
                threading.Thread(
                    target=header.follow, args=(handle,), name="labnb-search", daemon=True
                ).start()

    def _follow_text(self) -> None:
        """In a script: one line on stderr now and then while the search runs."""
        last = ""
        while not self.wait(REFRESH_SECONDS * 4):
            line = self.summary()
            if line != last:
                print(f"labnb: {line}", file=sys.stderr)
                last = line


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return repr(value)
