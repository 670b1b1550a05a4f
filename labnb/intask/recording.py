"""What a task logs while it runs: ``labnb.log_param``, ``log_metric``, ``log_features``,
``log_artifact`` and ``log_model``.

Everything logged is collected by the running task's ``Recorder`` and kept in
the index with the task's result, so a cached task still has what it logged
when it ran. Metrics also stream to the notebook as they are logged (the
widget draws them live). When the task is an mlflow run, each call is
forwarded to mlflow as well.
"""

from __future__ import annotations

import math
import numbers
import shutil
import time
from pathlib import Path
from typing import Any

import cloudpickle

from .capture import current_scope

MAX_PARAM_LENGTH = 6000


class Recorder:
    def __init__(self, channel: Any, artifacts: Any, mlflow_run: bool) -> None:
        self._channel = channel
        self._artifacts = artifacts  # callable giving this run's artifact folder, or None
        self._folder: Path | None = None
        self._mlflow = mlflow_run
        self.params: dict[str, Any] = {}
        self.metrics: list[tuple[str, float, int | None, float]] = []
        self.features: list[str] = []
        self.artifacts: list[str] = []
        self.models: list[str] = []

    def record(self) -> dict[str, Any]:
        return {
            "params": self.params,
            "metrics": self.metrics,
            "features": self.features,
            "artifacts": self.artifacts,
            "models": self.models,
        }

    def folder(self) -> Path:
        if self._folder is None:
            if self._artifacts is None:
                raise RuntimeError("artifacts need a Lab with storage (not storage=None)")
            self._folder = Path(self._artifacts())
        return self._folder

    @property
    def folder_name(self) -> str | None:
        return None if self._folder is None else self._folder.name


def _recorder(call: str) -> Recorder:
    scope = current_scope()
    if scope is None or scope.recorder is None:
        raise RuntimeError(f"labnb.{call}() only works inside a task's run(), while a Lab runs it")
    return scope.recorder


def log_param(name: str, value: Any) -> None:
    """Record a parameter the task chose or found (e.g. the best C of a search)."""
    recorder = _recorder("log_param")
    if not isinstance(name, str) or not name:
        raise TypeError("log_param: the name must be a non-empty str")
    if not isinstance(value, (str, int, float, bool, type(None))):
        value = str(value)
    if isinstance(value, str) and len(value) > MAX_PARAM_LENGTH:
        raise ValueError(f"log_param: {name!r} is longer than {MAX_PARAM_LENGTH} characters")
    recorder.params[name] = value
    if recorder._mlflow:
        import mlflow

        mlflow.log_param(name, value)


def log_metric(name: str, value: float, step: int | None = None) -> None:
    """Record a metric; with ``step`` it is a series (e.g. a loss per epoch), drawn live."""
    recorder = _recorder("log_metric")
    if not isinstance(name, str) or not name:
        raise TypeError("log_metric: the name must be a non-empty str")
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"log_metric: {name!r} must be a number, not {type(value).__name__}")
    if step is not None and (not isinstance(step, numbers.Integral) or isinstance(step, bool)):
        raise TypeError(f"log_metric: step must be an int, not {type(step).__name__}")
    value, step = float(value), None if step is None else int(step)
    if math.isnan(value):
        raise ValueError(f"log_metric: {name!r} is NaN")
    now = time.time()
    recorder.metrics.append((name, value, step, now))
    recorder._channel.metric(name, value, step, now)
    if recorder._mlflow:
        import mlflow

        mlflow.log_metric(name, value, step=step)


def log_features(names: Any) -> None:
    """Record the names (or column indices) of the features the model saw."""
    recorder = _recorder("log_features")
    features = [str(name) for name in names]
    recorder.features = features
    if recorder._mlflow:
        import mlflow

        mlflow.log_dict({"features": features}, "features.json")


def log_artifact(path: str | Path, name: str | None = None) -> str:
    """Copy a file or a directory into the task's storage; returns its name there."""
    recorder = _recorder("log_artifact")
    source = Path(path)
    if not source.exists():
        raise FileNotFoundError(f"log_artifact: {source} does not exist")
    name = name or source.name
    if not name or "/" in name or name in (".", ".."):
        raise ValueError(f"log_artifact: {name!r} is not a valid artifact name")
    target = recorder.folder() / name
    if source.is_dir():
        shutil.copytree(source, target, dirs_exist_ok=True)
    else:
        shutil.copy2(source, target)
    if name not in recorder.artifacts:
        recorder.artifacts.append(name)
    if recorder._mlflow:
        import mlflow

        if source.is_dir():
            mlflow.log_artifacts(str(source), artifact_path=name)
        else:
            mlflow.log_artifact(str(source))
    return name


def log_model(name: str, model: Any) -> None:
    """Keep a model with the task (load it back with ``lab.load_model(task, name)``).

    With mlflow, a scikit-learn model is logged through mlflow's sklearn flavour
    (so the mlflow UI can serve it); anything else as a pickled artifact.
    """
    recorder = _recorder("log_model")
    if not isinstance(name, str) or not name or "/" in name:
        raise ValueError(f"log_model: {name!r} is not a valid model name")
    path = recorder.folder() / f"{name}.model.pkl"
    path.write_bytes(cloudpickle.dumps(model))
    if name not in recorder.models:
        recorder.models.append(name)
    if recorder._mlflow:
        import mlflow

        if type(model).__module__.startswith("sklearn."):
            mlflow.sklearn.log_model(model, name=name)
        else:
            mlflow.log_artifact(str(path))
