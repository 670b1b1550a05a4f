"""The ``@task`` decorator: a class with annotated fields becomes a frozen task type.

A task is a value: its identity is a hash of its type's qualified name, its
``code_version`` and its parameters (see ``identity``), and equality and
hashing follow that id. The decorator keeps the user's class (so pickling by
reference, ``isinstance`` and subclassing behave as usual) and adds a small
set of attributes, all prefixed ``_labnb`` except those labtech documents
for tasks (``result``, ``context``, ``result_meta``, ``cache_key``,
``code_version``, ``current_code_version``, ``set_context()``, and the
overridable hooks ``filter_context()``, ``post_init()`` and
``runner_options()``).
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING, Any, Protocol, TypeVar, overload

from frozendict import frozendict
from typing_extensions import dataclass_transform

from ..errors import MissingRun, ParameterError, ResultNotAvailable, TaskDefinitionError
from .caches import NullCache, as_format
from .code_hash import code_hash
from .formats import PickleFormat, ResultFormat
from .identity import encode, hash_identity, resolve
from .resources import UNDECLARED, Resources, parse_resources

if TYPE_CHECKING:
    from .config_files import ConfigFile

logger = logging.getLogger("labnb")
logger.setLevel(logging.INFO)

T = TypeVar("T", bound=type)

RESERVED_NAMES = frozenset(
    {"result", "context", "result_meta", "cache_key", "code_version", "current_code_version"}
)
"""Attributes every task has, so no field may take their name."""
_SCALAR_TYPES = (str, bool, int, float, type(None))
_DEFAULT_FORMAT = object()
_MISSING = object()

# Task types by (module, qualname): the latest definition wins, as a notebook
# re-running a cell expects. Used to rebuild nested tasks from the cache index.
_TASK_TYPES: dict[tuple[str, str], type] = {}


@dataclasses.dataclass(frozen=True)
class TaskMeta:
    """What the decorator was told about a task type."""

    type_name: str
    module: str
    fields: tuple[str, ...]
    format: ResultFormat | None
    max_parallel: int | None
    mlflow_run: bool
    code_version: str | None
    user_post_init: Callable[[Any], None] | None
    timeout: float | None = None
    """Seconds a task of this type may run before it is stopped and fails."""
    resources: Resources = UNDECLARED
    """What one execution needs (``resources.py``), unless a ``resources()`` method says."""


@dataclasses.dataclass(frozen=True)
class ResultMeta:
    """When a task's result was computed (``task.result_meta``), as labtech reports it."""

    start: datetime | None
    duration: timedelta | None


class Task(Protocol):
    """What every ``@labnb.task`` instance offers, for type checkers.

    The rest of labnb reads a task only through this protocol and the
    accessors below (``task_id``, ``meta_of``...), never through the
    ``_labnb_*`` attributes the decorator adds.
    """

    def run(self) -> Any: ...

    @property
    def result(self) -> Any: ...

    @property
    def context(self) -> Any: ...


def is_task(obj: Any) -> bool:
    """Whether ``obj`` is an instance of a ``@labnb.task`` type."""
    return getattr(type(obj), "_labnb_meta", None) is not None


def is_task_type(obj: Any) -> bool:
    """Whether ``obj`` is a class made by ``@labnb.task``."""
    return isinstance(obj, type) and getattr(obj, "_labnb_meta", None) is not None


def task_id(task: Any) -> str:
    """The task's stable id (32 hex characters)."""
    return str(task._labnb_id)


def meta_of(task_or_type: Any) -> TaskMeta:
    """What the decorator was told about a task's type (a task or its type)."""
    cls = task_or_type if isinstance(task_or_type, type) else type(task_or_type)
    meta = getattr(cls, "_labnb_meta", None)
    if meta is None:
        raise TypeError(f"{task_or_type!r} is not a labnb task type")
    return meta


AUTO = "auto"
"""``code_version="auto"``: the task type's code hash is its code version."""


def code_version_of(task_or_type: Any) -> str | None:
    """The ``code_version`` in a task's id: the declared one, or with ``"auto"``
    the hash of its type's code now (``code_hash``), so an edit reruns."""
    meta = meta_of(task_or_type)
    if meta.code_version != AUTO:
        return meta.code_version
    return code_hash(task_or_type if isinstance(task_or_type, type) else type(task_or_type))


def needs_of(task: Any) -> Resources:
    """What one execution of ``task`` needs: its ``resources()`` method's answer
    when its type has one (checked like a declaration), else the type's."""
    method = getattr(task, "resources", None)
    if callable(method):
        return parse_resources(method(), f"{type(task).__name__}.resources()")
    return meta_of(task).resources


def type_name_of(spec: Any) -> str:
    """A task type's stored name, from a task, its type, or the name itself."""
    return spec if isinstance(spec, str) else meta_of(spec).type_name


def dependencies_of(task: Any) -> tuple[Any, ...]:
    """The tasks among ``task``'s parameters (nested in containers too), in field order."""
    return tuple(task._labnb_dependencies)


def stored_params(task: Any) -> dict[str, Any]:
    """The task's parameters in their stored encoding: all an index entry needs to rebuild it."""
    return dict(task._labnb_stored["params"])


def attach_result(task: Any, payload: Any) -> None:
    """Make ``payload`` (a ``formats.Payload``) what ``task.result`` returns."""
    task.__dict__["_labnb_result"] = payload


def detach_result(task: Any) -> None:
    """Forget the payload ``attach_result`` gave ``task`` (a worker keeping the task)."""
    task.__dict__.pop("_labnb_result", None)


def attach_result_meta(task: Any, started: float | None, finished: float | None) -> None:
    """Record when ``task``'s result was computed (unix times), for ``task.result_meta``."""
    start = None if started is None else datetime.fromtimestamp(started)
    duration = None
    if started is not None and finished is not None:
        duration = timedelta(seconds=finished - started)
    task.__dict__["_labnb_result_meta"] = ResultMeta(start, duration)


def attach_config(task: Any, config: ConfigFile) -> None:
    """Record the config file ``task`` was built from (``config_files.ConfigFile``).

    Not a parameter: the id stays what the same task built in code has. It
    travels with the task when it is pickled (to a run process), so the run
    can record it with the task's entry.
    """
    task.__dict__["_labnb_config"] = config


def config_origin(task: Any) -> ConfigFile | None:
    """The config file ``task`` was built from (``attach_config``), or None."""
    return task.__dict__.get("_labnb_config")


def attach_context(task: Any, context: Any) -> None:
    """Make what ``task.filter_context(context)`` keeps what ``task.context`` returns while it runs.

    Filtering happens here, in the worker, just before ``run()``: the whole
    context still travels once per run (it is shared by all tasks), but each
    task sees only what its type asked for, as labtech documents.
    """
    task.set_context(task.filter_context(context))


# dataclass_transform tells mypy and pyright that a decorated class gets a
# dataclass-like __init__ (fields as keyword arguments, frozen instances), so
# they check task construction without a plugin.
@overload
@dataclass_transform(frozen_default=True)
def task(cls: T) -> T: ...
@overload
@dataclass_transform(frozen_default=True)
def task(
    *,
    cache: ResultFormat | type[ResultFormat] | NullCache | None = ...,
    max_parallel: int | None = ...,
    mlflow_run: bool = ...,
    code_version: str | None = ...,
    timeout: float | None = ...,
    resources: Mapping[str, Any] | None = ...,
) -> Callable[[T], T]: ...
@dataclass_transform(frozen_default=True)
def task(
    cls: Any = None,
    *,
    cache: Any = _DEFAULT_FORMAT,
    max_parallel: int | None = None,
    mlflow_run: bool = False,
    code_version: str | None = None,
    timeout: float | None = None,
    resources: Mapping[str, Any] | None = None,
) -> Any:
    """Turn a class with annotated fields and a ``run()`` method into a task type.

    ``cache`` is the result format (a ``ResultFormat``, or labtech's
    ``PickleCache()``, ``NullCache()`` or a ``BaseCache`` subclass; ``None``
    never caches), ``max_parallel`` bounds how many tasks of this type run at
    once, ``mlflow_run`` makes each execution an mlflow run and
    ``code_version`` is part of the id: bump it when ``run()`` changes meaning,
    or say ``"auto"`` to make the hash of the type's code the version, so that
    an edit of its methods (or of the functions they call) reruns by itself.
    ``timeout``: seconds a task may run; one that runs longer is stopped and
    fails alone (process runner; threads cannot be stopped). Not part of the id.
    ``resources``: what one execution needs, ``{"cpus": 4, "gpus": 1,
    "gpu_memory": "8G", "memory": "16G"}``; the local runners start a task only
    when that is free and give it those GPUs and cores alone. A ``resources()``
    method returning such a dict overrides it per task. Not part of the id.
    """
    fmt = PickleFormat() if cache is _DEFAULT_FORMAT else as_format(cache)
    if max_parallel is not None and (not isinstance(max_parallel, int) or max_parallel < 1):
        raise ValueError(f"max_parallel must be a positive int or None, not {max_parallel!r}")
    if timeout is not None and (
        isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0
    ):
        raise ValueError(f"timeout must be a positive number of seconds or None, not {timeout!r}")

    def decorate(cls: T) -> T:
        needs = parse_resources(resources, f"task type {cls.__name__}")
        made = _make_task_type(cls, fmt, max_parallel, bool(mlflow_run), code_version)
        made._labnb_meta = dataclasses.replace(
            made._labnb_meta, timeout=None if timeout is None else float(timeout), resources=needs
        )
        return made

    return decorate(cls) if cls is not None else decorate


def _make_task_type(
    cls: Any,
    fmt: ResultFormat | None,
    max_parallel: int | None,
    mlflow_run: bool,
    code_version: str | None,
) -> Any:
    if not callable(getattr(cls, "run", None)):
        raise MissingRun(f"task type {cls.__qualname__} must define a run() method")
    reserved = RESERVED_NAMES.intersection(getattr(cls, "__annotations__", {}))
    if reserved:
        raise TaskDefinitionError(
            f"task type {cls.__qualname__} cannot have a field named {sorted(reserved)[0]!r}: "
            "every task has that attribute"
        )
    hook = getattr(cls, "__post_init__", None)
    if hook is _post_init:
        hook = cls._labnb_meta.user_post_init
    cls.__post_init__ = _post_init  # before @dataclass, so its __init__ calls it
    own_repr = "__repr__" in vars(cls)
    cls = dataclasses.dataclass(frozen=True, eq=False, repr=own_repr)(cls)
    cls._labnb_meta = TaskMeta(
        type_name=cls.__qualname__,
        module=cls.__module__,
        fields=tuple(field.name for field in dataclasses.fields(cls)),
        format=fmt,
        max_parallel=max_parallel,
        mlflow_run=mlflow_run,
        code_version=code_version,
        user_post_init=hook,
    )
    for name, member in _TASK_MEMBERS.items():
        setattr(cls, name, member)
    if not own_repr:
        cls.__repr__ = _repr
    for name, default in _DEFAULT_HOOKS.items():
        if not hasattr(cls, name):  # the user's own (or a parent task type's) hook wins
            setattr(cls, name, default)
    _TASK_TYPES[(cls.__module__, cls.__qualname__)] = cls
    return cls


def defined_type(qualname: str, module: str | None = None) -> type | None:
    """The task type defined now under that name (in that module, when given),
    or None when there is none or several modules define one."""
    if module is not None and (module, qualname) in _TASK_TYPES:
        return _TASK_TYPES[(module, qualname)]
    found = [cls for (_, name), cls in _TASK_TYPES.items() if name == qualname]
    return found[0] if len(found) == 1 else None


def task_type_for(module: str, qualname: str) -> type:
    """The task type stored as ``module``/``qualname``, to rebuild a nested task.

    When that module does not hold it (results imported from labtech that were
    made by a script, read in a notebook), the one type registered under that
    name is taken: ids do not depend on modules, so it makes the same task.
    """
    cls = _TASK_TYPES.get((module, qualname))
    if cls is not None:
        return cls
    try:
        return resolve(module, qualname)
    except LookupError:
        same_name = [cls for (_, name), cls in _TASK_TYPES.items() if name == qualname]
        if len(same_name) == 1:
            return same_name[0]
        raise


# --- members added to every task type ---------------------------------------


def _post_init(self: Any) -> None:
    meta = self._labnb_meta
    for name in meta.fields:
        value = getattr(self, name)
        object.__setattr__(self, name, normalise(value, type(self).__qualname__, name))
    if meta.user_post_init is not None:
        meta.user_post_init(self)
    self.post_init()


def normalise(value: Any, owner: str, field: str) -> Any:
    """Check a parameter value and make it immutable (lists become tuples, dicts frozendicts)."""
    if type(value) in _SCALAR_TYPES or isinstance(value, Enum) or is_task(value):
        return value
    if isinstance(value, (list, tuple)):
        return tuple(normalise(item, owner, field) for item in value)
    if isinstance(value, (dict, frozendict)):
        for key in value:
            if type(key) is not str:
                raise ParameterError(
                    f"{owner}.{field}: dict parameter keys must be str, "
                    f"got a key of type {type(key).__name__}"
                )
        return frozendict({key: normalise(item, owner, field) for key, item in value.items()})
    raise ParameterError(
        f"{owner}.{field}: parameter values must be str, bool, int, float, None, an Enum member, "
        f"a task, or a list/tuple/dict of these; got {type(value).__module__}."
        f"{type(value).__qualname__} (pass large objects through Lab(context=...) or an Enum)"
    )


def _task_id(self: Any) -> str:
    cached = self.__dict__.get("_labnb_id")
    if cached is None:
        _compute_ids(self)
        cached = self.__dict__["_labnb_id"]
    return cached


def _compute_ids(root: Any) -> None:
    """Give ``root`` and every nested task without one its id, dependencies first.

    A task's id hashes its dependencies' ids, so computing it recursively went
    one Python frame per level: a chain of 300 dependent tasks hit the
    recursion limit. This walk keeps its own stack. A dependency cycle (only
    possible by mutating frozen tasks) raises RecursionError, which planning
    turns into a CycleError naming the loop.
    """
    stack: list[tuple[Any, bool]] = [(root, False)]
    in_progress: set[int] = set()
    while stack:
        task, finishing = stack.pop()
        if "_labnb_id" in task.__dict__:
            continue
        if finishing:
            meta = task._labnb_meta
            params = {name: encode(getattr(task, name)) for name in meta.fields}
            version = code_version_of(task)
            task.__dict__["_labnb_id"] = hash_identity(meta.type_name, version, params)
            in_progress.discard(id(task))
            continue
        if id(task) in in_progress:
            raise RecursionError(f"{type(task).__qualname__} depends on itself")
        in_progress.add(id(task))
        stack.append((task, True))
        stack.extend(
            (dep, False) for dep in task._labnb_dependencies if "_labnb_id" not in dep.__dict__
        )


STORED_DEPTH = 32
"""How deep a task's stored form nests its dependencies' own stored forms; a
dependency deeper than that is stored by reference (type, module and id, as
``cached_tasks`` resolves it), so an entry at the end of a chain of 10,000
dependent tasks holds 32 levels, not 10,000 (and JSON can write it)."""


def _stored(self: Any) -> dict[str, Any]:
    """Everything needed to rebuild this task from the index alone (dependencies
    nested, or by reference beyond ``STORED_DEPTH``); computed once, dependencies
    first, by a walk with its own stack (as ``_compute_ids``)."""
    if "_labnb_stored_form" not in self.__dict__:
        _compute_stored_forms(self)
    return self.__dict__["_labnb_stored_form"]


def _nested_form(self: Any) -> dict[str, Any]:
    """This task as a parameter of another's stored form: whole, or a reference."""
    form = self._labnb_stored
    if self.__dict__["_labnb_stored_depth"] < STORED_DEPTH:
        return form
    return {key: form[key] for key in ("task", "module", "id")}


def _compute_stored_forms(root: Any) -> None:
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        task, finishing = stack.pop()
        if "_labnb_stored_form" in task.__dict__:
            continue
        if not finishing:
            stack.append((task, True))
            stack.extend((dep, False) for dep in task._labnb_dependencies)
            continue
        meta = task._labnb_meta
        inlined = [
            dep.__dict__["_labnb_stored_depth"]
            for dep in task._labnb_dependencies
            if dep.__dict__["_labnb_stored_depth"] < STORED_DEPTH
        ]
        task.__dict__["_labnb_stored_depth"] = 1 + max(inlined, default=0)
        task.__dict__["_labnb_stored_form"] = {
            "task": meta.type_name,
            "module": meta.module,
            "id": task._labnb_id,
            "params": {name: encode(getattr(task, name), stored=True) for name in meta.fields},
        }


def _dependencies(self: Any) -> tuple[Any, ...]:
    cached = self.__dict__.get("_labnb_deps")
    if cached is None:
        cached = tuple(_nested_tasks(getattr(self, name) for name in self._labnb_meta.fields))
        self.__dict__["_labnb_deps"] = cached
    return cached


def _nested_tasks(values: Any) -> Iterator[Any]:
    for value in values:
        if is_task(value):
            yield value
        elif isinstance(value, tuple):
            yield from _nested_tasks(value)
        elif isinstance(value, frozendict):
            yield from _nested_tasks(value.values())


def _eq(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return self._labnb_id == other._labnb_id


def _hash(self: Any) -> int:
    # Derived from the id, not from str hashing, so it is the same in every process.
    return int(self._labnb_id[:15], 16)


def _result(self: Any) -> Any:
    holder = self.__dict__.get("_labnb_result", _MISSING)
    if holder is _MISSING:
        raise ResultNotAvailable(
            f"{self!r} has no result yet: run it with lab.run_tasks([...]) first"
        )
    return holder.value


def _result_meta(self: Any) -> ResultMeta:
    meta = self.__dict__.get("_labnb_result_meta")
    if meta is None:
        raise ResultNotAvailable(
            f"{self!r} has no result_meta yet: run it with lab.run_tasks([...]) first"
        )
    return meta


def _set_context(self: Any, context: Any) -> None:
    """Set what ``self.context`` returns (labtech's ``set_context``); Labs call it for you."""
    self.__dict__["_labnb_context"] = context


def _filter_context(self: Any, context: Any) -> Any:
    """The part of the lab's context this task sees; override to narrow it (default: all)."""
    return context


def _user_post_init(self: Any) -> None:
    """Called after a task is created and its parameters checked; override to validate."""


def _runner_options(self: Any) -> dict[str, Any]:
    """Options for the runner of this task, e.g. ``{"ray": {"remote_options": {...}}}``."""
    return {}


def _sort_key(self: Any) -> tuple[Any, ...]:
    meta = self._labnb_meta
    return (meta.type_name, tuple(_orderable(getattr(self, name)) for name in meta.fields))


def _orderable(value: Any) -> tuple[Any, ...]:
    """A key that orders any parameter value against any other, deterministically.

    Values of different kinds are ordered by kind (None, bools, numbers, strings,
    Enum members, tasks, containers), so sorting mixed tasks never raises.
    """
    if value is None:
        return (0,)
    if isinstance(value, bool):
        return (1, value)
    if isinstance(value, (int, float)):
        return (2, value)
    if isinstance(value, str):
        return (3, value)
    if isinstance(value, Enum):
        return (4, type(value).__qualname__, value.name)
    if is_task(value):
        return (5, _sort_key(value))
    if isinstance(value, tuple):
        return (6, tuple(_orderable(item) for item in value))
    return (7, tuple((key, _orderable(item)) for key, item in sorted(value.items())))


def _lt(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return (_sort_key(self), self._labnb_id) < (_sort_key(other), other._labnb_id)


def _gt(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return _lt(other, self)


def _le(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return self == other or _lt(self, other)


def _ge(self: Any, other: Any) -> bool:
    if not is_task(other):
        return NotImplemented
    return self == other or _lt(other, self)


def _context(self: Any) -> Any:
    context = self.__dict__.get("_labnb_context", _MISSING)
    if context is _MISSING:
        raise AttributeError(f"{type(self).__qualname__}.context is only set while a Lab runs it")
    return context


REPR_DEPTH = 3
"""Nested tasks shown in a task's repr; deeper ones are ``Type(...)``."""


def _repr(self: Any, depth: int = 0) -> str:
    """As ``@dataclass`` writes it (``Fit(C=1.0, data=Load(n=3))``), but a task
    nested deeper than ``REPR_DEPTH`` is ``Load(...)``: a chain of 10,000
    dependent tasks must not recurse 10,000 frames to name its last task."""
    name = type(self).__qualname__
    if depth >= REPR_DEPTH:
        return f"{name}(...)"
    parts = []
    for field in self._labnb_meta.fields:
        value = getattr(self, field)
        shown = _repr(value, depth + 1) if is_task(value) else repr(value)
        parts.append(f"{field}={shown}")
    return f"{name}({', '.join(parts)})"


def _getstate(self: Any) -> dict[str, Any]:
    # Results and context stay behind: they travel separately, once per run.
    state = {name: getattr(self, name) for name in self._labnb_meta.fields}
    state["_labnb_id"] = self._labnb_id
    if "_labnb_config" in self.__dict__:  # where it came from (not part of its id)
        state["_labnb_config"] = self.__dict__["_labnb_config"]
    return state


_TASK_MEMBERS: dict[str, Any] = {
    "__post_init__": _post_init,
    "__eq__": _eq,
    "__hash__": _hash,
    "__getstate__": _getstate,
    "_labnb_id": property(_task_id),
    "_labnb_stored": property(_stored),
    "_labnb_nested_form": property(_nested_form),
    "_labnb_dependencies": property(_dependencies),
    "__lt__": _lt,
    "__le__": _le,
    "__gt__": _gt,
    "__ge__": _ge,
    "result": property(_result),
    "result_meta": property(_result_meta),
    "context": property(_context),
    "set_context": _set_context,
    # labnb's id already includes code_version, so a result it loads always
    # has the version the decorator declares now: the two are the same.
    "code_version": property(code_version_of),
    "current_code_version": property(code_version_of),
    "cache_key": property(lambda self: self._labnb_id),
}
_DEFAULT_HOOKS: dict[str, Any] = {
    "filter_context": _filter_context,
    "post_init": _user_post_init,
    "runner_options": _runner_options,
}
