"""``@task(mlflow_run=True)``: each execution of the task is an mlflow run.

mlflow keeps its active run per process, so the notebook's tracking URI and
active experiment are read once in the parent and re-applied in each worker.
mlflow is imported only when a task asks for it: it is slow to import.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

from frozendict import frozendict

from ..model.tasks import is_task, meta_of, task_id


@dataclass(frozen=True)
class TrackingSetup:
    tracking_uri: str
    experiment_id: str | None


def tracking_setup(tasks: Any) -> TrackingSetup | None:
    """The parent's mlflow settings, if any of these tasks is an mlflow run."""
    if not any(meta_of(task).mlflow_run for task in tasks):
        return None
    import mlflow
    from mlflow.tracking.fluent import _get_experiment_id

    return TrackingSetup(_absolute(mlflow.get_tracking_uri()), _get_experiment_id())


def _absolute(uri: str) -> str:
    """A relative ``sqlite:///mlflow.db`` would move with each worker's working directory."""
    prefix = "sqlite:///"
    if uri.startswith(prefix) and not uri[len(prefix) :].startswith("/"):
        return prefix + str(Path(uri[len(prefix) :]).absolute())
    return uri


def flatten_params(task: Any, prefix: str = "") -> dict[str, str]:
    """Task parameters as mlflow params; nested tasks are flattened as ``field.subfield``."""
    params: dict[str, str] = {}
    for name in meta_of(task).fields:
        _flatten_value(params, prefix + name, getattr(task, name))
    return params


def _flatten_value(params: dict[str, str], key: str, value: Any) -> None:
    if is_task(value):
        params[key] = type(value).__qualname__
        params.update(flatten_params(value, prefix=key + "."))
    elif isinstance(value, Enum):
        params[key] = f"{type(value).__qualname__}.{value.name}"
    elif isinstance(value, frozendict):
        for name, item in value.items():
            _flatten_value(params, f"{key}.{name}", item)
    else:
        params[key] = repr(value) if isinstance(value, tuple) else str(value)


@contextmanager
def tracked_run(
    task: Any, setup: TrackingSetup | None, dependency_runs: dict[str, str] | None = None
) -> Iterator[str | None]:
    """Wrap a task's whole ``run()`` in an mlflow run; yields the run id (None if untracked).

    Runs of the task's dependencies (which ran first) are linked to this one:
    mlflow's own ``mlflow.parentRunId`` tag makes its UI show the pipeline
    nested, and ``labnb_parent_run_ids`` keeps every parent of a shared one.
    """
    meta = meta_of(task)
    if not meta.mlflow_run:
        yield None
        return
    import mlflow

    if setup is not None:
        mlflow.set_tracking_uri(setup.tracking_uri)
    tags = {
        "labnb_task_type": meta.type_name,
        "labtech_task_type": meta.type_name,
        "labnb_task_id": task_id(task),
    }
    with mlflow.start_run(
        experiment_id=setup.experiment_id if setup is not None else None,
        run_name=f"{meta.type_name}-{task_id(task)[:8]}",
        tags=tags,
        nested=mlflow.active_run() is not None,
    ) as run:
        mlflow.log_params(flatten_params(task))
        if dependency_runs:
            _link(mlflow.tracking.MlflowClient(), run.info.run_id, dependency_runs)
        yield run.info.run_id


def _link(client: Any, parent: str, children: dict[str, str]) -> None:
    mlflow_tags = {"labnb_dependency_run_ids": ",".join(sorted(children.values()))}
    for key, value in mlflow_tags.items():
        client.set_tag(parent, key, value)
    for child in children.values():
        tags = client.get_run(child).data.tags
        parents = [run for run in tags.get("labnb_parent_run_ids", "").split(",") if run]
        client.set_tag(child, "labnb_parent_run_ids", ",".join(sorted({*parents, parent})))
        client.set_tag(child, "mlflow.parentRunId", parent)


def mlflow_loaded() -> bool:
    return "mlflow" in sys.modules
