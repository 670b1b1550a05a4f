"""The Optuna study of a search, in the lab's storage: opened, tidied, counted.

Studies live in ``<storage>/optuna.sqlite`` (Optuna's RDB storage), one per
search question (``SearchSpec.study_name``), so any process that opens the
lab opens its studies too, and ``optuna-dashboard sqlite:///.../optuna.sqlite``
shows them. Each trial carries user attributes that tie it to labnb:

- ``labnb_task_id``: the id of the trial's task (its cached result);
- ``labnb_run``: the labnb run that asked it;
- ``labnb_cached``: told from the cache, nothing computed;
- ``labnb_error``: why a failed trial failed;
- ``labnb_retry_of``: the interrupted trial it asks again.

The study's own attributes: ``labnb_run`` names the run driving it now;
``labnb_interrupted`` lists the trials whose run stopped (a cancel, a killed
process) before they ended. Those are told failed and do not count towards
``n_trials``; their parameters are enqueued again, so the next ``optimize``
asks them first (and takes the result from the cache if the task finished
after all).
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..storage.runs import RUNNING, run_status
from .spec import STUDY_FILE, SearchError, SearchSpec, import_optuna

if TYPE_CHECKING:
    import optuna

TASK_ID, RUN, CACHED, ERROR, INTERRUPTED, RETRY_OF = (
    "labnb_task_id",
    "labnb_run",
    "labnb_cached",
    "labnb_error",
    "labnb_interrupted",
    "labnb_retry_of",
)
SQLITE_TIMEOUT_SECONDS = 60


def study_url(storage_path: str | os.PathLike[str]) -> str:
    return f"sqlite:///{Path(storage_path).absolute() / STUDY_FILE}"


@contextlib.contextmanager
def _quiet_optuna() -> Iterator[None]:
    """Optuna's INFO lines ("A new study created...") are not the user's business here."""
    logger = logging.getLogger("optuna")
    level = logger.level
    logger.setLevel(max(level, logging.WARNING))
    try:
        yield
    finally:
        logger.setLevel(level)


def open_study(
    spec: SearchSpec, storage_path: str | os.PathLike[str], checked: bool = False
) -> optuna.Study:
    """The spec's study (created the first time), its direction checked.
    ``checked``: the caller made the tables and checked their version already
    (the run process skips it, a few hundred milliseconds)."""
    optuna = import_optuna()
    with _quiet_optuna():
        storage = optuna.storages.RDBStorage(
            study_url(storage_path),
            engine_kwargs={"connect_args": {"timeout": SQLITE_TIMEOUT_SECONDS}},
            skip_compatibility_check=checked,
            skip_table_creation=checked,
        )
        _fast_commits(storage.engine, wal=not checked)
        study = optuna.create_study(
            storage=storage,
            study_name=spec.study_name,
            direction=spec.direction,
            pruner=optuna.pruners.NopPruner() if spec.pruner is None else spec.pruner,
            load_if_exists=True,
        )
    if study.direction.name.lower() != spec.direction:
        raise SearchError(
            f"study {spec.study_name!r} {study.direction.name.lower()}s; "
            f"this search asks to {spec.direction} (give another study_name)"
        )
    return study


def _fast_commits(engine: Any, wal: bool) -> None:
    """WAL (once: it stays with the file) and ``synchronous=NORMAL`` (per connection):
    a reader (the kernel showing the best value) never blocks the run process's
    writes, and a trial's few commits cost a third less."""
    from sqlalchemy import event

    if wal:
        with engine.connect() as connection:
            connection.exec_driver_sql("PRAGMA journal_mode=WAL")
        engine.dispose()  # connections opened from now on get the listener below
    event.listen(engine, "connect", _synchronous_normal)


def _synchronous_normal(connection: Any, _: Any) -> None:
    connection.execute("PRAGMA synchronous=NORMAL")


def driving_run(study: optuna.Study, index: Any) -> str | None:
    """The id of the live labnb run that drives ``study`` now, if one does."""
    run_id = study.user_attrs.get(RUN)
    if not run_id:
        return None
    rows = index.runs([run_id])
    if not rows or run_status(rows[0]) != RUNNING:
        return None
    row = rows[0]
    if row.host == socket.gethostname() and row.pid and not _alive(row.pid):
        return None  # killed: its heartbeat has not gone stale yet
    return str(run_id)


def _alive(pid: int) -> bool:
    import psutil

    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def interrupted(study: optuna.Study) -> set[int]:
    """Numbers of the trials whose run stopped before they ended."""
    return set(study.user_attrs.get(INTERRUPTED) or ())


def counted(study: optuna.Study) -> int:
    """Trials that ran to their end (complete, pruned or failed on their own)."""
    states = import_optuna().trial.TrialState
    ended = (states.COMPLETE, states.PRUNED, states.FAIL)
    stopped = interrupted(study)
    return sum(
        trial.state in ended and trial.number not in stopped
        for trial in study.get_trials(deepcopy=False)
    )


def interrupt(study: optuna.Study, trials: list[tuple[int, dict[str, Any]]]) -> None:
    """These trials (number, params) will never end where they were started: told
    failed, listed in the study's ``labnb_interrupted`` (so not counted), and
    their parameters enqueued to be asked again first."""
    if not trials:
        return
    states = import_optuna().trial.TrialState
    for number, _ in trials:
        study.tell(number, state=states.FAIL, skip_if_finished=True)
    study.set_user_attr(INTERRUPTED, sorted(interrupted(study) | {n for n, _ in trials}))
    with _quiet_optuna():
        for number, params in trials:
            if params:  # one killed before its parameters were stored is simply asked anew
                study.enqueue_trial(params, user_attrs={RETRY_OF: number})


def tidy(study: optuna.Study) -> int:
    """Trials left running by a run that is gone are interrupted (see ``interrupt``);
    returns how many. Call only when no live run drives the study."""
    states = import_optuna().trial.TrialState
    stale = study.get_trials(deepcopy=False, states=(states.RUNNING,))
    interrupt(study, [(trial.number, trial.params) for trial in stale])
    return len(stale)
