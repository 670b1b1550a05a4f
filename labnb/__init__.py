"""labnb: run, cache and inspect machine-learning experiments from a Jupyter notebook.

Code written for labtech runs unchanged with ``import labnb as labtech``, and
labtech's submodules have labnb twins (``labnb.types``, ``labnb.cache``,
``labnb.exceptions``, ``labnb.storage``, ``labnb.diagram``,
``labnb.runners.ray``), so replacing the word ``labtech`` in imports is the
whole migration.
"""

from . import cache, exceptions, types
from .engine.handles import Run
from .engine.planning import CycleError
from .errors import (
    CacheWarning,
    ConfigError,
    LabError,
    LabnbError,
    StorageError,
    TaskError,
    TaskFailed,
)
from .intask.progress_api import progress
from .intask.recording import log_artifact, log_features, log_metric, log_model, log_param
from .lab import Lab, RunResults
from .model.config_files import ConfigFile
from .model.config_sweep import sweep
from .model.formats import NumpyFormat, ParquetFormat, PickleFormat, ResultFormat
from .model.resources import Resources, ResourcesError
from .model.tasks import is_task, is_task_type, logger, task, task_id
from .runners.base import Runner
from .search import Search, SearchError
from .storage import Catalog, FsspecStorage, IndexEntry, LocalStorage, NullStorage, Storage
from .storage.runs import RunRecord, TaskRun

__version__ = "0.1.0"


def __getattr__(name: str):
    """``labnb.RayRunner`` imports Ray only when used."""
    if name == "RayRunner":
        from .runners.ray import RayRunner

        return RayRunner
    raise AttributeError(f"module 'labnb' has no attribute {name!r}")


def load_ipython_extension(shell):
    """``%load_ext labnb``: imported lazily so that worker processes never import IPython."""
    from .magics.ipython import load_ipython_extension as load

    load(shell)


def unload_ipython_extension(shell):
    from .magics.ipython import unload_ipython_extension as unload

    unload(shell)


__all__ = [
    "CacheWarning",
    "Catalog",
    "ConfigError",
    "ConfigFile",
    "CycleError",
    "FsspecStorage",
    "IndexEntry",
    "Lab",
    "LabError",
    "LabnbError",
    "LocalStorage",
    "NullStorage",
    "NumpyFormat",
    "ParquetFormat",
    "PickleFormat",
    "Resources",
    "ResourcesError",
    "ResultFormat",
    "Run",
    "RunRecord",
    "RunResults",
    "Runner",
    "Search",
    "SearchError",
    "Storage",
    "StorageError",
    "TaskError",
    "TaskFailed",
    "TaskRun",
    "cache",
    "exceptions",
    "is_task",
    "is_task_type",
    "log_artifact",
    "log_features",
    "log_metric",
    "log_model",
    "log_param",
    "logger",
    "progress",
    "sweep",
    "task",
    "task_id",
    "types",
]
